"""Pure statistics on Polars frames. Nothing in this package imports Dagster."""
