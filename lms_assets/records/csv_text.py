"""A record file's text as CSV: its header and columns, the line each record starts on, the size limits, and where
a text that is not valid CSV first goes wrong. Each refusal is a ``RecordFileError`` naming the file and line."""

from __future__ import annotations

import csv
import io
import re
from typing import cast

import numpy as np
import polars as pl

from lms_assets.records.errors import RecordFileError, excerpt
from lms_assets.records.schemas import FileSchema

# The longest line in the shipped files is under 300 characters; these limits are far above any real record
# and far below what would make a message, the warehouse or the report grow without bound.
MAX_LINE_CHARS = 10_000
MAX_FIELD_CHARS = 2_000
# Column names that suggest direct identifiers; the study folder holds pseudonymous ids only.
_IDENTIFIER_PATTERN = re.compile(
    r"(^|_)(name|first_?name|last_?name|surname|dob|birth|date_of_birth|phone|mobile|email|address|street|"
    r"postcode|zip|national_id|ssn|nhs|passport|id_card|mrn|medical_record)($|_)",
    re.IGNORECASE,
)
# The line boundaries of str.splitlines, and lines that hold nothing but whitespace and commas.
_LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_BLANK_LINE = re.compile(r"\n(?:[^\S\n]|,)*(?=\n|\Z)")


def check_line_lengths(label: str, text: str) -> None:
    """Refuse a line longer than ``MAX_LINE_CHARS``: no record is, and echoing or storing one is what must not happen."""
    long_line = re.search(f"[^\n]{{{MAX_LINE_CHARS + 1}}}", text)
    if long_line:
        line = text.count("\n", 0, long_line.start()) + 1
        start = text.rfind("\n", 0, long_line.start()) + 1
        raise RecordFileError(
            f"{label}: line {line} is longer than {MAX_LINE_CHARS:,} characters (it starts '{excerpt(text[start : start + 200])}'); "
            "no record of a study is that long: is this the right file?"
        )


def check_field_lengths(label: str, frame: pl.DataFrame, line_numbers: np.ndarray) -> None:
    """Refuse a value longer than ``MAX_FIELD_CHARS`` (a quoted value may span lines, so the line limit alone misses it)."""
    for column in frame.columns:
        lengths = frame[column].str.len_chars()
        if cast(int, lengths.max() or 0) > MAX_FIELD_CHARS:
            index = int((lengths > MAX_FIELD_CHARS).arg_true()[0])
            raise RecordFileError(
                f"{label}: line {line_numbers[index]}, column {excerpt(column)}: a value of {int(lengths[index]):,} characters, "
                f"over the limit of {MAX_FIELD_CHARS:,} (it starts '{excerpt(frame[column][index])}')"
            )


def parse_header(header: str) -> list[str]:
    return next(csv.reader([header]))


def csv_layout_problem(text: str, width: int) -> str:
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


def first_line(text: str) -> str:
    """The text up to its first line break, as ``str.splitlines`` sees breaks, without splitting the whole file."""
    match = _LINE_BREAK.search(text)
    return text[: match.start()] if match else text


def record_line_numbers(text: str) -> np.ndarray:
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


class CsvProblem(ValueError):
    """Where the csv module gives up on a text, said without the file's name (``read_raw`` adds it)."""


def _record_line_numbers_by_parsing(text: str) -> np.ndarray:
    """``record_line_numbers`` for text with quotes (a record may span lines)."""
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
            raise CsvProblem(
                f"line {line} starts a value longer than {csv.field_size_limit():,} characters, over the limit of "
                f"{MAX_FIELD_CHARS:,}; check its quotes"
            ) from None
        raise CsvProblem(f"line {line} is not valid CSV ({err}); check its quotes") from None
    return np.asarray(starts, dtype=np.int64)


def check_columns(label: str, columns: list[str], schema: FileSchema) -> None:
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
