"""The study a folder holds, from its ``study.toml``: who it is, when it enrolled, and what its team decided.

Everything that differs from one study to the next and is not a record file lives there, so a new study is a
new folder, not code (data/README.md, "study.toml", documents each key). The published data cut is not here:
the registry (``printed_values.csv``, column ``data_cut``) names it beside the figures it dates.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lms_assets.records.validation import MAX_LINE_CHARS, RecordFileError, excerpt, resolve_inside

STUDY_FILE = "study.toml"
# STUDYID prefixes every USUBJID: letters, digits, '-' and '_' keep it a plain identifier in every export.
_STUDYID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", re.ASCII)
TITLE_CHARS = 200


@dataclass(frozen=True)
class Study:
    """What a study folder's ``study.toml`` says; every field but the last is required."""

    studyid: str  # CDISC STUDYID of every ADaM row
    title: str  # the study as the report names it
    enrolment_start: dt.date  # first day a patient could start treatment
    enrolment_end: dt.date  # last day a patient could start treatment
    # Off: a quarantined row stops the cohort from being replaced. On: those rows are left out, and said so.
    exclude_quarantined_rows: bool = False


REQUIRED = ("studyid", "title", "enrolment_start", "enrolment_end")
KNOWN = (*REQUIRED, "exclude_quarantined_rows")


def _refuse(key: str, value: object, why: str) -> RecordFileError:
    """The error naming the file, the key and the value as written (a string quoted, a date as YYYY-MM-DD)."""
    shown = value.isoformat() if isinstance(value, dt.date) else repr(value)
    return RecordFileError(f"{STUDY_FILE}: {key} = {excerpt(shown)} {why}")


def _text(parsed: dict, key: str) -> str:
    value = parsed[key]
    if not isinstance(value, str) or not value.strip():
        raise _refuse(key, value, "must be a non-empty quoted string")
    return value


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
    if not path.is_file():
        raise RecordFileError(f"{STUDY_FILE}: is not a file")
    data = path.read_bytes()
    if len(data) > MAX_LINE_CHARS:
        raise RecordFileError(f"{STUDY_FILE}: {len(data):,} bytes; a settings file is a few lines")
    try:
        return tomllib.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise RecordFileError(f"{STUDY_FILE}: is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise RecordFileError(f"{STUDY_FILE}: is not valid TOML ({excerpt(err, 120)})") from None


def load_study(study_dir: Path) -> Study:
    """The study of ``study_dir`` (read through the study-folder boundary check), or an error naming the file, key and value."""
    parsed = _parsed(study_dir)
    unknown = sorted(set(parsed) - set(KNOWN))
    if unknown:
        raise RecordFileError(f"{STUDY_FILE}: unknown setting(s) {excerpt(', '.join(unknown))}; known: {', '.join(KNOWN)}")
    missing = [key for key in REQUIRED if key not in parsed]
    if missing:
        raise RecordFileError(f"{STUDY_FILE}: missing {', '.join(missing)} (data/README.md, 'study.toml', says what each is)")
    studyid, title = _text(parsed, "studyid"), _text(parsed, "title")
    if not _STUDYID.fullmatch(studyid):
        raise _refuse("studyid", studyid, "must be 1-40 letters, digits, '-' or '_' (it prefixes every USUBJID)")
    if len(title) > TITLE_CHARS or not title.isprintable():
        raise _refuse("title", title, f"must be one printable line of at most {TITLE_CHARS} characters")
    start, end = _date(parsed, "enrolment_start"), _date(parsed, "enrolment_end")
    if end < start:
        raise _refuse("enrolment_end", end, f"is before enrolment_start = {start}")
    exclude = parsed.get("exclude_quarantined_rows", False)
    if not isinstance(exclude, bool):
        raise RecordFileError(f"{STUDY_FILE}: exclude_quarantined_rows must be true or false, not {excerpt(repr(exclude))}")
    return Study(studyid, title, start, end, exclude)
