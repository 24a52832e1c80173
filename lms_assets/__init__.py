"""lms-assets: a checked, reproducible Dagster analysis of anlotinib in advanced leiomyosarcoma."""
