"""Checks, the layer after ``tables`` (3) that ``audit`` (5) and the report build on: every value the paper prints
against the value its summary table shows, and the verdict rule.

Pure (no Dagster). May import: ``records``, ``adam``, ``tables``, Polars.
"""
