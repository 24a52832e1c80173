"""Reading record files as they arrived and validating them against their declared schema.

A bad file (missing, empty, undecodable, wrong columns) raises ``RecordFileError`` naming the file.
A bad row is returned as quarantine rows (file, row, column, value, reason) and kept out of the clean frame.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from pathlib import Path

import numpy as np
import polars as pl

from lms_assets.analysis import schemas
from lms_assets.analysis.schemas import OPTIONAL_COLUMNS, FileSchema

ROW = "_row"
FILE = "_file"

QUARANTINE_SCHEMA = {
    "file": pl.String,
    "row": pl.Int64,
    "column": pl.String,
    "value": pl.String,
    "reason": pl.String,
}

# Column names that suggest direct identifiers; the study folder holds pseudonymous ids only.
_IDENTIFIER_PATTERN = re.compile(
    r"(^|_)(name|first_?name|last_?name|surname|dob|birth|date_of_birth|phone|mobile|email|address|street|"
    r"postcode|zip|national_id|ssn|nhs|passport|id_card|mrn|medical_record)($|_)",
    re.IGNORECASE,
)
_ISO_DATE_STEM = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
# The line boundaries of str.splitlines, and lines that hold nothing but whitespace and commas.
_LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_LONE_CR = re.compile(r"\r(?!\n)")
_BLANK_LINE = re.compile(r"\n(?:[^\S\n]|,)*(?=\n|\Z)")


class RecordFileError(ValueError):
    """A record file cannot be used at all; the message names the file and what is wrong."""


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, so a reviewer can tell which version produced which numbers."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve_inside(study_dir: Path, relative: str) -> Path:
    """The path of a record file, refused if it escapes the study folder (``..``, absolute, or a link outside)."""
    root = study_dir.resolve()
    candidate = Path(relative)
    if candidate.is_absolute():
        raise RecordFileError(f"{relative}: record files are named relative to the study folder {study_dir}, not by absolute path")
    resolved = (study_dir / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise RecordFileError(f"{relative}: resolves to {resolved}, outside the study folder {root}; refusing to read it")
    return study_dir / candidate


def cut_date_of(path: Path) -> dt.date:
    """The data-cut date a follow-up file is named by (``YYYY-MM-DD.csv``)."""
    if path.suffix.lower() != ".csv" or not _ISO_DATE_STEM.match(path.stem):
        raise RecordFileError(f"{path}: follow-up files must be named by their ISO cut date, e.g. 2021-03-31.csv")
    try:
        return dt.date.fromisoformat(path.stem)
    except ValueError as err:
        raise RecordFileError(f"{path}: '{path.stem}' is not a valid calendar date ({err})") from None


def followup_files(study_dir: Path) -> list[Path]:
    """Every data-cut file in the follow-up folder, oldest cut first; refuses names that are not dates."""
    folder = resolve_inside(study_dir, "followup")
    if not folder.is_dir():
        raise RecordFileError(f"{folder}: the follow-up folder is missing; it holds one CSV per data cut")
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if not files:
        raise RecordFileError(f"{folder}: no data-cut files; add one named by its cut date, e.g. 2021-03-31.csv")
    seen: dict[dt.date, Path] = {}
    for path in files:
        resolve_inside(study_dir, str(path.relative_to(study_dir)))
        cut = cut_date_of(path)
        if cut in seen:
            raise RecordFileError(f"{path}: data cut {cut} is also given by {seen[cut]}")
        seen[cut] = path
    return [seen[c] for c in sorted(seen)]


def read_raw(path: Path, schema: FileSchema, label: str | None = None) -> pl.DataFrame:
    """Read a CSV exactly as it arrived: every value a string, plus its file and 1-based line number.

    The header is line 1, so the first record is row 2, as a spreadsheet shows it.
    """
    label = label or path.name
    if not path.exists():
        raise RecordFileError(f"{label}: file is missing (expected at {path}); {schema.description}")
    if path.is_dir():
        raise RecordFileError(f"{label}: is a folder, not a CSV file")
    try:
        data = path.read_bytes()
    except OSError as err:
        # e.g. no read permission, or a spreadsheet program holding the file locked
        raise RecordFileError(f"{label}: cannot be read ({err.strerror or err})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise RecordFileError(f"{label}: line {line} is not UTF-8 text (byte {data[err.start]:#04x}); save the file as UTF-8 CSV") from None
    if not text.strip():
        raise RecordFileError(f"{label}: file is empty; expected a header line with columns {', '.join(schema.column_names)}")
    # Spreadsheets' "CSV (Macintosh)" ends lines with a bare carriage return; read those as line breaks.
    text = _LONE_CR.sub("\n", text)
    header = _first_line(text)
    columns = [c.strip() for c in _parse_header(header)]
    _check_columns(label, columns, schema)
    try:
        frame = pl.read_csv(
            io.StringIO(text),
            infer_schema=False,
            has_header=True,
            truncate_ragged_lines=False,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError:
        raise RecordFileError(f"{label}: {_csv_layout_problem(text, len(columns))}") from None
    frame = frame.rename({c: c.strip() for c in frame.columns}).with_columns(pl.all().str.strip_chars())
    line_numbers = _record_line_numbers(text)
    if len(line_numbers) != frame.height:
        # Polars 2 reads a blank line (or one of commas and spaces) as a record of empty values; the csv
        # module, like a spreadsheet, has no record there. Without this any blank line failed the count below.
        frame = frame.filter(pl.any_horizontal(pl.all().is_not_null() & (pl.all() != "")))
    if len(line_numbers) != frame.height:
        raise RecordFileError(f"{label}: {frame.height} records parsed but {len(line_numbers)} found; check quoting")
    if frame.is_empty() and schema.key == (schemas.PATIENT_ID.name,):
        raise RecordFileError(f"{label}: has a header but no records; expected one row per patient")
    return frame.with_columns(
        pl.lit(label).alias(FILE),
        pl.Series(ROW, line_numbers, dtype=pl.Int64),
    )


def _parse_header(header: str) -> list[str]:
    import csv

    return next(csv.reader([header]))


def _csv_layout_problem(text: str, width: int) -> str:
    """Where a text that is not valid CSV first goes wrong: a line with more fields than the header, or an open quote."""
    import csv

    reader = csv.reader(io.StringIO(text), strict=True)
    start = 1
    try:
        for record in reader:
            if len(record) > width:
                return f"line {start} has {len(record)} fields but the header has {width}; quote values that contain commas"
            start = reader.line_num + 1
    except csv.Error as err:
        return f"line {start} is not valid CSV ({err}); check its quotes"
    return "is not valid CSV; check its quotes and delimiters"


def _first_line(text: str) -> str:
    """The text up to its first line break, as ``str.splitlines`` sees breaks, without splitting the whole file."""
    match = _LINE_BREAK.search(text)
    return text[: match.start()] if match else text


def _record_line_numbers(text: str) -> np.ndarray:
    """The line on which each CSV record starts, counting quoted newlines, skipping blank lines."""
    if '"' in text:
        return _record_line_numbers_by_parsing(text)
    # Without quotes every line is one record; only blank lines (whitespace and commas) need finding.
    # This gives the same numbers as the csv module, without a Python call per row on large files.
    blank, line, position = [], 1, 0
    for match in _BLANK_LINE.finditer(text):
        line += text.count("\n", position, match.end())
        position = match.end()
        blank.append(line)
    lines = np.arange(2, text.count("\n") + 2, dtype=np.int64)
    return lines[~np.isin(lines, blank)] if blank else lines


def _record_line_numbers_by_parsing(text: str) -> np.ndarray:
    """``_record_line_numbers`` for text with quotes (a record may span lines)."""
    import csv

    reader = csv.reader(io.StringIO(text))
    next(reader)
    starts = []
    line = reader.line_num + 1
    for record in reader:
        if record and any(v.strip() for v in record):
            starts.append(line)
        line = reader.line_num + 1
    return np.asarray(starts, dtype=np.int64)


def _check_columns(label: str, columns: list[str], schema: FileSchema) -> None:
    identifiers = [c for c in columns if _IDENTIFIER_PATTERN.search(c)]
    if identifiers:
        raise RecordFileError(
            f"{label}: column(s) {', '.join(identifiers)} look like direct identifiers; the study folder holds "
            "pseudonymous patient numbers only. Remove them before loading."
        )
    expected = schema.column_names
    if "" in columns:
        raise RecordFileError(f"{label}: the header has a column without a name (a trailing comma?); expected {', '.join(expected)}")
    if len(columns) == 1 and len(expected) > 1 and any(sep in columns[0] for sep in ";\t|"):
        raise RecordFileError(f"{label}: the header is one column '{columns[0]}'; the file must be comma-separated")
    missing = [c for c in expected if c not in columns]
    if missing:
        raise RecordFileError(f"{label}: missing column(s) {', '.join(missing)}; expected {', '.join(expected)}")
    extra = [c for c in columns if c not in expected]
    if extra:
        raise RecordFileError(f"{label}: unexpected column(s) {', '.join(extra)}; expected exactly {', '.join(expected)}")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise RecordFileError(f"{label}: column(s) {', '.join(duplicated)} appear more than once")


def _cast(column_name: str, dtype: type[pl.DataType]) -> pl.Expr:
    source = pl.col(column_name)
    if dtype == pl.Date:
        return source.str.to_date("%Y-%m-%d", strict=False)
    if dtype == pl.Int64:
        # "3.0" is a whole number, "3.5" is not: go through float and keep exact integers only.
        as_float = source.cast(pl.Float64, strict=False)
        return pl.when(as_float == as_float.round(0)).then(as_float.cast(pl.Int64, strict=False))
    return source.cast(dtype, strict=False)


def problems(raw: pl.DataFrame, schema: FileSchema) -> pl.DataFrame:
    """Every reason a row breaks its schema: one quarantine row per (row, column, reason)."""
    checks: list[pl.DataFrame] = []
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
            )
        )

    for column in schema.columns:
        value, typed_value = pl.col(column.name), pl.col(f"__{column.name}")
        required = (schema.name, column.name) not in OPTIONAL_COLUMNS
        if required:
            collect(value.is_null() | (value == ""), column.name, "missing value")
        if column.dtype != pl.String:
            kind = {pl.Int64: "a whole number", pl.Float64: "a number", pl.Date: "a date (YYYY-MM-DD)"}[column.dtype]
            collect(value.is_not_null() & (value != "") & typed_value.is_null(), column.name, f"not {kind}")
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

    typed_only = typed.select(FILE, ROW, *[pl.col(f"__{c.name}").alias(c.name) for c in schema.columns])
    typed_only = typed_only.with_columns(raw.select(pl.col(c.name).alias(f"__raw_{c.name}") for c in schema.columns))
    for rule in schema.row_rules:
        bad = typed_only.filter(rule.violated.fill_null(False))
        checks.append(
            bad.select(
                pl.col(FILE).alias("file"),
                pl.col(ROW).alias("row"),
                pl.lit(rule.column).alias("column"),
                pl.col(f"__raw_{rule.column}").alias("value"),
                pl.lit(rule.reason).alias("reason"),
            )
        )

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
                )
            )
    return pl.concat([c.cast(QUARANTINE_SCHEMA) for c in checks], how="vertical") if checks else empty_quarantine()


def unknown_patients(raw: pl.DataFrame, known_ids: pl.Series) -> pl.DataFrame:
    """Rows that refer to a patient number absent from the valid patients."""
    ids = raw.select(FILE, ROW, "patient_id", pl.col("patient_id").cast(pl.Int64, strict=False).alias("__id"))
    bad = ids.filter(pl.col("__id").is_not_null() & ~pl.col("__id").is_in(known_ids.implode()))
    return bad.select(
        pl.col(FILE).alias("file"),
        pl.col(ROW).alias("row"),
        pl.lit("patient_id").alias("column"),
        pl.col("patient_id").alias("value"),
        pl.lit("patient is not among the valid rows of patients.csv").alias("reason"),
    ).cast(QUARANTINE_SCHEMA)


def quarantine_rows(
    raw_patients: pl.DataFrame,
    raw_patient_allocations: pl.DataFrame,
    raw_response: pl.DataFrame,
    raw_followup: pl.DataFrame,
    raw_adverse_events: pl.DataFrame,
    raw_published_figures: pl.DataFrame,
    raw_provenance: pl.DataFrame,
) -> pl.DataFrame:
    """All rule violations of all record files, then rows that refer to a patient who is not valid."""
    patient_problems = problems(raw_patients, schemas.PATIENTS)
    valid_ids = clean(raw_patients, schemas.PATIENTS, patient_problems)["patient_id"]
    found = [
        patient_problems,
        problems(raw_published_figures, schemas.REGISTRY),
        problems(raw_provenance, schemas.PROVENANCE),
    ]
    for raw, schema in (
        (raw_patient_allocations, schemas.PATIENT_ALLOCATIONS),
        (raw_response, schemas.RESPONSE),
        (raw_adverse_events, schemas.ADVERSE_EVENTS),
    ):
        found += [problems(raw, schema), unknown_patients(raw, valid_ids)]
    for (_,), cut in raw_followup.group_by(FILE, maintain_order=True):
        found += [problems(cut, schemas.FOLLOWUP), unknown_patients(cut, valid_ids)]
    return pl.concat(found).unique().sort("file", "row", "column")


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def clean(raw: pl.DataFrame, schema: FileSchema, quarantine: pl.DataFrame, keep: tuple[str, ...] = ()) -> pl.DataFrame:
    """The typed rows of ``raw`` that have no quarantine entry, with their source file and row (and ``keep``) kept."""
    rejected = quarantine.select(pl.col("file").alias(FILE), pl.col("row").alias(ROW)).unique()
    kept = raw.join(rejected, on=[FILE, ROW], how="anti")
    return kept.select(*[_cast(c.name, c.dtype).alias(c.name) for c in schema.columns], FILE, ROW, *keep)


def combined_hash(digests: list[str]) -> str:
    """One SHA-256 over several files' hashes, in order: changes when any file changes."""
    return hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()
