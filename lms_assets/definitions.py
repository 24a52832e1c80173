"""The Dagster definitions of lms-assets: every domain's assets and checks, the warehouse, and the executor."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from lms_assets import config
from lms_assets.defs import (
    audit,
    baseline,
    charts,
    cohort,
    ingest,
    refresh,
    report,
    response,
    sensitivity,
    survival,
    toxicity,
    verification,
)
from lms_assets.defs.executor import pool_watching_in_process_executor
from lms_assets.defs.published import all_published_figure_checks, registry_at_load
from lms_assets.defs.resources import WarehouseIOManager

DOMAINS = [ingest, cohort, baseline, response, toxicity, survival, charts, audit, sensitivity, verification, report, refresh]


def build_defs() -> Definitions:
    """Definitions for the study folder and warehouse named by the environment at call time."""
    return Definitions(
        assets=load_assets_from_modules(DOMAINS),
        asset_checks=[*load_asset_checks_from_modules(DOMAINS), *all_published_figure_checks(registry_at_load())],
        resources={"io_manager": WarehouseIOManager(database=str(config.duckdb_path()), schema="main")},
        # On two cores a process per step costs seconds per asset; these steps are milliseconds of Polars each.
        # In process, watched while waiting for the duckdb pool (lms_assets/defs/executor.py).
        executor=pool_watching_in_process_executor,
        jobs=refresh.JOBS,
        schedules=refresh.SCHEDULES,
        sensors=refresh.SENSORS,
    )


defs = build_defs()
