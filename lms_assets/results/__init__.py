"""Layer 6, results: the analysis results dataset (every statistic, one row each) and what changed between data cuts.

Pure (no Dagster). May import: ``records``, ``adam``, ``tables``, ``audit``, ``dictionary`` (the column descriptions), Polars.
"""
