"""Group ``ingest``: every record file loaded into DuckDB as it arrived, and the quarantine of bad rows."""

import warnings
from contextlib import contextmanager
from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    BetaWarning,
    DataVersion,
    Failure,
    MetadataValue,
    Output,
    ResourceParam,
)

from lms_assets.defs.constants import INGEST
from lms_assets.defs.markdown import escape_markdown, plain_text
from lms_assets.defs.metadata import preview
from lms_assets.defs.registry_at_load import bounded
from lms_assets.defs.resources import StudyFolder, WarehouseTables
from lms_assets.defs.steps import layer, selected, selected_results, spec, stored
from lms_assets.records import boundary, errors, schemas, validation
from lms_assets.records.study import Study
from lms_assets.records.validation import FILE, ROW

# A raw table's data version is its files' SHA-256, which is what lets an unchanged file skip its downstream run.
# Dagster marks the parameter beta and says so on every materialization, in every run's log.
warnings.filterwarnings("ignore", message="Parameter `data_version` of initializer `Output.__init__` is currently in beta", category=BetaWarning)

# A bad file's message is shown to every UI user; long enough for the expected column list, no more.
FAILURE_CHARS = 600


@contextmanager
def refusing_bad_files(study: Path):
    """A bad record file of the folder ``study`` fails the step with its message alone, so the UI shows the file and
    the problem, not a trace."""
    try:
        yield
    except errors.RecordFileError as err:
        # Bounded and sanitised: a message may quote a header, and a header can hold anything (issue 15); escaped,
        # because the UI renders a failure as Markdown and a quoted header may be an image or a link.
        raise Failure(description=escape_markdown(bounded(str(err), FAILURE_CHARS)), metadata={"study_folder": str(study.resolve())}) from None


def study_of(study_folder: StudyFolder) -> Study:
    """The study's study.toml; a bad one fails the step naming the file, key and value."""
    with refusing_bad_files(study_folder.root):
        return study_folder.study()


def _absent_file(context: AssetExecutionContext, schema: schemas.FileSchema, path: Path) -> Output[pl.DataFrame]:
    """An optional file the study does not have: an empty table of its columns, saying so."""
    context.log.info(f"No {schema.location} in the study folder: stored as an empty table")
    frame = pl.DataFrame(schema={**dict.fromkeys(schema.column_names, pl.String), FILE: pl.String, ROW: pl.Int64, "content_hash": pl.String})
    return Output(
        frame,
        output_name=f"raw_{schema.name}",
        data_version=DataVersion("absent"),
        metadata={"source_file": MetadataValue.text(f"absent: {path}"), "dagster/row_count": 0, "preview": preview(frame)},
    )


def _load_file(context: AssetExecutionContext, study: Path, schema: schemas.FileSchema, optional: bool = False) -> Output[pl.DataFrame]:
    with refusing_bad_files(study):
        path = boundary.resolve_inside(study, schema.location)
        if optional and not path.exists():
            return _absent_file(context, schema, path)
        frame = validation.read_raw(path, schema, label=schema.location)
    digest = boundary.content_hash(path)
    context.log.info(f"Loaded {frame.height} rows from {path} (sha256 {digest[:12]})")
    return Output(
        # The file's hash on its rows, as raw_followup carries it: the report reads it from the table, not the event log.
        frame.with_columns(pl.lit(digest).alias("content_hash")),
        output_name=f"raw_{schema.name}",
        data_version=DataVersion(digest),
        metadata={
            "source_file": MetadataValue.path(str(path.resolve())),
            "content_hash": digest,
            "dagster/row_count": frame.height,
            "preview": preview(frame),
        },
    )


def _raw_spec(schema: schemas.FileSchema, absent: str | None = None) -> AssetSpec:
    """The raw table of one record file; with ``absent`` (what a missing file means) the file is optional."""
    return spec(
        f"raw_{schema.name}",
        group=INGEST,
        kinds={"csv", "duckdb"},
        description=(
            f"`{schema.location}` exactly as it arrived: every value a string, plus `_file`, `_row` "
            f"(line number, header = 1) and `content_hash` (the file's SHA-256). {schema.description} Data version = SHA-256 of the file."
            + (f" {absent}" if absent else "")
        ),
    )


# Each record file but the follow-up cuts, with what its absence means where it may be absent.
RAW_FILES: list[tuple[schemas.FileSchema, str | None]] = [
    (schemas.PATIENTS, None),
    (schemas.PATIENT_ALLOCATIONS, None),
    (schemas.RESPONSE, None),
    (schemas.ADVERSE_EVENTS, None),
    (schemas.PROVENANCE, None),
    (schemas.REGISTRY, "A study without the file (e.g. a synthetic one) stores an empty table: nothing printed to compare with."),
    (
        schemas.KNOWN_DISCREPANCIES,
        "A study without the list (a synthetic or a new study) stores an empty table: no failed printed-value "
        "check is a reviewed discrepancy, so every failure is an ERROR.",
    ),
]
FOLLOWUP = "raw_followup"
# Every raw table, in the order of RAW_FILES, the follow-up cuts last.
RAW_TABLES = (*(f"raw_{schema.name}" for schema, _ in RAW_FILES), FOLLOWUP)
# The raw tables the quarantine checks, in the order validation.quarantine_rows takes them.
QUARANTINED = ("raw_patients", "raw_allocations", "raw_response", FOLLOWUP, "raw_adverse_events", "raw_printed_values", "raw_provenance")
CUTS_DISTINCT = "followup_cuts_distinct"
ROWS_FLAGGED = "followup_rows_flagged"
NO_QUARANTINED_ROWS = "no_quarantined_rows"

FOLLOWUP_SPEC = spec(
    FOLLOWUP,
    group=INGEST,
    kinds={"csv", "duckdb"},
    description=(
        "Every follow-up file (one per data cut, `followup/YYYY-MM-DD.csv`, `.csv` in any case) as it arrived, "
        "stacked, with `data_cut` from the file name and the file's SHA-256 in `content_hash`. A cut dated in the "
        "future, or after its file was last modified, is refused. Data version = hash of all cut files."
    ),
)
QUARANTINE_SPEC = spec(
    "quarantine",
    group=INGEST,
    kinds={"polars", "duckdb"},
    deps=QUARANTINED,
    description=(
        "Rows that break their file's declared schema (type, category, range, OS ≥ PFS, unique key, known patient), "
        "one row per problem with `file`, `row`, `column`, `value`, `reason` and the row's `patient_id`. A cohort "
        "table made from a file with quarantined rows is not published (its `no_quarantined_rows` check fails at "
        "ERROR), unless the study's `study.toml` allows leaving them out."
    ),
)
INGEST_CHECKS = [
    AssetCheckSpec(
        CUTS_DISTINCT,
        asset=FOLLOWUP,
        description="Warns when a cut file is byte-identical to an earlier one (a copy under a new date, not new follow-up), naming both files.",
    ),
    AssetCheckSpec(
        ROWS_FLAGGED,
        asset=FOLLOWUP,
        description=(
            "Warns about valid rows worth a second look (the follow-up schema's row flags: a PFS or OS time of 0, "
            "often a missing time written as 0), naming file, line, column and value; they are not quarantined."
        ),
    ),
    AssetCheckSpec(
        NO_QUARANTINED_ROWS,
        asset="quarantine",
        description=(
            "Fails (WARN) when any record row was quarantined, listing file, row, column and reason; the "
            "cohort tables' own no_quarantined_rows checks decide whether the cohort is published."
        ),
    ),
]


@layer(
    [*(_raw_spec(schema, absent) for schema, absent in RAW_FILES), FOLLOWUP_SPEC, QUARANTINE_SPEC],
    name="ingest",
    check_specs=INGEST_CHECKS,
    description="The record ingest in one step: every record file read into its raw table, then the quarantine of their bad rows.",
)
def ingest(context: AssetExecutionContext, study_folder: StudyFolder, io_manager: ResourceParam[WarehouseTables]):
    chosen = selected(context)
    raws: dict[str, pl.DataFrame] = {}
    # A bad file does not stop the others: each good one is stored, and the step then fails naming every bad one.
    refused: list[str] = []
    for schema, absent in RAW_FILES:
        if f"raw_{schema.name}" in chosen:
            try:
                output = _load_file(context, study_folder.root, schema, optional=absent is not None)
            except Failure as failure:
                refused.append(str(failure.description))
                continue
            raws[output.output_name] = output.value
            yield output
    if FOLLOWUP in chosen:
        try:
            events = list(_followup(context, study_folder.root))
        except Failure as failure:
            refused.append(str(failure.description))
        else:
            raws[FOLLOWUP] = events[0].value
            yield events[0]
            yield from selected_results(context, FOLLOWUP, events[1:])
    if refused:
        raise Failure(description="\n".join(refused), metadata={"study_folder": str(study_folder.root.resolve())})
    if "quarantine" in chosen:
        tables = [raws[name] if name in raws else stored(io_manager, name) for name in QUARANTINED]
        yield from _quarantine(context, tables, study_of(study_folder))


def _followup(context: AssetExecutionContext, study: Path):
    """raw_followup's Output, then its two checks' results."""
    frames, hashes = [], []
    with refusing_bad_files(study):
        cut_files = boundary.followup_files(study)
        cut_frames = [validation.read_raw(path, schemas.FOLLOWUP, label=f"followup/{path.name}") for path in cut_files]
    for path, frame in zip(cut_files, cut_frames):
        label = f"followup/{path.name}"
        digest = boundary.content_hash(path)
        frames.append(frame.with_columns(pl.lit(path.stem).alias("data_cut"), pl.lit(digest).alias("content_hash")))
        hashes.append({"file": label, "rows": frame.height, "sha256": digest})
        context.log.info(f"Loaded {frame.height} rows from {label} (sha256 {digest[:12]})")
    stacked = pl.concat(frames, how="vertical")
    files = pl.DataFrame(hashes)
    copies = boundary.identical_cuts(dict(zip(files["file"], files["sha256"])))
    yield Output(
        stacked,
        output_name=FOLLOWUP,
        data_version=DataVersion(boundary.combined_hash(files["sha256"].to_list())),
        metadata={
            "data_cuts": MetadataValue.md(_files_markdown(files)),
            "dagster/row_count": stacked.height,
            "latest_cut": files["file"][-1],
            "preview": preview(stacked),
        },
    )
    yield AssetCheckResult(
        check_name=CUTS_DISTINCT,
        passed=not copies,
        severity=AssetCheckSeverity.WARN,
        description="; ".join(f"{later} is byte-identical to {earlier}" for earlier, later in copies) or None,
        metadata={"identical_pairs": len(copies), "cut_files": files.height},
    )
    flags = validation.flagged(stacked, schemas.FOLLOWUP)
    yield AssetCheckResult(
        check_name=ROWS_FLAGGED,
        passed=flags.is_empty(),
        severity=AssetCheckSeverity.WARN,
        description=validation.describe_quarantine(flags, escape=escape_markdown, noun="flagged value(s)") if flags.height else None,
        metadata={"flagged_values": flags.height, "flagged": preview(flags)},
    )


def _files_markdown(files: pl.DataFrame) -> str:
    rows = "\n".join(f"| {r['file']} | {r['rows']} | `{r['sha256']}` |" for r in files.iter_rows(named=True))
    return "| file | rows | sha256 |\n|---|---|---|\n" + rows


def _quarantine(context: AssetExecutionContext, raws: list[pl.DataFrame], study: Study):
    """The quarantine's Output and its check's result, from the raw tables in ``QUARANTINED`` order and the values
    ``study`` declares for its record columns."""
    rows = validation.quarantine_rows(*raws, vocabulary=study.vocabulary)
    summary = validation.describe_quarantine(rows, escape=escape_markdown) if rows.height else None
    if summary:
        # A log line is plain text: the Markdown escapes would show as backslashes and backticks.
        context.log.warning(plain_text(summary))
    yield Output(
        rows,
        output_name="quarantine",
        metadata={
            "dagster/row_count": rows.height,
            "patients_with_quarantined_rows": validation.patients_excluded(rows),
            "preview": preview(rows),
        },
    )
    yield from selected_results(
        context,
        "quarantine",
        [
            AssetCheckResult(
                check_name=NO_QUARANTINED_ROWS,
                passed=rows.is_empty(),
                severity=AssetCheckSeverity.WARN,
                description=summary,
                metadata={"quarantined_problems": rows.height, "problems": preview(rows)},
            )
        ],
    )
