"""The Dagster definitions of lms-assets: every domain's assets and checks, the resources, and the executor.

The one place that reads the environment: ``LMS_DATA_DIR``, ``LMS_DUCKDB_PATH``, ``LMS_OUTPUT_DIR`` and
``LMS_REPORT_URL`` (defaults in ``defs/resources.py``, ``LOCATIONS`` and ``REPORT_URL``) are read once, when the code location loads, and handed to the resources.
Not Dagster's ``EnvVar``: it resolves at run launch and carries no default, while the registry that declares the
published-value checks is read here, at load, and must come from the same study folder the assets read.
"""

import os
from pathlib import Path
from typing import cast

from dagster import (
    AssetsDefinition,
    Definitions,
    MetadataValue,
    in_process_executor,
    load_asset_checks_from_modules,
    load_assets_from_modules,
    map_asset_specs,
)

from lms_assets.defs import adam, exports, graphs, records, refresh, report, results
from lms_assets.defs.audit import consistency, sensitivity, verification
from lms_assets.defs.graphs import CHART_IO_MANAGER, ChartIOManager
from lms_assets.defs.registry_at_load import registry_at_load
from lms_assets.defs.report import report_place
from lms_assets.defs.resources import REPORT_URL, OutputsFolder, StudyFolder, WarehouseIOManager, locations
from lms_assets.defs.tables import baseline, response, survival, toxicity
from lms_assets.defs.tables.step import gated_summaries

# In the order of the flow (docs/architecture.md): records, ADaM, tables, graphs, audit, report, and what keeps them current.
DOMAINS = [
    records,
    adam,
    exports,
    baseline,
    response,
    toxicity,
    survival,
    graphs,
    consistency,
    sensitivity,
    verification,
    results,
    report,
    refresh,
]


def build_defs(
    study_dir: Path | str | None = None, warehouse: Path | str | None = None, outputs: Path | str | None = None, report_url: str | None = None
) -> Definitions:
    """Definitions reading the study folder ``study_dir``, storing tables in the DuckDB file ``warehouse`` and writing
    charts and the report under ``outputs``, which ``report_url`` serves; each one not given is taken from the
    environment (or its default)."""
    from_env = locations(os.environ)
    study_dir = Path(study_dir) if study_dir is not None else from_env["study_dir"]
    warehouse = Path(warehouse) if warehouse is not None else from_env["warehouse"]
    outputs = Path(outputs) if outputs is not None else from_env["outputs"]
    outputs_folder = OutputsFolder(path=str(outputs), base_url=report_url or os.environ.get(*REPORT_URL))
    # The summaries' printed-value checks are declared from the registry as it is now, so they are built here.
    assets = cast(list[AssetsDefinition], [*load_assets_from_modules(DOMAINS), *gated_summaries(DOMAINS, registry_at_load(study_dir))])
    return Definitions(
        # Every asset's page links to its place in the served study report.
        assets=map_asset_specs(
            lambda spec: spec.merge_attributes(metadata={"report": MetadataValue.url(outputs_folder.url(report_place(spec.key.path[-1])))}), assets
        ),
        asset_checks=load_asset_checks_from_modules(DOMAINS),
        resources={
            "io_manager": WarehouseIOManager(database=str(warehouse)),
            "study_folder": StudyFolder(path=str(study_dir)),
            "outputs_folder": outputs_folder,
            # The chart assets' images (PNG + JSON) beside their interactive HTML.
            CHART_IO_MANAGER: ChartIOManager(base_dir=str(outputs / "charts")),
        },
        # In process: on two cores a process per step costs seconds per asset.
        executor=in_process_executor,
        jobs=refresh.JOBS,
        schedules=refresh.SCHEDULES,
        sensors=refresh.SENSORS,
    )


defs = build_defs()
