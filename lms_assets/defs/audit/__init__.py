"""Dagster assets and checks of ``lms_assets.audit``: the typed registry, consistency, printed_audit, sensitivity and verification."""
