"""Group ``cohort``: the ADaM datasets as standard exports, per data cut, under the outputs folder (``adam/<cut>/``).

Each cut's folder holds every dataset as CDISC Dataset-JSON v1.1 (<table>.json) and SAS XPORT v5 (<table>.xpt), and
define.json, the variables' labels, types, lengths, origins and derivations. The files are written beside their
place, read back and compared with the warehouse tables (the blocking check ``exports_read_back``) and only then
moved in, so the folder a colleague downloads is never a half-written or wrong one.
"""

import datetime as dt
import importlib.metadata
import shutil

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, MetadataValue, ResourceParam

from lms_assets.adam import export
from lms_assets.defs import gate
from lms_assets.defs.constants import COHORT, asset_defaults
from lms_assets.defs.metadata import preview
from lms_assets.defs.records import study_of
from lms_assets.defs.resources import OutputsFolder, StudyFolder, WarehouseTables
from lms_assets.records import schemas, validation

exports_asset = asset_defaults(group=COHORT, kinds={"polars", "duckdb"})
READ_BACK = "exports_read_back"
FOLDER = "adam"
SOURCE_SYSTEM = ("lms-assets", importlib.metadata.version("lms-assets"))


def _read_back_result(problems: list[str]) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=READ_BACK,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "") if problems else None,
        metadata={"differences": len(problems)},
    )


@exports_asset(
    description=(
        "The ADaM datasets (ADSL, ADRS, ADTR, ADTTE, ADAE) for SAS, R and regulators, per data cut in the outputs folder "
        "(adam/<cut>/): each as CDISC Dataset-JSON v1.1 and SAS XPORT v5 with labels and lengths, and define.json giving "
        "every variable's label, type, length, origin (Collected, Derived, Assigned, Reconstructed with its constraint, "
        "Not Available) and derivation. ADTTE holds the cut's rows; the other datasets have no cut and are the same in "
        "every folder (ADSL.DTHFL is at the latest cut). The table lists the files written."
    ),
    check_specs=[
        AssetCheckSpec(
            READ_BACK,
            asset="adam_exports",
            blocking=True,
            description=(
                "Every exported file is read back (Dataset-JSON as JSON, XPORT with pyreadstat) and equals its warehouse "
                "table at that cut: the same variables, rows and values (missing text is empty in SAS). Evaluated before "
                "the files are moved into place: a difference fails (ERROR) and the published folders are kept."
            ),
        )
    ],
)
def adam_exports(
    context: AssetExecutionContext,
    io_manager: ResourceParam[WarehouseTables],
    study_folder: StudyFolder,
    outputs_folder: OutputsFolder,
    adsl: pl.DataFrame,
    adrs: pl.DataFrame,
    adtr: pl.DataFrame,
    adtte: pl.DataFrame,
    adae: pl.DataFrame,
    raw_provenance: pl.DataFrame,
    quarantine: pl.DataFrame,
):
    study = study_of(study_folder).studyid
    tables = {"adsl": adsl, "adrs": adrs, "adtr": adtr, "adtte": adtte, "adae": adae}
    provenance = validation.clean(raw_provenance, schemas.PROVENANCE, quarantine)
    created = dt.datetime.now(dt.UTC)
    root = outputs_folder.root / FOLDER
    cuts = sorted(adtte["DCUTDT"].unique().to_list())
    rows, problems, staged = [], [], {}
    for cut in cuts:
        staged[cut] = root / f".{cut.isoformat()}.staged"
        written = export.write_cut(staged[cut], cut, tables, provenance, study=study, created=created, source=SOURCE_SYSTEM)
        rows += [{"data_cut": cut, **w, "json": f"{FOLDER}/{cut}/{w['json']}", "xpt": f"{FOLDER}/{cut}/{w['xpt']}"} for w in written]
        problems += export.read_back_differences(staged[cut], tables, cut)
    if not problems:
        for cut, folder in staged.items():
            export.publish_folder(folder, root / cut.isoformat())
    else:
        for folder in staged.values():
            shutil.rmtree(folder, ignore_errors=True)
    manifest = pl.DataFrame(
        rows, schema={"data_cut": pl.Date, "table": pl.String, "rows": pl.Int64, "variables": pl.Int64, "json": pl.String, "xpt": pl.String}
    )
    latest = cuts[-1].isoformat() if cuts else None
    links = {f"define.json {cut}": MetadataValue.url(outputs_folder.url(f"{FOLDER}/{cut}/{export.METADATA_FILE}")) for cut in cuts}
    if latest:
        links |= {
            f"{row['table'].upper()} {kind} {latest}": MetadataValue.url(outputs_folder.url(row[kind]))
            for row in rows[-len(tables) :]
            for kind in ("json", "xpt")
        }
    metadata = {
        "dagster/row_count": manifest.height,
        "datasets": preview(manifest.with_columns(pl.col("data_cut").cast(pl.String))),
        "data_cuts": ", ".join(c.isoformat() for c in cuts),
        **links,
    }
    yield from gate.publish(context, io_manager, manifest, [_read_back_result(problems)], metadata)
