"""Reading record files as they arrived and validating them against their declared schema.

A bad file (missing, empty, undecodable, wrong columns, a line or field over the size limits) raises
``RecordFileError`` naming the file (and line). A bad row is returned as quarantine rows (file, row, column,
value, reason, patient_id) and kept out of the clean frame. Every echo of file content in a message goes
through ``excerpt``, so no message carries more than a short, printable piece of what a file holds.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import re
import stat
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar, cast

import numpy as np
import polars as pl

from lms_assets.records import schemas
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

# The longest line in the shipped files is under 300 characters; these limits are far above any real record
# and far below what would make a message, the warehouse or the report grow without bound.
MAX_LINE_CHARS = 10_000
MAX_FIELD_CHARS = 2_000
EXCERPT_CHARS = 60
# Files about patients: their quarantined rows exclude that patient's records.
PATIENT_FILES = ("patients.csv", "patient_allocations.csv", "response.csv", "followup/", "adverse_events.csv")
# The reason of a row that is only quarantined because its patient's row in patients.csv is.
UNKNOWN_PATIENT = "patient is not among the valid rows of patients.csv"

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
# Characters that hide or disguise text where it is shown: controls, format characters (zero-width, bidi
# overrides), line and paragraph separators, spaces other than the plain one, private-use, surrogate, unassigned.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Zs", "Co", "Cs", "Cn"})
# A run of letters: a word, as far as confusables go.
_WORD = re.compile(r"[^\W\d_]+")
# A cut date may be a day past the date of the clock or of the file's time stamp: those dates are taken in UTC,
# and a cut exported late in the evening east of UTC is already dated the next day.
CUT_DATE_GRACE = dt.timedelta(days=1)


class RecordFileError(ValueError):
    """A record file cannot be used at all; the message names the file and what is wrong."""


def _escaped(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")


def _unmask_word(word: re.Match[str]) -> str:
    """A word with Latin letters keeps them; any letter of another script in it (Cyrillic е, Greek ο) is escaped."""
    text = word.group()
    if text.isascii() or not any(c.isascii() for c in text):
        return text
    return "".join(c if c.isascii() or unicodedata.name(c, "").startswith("LATIN ") else _escaped(c) for c in text)


def reveal(text: str) -> str:
    """``text`` with every character that could hide or disguise what it says written as its code point (``\\u0435``).

    Control, invisible and bidirectional-override characters, spaces other than the plain space, and letters of
    another script inside a word of Latin letters ("F\\u0435male", with a Cyrillic е, is not "Female"). Accented
    Latin letters and words wholly in another script are shown as they are. Messages (``excerpt``) and previews
    show data through it.
    """
    text = _WORD.sub(_unmask_word, text)
    return "".join(_escaped(c) if c != " " and unicodedata.category(c) in _HIDDEN_CATEGORIES else c for c in text)


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """``text`` safe to put in a message: shown through ``reveal``, cut to ``limit``."""
    text = str(text)
    shown = reveal(text[: limit * 2])
    if len(shown) > limit or len(text) > limit * 2:
        return f"{shown[:limit]}… ({len(text):,} characters)"
    return shown


# A read of a record file on a local disk takes milliseconds; one that has not finished after this long is on a
# stalled network share or device, and the step fails saying so instead of holding its warehouse slot for ever.
READ_TIMEOUT_SECONDS = 120.0
_CHUNK_BYTES = 1 << 20
_T = TypeVar("_T")


def file_kind(mode: int) -> str:
    """What ``os.stat`` says a path is, in words."""
    for test, kind in (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "named pipe (FIFO)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return kind
    return "special file"


def _refuse_unless_regular(mode: int, path: Path, label: str, expected: str) -> None:
    """Refuse anything but a regular file: opening a FIFO or a device blocks until a writer appears, which may be never."""
    if stat.S_ISDIR(mode):
        raise RecordFileError(f"{label}: is a folder, not a {expected} ({path})")
    if not stat.S_ISREG(mode):
        raise RecordFileError(f"{label}: is a {file_kind(mode)}, not a {expected} ({path}); only regular files are read. Replace it with the file.")


def _open_regular(path: Path, label: str, expected: str) -> BinaryIO:
    """``path`` opened for reading after ``os.stat`` shows a regular file, checked again on the open descriptor.

    O_NONBLOCK makes the open itself return at once even if a FIFO was swapped in after the stat (it changes
    nothing for a regular file), and the second check on the descriptor then refuses it.
    """
    try:
        _refuse_unless_regular(os.stat(path).st_mode, path, label, expected)
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise RecordFileError(f"{label}: file is missing (expected at {path})") from None
    except OSError as err:
        # e.g. no read permission, a link loop, or a spreadsheet program holding the file locked
        raise RecordFileError(f"{label}: cannot be read ({err.strerror or err}; {path})") from None
    try:
        _refuse_unless_regular(os.fstat(descriptor).st_mode, path, label, expected)
    except RecordFileError:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def _within_timeout(label: str, action: Callable[[], _T]) -> _T:
    """``action()`` run in a daemon thread, or a ``RecordFileError`` after ``READ_TIMEOUT_SECONDS``.

    A read stuck in the kernel cannot be interrupted; a daemon thread left behind does not keep the process alive,
    so the step fails with the file's name and the run ends.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = action()
        except BaseException as err:  # handed to the caller's thread below
            outcome["error"] = err

    worker = threading.Thread(target=run, name=f"reading {label}", daemon=True)
    worker.start()
    worker.join(READ_TIMEOUT_SECONDS)
    if worker.is_alive():
        raise RecordFileError(
            f"{label}: reading it did not finish within {READ_TIMEOUT_SECONDS:g} s; is it on a network share or device that "
            "stopped answering? Copy the file into the study folder and run again."
        )
    if "error" in outcome:
        raise cast(BaseException, outcome["error"])
    return cast(_T, outcome["value"])


def read_regular(path: Path, label: str, expected: str = "CSV file", limit: int | None = None) -> bytes:
    """The bytes of ``path``, refused (naming ``label`` and the path) unless it is a regular file, read with a timeout.

    With ``limit``, at most ``limit + 1`` bytes are read: enough to tell that a file is too large without reading it.
    """

    def read() -> bytes:
        with _open_regular(path, label, expected) as handle:
            return handle.read() if limit is None else handle.read(limit + 1)

    return _within_timeout(label, read)


def content_hash(path: Path, label: str | None = None) -> str:
    """SHA-256 of the file's bytes, so a reviewer can tell which version produced which numbers.

    Streamed in chunks through the same regular-file check and timeout as every read: a large cut is never held whole.
    """
    label = label or path.name

    def digest() -> str:
        hasher = hashlib.sha256()
        with _open_regular(path, label, "CSV file") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                hasher.update(chunk)
        return hasher.hexdigest()

    return _within_timeout(label, digest)


def resolve_inside(study_dir: Path, relative: str) -> Path:
    """The path of a record file, refused if it escapes the study folder (``..``, absolute, or a link outside)."""
    root = study_dir.resolve()
    candidate = Path(relative)
    if candidate.is_absolute():
        raise RecordFileError(f"{relative}: record files are named relative to the study folder {study_dir}, not by absolute path")
    try:
        resolved = (study_dir / candidate).resolve()
    except (OSError, RuntimeError) as err:  # a link that points to itself, or a path the system cannot follow
        raise RecordFileError(f"{relative}: cannot be followed to a file ({err.__class__.__name__}); replace the link with the file") from None
    if resolved != root and root not in resolved.parents:
        raise RecordFileError(f"{relative}: resolves to {excerpt(resolved, 200)}, outside the study folder {root}; refusing to read it")
    return study_dir / candidate


def cut_date_of(path: Path) -> dt.date:
    """The data-cut date a follow-up file is named by (``YYYY-MM-DD.csv``; the extension in any case)."""
    if path.suffix.lower() != ".csv" or not _ISO_DATE_STEM.match(path.stem):
        raise RecordFileError(f"followup/{excerpt(path.name)}: follow-up files must be named by their ISO cut date, e.g. 2021-03-31.csv")
    try:
        return dt.date.fromisoformat(path.stem)
    except ValueError as err:
        raise RecordFileError(f"followup/{path.name}: '{path.stem}' is not a valid calendar date ({err})") from None


def followup_candidates(study_dir: Path) -> list[Path]:
    """Every entry of the follow-up folder that claims to be a data cut: all but hidden files, sorted by name.

    The ingest validates exactly these and the sensor watches exactly these, so a file the ingest would read
    (``2021-06-30.CSV``) or refuse (``notes.txt``) is never missed by the sensor.
    """
    folder = resolve_inside(study_dir, "followup")
    if not folder.is_dir():
        raise RecordFileError("followup: the follow-up folder is missing; it holds one CSV per data cut")
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def check_cut_date(path: Path, cut: dt.date, today: dt.date | None = None) -> None:
    """Refuse a cut dated in the future, or after its file was last written: the name would make it the latest cut."""
    today = today or dt.datetime.now(dt.UTC).date()
    label = f"followup/{path.name}"
    if cut > today + CUT_DATE_GRACE:
        raise RecordFileError(f"{label}: data cut {cut} is in the future (today is {today}); name the file by the date the data were cut")
    written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).date()
    if cut > written + CUT_DATE_GRACE:
        raise RecordFileError(
            f"{label}: data cut {cut} is after the file was last modified ({written}); a file cannot hold data cut after "
            "it was written. Name it by its cut date."
        )


def followup_files(study_dir: Path, today: dt.date | None = None) -> list[Path]:
    """Every data-cut file in the follow-up folder, oldest cut first; refuses names that are not dates, or not possible ones."""
    files = followup_candidates(study_dir)
    if not files:
        raise RecordFileError("followup: no data-cut files; add one named by its cut date, e.g. 2021-03-31.csv")
    seen: dict[dt.date, Path] = {}
    for path in files:
        resolve_inside(study_dir, str(path.relative_to(study_dir)))
        cut = cut_date_of(path)
        if cut in seen:
            raise RecordFileError(f"followup/{path.name}: data cut {cut} is also given by followup/{seen[cut].name}")
        if path.is_file():
            check_cut_date(path, cut, today)
        seen[cut] = path
    return [seen[c] for c in sorted(seen)]


def identical_cuts(digests: dict[str, str]) -> list[tuple[str, str]]:
    """Pairs (earlier file, later file) of cuts with byte-identical content: a copy under a new date, not new follow-up."""
    first: dict[str, str] = {}
    pairs = []
    for name, digest in digests.items():
        if digest in first:
            pairs.append((first[digest], name))
        else:
            first[digest] = name
    return pairs


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
    _check_line_lengths(label, text)
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
    try:
        line_numbers = _record_line_numbers(text)
    except _CsvProblem as problem:
        raise RecordFileError(f"{label}: {problem}") from None
    if len(line_numbers) != frame.height:
        # Polars 2 reads a blank line (or one of commas and spaces) as a record of empty values; the csv
        # module, like a spreadsheet, has no record there. Without this any blank line failed the count below.
        frame = frame.filter(pl.any_horizontal(pl.all().is_not_null() & (pl.all() != "")))
    if len(line_numbers) != frame.height:
        raise RecordFileError(f"{label}: {frame.height} records parsed but {len(line_numbers)} found; check quoting")
    _check_field_lengths(label, frame, line_numbers)
    if frame.is_empty() and schema.key == (schemas.PATIENT_ID.name,):
        raise RecordFileError(f"{label}: has a header but no records; expected one row per patient")
    return frame.with_columns(
        pl.lit(label).alias(FILE),
        pl.Series(ROW, line_numbers, dtype=pl.Int64),
    )


def _check_line_lengths(label: str, text: str) -> None:
    """Refuse a line longer than ``MAX_LINE_CHARS``: no record is, and echoing or storing one is what must not happen."""
    long_line = re.search(f"[^\n]{{{MAX_LINE_CHARS + 1}}}", text)
    if long_line:
        line = text.count("\n", 0, long_line.start()) + 1
        start = text.rfind("\n", 0, long_line.start()) + 1
        raise RecordFileError(
            f"{label}: line {line} is longer than {MAX_LINE_CHARS:,} characters (it starts '{excerpt(text[start : start + 200])}'); "
            "no record of a study is that long: is this the right file?"
        )


def _check_field_lengths(label: str, frame: pl.DataFrame, line_numbers: np.ndarray) -> None:
    """Refuse a value longer than ``MAX_FIELD_CHARS`` (a quoted value may span lines, so the line limit alone misses it)."""
    for column in frame.columns:
        lengths = frame[column].str.len_chars()
        if cast(int, lengths.max() or 0) > MAX_FIELD_CHARS:
            index = int((lengths > MAX_FIELD_CHARS).arg_true()[0])
            raise RecordFileError(
                f"{label}: line {line_numbers[index]}, column {excerpt(column)}: a value of {int(lengths[index]):,} characters, "
                f"over the limit of {MAX_FIELD_CHARS:,} (it starts '{excerpt(frame[column][index])}')"
            )


def _parse_header(header: str) -> list[str]:
    return next(csv.reader([header]))


def _csv_layout_problem(text: str, width: int) -> str:
    """Where a text that is not valid CSV first goes wrong: a line with more fields than the header, or an open quote."""
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


class _CsvProblem(ValueError):
    """Where the csv module gives up on a text, said without the file's name (``read_raw`` adds it)."""


def _record_line_numbers_by_parsing(text: str) -> np.ndarray:
    """``_record_line_numbers`` for text with quotes (a record may span lines)."""
    reader = csv.reader(io.StringIO(text))
    starts = []
    line = 1
    try:
        next(reader)
        line = reader.line_num + 1
        for record in reader:
            if record and any(v.strip() for v in record):
                starts.append(line)
            line = reader.line_num + 1
    except csv.Error as err:
        if "field larger than field limit" in str(err):  # a quoted value running over many lines
            raise _CsvProblem(
                f"line {line} starts a value longer than {csv.field_size_limit():,} characters, over the limit of "
                f"{MAX_FIELD_CHARS:,}; check its quotes"
            ) from None
        raise _CsvProblem(f"line {line} is not valid CSV ({err}); check its quotes") from None
    return np.asarray(starts, dtype=np.int64)


def _check_columns(label: str, columns: list[str], schema: FileSchema) -> None:
    identifiers = [c for c in columns if _IDENTIFIER_PATTERN.search(c)]
    if identifiers:
        raise RecordFileError(
            f"{label}: column(s) {excerpt(', '.join(identifiers))} look like direct identifiers; the study folder holds "
            "pseudonymous patient numbers only. Remove them before loading."
        )
    expected = schema.column_names
    if "" in columns:
        raise RecordFileError(f"{label}: the header has a column without a name (a trailing comma?); expected {', '.join(expected)}")
    if len(columns) == 1 and len(expected) > 1 and any(sep in columns[0] for sep in ";\t|"):
        raise RecordFileError(f"{label}: the header is one column '{excerpt(columns[0])}'; the file must be comma-separated")
    missing = [c for c in expected if c not in columns]
    if missing:
        raise RecordFileError(f"{label}: missing column(s) {', '.join(missing)}; expected {', '.join(expected)}")
    extra = [c for c in columns if c not in expected]
    if extra:
        raise RecordFileError(f"{label}: unexpected column(s) {excerpt(', '.join(extra), 200)}; expected exactly {', '.join(expected)}")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise RecordFileError(f"{label}: column(s) {excerpt(', '.join(duplicated), 200)} appear more than once")


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
) -> pl.DataFrame:
    """All rule violations of all record files, then rows that refer to a patient who is not valid."""
    patient_problems = problems(raw_patients, schemas.PATIENTS)
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
        found += [problems(raw, schema), unknown_patients(raw, valid_ids)]
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
    # only when some row is rejected: on a million patients the copy held ~0.6 GB more in the ADTTE step.
    typed = raw.select(*[_cast(c.name, c.dtype).alias(c.name) for c in schema.columns], FILE, ROW, *keep)
    if rejected.is_empty():
        return typed
    return typed.join(rejected, on=[FILE, ROW], how="anti", maintain_order="left")


def combined_hash(digests: list[str]) -> str:
    """One SHA-256 over several files' hashes, in order: changes when any file changes."""
    return hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()
