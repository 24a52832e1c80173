"""The study a folder holds, from its ``study.toml``: who it is, when it enrolled, what its team decided, and how its report lays out the paper's tables.

Everything that differs from one study to the next and is not a record file lives there, so a new study is a
new folder, not code (data/README.md, "study.toml", documents each key). The published data cut is not here:
the registry (``printed_values.csv``, column ``data_cut``) names it beside the values it dates.
"""

from __future__ import annotations

import datetime as dt
import re
import reprlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from lms_assets.records import declarations, schemas
from lms_assets.records.boundary import read_regular, resolve_inside
from lms_assets.records.csv_text import MAX_LINE_CHARS
from lms_assets.records.declarations import STUDY_FILE, Subgroup
from lms_assets.records.errors import EXCERPT_CHARS, RecordFileError, excerpt
from lms_assets.records.validation import FILE, describe_quarantine, excluded_share

# STUDYID prefixes every USUBJID: letters, digits, '-' and '_' keep it a plain identifier in every export.
_STUDYID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", re.ASCII)
TITLE_CHARS = 200
# The study folder shipped with the code (LMS_DATA_DIR's default, defs/resources.py): the synthetic generator imitates
# it, and a pure function called without a study's declarations takes its.
SHIPPED_STUDY_DIR = Path(__file__).resolve().parents[2] / "data"


@dataclass(frozen=True)
class ReportTable:
    """One of the paper's tables as the report lays it out (``[[report_tables]]``)."""

    heading: str  # the table's heading in the report
    source: str  # the registry's ``source`` of the values it prints (printed_values.csv)
    owners: tuple[str, ...]  # the summary tables whose rows make it, in order


@dataclass(frozen=True)
class Study:
    """What a study folder's ``study.toml`` says; the first four fields are required."""

    studyid: str  # CDISC STUDYID of every ADaM row
    title: str  # the study as the report names it
    enrolment_start: dt.date  # first day a patient could start treatment
    enrolment_end: dt.date  # last day a patient could start treatment
    # Off: a quarantined row stops the cohort from being replaced. On: those rows are left out, and said so.
    exclude_quarantined_rows: bool = False
    # With exclusion on: the largest share of the patients in patients.csv who may lose records to the quarantine
    # before the cohort is not published at all (a one-patient "cohort" is no longer the study).
    max_excluded_share: float = 0.0
    # The paper's tables the report recomputes beside the printed values; none: the report shows no such table.
    report_tables: tuple[ReportTable, ...] = ()
    # The labels of survival_summary's rows (it has no label column) where a report table shows them: (key, label).
    survival_rows: tuple[tuple[str, str], ...] = ()
    # On: R recomputes the statistics and agrees_with_r fails when it cannot. Off: a team without R says so, and
    # every result states it was not independently verified.
    independent_verification: bool = True
    # The study's one arm as ADaM's TRT01P and TRTP hold it; None: the study names none (they are null).
    treatment_code: str | None = None
    # Per record file (schema name) and column, the values it allows (declarations.VOCABULARY_COLUMNS); a column
    # the study does not declare takes any value.
    vocabulary: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    # Primary sites only patients of one sex can have: site -> ADSL sex code (F, M).
    sex_restricted_sites: dict[str, str] = field(default_factory=dict)
    # The subgroups compared within each endpoint (survival_subgroups), in the order shown.
    subgroups: tuple[Subgroup, ...] = ()

    def values(self, file: str, column: str) -> tuple[str, ...]:
        """The values the study declares for ``column`` of the record file ``file`` (schema name); () when none."""
        return self.vocabulary.get(file, {}).get(column, ())


REQUIRED = ("studyid", "title", "enrolment_start", "enrolment_end")
KNOWN = (
    *REQUIRED,
    "exclude_quarantined_rows",
    "max_excluded_share",
    "report_tables",
    "survival_rows",
    "independent_verification",
    "treatment_code",
    "vocabulary",
    "sex_restricted_sites",
    "subgroups",
)
REPORT_TABLE_KEYS = ("heading", "source", "owners")


# A value is shown to a few levels and items: a value nested thousands deep (still under the size cap) has a
# repr that overflows Python's stack.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxstring, _SHOWN.maxother = 3, 6, 6, EXCERPT_CHARS * 2, EXCERPT_CHARS


def _refuse(key: str, value: object, why: str) -> RecordFileError:
    """The error naming the file, the key and the value as written (a string quoted, a date as YYYY-MM-DD)."""
    shown = value.isoformat() if isinstance(value, dt.date) else _SHOWN.repr(value)
    return RecordFileError(f"{STUDY_FILE}: {key} = {excerpt(shown)} {why}")


def _text(parsed: dict, key: str, where: str | None = None) -> str:
    """``parsed[key]`` as a non-empty string; ``where`` names it in the file when it is not a top-level key."""
    value = parsed[key]
    if not isinstance(value, str) or not value.strip():
        raise _refuse(where or key, value, "must be a non-empty quoted string")
    return value


def _line(parsed: dict, key: str, where: str | None = None) -> str:
    """``parsed[key]`` as one printable line of at most ``TITLE_CHARS`` characters: a heading or a label."""
    value = _text(parsed, key, where)
    if len(value) > TITLE_CHARS or not value.isprintable():
        raise _refuse(where or key, value, f"must be one printable line of at most {TITLE_CHARS} characters")
    return value


def _report_tables(parsed: dict) -> tuple[ReportTable, ...]:
    """``[[report_tables]]``: each entry a heading, the registry source it prints, and its owner tables."""
    entries = declarations.array_of_tables(parsed, "report_tables")
    tables = []
    for i, entry in enumerate(entries, start=1):
        at = f"report_tables[{i}]"
        unknown = sorted(set(entry) - set(REPORT_TABLE_KEYS))
        missing = [key for key in REPORT_TABLE_KEYS if key not in entry]
        if unknown or missing:
            wrong = [f"unknown key(s) {excerpt(', '.join(unknown))}"] if unknown else []
            wrong += [f"missing {', '.join(missing)}"] if missing else []
            raise RecordFileError(f"{STUDY_FILE}: {at}: {'; '.join(wrong)}; each entry has {', '.join(REPORT_TABLE_KEYS)}")
        owners = entry["owners"]
        if not isinstance(owners, list) or not owners or not all(isinstance(o, str) and o.strip() for o in owners):
            raise _refuse(f"{at}.owners", owners, "must be a non-empty array of table names")
        tables.append(ReportTable(_line(entry, "heading", f"{at}.heading"), _line(entry, "source", f"{at}.source"), tuple(owners)))
    return tuple(tables)


def _survival_rows(parsed: dict) -> tuple[tuple[str, str], ...]:
    """``[survival_rows]``: each survival_summary row key (its endpoint, lower case) with its label."""
    rows = parsed.get("survival_rows", {})
    if not isinstance(rows, dict):
        raise RecordFileError(f'{STUDY_FILE}: survival_rows must be a table of key = "label" lines, written [survival_rows]')
    return tuple((key, _line(rows, key, f"survival_rows.{key}")) for key in rows)


def _date(parsed: dict, key: str) -> dt.date:
    value = parsed[key]
    # tomllib gives a datetime for 2018-01-01T00:00 (a subclass of date): a day is wanted, not an instant.
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise _refuse(key, value, "must be a TOML date, written unquoted as YYYY-MM-DD")
    return value


def _parsed(study_dir: Path) -> dict:
    path = resolve_inside(study_dir, STUDY_FILE)
    if not path.exists():
        raise RecordFileError(f"{STUDY_FILE}: missing from the study folder; it names the study ({', '.join(REQUIRED)})")
    data = read_regular(path, STUDY_FILE, expected="settings file", limit=MAX_LINE_CHARS)
    if len(data) > MAX_LINE_CHARS:
        raise RecordFileError(f"{STUDY_FILE}: {path.stat().st_size:,} bytes; a settings file is a few lines")
    try:
        return tomllib.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise RecordFileError(f"{STUDY_FILE}: is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise RecordFileError(f"{STUDY_FILE}: is not valid TOML ({excerpt(err, 120)})") from None
    except RecursionError:
        raise RecordFileError(
            f"{STUDY_FILE}: a value is nested (arrays or tables inside each other) deeper than Python can read; "
            "every setting is a value, an array of values or a table of them"
        ) from None


def _share(parsed: dict, key: str) -> float:
    """``parsed[key]`` as a share from 0 to 1 (absent: 0, nothing may be left out)."""
    value = parsed.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        # A NaN fails the range test too: TOML writes it nan, and it is not a share.
        raise _refuse(key, value, "must be a number from 0 to 1 (0.1 = a tenth of the patients)")
    return float(value)


def load_study(study_dir: Path) -> Study:
    """The study of ``study_dir`` (read through the study-folder boundary check), or an error naming the file, key and value.

    Any fault in reading it, not only the ones foreseen below, is a ``RecordFileError`` naming the file, never a traceback.
    """
    try:
        return _study(_parsed(study_dir))
    except RecordFileError:
        raise
    except Exception as err:
        raise RecordFileError(f"{STUDY_FILE}: cannot be read ({type(err).__name__}: {excerpt(err)})") from None


def _study(parsed: dict) -> Study:
    unknown = sorted(set(parsed) - set(KNOWN))
    if unknown:
        raise RecordFileError(f"{STUDY_FILE}: unknown setting(s) {excerpt(', '.join(unknown))}; known: {', '.join(KNOWN)}")
    missing = [key for key in REQUIRED if key not in parsed]
    if missing:
        raise RecordFileError(f"{STUDY_FILE}: missing {', '.join(missing)} (data/README.md, 'study.toml', says what each is)")
    studyid, title = _text(parsed, "studyid"), _line(parsed, "title")
    if not _STUDYID.fullmatch(studyid):
        raise _refuse("studyid", studyid, "must be 1-40 letters, digits, '-' or '_' (it prefixes every USUBJID)")
    start, end = _date(parsed, "enrolment_start"), _date(parsed, "enrolment_end")
    if end < start:
        raise _refuse("enrolment_end", end, f"is before enrolment_start = {start}")
    exclude = parsed.get("exclude_quarantined_rows", False)
    if not isinstance(exclude, bool):
        raise RecordFileError(f"{STUDY_FILE}: exclude_quarantined_rows must be true or false, not {excerpt(repr(exclude))}")
    independent = parsed.get("independent_verification", True)
    if not isinstance(independent, bool):
        raise RecordFileError(f"{STUDY_FILE}: independent_verification must be true or false, not {excerpt(repr(independent))}")
    vocabulary = declarations.vocabulary(parsed)
    sites = vocabulary.get(schemas.PATIENT_ALLOCATIONS.name, {}).get("primary_site")
    return Study(
        studyid,
        title,
        start,
        end,
        exclude,
        _share(parsed, "max_excluded_share"),
        _report_tables(parsed),
        _survival_rows(parsed),
        independent,
        declarations.treatment_code(parsed),
        vocabulary,
        declarations.sex_restricted_sites(parsed, sites),
        declarations.subgroups(parsed, sites),
    )


def quarantine_verdict(study: Study, rows: pl.DataFrame, raw: pl.DataFrame, escape: Callable[[str], str] = str) -> tuple[bool, str, float]:
    """Whether the quarantine rows ``rows`` (not empty) of a cohort table's record files keep it from publication,
    the description saying what and why (``escape`` applied to the data it quotes), and the share of ``raw``, those
    files' rows as read, that they are.

    They do unless the study excludes quarantined rows, and even then once they are more than its
    ``max_excluded_share`` of the rows: eighteen patients of nineteen left out is no longer the study.
    """
    summary = describe_quarantine(rows, escape=escape)
    share = excluded_share(rows, raw)
    if not study.exclude_quarantined_rows:
        return (
            True,
            f"{summary}. Correct the file(s), or, where the registry accepts losses, set exclude_quarantined_rows = true in {STUDY_FILE}.",
            share,
        )
    if share > study.max_excluded_share:
        files = ", ".join(sorted(raw[FILE].unique()))
        return (
            True,
            f"{summary}. Not published: {share:.0%} of the rows of {files} would be left out, more than "
            f"max_excluded_share = {study.max_excluded_share:g} in {STUDY_FILE} allows.",
            share,
        )
    return False, f"{summary}. Left out ({share:.0%} of the rows): {STUDY_FILE} sets exclude_quarantined_rows = true.", share
