"""The study-specific lists of ``study.toml``: the treatment code, the values each record column allows, the sites only one
sex can have and the subgroups compared. ``study.load_study`` reads them with the rest of the file.

Each parser takes the parsed file and returns the declaration, or raises a ``RecordFileError`` naming the file and
the key (``vocabulary.adverse_events.term``, ``subgroups[2].level``). data/README.md, "study.toml", documents each.
"""

from __future__ import annotations

from dataclasses import dataclass

from lms_assets.records import schemas
from lms_assets.records.errors import RecordFileError, excerpt

STUDY_FILE = "study.toml"
LABEL_CHARS = 200


@dataclass(frozen=True)
class Subgroup:
    """A two-level ADSL factor compared within each endpoint: ``level`` against ``reference``."""

    factor: str
    column: str
    reference: str
    level: str
    reference_label: str
    level_label: str


# The ADSL variables a subgroup may split, each a code ADSL derives for every patient (adam/adsl.py). Fixed here, not
# per study, so the subgroup table loads these columns whatever the study compares.
SUBGROUP_COLUMNS = ("SEX", "ECOGGR1", "COMBFL", "PRCHFL", "SURGFL", "RADIOFL", "PRIMSITE")
SUBGROUP_KEYS = ("factor", "column", "reference", "level", "reference_label", "level_label")

# The record columns whose values a study declares (``[vocabulary.<file>]``): the words its paper prints. A value
# outside them is quarantined naming the list, so a misspelling or markup never reaches a table, chart or page.
# combination_therapy's "None" is the code's word for no combination (ADSL's COMBFL), so its list must hold it.
VOCABULARY_COLUMNS = {
    schemas.PATIENTS.name: ("combination_therapy",),
    schemas.PATIENT_ALLOCATIONS.name: ("primary_site",),
    schemas.ADVERSE_EVENTS.name: ("term",),
}
REQUIRED_VALUES = {(schemas.PATIENTS.name, "combination_therapy"): "None"}
# Record values of sex, and the ADSL code each becomes (adam/adsl.py derives SEX with it).
SEX_CODES = {"Female": "F", "Male": "M"}


def refuse(key: str, value: object, why: str) -> RecordFileError:
    return RecordFileError(f"{STUDY_FILE}: {key} = {excerpt(repr(value))} {why}")


def label(value: object, key: str) -> str:
    """``value`` as one printable, non-empty line of at most ``LABEL_CHARS`` characters, or an error naming ``key``."""
    if not isinstance(value, str) or not value.strip() or len(value) > LABEL_CHARS or not value.isprintable() or value != value.strip():
        raise refuse(key, value, f"must be a quoted, printable line of 1-{LABEL_CHARS} characters without surrounding spaces")
    return value


def _table(parsed: dict, key: str, written: str) -> dict:
    value = parsed.get(key, {})
    if not isinstance(value, dict):
        raise RecordFileError(f"{STUDY_FILE}: {key} must be a table, written {written}")
    return value


def treatment_code(parsed: dict) -> str | None:
    """``treatment_code``: the study's one arm as ADaM's TRT01P and TRTP hold it, upper case; absent: the study names none."""
    if "treatment_code" not in parsed:
        return None
    code = label(parsed["treatment_code"], "treatment_code")
    if code != code.upper():
        raise refuse("treatment_code", code, "must be upper case (ADaM's TRT01P holds it)")
    return code


def vocabulary(parsed: dict) -> dict[str, dict[str, tuple[str, ...]]]:
    """``[vocabulary.<file>]``: per record file (its schema name) and declarable column, the values it allows."""
    table = _table(parsed, "vocabulary", "[vocabulary.<file>]")
    declared: dict[str, dict[str, tuple[str, ...]]] = {}
    for file, columns in table.items():
        if file not in VOCABULARY_COLUMNS:
            raise RecordFileError(
                f"{STUDY_FILE}: vocabulary.{excerpt(file)} is not a record file with declared values; known: {', '.join(VOCABULARY_COLUMNS)}"
            )
        if not isinstance(columns, dict):
            raise RecordFileError(f"{STUDY_FILE}: vocabulary.{file} must be a table, written [vocabulary.{file}]")
        for column, values in columns.items():
            key = f"vocabulary.{file}.{column}"
            if column not in VOCABULARY_COLUMNS[file]:
                raise RecordFileError(
                    f"{STUDY_FILE}: {excerpt(key)} is not declared per study; {file} declares {', '.join(VOCABULARY_COLUMNS[file])}"
                )
            if not isinstance(values, list) or not values:
                raise refuse(key, values, "must be a non-empty array of quoted values")
            words = tuple(label(v, f"{key}[{i}]") for i, v in enumerate(values, start=1))
            if len(set(words)) != len(words):
                raise refuse(key, sorted({w for w in words if words.count(w) > 1}), "are listed twice")
            needed = REQUIRED_VALUES.get((file, column))
            if needed is not None and needed not in words:
                raise refuse(key, list(words), f"must hold {needed!r} (no such therapy)")
            declared.setdefault(file, {})[column] = words
    return declared


def sex_restricted_sites(parsed: dict, sites: tuple[str, ...] | None) -> dict[str, str]:
    """``[sex_restricted_sites]``: site = "Female" or "Male", each site one of the declared primary sites; as ADSL sex codes."""
    table = _table(parsed, "sex_restricted_sites", '[sex_restricted_sites] with lines site = "Female"')
    restricted = {}
    for site, sex in table.items():
        key = f"sex_restricted_sites.{excerpt(site)}"
        if sites is None or site not in sites:
            raise RecordFileError(f"{STUDY_FILE}: {key} is not a primary site of vocabulary.allocations.primary_site")
        if sex not in SEX_CODES:
            raise refuse(key, sex, f"must be one of {', '.join(SEX_CODES)}")
        restricted[site] = SEX_CODES[sex]
    return restricted


def array_of_tables(parsed: dict, key: str) -> list[dict]:
    """The entries of ``[[key]]`` in study.toml (none when it is absent), refused naming the key if it is anything else."""
    entries = parsed.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise RecordFileError(f"{STUDY_FILE}: {key} must be an array of tables, each written [[{key}]]")
    return entries


def subgroups(parsed: dict, sites: tuple[str, ...] | None) -> tuple[Subgroup, ...]:
    """``[[subgroups]]``: each a factor, the ADSL column it splits and its two levels with their labels; a split of
    PRIMSITE compares two of the declared primary ``sites`` (when the study declares them)."""
    entries = array_of_tables(parsed, "subgroups")
    found = []
    for i, entry in enumerate(entries, start=1):
        at = f"subgroups[{i}]"
        if set(entry) != set(SUBGROUP_KEYS):
            raise RecordFileError(f"{STUDY_FILE}: {at} has {excerpt(', '.join(sorted(entry)))}; each entry has exactly {', '.join(SUBGROUP_KEYS)}")
        values = {key: label(entry[key], f"{at}.{key}") for key in SUBGROUP_KEYS}
        if values["column"] not in SUBGROUP_COLUMNS:
            raise refuse(f"{at}.column", values["column"], f"must be an ADSL variable a subgroup may split: {', '.join(SUBGROUP_COLUMNS)}")
        if values["level"] == values["reference"]:
            raise refuse(f"{at}.level", values["level"], "is its reference too; a comparison needs two levels")
        for key in ("reference", "level"):
            if values["column"] == "PRIMSITE" and sites is not None and values[key] not in sites:
                raise refuse(f"{at}.{key}", values[key], "is not a primary site of vocabulary.allocations.primary_site")
        found.append(Subgroup(**values))
    factors = [s.factor for s in found]
    if len(set(factors)) != len(factors):
        raise RecordFileError(f"{STUDY_FILE}: subgroups: a factor is named twice ({excerpt(', '.join(factors))}); each is one comparison")
    return tuple(found)
