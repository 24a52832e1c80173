"""Dagster assets and checks of ``lms_assets.audit``: the registry, its checks, consistency, sensitivity and verification."""
