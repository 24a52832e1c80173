"""The Dagster definitions of lms-assets: every domain's assets and checks, the warehouse, and the executor."""


from dagster import Definitions, in_process_executor, load_asset_checks_from_modules, load_assets_from_modules

from lms_assets import config
from lms_assets.defs import cohort, ingest
from lms_assets.defs.resources import WarehouseIOManager

DOMAINS = [ingest, cohort]

defs = Definitions(
    assets=load_assets_from_modules(DOMAINS),
    asset_checks=load_asset_checks_from_modules(DOMAINS),
    resources={"io_manager": WarehouseIOManager(database=str(config.duckdb_path()))},
    # On two cores a process per step costs seconds per asset; these steps are milliseconds of Polars each.
    executor=in_process_executor,
)
