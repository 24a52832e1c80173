"""A corpus of damaged study folders, each made from the shipped records the way a careless user would.

Every variant ends one of three ways, and the test says which and checks it in full:
- ``Refused``: the run fails with a message naming the file and the problem, and every table in the
  warehouse is byte-for-byte what it was, with no table added or half written;
- ``Quarantined``: exactly the expected (file, row, column, value, reason) rows are quarantined, the cohort
  tables are the previous ones without exactly the affected rows, and every other table is unchanged;
- ``Harmless``: the damage does not change what the file says (a byte-order mark, other line endings,
  quoting): every table is byte-for-byte unchanged.

The warehouse is built once per module; each variant runs on a fresh copy of it (at one place, so the
definitions are built once), re-materializing the damaged file's raw asset and everything downstream of it
up to the cohort, as the UI would. A harmless variant re-materializes the raw asset alone: when its table is
byte-for-byte unchanged, so is everything derived from it (test_reruns.py: same input, same tables).
"""

import csv
import hashlib
import io
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import AssetSelection, DagsterInstance

from lms_assets.definitions import build_defs
from lms_assets_tests.conftest import SHIPPED_DATA, run_assets
from lms_assets_tests.test_bad_input import failure_message, table_digests

COHORT = ("adsl", "adrs", "adtte", "adae")
CUT = "followup/2021-03-31.csv"
RAW_ASSET = {
    "patients.csv": "raw_patients",
    "patient_allocations.csv": "raw_patient_allocations",
    "response.csv": "raw_response",
    "adverse_events.csv": "raw_adverse_events",
    CUT: "raw_followup",
    "followup": "raw_followup",
}
UNKNOWN_PATIENT = "patient is not among the valid rows of patients.csv"
PATIENT_FILES = ("patient_allocations.csv", "response.csv", CUT, "adverse_events.csv")


# --- outcomes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """The run fails; the failure message contains ``message`` (which starts with the file's name)."""

    message: str


@dataclass(frozen=True)
class Quarantined:
    """The listed rows are quarantined; ``invalid_patients`` also lose every row in the other files."""

    rows: tuple[tuple[str, int, str, str | None, str], ...]
    invalid_patients: tuple[int, ...] = ()
    # Rows expected to leave each cohort table (beyond those of invalid patients).
    dropped: dict[str, pl.Expr] = field(default_factory=dict)


@dataclass(frozen=True)
class Harmless:
    """What the file says is unchanged."""


@dataclass(frozen=True)
class Variant:
    file: str
    damage: Callable[[Path], None]
    outcome: Refused | Quarantined | Harmless


# --- ways to damage a file ---------------------------------------------------------------------


def replace(file: str, old: str, new: str) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        path = study / file
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} must occur once in {file}"
        path.write_text(text.replace(old, new))

    return damage


def append(file: str, line: str) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        with (study / file).open("a") as handle:
            handle.write(line + "\n")

    return damage


def recode(file: str, transform: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        path = study / file
        path.write_bytes(transform(path.read_bytes()))

    return damage


def each_line(file: str, transform: Callable[[str], str]) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        path = study / file
        path.write_text("".join(transform(line) + "\n" for line in path.read_text().splitlines()))

    return damage


def drop_column(file: str, name: str) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        path = study / file
        rows = list(csv.reader(io.StringIO(path.read_text())))
        index = rows[0].index(name)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([r[:index] + r[index + 1 :] for r in rows])
        path.write_text(out.getvalue())

    return damage


def quote_every_field(file: str) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        path = study / file
        out = io.StringIO()
        csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(csv.reader(io.StringIO(path.read_text())))
        path.write_text(out.getvalue())

    return damage


def remove(file: str) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        target = study / file
        shutil.rmtree(target) if target.is_dir() else target.unlink()

    return damage


def make_folder_instead(file: str) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        (study / file).unlink()
        (study / file).mkdir()

    return damage


def add_file(file: str, content: bytes) -> Callable[[Path], None]:
    return lambda study: (study / file).write_bytes(content)


def copy_to(file: str, new_name: str) -> Callable[[Path], None]:
    return lambda study: shutil.copyfile(study / file, study / new_name)


def link_outside(file: str) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        outside = study.parent / "outside" / Path(file).name
        outside.parent.mkdir()
        (study / file).rename(outside)
        (study / file).symlink_to(outside)

    return damage


def empty_folder(folder: str) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        for child in (study / folder).iterdir():
            child.unlink()

    return damage


def header_only(file: str) -> Callable[[Path], None]:
    return lambda study: (study / file).write_text((study / file).read_text().splitlines()[0] + "\n")


def subject(*ids: int) -> pl.Expr:
    return pl.col("SUBJID").is_in(list(ids))


def patient_term(patient: int, term: str) -> pl.Expr:
    return (pl.col("SUBJID") == patient) & (pl.col("AEDECOD") == term)


NOT_A_CATEGORY_SEX = "not one of Female, Male"
NOT_A_RESPONSE = "not one of CR, PR, SD, PD, NE"
NOT_A_COMBINATION = "not one of None, Immunotherapy, Chemotherapy, Radiotherapy, Immunotherapy+Chemotherapy"

VARIANTS: dict[str, Variant] = {
    # ----- the file cannot be used: refused with its name and the problem -----
    "missing-file": Variant("patients.csv", remove("patients.csv"), Refused("patients.csv: file is missing")),
    "empty-file": Variant("response.csv", add_file("response.csv", b""), Refused("response.csv: file is empty")),
    "blank-lines-only": Variant(
        "adverse_events.csv", add_file("adverse_events.csv", b"\n  \n\r\n"), Refused("adverse_events.csv: file is empty")
    ),
    "header-only": Variant(
        "response.csv", header_only("response.csv"), Refused("response.csv: has a header but no records; expected one row per patient")
    ),
    "header-only-cut": Variant(CUT, header_only(CUT), Refused(f"{CUT}: has a header but no records")),
    "missing-column": Variant(
        "patients.csv", drop_column("patients.csv", "ecog"), Refused("patients.csv: missing column(s) ecog; expected patient_id, age")
    ),
    "renamed-column": Variant(
        "response.csv",
        replace("response.csv", "best_response\n", "BOR\n"),
        Refused("response.csv: missing column(s) best_response"),
    ),
    "renamed-column-case": Variant(CUT, replace(CUT, "os_months", "OS_Months"), Refused(f"{CUT}: missing column(s) os_months")),
    "extra-column": Variant(
        "adverse_events.csv",
        each_line("adverse_events.csv", lambda line: line + (",comment" if line.startswith("patient_id") else ",")),
        Refused("adverse_events.csv: unexpected column(s) comment; expected exactly patient_id, term, episode, ctcae_grade"),
    ),
    "duplicated-column": Variant(
        "patient_allocations.csv",
        each_line("patient_allocations.csv", lambda line: line + "," + line.split(",")[3]),
        Refused("patient_allocations.csv: column(s) dose_reduced appear more than once"),
    ),
    "trailing-comma": Variant(
        "patients.csv",
        each_line("patients.csv", lambda line: line + ","),
        Refused("patients.csv: the header has a column without a name (a trailing comma?)"),
    ),
    "semicolon-delimiter": Variant(
        "patients.csv",
        each_line("patients.csv", lambda line: line.replace(",", ";")),
        Refused("patients.csv: the header is one column 'patient_id;age;sex;ecog;"),
    ),
    "tab-delimiter": Variant(
        "response.csv",
        each_line("response.csv", lambda line: line.replace(",", "\t")),
        Refused("response.csv: the header is one column 'patient_id\tbest_pct_change\tbest_response'; the file must be comma-separated"),
    ),
    "latin-1-bytes": Variant(
        "patients.csv",
        recode("patients.csv", lambda data: data.decode().replace("\n2,43,Female", "\n2,43,Fémale").encode("latin-1")),
        Refused("patients.csv: line 3 is not UTF-8 text (byte 0xe9); save the file as UTF-8 CSV"),
    ),
    "utf-16": Variant(
        "response.csv",
        recode("response.csv", lambda data: data.decode().encode("utf-16")),
        Refused("response.csv: line 1 is not UTF-8 text (byte 0xff)"),
    ),
    "spreadsheet-saved-as-csv": Variant(
        "adverse_events.csv",
        add_file("adverse_events.csv", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb5U0#\xf4\x00\x00\x00[Content_Types].xml"),
        Refused("adverse_events.csv: line 1 is not UTF-8 text (byte 0xb5)"),
    ),
    "unquoted-comma-in-value": Variant(
        "adverse_events.csv",
        append("adverse_events.csv", "3,Nausea, vomiting,1,2"),
        Refused("adverse_events.csv: line 48 has 5 fields but the header has 4; quote values that contain commas"),
    ),
    "unclosed-quote": Variant(
        "response.csv",
        replace("response.csv", "\n2,-72.6,PR\n", '\n2,"-72.6,PR\n'),
        Refused("response.csv: line 3 is not valid CSV (unexpected end of data); check its quotes"),
    ),
    "folder-instead-of-file": Variant(
        "patients.csv", make_folder_instead("patients.csv"), Refused("patients.csv: is a folder, not a CSV file")
    ),
    "cut-name-not-a-date": Variant(
        "followup", copy_to(CUT, "followup/latest.csv"), Refused("latest.csv: follow-up files must be named by their ISO cut date")
    ),
    "cut-name-impossible-date": Variant(
        "followup", copy_to(CUT, "followup/2021-02-30.csv"), Refused("'2021-02-30' is not a valid calendar date")
    ),
    "duplicate-cut-date": Variant(
        "followup", copy_to(CUT, "followup/2021-03-31.CSV"), Refused("2021-03-31.csv: data cut 2021-03-31 is also given by")
    ),
    "stray-file-in-followup": Variant(
        "followup",
        add_file("followup/notes.txt", b"ask the site about patient 4"),
        Refused("notes.txt: follow-up files must be named by their ISO cut date"),
    ),
    "followup-folder-missing": Variant(
        "followup", remove("followup"), Refused("followup: the follow-up folder is missing; it holds one CSV per data cut")
    ),
    "followup-folder-empty": Variant("followup", empty_folder("followup"), Refused("followup: no data-cut files")),
    "direct-identifier-column": Variant(
        "patients.csv",
        each_line("patients.csv", lambda line: line + (",date_of_birth" if line.startswith("patient_id") else ",1970-01-01")),
        Refused("patients.csv: column(s) date_of_birth look like direct identifiers"),
    ),
    "link-outside-study": Variant("response.csv", link_outside("response.csv"), Refused("response.csv: resolves to")),
    "sql-in-header": Variant(
        "response.csv",
        replace("response.csv", "best_response\n", 'best_response"); DROP TABLE adsl; --\n'),
        Refused("response.csv: missing column(s) best_response"),
    ),
    # ----- bad rows: quarantined with file, row, column, value and reason; the good rows flow on -----
    "truncated-last-line": Variant(
        "response.csv",
        recode("response.csv", lambda data: data.rstrip(b"\n")[: -len(b".2,PD")]),
        Quarantined(rows=(("response.csv", 20, "best_response", None, "missing value"),), dropped={"adrs": subject(19)}),
    ),
    "short-line": Variant(
        "response.csv",
        replace("response.csv", "\n12,12.5,SD\n", "\n12,12.5\n"),
        Quarantined(rows=(("response.csv", 13, "best_response", None, "missing value"),), dropped={"adrs": subject(12)}),
    ),
    "text-for-a-number": Variant(
        "patients.csv",
        replace("patients.csv", "\n7,40,Female", "\n7,forty,Female"),
        Quarantined(rows=(("patients.csv", 8, "age", "forty", "not a whole number"),), invalid_patients=(7,)),
    ),
    "decimal-comma": Variant(
        CUT,
        replace(CUT, "\n1,10.6,1,", '\n1,"10,6",1,'),
        Quarantined(rows=((CUT, 2, "pfs_months", "10,6", "not a number"),), dropped={"adtte": subject(1)}),
    ),
    "negative-time": Variant(
        CUT,
        replace(CUT, "\n4,5.8,", "\n4,-5.8,"),
        Quarantined(rows=((CUT, 5, "pfs_months", "-5.8", "below the minimum 0"),), dropped={"adtte": subject(4)}),
    ),
    "os-shorter-than-pfs": Variant(
        CUT,
        replace(CUT, "\n3,12.4,1,28.0,1\n", "\n3,12.4,1,10.0,1\n"),
        Quarantined(rows=((CUT, 4, "os_months", "10.0", "OS is shorter than PFS"),), dropped={"adtte": subject(3)}),
    ),
    "death-not-a-pfs-event": Variant(
        CUT,
        replace(CUT, "\n3,12.4,1,28.0,1\n", "\n3,28.0,0,28.0,1\n"),
        Quarantined(
            rows=((CUT, 4, "progressed", "0", "death at the PFS time must count as a PFS event"),), dropped={"adtte": subject(3)}
        ),
    ),
    "event-flag-not-0-or-1": Variant(
        CUT,
        replace(CUT, "\n7,2.1,1,5.2,1\n", "\n7,2.1,1,5.2,2\n"),
        Quarantined(rows=((CUT, 8, "died", "2", "above the maximum 1"),), dropped={"adtte": subject(7)}),
    ),
    "age-out-of-range": Variant(
        "patients.csv",
        replace("patients.csv", "\n10,30,Female", "\n10,12,Female"),
        Quarantined(rows=(("patients.csv", 11, "age", "12", "below the minimum 18"),), invalid_patients=(10,)),
    ),
    "unknown-sex": Variant(
        "patients.csv",
        replace("patients.csv", "\n2,43,Female", "\n2,43,F"),
        Quarantined(rows=(("patients.csv", 3, "sex", "F", NOT_A_CATEGORY_SEX),), invalid_patients=(2,)),
    ),
    "missing-value": Variant(
        "patients.csv",
        replace("patients.csv", "\n14,70,Female,1,", "\n14,70,Female,,"),
        Quarantined(rows=(("patients.csv", 15, "ecog", None, "missing value"),), invalid_patients=(14,)),
    ),
    "quoted-comma-in-category": Variant(
        "patients.csv",
        replace("patients.csv", "3 line and more,Immunotherapy+Chemotherapy", '3 line and more,"Immunotherapy, Chemotherapy"'),
        Quarantined(
            rows=(("patients.csv", 8, "combination_therapy", "Immunotherapy, Chemotherapy", NOT_A_COMBINATION),), invalid_patients=(7,)
        ),
    ),
    "duplicate-patient-id": Variant(
        "patients.csv",
        append("patients.csv", "5,50,Female,2,Yes,Yes,No,None"),
        Quarantined(
            rows=(
                ("patients.csv", 6, "patient_id", "5", "duplicate patient_id (rows 6, 21)"),
                ("patients.csv", 21, "patient_id", "5", "duplicate patient_id (rows 6, 21)"),
            ),
            invalid_patients=(5,),
        ),
    ),
    "duplicate-patient-in-cut": Variant(
        CUT,
        append(CUT, "8,2.0,1,3.0,0"),
        Quarantined(
            rows=(
                (CUT, 9, "patient_id", "8", "duplicate patient_id (rows 9, 21)"),
                (CUT, 21, "patient_id", "8", "duplicate patient_id (rows 9, 21)"),
            ),
            dropped={"adtte": subject(8)},
        ),
    ),
    "unknown-response": Variant(
        "response.csv",
        replace("response.csv", "\n6,-14.0,SD\n", "\n6,-14.0,Stable\n"),
        Quarantined(rows=(("response.csv", 7, "best_response", "Stable", NOT_A_RESPONSE),), dropped={"adrs": subject(6)}),
    ),
    "sql-in-a-value": Variant(
        "response.csv",
        replace("response.csv", "\n11,11.8,SD\n", "\n11,11.8,SD'); DROP TABLE adsl; --\n"),
        Quarantined(
            rows=(("response.csv", 12, "best_response", "SD'); DROP TABLE adsl; --", NOT_A_RESPONSE),), dropped={"adrs": subject(11)}
        ),
    ),
    "response-for-unknown-patient": Variant(
        "response.csv",
        append("response.csv", "20,-40.0,PR"),
        Quarantined(rows=(("response.csv", 21, "patient_id", "20", UNKNOWN_PATIENT),)),
    ),
    "unknown-grade": Variant(
        "adverse_events.csv",
        replace("adverse_events.csv", "\n1,Hypertension,1,2\n", "\n1,Hypertension,1,6\n"),
        Quarantined(rows=(("adverse_events.csv", 3, "ctcae_grade", "6", "above the maximum 5"),), dropped={"adae": patient_term(1, "Hypertension")}),
    ),
    "grade-in-roman-numerals": Variant(
        "adverse_events.csv",
        replace("adverse_events.csv", "\n1,Oral ulcers,1,2\n", "\n1,Oral ulcers,1,II\n"),
        Quarantined(rows=(("adverse_events.csv", 4, "ctcae_grade", "II", "not a whole number"),), dropped={"adae": patient_term(1, "Oral ulcers")}),
    ),
    "adverse-event-for-unknown-patient": Variant(
        "adverse_events.csv",
        append("adverse_events.csv", "99,Fatigue,1,2"),
        Quarantined(rows=(("adverse_events.csv", 48, "patient_id", "99", UNKNOWN_PATIENT),)),
    ),
    "duplicate-adverse-event-episode": Variant(
        "adverse_events.csv",
        append("adverse_events.csv", "19,Hypertension,1,3"),
        Quarantined(
            rows=(
                ("adverse_events.csv", 46, "episode", "1", "duplicate patient_id+term+episode (rows 46, 48)"),
                ("adverse_events.csv", 48, "episode", "1", "duplicate patient_id+term+episode (rows 46, 48)"),
            ),
            dropped={"adae": patient_term(19, "Hypertension")},
        ),
    ),
    # ----- harmless: the same records in another dress; nothing changes -----
    "byte-order-mark": Variant("patients.csv", recode("patients.csv", lambda data: b"\xef\xbb\xbf" + data), Harmless()),
    "windows-line-endings": Variant(
        "adverse_events.csv", recode("adverse_events.csv", lambda data: data.replace(b"\n", b"\r\n")), Harmless()
    ),
    "old-mac-line-endings": Variant("response.csv", recode("response.csv", lambda data: data.replace(b"\n", b"\r")), Harmless()),
    "every-field-quoted": Variant("patient_allocations.csv", quote_every_field("patient_allocations.csv"), Harmless()),
    "spaces-around-values": Variant("response.csv", each_line("response.csv", lambda line: line.replace(",", " , ")), Harmless()),
    "trailing-blank-lines": Variant("patients.csv", recode("patients.csv", lambda data: data + b"\n \n,,,,,,,\n"), Harmless()),
    "no-final-newline": Variant("adverse_events.csv", recode("adverse_events.csv", lambda data: data.rstrip(b"\n")), Harmless()),
    "hidden-file-in-followup": Variant("followup", add_file("followup/.DS_Store", b"\x00\x05\x16\x07\xff\xfe"), Harmless()),
}


# --- the harness -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pristine:
    root: Path
    study: Path
    warehouse: Path
    digests: dict[str, str]
    cohort: dict[str, pl.DataFrame]


def read_tables(warehouse: Path, names) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {n: con.sql(f"select * from {n} order by all").pl() for n in names}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Pristine:
    """The shipped study materialized once: the warehouse every variant starts from."""
    root = tmp_path_factory.mktemp("pristine")
    study, warehouse = root / "study", root / "warehouse" / "lms.duckdb"
    shutil.copytree(SHIPPED_DATA, study, ignore=shutil.ignore_patterns("warehouse", "README.md"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LMS_DATA_DIR", str(study))
        env.setenv("LMS_DUCKDB_PATH", str(warehouse))
        env.setenv("LMS_OUTPUT_DIR", str(root / "outputs"))
        assert run_assets(*COHORT).success
    digests = table_digests(warehouse)
    tables = read_tables(warehouse, [*COHORT, "quarantine"])
    assert tables["quarantine"].is_empty(), "the shipped records must be clean for the corpus to mean anything"
    return Pristine(root, study, warehouse, digests, {n: tables[n] for n in COHORT})


@pytest.fixture
def workspace(pristine: Pristine, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A fresh copy of the pristine study and warehouse, with the platform pointed at it."""
    work = pristine.root / "work"
    shutil.rmtree(work, ignore_errors=True)
    study, warehouse = work / "study", work / "warehouse" / "lms.duckdb"
    shutil.copytree(pristine.study, study, symlinks=True)
    warehouse.parent.mkdir(parents=True)
    for source in pristine.warehouse.parent.iterdir():
        shutil.copy2(source, warehouse.parent / source.name)
    monkeypatch.setenv("LMS_DATA_DIR", str(study))
    monkeypatch.setenv("LMS_DUCKDB_PATH", str(warehouse))
    monkeypatch.setenv("LMS_OUTPUT_DIR", str(work / "outputs"))
    return {"study": study, "warehouse": warehouse}


@pytest.fixture(scope="module")
def instance():
    """One in-memory instance for every variant's run (making one per run costs a third of a second)."""
    with DagsterInstance.ephemeral() as shared:
        yield shared


_JOBS = {}


def refresh(instance: DagsterInstance, raw_asset: str, downstream: bool):
    """Materialize the damaged file's raw asset and (``downstream``) everything after it up to the cohort."""
    key = (os.environ["LMS_DUCKDB_PATH"], raw_asset, downstream)
    if key not in _JOBS:
        defs = build_defs()
        selection = AssetSelection.assets(raw_asset)
        if downstream:
            selection = selection.downstream() & AssetSelection.assets(*COHORT).upstream()
        keys = set(selection.resolve(defs.resolve_asset_graph()))
        _JOBS[key] = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=keys)
    return _JOBS[key].execute_in_process(instance=instance, raise_on_error=False)


def unknown_patient_rows(study: Path, patients: tuple[int, ...]) -> set[tuple]:
    """Every row of the other files that names one of ``patients``: quarantined once the patient is invalid."""
    rows = set()
    for file in PATIENT_FILES:
        for line_number, line in enumerate((study / file).read_text().splitlines(), start=1):
            if line.split(",")[0] in {str(p) for p in patients}:
                rows.add((file, line_number, "patient_id", line.split(",")[0], UNKNOWN_PATIENT))
    return rows


def assert_cohort_lost_exactly(actual: dict[str, pl.DataFrame], pristine: Pristine, outcome: Quarantined, cut: Path):
    for table in COHORT:
        gone = outcome.dropped.get(table, pl.lit(False))
        if outcome.invalid_patients:
            gone = gone | subject(*outcome.invalid_patients)
        expected, got = pristine.cohort[table].filter(~gone), actual[table]
        if table == "adtte":
            # Each ADTTE row names the version of the cut file it came from: the damaged file's hash now.
            assert set(got["SRCHASH"].to_list()) == {hashlib.sha256(cut.read_bytes()).hexdigest()}
            expected, got = expected.drop("SRCHASH"), got.drop("SRCHASH")
        assert got.equals(expected), f"{table}: expected {pristine.cohort[table].height - expected.height} row(s) fewer"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_damaged_study_folder(name: str, pristine: Pristine, workspace: dict[str, Path], instance: DagsterInstance):
    variant = VARIANTS[name]
    variant.damage(workspace["study"])

    result = refresh(instance, RAW_ASSET[variant.file], downstream=not isinstance(variant.outcome, Harmless))

    digests = table_digests(workspace["warehouse"])  # reads every table: none is unreadable or half written
    assert set(digests) == set(pristine.digests), "no table may appear or disappear"
    outcome = variant.outcome
    if isinstance(outcome, Refused):
        assert not result.success
        assert outcome.message in failure_message(result)
        assert digests == pristine.digests
        return
    assert result.success, failure_message(result)
    if isinstance(outcome, Harmless):
        assert digests == pristine.digests
        return

    tables = read_tables(workspace["warehouse"], [*COHORT, "quarantine"])
    quarantined = set(tables["quarantine"].select("file", "row", "column", "value", "reason").iter_rows())
    assert quarantined == set(outcome.rows) | unknown_patient_rows(workspace["study"], outcome.invalid_patients)
    assert_cohort_lost_exactly(tables, pristine, outcome, workspace["study"] / CUT)
    touched = {"quarantine", *COHORT, RAW_ASSET[variant.file]}
    assert {n: d for n, d in digests.items() if n not in touched} == {n: d for n, d in pristine.digests.items() if n not in touched}


def test_the_corpus_is_large_and_covers_every_outcome():
    kinds = [type(v.outcome) for v in VARIANTS.values()]
    assert len(VARIANTS) >= 30
    assert {Refused, Quarantined, Harmless} == set(kinds)
