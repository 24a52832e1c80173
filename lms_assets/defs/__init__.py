"""The Dagster layer: one module per study domain, thin wrappers over ``lms_assets``."""
