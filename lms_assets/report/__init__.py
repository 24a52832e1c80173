"""Layer 6, report: the study report as one self-contained HTML page, built from values it is given.

Pure (no Dagster). May import: every layer above, Polars.
"""
