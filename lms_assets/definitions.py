"""The Dagster definitions of lms-assets: every domain's assets and checks, the warehouse, and the executor."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from lms_assets import config
from lms_assets.defs import adam, graphs, records, refresh, report
from lms_assets.defs.audit import consistency, published, sensitivity, verification
from lms_assets.defs.audit.published import gated_summaries, registry_at_load
from lms_assets.defs.executor import pool_watching_in_process_executor
from lms_assets.defs.resources import WarehouseIOManager
from lms_assets.defs.tables import baseline, response, survival, toxicity

# In the order of the flow (docs/architecture.md): records, ADaM, tables, graphs, audit, report, and what keeps them current.
DOMAINS = [records, adam, baseline, response, toxicity, survival, graphs, published, consistency, sensitivity, verification, report, refresh]


def build_defs() -> Definitions:
    """Definitions for the study folder and warehouse named by the environment at call time."""
    return Definitions(
        # The summaries' published-figure checks are declared from the registry as it is now, so they are built here.
        assets=[*load_assets_from_modules(DOMAINS), *gated_summaries(DOMAINS, registry_at_load())],
        asset_checks=load_asset_checks_from_modules(DOMAINS),
        resources={"io_manager": WarehouseIOManager(database=str(config.duckdb_path()), schema="main")},
        # In process (on two cores a process per step costs seconds per asset), watched while waiting for the duckdb pool
        # (lms_assets/defs/executor.py).
        executor=pool_watching_in_process_executor,
        jobs=refresh.JOBS,
        schedules=refresh.SCHEDULES,
        sensors=refresh.SENSORS,
    )


defs = build_defs()
