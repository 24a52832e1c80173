"""Group ``results``: the analysis results dataset (every statistic, one row each) exported per data cut for R and
other tools, checked against the values the printed-value checks compared; and what changed from each cut to the next."""

import datetime as dt
from pathlib import Path

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetIn, MetadataValue, Output, ResourceParam

from lms_assets.checks.printed_values import PRINTED_VALUE_SOURCES
from lms_assets.defs import gate
from lms_assets.defs.constants import asset_defaults
from lms_assets.defs.markdown import escape_markdown
from lms_assets.defs.metadata import preview
from lms_assets.defs.resources import OutputsFolder, WarehouseTables
from lms_assets.records import schemas, validation
from lms_assets.results import ard, changes, export
from lms_assets.results.coverage import printed_value_problems
from lms_assets.tables.printed import published_cut

RESULTS = "results"
results_asset = asset_defaults(group=RESULTS, kinds={"polars", "duckdb", "parquet", "csv"})
PRINTED_IN_RESULTS = "printed_values_in_results"
# Failures quoted in the check's first line; the metadata lists up to PROBLEMS_LISTED.
QUOTED, PROBLEMS_LISTED = 3, 50
# Rows behind the printed values previewed on the asset page: the shipped registry prints 169 quantities.
PRINTED_ROWS_SHOWN = 250
# The tables the ARD reads besides the printed-value owners.
EXTRA_TABLES = ("survival_landmarks",)
DATASETS = {
    "adtte": AssetIn(metadata={"columns": ["DCUTDT", "PARAMCD", "SUBJID", "AVAL", "CNSR", "SRCFILE", "SRCROW"]}),
    "adrs": AssetIn(metadata={"columns": ["SUBJID", "PARAMCD", "SRCFILE", "SRCROW"]}),
    "adtr": AssetIn(metadata={"columns": ["SUBJID", "SRCFILE", "SRCROW"]}),
    "adae": AssetIn(metadata={"columns": ["SUBJID", "AEDECOD", "SRCFILE", "SRCROW"]}),
    "raw_patients": AssetIn(metadata={"columns": ["patient_id", "_file", "_row"]}),
    "raw_allocations": AssetIn(metadata={"columns": ["patient_id", "_file", "_row"]}),
}


def printed_values_check(candidate: pl.DataFrame, printed_values: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> AssetCheckResult:
    """``PRINTED_IN_RESULTS`` on a candidate ARD: every printed value is one row whose stat is the value its check compared."""
    cut = published_cut(printed_values)
    compared = {owner: source(tables[owner], cut) for owner, source in PRINTED_VALUE_SOURCES.items()}
    coverage = printed_value_problems(candidate, printed_values, compared)
    problems = coverage.problems
    quoted = "; ".join(problems[:QUOTED]) + (f"; and {len(problems) - QUOTED} more" if len(problems) > QUOTED else "")
    return AssetCheckResult(
        check_name=PRINTED_IN_RESULTS,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description=escape_markdown(f"{len(problems)} problem(s): {quoted}") if problems else None,
        metadata={
            "printed values in the ARD": MetadataValue.text(f"{coverage.held} of {printed_values.height}"),
            "not computed by any table": MetadataValue.text(str(coverage.not_computed)),
            **({"problems": MetadataValue.json(problems[:PROBLEMS_LISTED])} if problems else {}),
        },
    )


def printed_rows(candidate: pl.DataFrame, printed_values: pl.DataFrame) -> pl.DataFrame:
    """The ARD rows behind the printed values, at the published cut, as the asset page previews them."""
    _, at_cut = ard.at_published_cut(candidate, printed_values)
    ids = printed_values.group_by("quantity", maintain_order=True).agg(pl.col("value_id").len().alias("printings"))
    return at_cut.join(ids, on="quantity", how="inner", maintain_order="left").select(
        "quantity",
        "stat_label",
        "stat",
        "n",
        pl.when(pl.col("basis") == "reconstructed_inputs").then(pl.lit("reconstructed")).otherwise(pl.lit("Table 3")).alias("basis"),
        "printings",
    )


def _links(outputs: OutputsFolder, cuts: list[dt.date | None]) -> dict[str, MetadataValue]:
    links: dict[str, MetadataValue] = {}
    for cut in cuts:
        for kind, relative in export.files(cut).items():
            links[f"{kind} {export.cut_folder(cut)}"] = MetadataValue.url(outputs.url(relative.as_posix()))
    return links


@results_asset(
    ins={
        **{name: AssetIn() for name in (*PRINTED_VALUE_SOURCES, *EXTRA_TABLES)},
        **DATASETS,
        "printed_values": AssetIn(),
        "raw_provenance": AssetIn(),
    },
    description=(
        "The analysis results dataset (ARD, cards column model): one row per statistic the platform computes, per data "
        "cut — `group1`/`group1_level`, `variable`/`variable_level`, `stat_name`/`stat_label`/`stat`, with the `analysis` "
        "(summary table), `method`, `data_cut`, the registry `quantity` a printed-value check judges (null for a "
        "statistic the paper never prints), `basis` (Table 3's rows or reconstructed inputs: a value on reconstructed "
        "inputs shows the arithmetic, not that the paper is right), `n` and the `patients` counted, and the record lines "
        "they come from (`source_file`, `source_rows`). Percentages are percents (`stat_name` pct). Exported per cut to "
        "`results/<cut>/analysis_results.csv` and `.parquet` with a column dictionary. Blocking check "
        f"{PRINTED_IN_RESULTS}: every printed value is exactly one row whose stat is the value its check compared."
    ),
    check_specs=[
        AssetCheckSpec(
            PRINTED_IN_RESULTS,
            asset="analysis_results",
            blocking=True,
            description=(
                "Every printed value a summary table computes is exactly one ARD row at the published cut, and its stat "
                "equals the value the printed-value check compared (recomputed here from the table); a printed value no "
                "table computes has no row; no two rows name the same statistic. ERROR otherwise: the ARD goes to "
                "staging and no file is exported."
            ),
        )
    ],
)
def analysis_results(
    context: AssetExecutionContext,
    io_manager: ResourceParam[WarehouseTables],
    outputs_folder: OutputsFolder,
    printed_values: pl.DataFrame,
    raw_provenance: pl.DataFrame,
    **inputs: pl.DataFrame,
):
    tables = {name: inputs[name] for name in (*PRINTED_VALUE_SOURCES, *EXTRA_TABLES)}
    datasets = {name: inputs[name] for name in DATASETS}
    provenance = validation.clean(raw_provenance, schemas.PROVENANCE, validation.empty_quarantine())
    candidate = ard.analysis_results(tables, PRINTED_VALUE_SOURCES, datasets, provenance)
    check = printed_values_check(candidate, printed_values, tables)
    cuts = candidate["data_cut"].unique().sort().to_list()
    metadata = {
        "dagster/row_count": candidate.height,
        "data_cuts": MetadataValue.text(", ".join(export.cut_folder(c) for c in cuts) or "none"),
        "printed value rows": preview(printed_rows(candidate, printed_values), limit=PRINTED_ROWS_SHOWN),
        **_links(outputs_folder, cuts),
    }
    for event in gate.publish(context, io_manager, candidate, [check], metadata):
        if isinstance(event, Output):
            written = export.write(candidate, Path(outputs_folder.root))
            context.log.info(
                f"analysis_results: {candidate.height} rows exported to {len(written)} files under {outputs_folder.root / export.FOLDER}"
            )
        yield event


CHANGES_ADD_UP = "changes_add_up"
# Rows of cut_changes previewed on its page: the forecast, the printed values and the patients come first.
CHANGES_SHOWN = 40
# Patients and printed values named in a cut's summary row; the rest are counted.
NAMED = 12


def changes_check(table: pl.DataFrame, analysis_results: pl.DataFrame, printed_values: pl.DataFrame) -> AssetCheckResult:
    """``CHANGES_ADD_UP`` on a candidate ``cut_changes``."""
    problems = changes.new_event_problems(table, analysis_results) + changes.value_problems(table, analysis_results, printed_values)
    quoted = "; ".join(problems[:QUOTED]) + (f"; and {len(problems) - QUOTED} more" if len(problems) > QUOTED else "")
    listed = table.filter((pl.col("kind") == changes.PATIENT) & pl.col("change").str.starts_with("new event")).height
    return AssetCheckResult(
        check_name=CHANGES_ADD_UP,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description=escape_markdown(quoted) if problems else None,
        metadata={
            "new events listed": MetadataValue.int(listed),
            **({"problems": MetadataValue.json(problems[:PROBLEMS_LISTED])} if problems else {}),
        },
    )


def _listed(items: pl.Series) -> str:
    """How many, and the first ``NAMED`` of them: a large study has thousands of new events between two cuts."""
    if items.is_empty():
        return "none"
    more = ", …" if items.len() > NAMED else ""
    return f"{items.len()}: {', '.join(items.head(NAMED).to_list())}{more}"


def per_cut(table: pl.DataFrame) -> pl.DataFrame:
    """One row per later cut: who had a new event or longer follow-up, how many statistics moved, which printed
    values changed verdict, and the forecast's verdict."""
    rows = []
    for (earlier, later), group in table.group_by("earlier_cut", "later_cut", maintain_order=True):
        of = {kind: group.filter(pl.col("kind") == kind) for kind in changes.KINDS}
        patients = of[changes.PATIENT]
        events = patients.filter(pl.col("change").str.starts_with("new event"))
        longer = patients.filter(~pl.col("change").str.starts_with("new event"))
        forecast = of[changes.FORECAST]
        rows.append(
            {
                "cuts": f"{earlier} → {later}",
                "new events": _listed(events["item"]),
                "longer follow-up": f"{longer['SUBJID'].n_unique()} patient(s)",
                "statistics moved": str(of[changes.STATISTIC].height),
                "printed values changed verdict": _listed(of[changes.PRINTED]["item"].str.extract(r"^([^:]+)")),
                "median OS forecast": forecast["change"][0] if forecast.height else "",
            }
        )
    return pl.DataFrame(
        rows,
        schema=dict.fromkeys(
            ("cuts", "new events", "longer follow-up", "statistics moved", "printed values changed verdict", "median OS forecast"), pl.String
        ),
    )


@results_asset(
    kinds={"polars", "duckdb"},
    ins={
        "analysis_results": AssetIn(),
        "adtte": AssetIn(metadata={"columns": ["DCUTDT", "PARAMCD", "SUBJID", "AVAL", "CNSR", "AVALRFL"]}),
        "printed_values": AssetIn(),
    },
    description=(
        "What changed from each data cut to the next (none with one cut): patients with a new event or longer "
        "follow-up (from ADTTE), every statistic of analysis_results whose value or CI moved, appeared or is no "
        "longer computed, each printed value whose verdict moved (the cut's value rounds to the printing or not), and "
        f"the Discussion's forecast ({changes.FORECAST_ID}) that {changes.FORECAST_TEXT}, judged on the SPSS median OS. "
        "One row per change: kind, item, earlier and later value, change, basis. OS rests on reconstructed last-contact "
        "times of the patients alive at the published cut (basis = reconstructed_inputs). Blocking check "
        f"{CHANGES_ADD_UP}: the patients listed with a new event are as many as the Kaplan–Meier event count rose, and "
        "every value shown is analysis_results' at its cut."
    ),
    check_specs=[
        AssetCheckSpec(
            CHANGES_ADD_UP,
            asset="cut_changes",
            blocking=True,
            description=(
                "Per pair of successive cuts and endpoint, the patients listed with a new event are as many as "
                "analysis_results' Kaplan–Meier event count rose; every statistic's, printed value's and the forecast's "
                "earlier and later value, found again by its item, is analysis_results' at that cut. ERROR otherwise; "
                "the table goes to staging."
            ),
        )
    ],
)
def cut_changes(
    context: AssetExecutionContext,
    io_manager: ResourceParam[WarehouseTables],
    analysis_results: pl.DataFrame,
    adtte: pl.DataFrame,
    printed_values: pl.DataFrame,
):
    table = changes.cut_changes(analysis_results, adtte, printed_values)
    check = changes_check(table, analysis_results, printed_values)
    summary = per_cut(table)
    context.log.info(f"cut_changes: {table.height} changes over {summary.height} pair(s) of successive cuts")
    metadata = {
        "dagster/row_count": table.height,
        "by cut": preview(summary) if summary.height else MetadataValue.text("one data cut: nothing to compare"),
        "changes": preview(table.drop("earlier_cut", "SUBJID"), limit=CHANGES_SHOWN),
    }
    yield from gate.publish(context, io_manager, table, [check], metadata)
