"""Reading record files as they arrived and validating their rows against their declared schema.

A bad file (missing, empty, undecodable, wrong columns, a line or field over the size limits; ``csv_text``) raises
``RecordFileError`` naming the file (and line). A bad row is returned as quarantine rows (file, row, column,
value, reason, patient_id) and kept out of the clean frame; the quarantine's summaries (what it blocks, whom it
excludes, how it is described) are here too.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl

from lms_assets.records import schemas
from lms_assets.records.boundary import read_regular
from lms_assets.records.csv_text import (
    CsvProblem,
    check_columns,
    check_field_lengths,
    check_line_lengths,
    csv_layout_problem,
    first_line,
    parse_header,
    record_line_numbers,
)
from lms_assets.records.errors import RecordFileError, excerpt
from lms_assets.records.schemas import OPTIONAL_COLUMNS, FileSchema

ROW = "_row"
FILE = "_file"

QUARANTINE_SCHEMA = pl.Schema(
    {
        "file": pl.String,
        "row": pl.Int64,
        "column": pl.String,
        "value": pl.String,
        "reason": pl.String,
        # The row's patient number as written (null in files about no patient), so exclusions can be counted.
        "patient_id": pl.String,
    }
)

# Files about patients: their quarantined rows exclude that patient's records.
PATIENT_FILES = ("patients.csv", "patient_allocations.csv", "response.csv", "followup/", "adverse_events.csv")
# The reason of a row that is only quarantined because its patient's row in patients.csv is.
UNKNOWN_PATIENT = "patient is not among the valid rows of patients.csv"
_LONE_CR = re.compile(r"\r(?!\n)")


def read_raw(path: Path, schema: FileSchema, label: str | None = None) -> pl.DataFrame:
    """Read a CSV exactly as it arrived: every value a string, plus its file and 1-based line number.

    The header is line 1, so the first record is row 2, as a spreadsheet shows it. Any fault in reading it, not only
    the ones foreseen, is a ``RecordFileError`` naming the file, never a traceback.
    """
    label = label or path.name
    try:
        return _read_raw(path, schema, label)
    except RecordFileError:
        raise
    except Exception as err:
        raise RecordFileError(f"{label}: cannot be read ({type(err).__name__}: {excerpt(err)})") from None


def _read_raw(path: Path, schema: FileSchema, label: str) -> pl.DataFrame:
    if not path.exists():
        raise RecordFileError(f"{label}: file is missing (expected at {path}); {schema.description}")
    data = read_regular(path, label)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise RecordFileError(f"{label}: line {line} is not UTF-8 text (byte {data[err.start]:#04x}); save the file as UTF-8 CSV") from None
    if not text.strip():
        raise RecordFileError(f"{label}: file is empty; expected a header line with columns {', '.join(schema.column_names)}")
    # Spreadsheets' "CSV (Macintosh)" ends lines with a bare carriage return; read those as line breaks.
    text = _LONE_CR.sub("\n", text)
    check_line_lengths(label, text)
    header = first_line(text)
    columns = [c.strip() for c in parse_header(header)]
    check_columns(label, columns, schema)
    try:
        frame = pl.read_csv(
            io.StringIO(text),
            infer_schema=False,
            has_header=True,
            truncate_ragged_lines=False,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError:
        raise RecordFileError(f"{label}: {csv_layout_problem(text, len(columns))}") from None
    frame = frame.rename({c: c.strip() for c in frame.columns}).with_columns(pl.all().str.strip_chars())
    try:
        line_numbers = record_line_numbers(text)
    except CsvProblem as problem:
        raise RecordFileError(f"{label}: {problem}") from None
    if len(line_numbers) != frame.height:
        # Polars reads a blank line (or one of commas and spaces) as a record of empty values; the csv
        # module, like a spreadsheet, has no record there, so the count below would fail on any blank line.
        frame = frame.filter(pl.any_horizontal(pl.all().is_not_null() & (pl.all() != "")))
    if len(line_numbers) != frame.height:
        raise RecordFileError(f"{label}: {frame.height} records parsed but {len(line_numbers)} found; check quoting")
    check_field_lengths(label, frame, line_numbers)
    if frame.is_empty() and schema.key == (schemas.PATIENT_ID.name,):
        raise RecordFileError(f"{label}: has a header but no records; expected one row per patient")
    return frame.with_columns(
        pl.lit(label).alias(FILE),
        pl.Series(ROW, line_numbers, dtype=pl.Int64),
    )


def _cast(column_name: str, dtype: type[pl.DataType]) -> pl.Expr:
    source = pl.col(column_name)
    if dtype == pl.Date:
        return source.str.to_date("%Y-%m-%d", strict=False)
    if dtype == pl.Int64:
        # "3.0" is a whole number, "3.5" is not: go through float and keep exact integers only.
        as_float = source.cast(pl.Float64, strict=False)
        return pl.when(as_float == as_float.round(0)).then(as_float.cast(pl.Int64, strict=False))
    if dtype == pl.Float64:
        # "nan" and "inf" parse as floats but are no measurement: null, like any other value that is not a number.
        as_float = source.cast(pl.Float64, strict=False)
        return pl.when(as_float.is_finite()).then(as_float)
    return source.cast(dtype, strict=False)


def problems(raw: pl.DataFrame, schema: FileSchema) -> pl.DataFrame:
    """Every reason a row breaks its schema: one quarantine row per (row, column, reason)."""
    checks: list[pl.DataFrame] = []
    patient = pl.col("patient_id") if "patient_id" in raw.columns else pl.lit(None, pl.String)
    typed = raw.with_columns(_cast(c.name, c.dtype).alias(f"__{c.name}") for c in schema.columns)

    def collect(mask: pl.Expr, column: str, reason: pl.Expr | str) -> None:
        reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
        checks.append(
            typed.filter(mask).select(
                pl.col(FILE).alias("file"),
                pl.col(ROW).alias("row"),
                pl.lit(column).alias("column"),
                pl.col(column).cast(pl.String).alias("value") if column in raw.columns else pl.lit(None, pl.String).alias("value"),
                reason_expr.alias("reason"),
                patient.alias("patient_id"),
            )
        )

    for column in schema.columns:
        value, typed_value = pl.col(column.name), pl.col(f"__{column.name}")
        required = (schema.name, column.name) not in OPTIONAL_COLUMNS
        if required:
            collect(value.is_null() | (value == ""), column.name, "missing value")
        if column.dtype != pl.String:
            kind = {pl.Int64: "a whole number", pl.Float64: "a number", pl.Date: "a date (YYYY-MM-DD)"}[column.dtype]
            untyped = value.is_not_null() & (value != "") & typed_value.is_null()
            # Named as what it is: a NaN is not "above the maximum", and infinity is no time or percentage.
            as_float = value.cast(pl.Float64, strict=False)
            collect(untyped & as_float.is_nan(), column.name, "NaN is not a number")
            collect(untyped & as_float.is_infinite(), column.name, "infinity is not a finite number")
            collect(untyped & ~as_float.is_nan().fill_null(False) & ~as_float.is_infinite().fill_null(False), column.name, f"not {kind}")
        if column.allowed is not None:
            collect(
                value.is_not_null() & (value != "") & ~value.is_in(list(column.allowed)),
                column.name,
                f"not one of {', '.join(column.allowed)}",
            )
        if column.minimum is not None:
            collect(typed_value < column.minimum, column.name, f"below the minimum {column.minimum:g}")
        if column.maximum is not None:
            collect(typed_value > column.maximum, column.name, f"above the maximum {column.maximum:g}")

    typed_only = _typed_beside_raw(raw, schema)
    checks += [_rule_rows(typed_only, rule) for rule in schema.row_rules]

    key_cols = [k for k in schema.key if k in typed_only.columns]
    if key_cols:
        duplicated = typed_only.filter(pl.struct(key_cols).is_duplicated() & pl.all_horizontal(pl.col(k).is_not_null() for k in key_cols))
        if duplicated.height:
            rows_per_key = duplicated.group_by(key_cols).agg(pl.col(ROW).sort().alias("rows"))
            duplicated = duplicated.join(rows_per_key, on=key_cols)
            checks.append(
                duplicated.select(
                    pl.col(FILE).alias("file"),
                    pl.col(ROW).alias("row"),
                    pl.lit(key_cols[-1]).alias("column"),
                    pl.col(f"__raw_{key_cols[-1]}").alias("value"),
                    pl.format(
                        "duplicate {} (rows {})",
                        pl.lit("+".join(key_cols)),
                        pl.col("rows").cast(pl.List(pl.String)).list.join(", "),
                    ).alias("reason"),
                    pl.col("__patient").alias("patient_id"),
                )
            )
    return pl.concat([c.cast(QUARANTINE_SCHEMA) for c in checks], how="vertical") if checks else empty_quarantine()


def _typed_beside_raw(raw: pl.DataFrame, schema: FileSchema) -> pl.DataFrame:
    """Each row typed (a value that does not cast is null), with its values as written (``__raw_<column>``) and patient."""
    patient = pl.col("patient_id") if "patient_id" in raw.columns else pl.lit(None, pl.String)
    typed = raw.select(FILE, ROW, *[_cast(c.name, c.dtype).alias(c.name) for c in schema.columns])
    return typed.with_columns(raw.select(*(pl.col(c.name).alias(f"__raw_{c.name}") for c in schema.columns), patient.alias("__patient")))


def _rule_rows(typed_only: pl.DataFrame, rule: schemas.RowRule) -> pl.DataFrame:
    """The rows breaking ``rule`` (a row it cannot judge, for a value that did not cast, is not among them)."""
    return typed_only.filter(rule.violated.fill_null(False)).select(
        pl.col(FILE).alias("file"),
        pl.col(ROW).alias("row"),
        pl.lit(rule.column).alias("column"),
        pl.col(f"__raw_{rule.column}").alias("value"),
        pl.lit(rule.reason).alias("reason"),
        pl.col("__patient").alias("patient_id"),
    )


def flagged(raw: pl.DataFrame, schema: FileSchema) -> pl.DataFrame:
    """The rows of ``raw`` its schema's ``row_flags`` point out, in the quarantine's columns: valid, but worth a look."""
    typed_only = _typed_beside_raw(raw, schema)
    found = [_rule_rows(typed_only, rule).cast(QUARANTINE_SCHEMA) for rule in schema.row_flags]
    return pl.concat(found).sort("file", "row", "column") if found else empty_quarantine()


def unknown_patients(raw: pl.DataFrame, known_ids: pl.Series) -> pl.DataFrame:
    """Rows that refer to a patient number absent from the valid patients."""
    ids = raw.select(FILE, ROW, "patient_id", pl.col("patient_id").cast(pl.Int64, strict=False).alias("__id"))
    bad = ids.filter(pl.col("__id").is_not_null() & ~pl.col("__id").is_in(known_ids.implode()))
    return bad.select(
        pl.col(FILE).alias("file"),
        pl.col(ROW).alias("row"),
        pl.lit("patient_id").alias("column"),
        pl.col("patient_id").alias("value"),
        pl.lit(UNKNOWN_PATIENT).alias("reason"),
        pl.col("patient_id"),
    ).cast(QUARANTINE_SCHEMA)


def quarantine_rows(
    raw_patients: pl.DataFrame,
    raw_allocations: pl.DataFrame,
    raw_response: pl.DataFrame,
    raw_followup: pl.DataFrame,
    raw_adverse_events: pl.DataFrame,
    raw_printed_values: pl.DataFrame,
    raw_provenance: pl.DataFrame,
    *,
    vocabulary: Mapping[str, Mapping[str, tuple[str, ...]]],
) -> pl.DataFrame:
    """All rule violations of all record files, then rows that refer to a patient who is not valid; ``vocabulary``
    (the study's, per schema name and column) gives the values its declared columns allow."""

    def declared(schema: schemas.FileSchema) -> schemas.FileSchema:
        return schemas.with_vocabulary(schema, vocabulary.get(schema.name, {}))

    patient_problems = problems(raw_patients, declared(schemas.PATIENTS))
    valid_ids = clean(raw_patients, schemas.PATIENTS, patient_problems)["patient_id"]
    found = [
        patient_problems,
        problems(raw_printed_values, schemas.REGISTRY),
        problems(raw_provenance, schemas.PROVENANCE),
    ]
    for raw, schema in (
        (raw_allocations, schemas.PATIENT_ALLOCATIONS),
        (raw_response, schemas.RESPONSE),
        (raw_adverse_events, schemas.ADVERSE_EVENTS),
    ):
        found += [problems(raw, declared(schema)), unknown_patients(raw, valid_ids)]
    for (_,), cut in raw_followup.group_by(FILE, maintain_order=True):
        found += [problems(cut, schemas.FOLLOWUP), unknown_patients(cut, valid_ids)]
    return pl.concat(found).unique().sort("file", "row", "column")


def describe_quarantine(rows: pl.DataFrame, shown: int = 3, escape: Callable[[str], str] = str, noun: str = "quarantined problem(s)") -> str:
    """The first ``shown`` problems as 'file line L, column C, value 'V': reason', and how many there are in all
    (``noun`` says what they are: flagged rows are described the same way).

    Causes come first: a row quarantined only because its patient is invalid follows the rows that made it so.
    ``escape`` is applied to each value's excerpt, the one part written by the data: where the text is shown as
    Markdown, a value such as ``![i](http://host/x.png)`` must be shown as written, not fetched.
    """
    rows = rows.sort(pl.col("reason") == UNKNOWN_PATIENT, "file", "row", "column")
    first = [
        f"{r['file']} line {r['row']}, column {r['column']}, value "
        + ("(empty)" if r["value"] in (None, "") else f"'{escape(excerpt(r['value']))}'")
        + f": {r['reason']}"
        for r in rows.head(shown).iter_rows(named=True)
    ]
    lines = rows.select("file", "row").unique().height
    more = f"; and {rows.height - shown} more" if rows.height > shown else ""
    return f"{rows.height} {noun} in {lines} row(s): " + "; ".join(first) + more


def blocking_rows(quarantine: pl.DataFrame, sources: tuple[str, ...]) -> pl.DataFrame:
    """The quarantine rows that keep a table made from ``sources`` (file names; a folder ends with /) from publication.

    patients.csv counts for every table about patients: a patient it lacks is one every such table would lack.
    """
    sources = (schemas.PATIENTS.location, *sources)
    return quarantine.filter(pl.any_horizontal(pl.col("file").str.starts_with(f) for f in sources))


def about_patients(quarantine: pl.DataFrame) -> pl.DataFrame:
    """The quarantine rows of files about patients (not the registry or provenance)."""
    return quarantine.filter(pl.any_horizontal(pl.col("file").str.starts_with(f) for f in PATIENT_FILES))


def patients_excluded(quarantine: pl.DataFrame) -> int:
    """Patients who lose records to the quarantine: distinct patient numbers as written (a row without one counts alone)."""
    rows = about_patients(quarantine).select("file", "row", "patient_id").unique()
    return rows["patient_id"].drop_nulls().n_unique() + rows["patient_id"].null_count()


def excluded_share(quarantine: pl.DataFrame, raw: pl.DataFrame) -> float:
    """The share of ``raw``'s rows (one or more record files as read, with ``_file`` and ``_row``) that the quarantine
    leaves out: what a study that excludes quarantined rows loses of them (0 for a file without rows)."""
    if raw.is_empty():
        return 0.0
    rejected = quarantine.select(pl.col("file").alias(FILE), pl.col("row").alias(ROW)).unique()
    return raw.select(FILE, ROW).join(rejected, on=[FILE, ROW], how="semi").height / raw.height


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def clean(raw: pl.DataFrame, schema: FileSchema, quarantine: pl.DataFrame, keep: tuple[str, ...] = ()) -> pl.DataFrame:
    """The typed rows of ``raw`` that have no quarantine entry, with their source file and row (and ``keep``) kept."""
    rejected = quarantine.select(pl.col("file").alias(FILE), pl.col("row").alias(ROW)).unique()
    # Typed first (the casts are not strict: a quarantined row's bad value becomes null, and the row is dropped
    # below). Selecting shares the kept text columns with ``raw``; the anti-join copies every column, so it runs
    # only when some row is rejected: on a large study that copy is as large as the file.
    typed = raw.select(*[_cast(c.name, c.dtype).alias(c.name) for c in schema.columns], FILE, ROW, *keep)
    if rejected.is_empty():
        return typed
    return typed.join(rejected, on=[FILE, ROW], how="anti", maintain_order="left")
