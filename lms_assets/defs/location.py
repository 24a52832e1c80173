"""One study's Dagster definitions: every domain's assets and checks over a study folder, a warehouse and an outputs
folder, with the resources, jobs, schedule, sensor and executor.

Nothing here reads the environment: ``lms_assets.definitions`` (the default location, `make run`) and
``lms_assets.infra.studies`` (one location per study on a team server) say where each study's files are.
"""

import types
from collections.abc import Sequence
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
from lms_assets.defs.resources import OutputsFolder, StudyFolder, WarehouseIOManager
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


def _prefixed(assets: Sequence[AssetsDefinition], prefix: str) -> list[AssetsDefinition]:
    """``assets`` with every key, and every key they read, under ``prefix``: a Dagster instance has one asset namespace,
    so two studies' code locations on one server would otherwise share each table's history, checks and lineage."""
    # load_assets_from_modules is Dagster's public way to prefix a set of assets together, their deps included.
    scope = types.ModuleType(f"lms_assets.study_{prefix}")
    vars(scope).update({f"asset_{n}": a for n, a in enumerate(assets)})
    return cast(list[AssetsDefinition], load_assets_from_modules([scope], key_prefix=prefix, source_key_prefix=prefix))


def study_defs(study_dir: Path, warehouse: Path, outputs: Path, report_url: str, key_prefix: str | None = None) -> Definitions:
    """Definitions reading the study folder ``study_dir``, storing tables in the DuckDB file ``warehouse`` and writing
    charts and the report under ``outputs``, which ``report_url`` serves. ``key_prefix`` puts every asset key under
    the study's name (one code location of several on a team server); the tables keep their names."""
    outputs_folder = OutputsFolder(path=str(outputs), base_url=report_url)
    # The summaries' printed-value checks are declared from the registry as it is now, so they are built here.
    assets = cast(list[AssetsDefinition], [*load_assets_from_modules(DOMAINS), *gated_summaries(DOMAINS, registry_at_load(study_dir))])
    if key_prefix:
        assets = _prefixed(assets, key_prefix)
    return Definitions(
        # Every asset's page links to its place in the served study report.
        assets=map_asset_specs(
            lambda spec: spec.merge_attributes(metadata={"report": MetadataValue.url(outputs_folder.url(report_place(spec.key.path[-1])))}), assets
        ),
        asset_checks=load_asset_checks_from_modules(DOMAINS, asset_key_prefix=key_prefix),
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
