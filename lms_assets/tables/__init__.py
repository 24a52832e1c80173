"""Layer 3, tables: Tables 1, 2 and 4 and the survival summaries, counted from ADaM, and the printed values each yields.

Pure (no Dagster). May import: ``records``, ``adam``, Polars, NumPy, SciPy, lifelines.
"""
