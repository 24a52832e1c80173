"""Layer 1, records: the study's file schemas, reading, validation and quarantine.

Pure (no Dagster). May import: the standard library, NumPy, Polars.
"""
