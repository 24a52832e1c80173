"""Layer 4, graphs: Values 1 and 2 (KM, waterfall), the forest, adverse-event and history charts, and the one renderer.

Pure (no Dagster). May import: ``tables``, Altair, vl-convert, Polars.
"""
