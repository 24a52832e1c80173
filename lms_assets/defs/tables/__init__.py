"""Dagster assets of ``lms_assets.tables``: one module per printed table's domain."""
