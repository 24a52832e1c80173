"""Layer 5, audit: printed values against recomputed ones, the paper's self-consistency, reconstruction
sensitivity and the independent R verification.

Pure (no Dagster). May import: ``records``, ``adam``, ``tables``, ``checks``, Polars, NumPy, SciPy.
"""
