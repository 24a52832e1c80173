"""A corpus of damaged study folders, each made from the shipped records the way a careless user (or an
attacker) would, and what the platform must do with each.

Every variant ends one of these ways, and the test says which and checks it in full:
- ``Refused``: a file cannot be used; the message names the file (and line) and the problem, and echoes at
  most a short, sanitised excerpt of the file's content;
- ``Quarantined``: exactly the expected (file, row, column, value, reason) rows are quarantined; every cohort
  table made from those files is held back (its ``no_quarantined_rows`` check fails at ERROR, naming file,
  line, column, value and reason first); where the study allows excluding them, the cohort tables are the
  previous ones without exactly the affected rows;
- ``Blocked``: a cohort table's blocking check fails on its candidate (a regressive data cut, an empty cohort);
- ``Accepted``: the records are usable and publish (a new, consistent cut; a cut that is a byte-identical
  copy of another, which only warns);
- ``Harmless``: the damage does not change what the files say; every cohort table is unchanged.

Most variants are judged through the pure functions the assets call (``evaluate``, below: the same reads,
quarantine, derivations and gate rules as the ingest and cohort steps), which takes milliseconds each. A
sample of every outcome (``THROUGH_DAGSTER``) also runs through Dagster on a copy of a warehouse built once
per module, re-materializing the damaged file's raw asset and everything after it up to the cohort, and
checks that the published (``main``) tables are byte-for-byte as before wherever the outcome says so.
"""

import csv
import dataclasses
import datetime as dt
import io
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetSelection, DagsterInstance

from lms_assets import adam
from lms_assets.records import boundary, errors, schemas, validation
from lms_assets.records.errors import RecordFileError
from lms_assets.records.study import load_study, quarantine_verdict
from lms_assets_tests.conftest import COHORT, SHIPPED_DATA, allow_exclusion, defs_for
from lms_assets_tests.test_bad_input import assert_no_markup, failure_first_lines, failure_message, failure_messages, no_hang, table_digests

CUT = "followup/2021-03-31.csv"
RAW_ASSET = {
    "patients.csv": "raw_patients",
    "patient_allocations.csv": "raw_allocations",
    "response.csv": "raw_response",
    "adverse_events.csv": "raw_adverse_events",
    "provenance.csv": "raw_provenance",
    CUT: "raw_followup",
    "followup": "raw_followup",
    # The settings are read by the cohort steps: re-running from a raw asset re-runs them.
    "study.toml": "raw_patients",
}
UNKNOWN_PATIENT = validation.UNKNOWN_PATIENT
PATIENT_FILES = ("patient_allocations.csv", "response.csv", CUT, "adverse_events.csv")
# No message may carry more than this much: file content is echoed only as short excerpts.
MESSAGE_LIMIT = 600


# --- outcomes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """The file cannot be used; the message contains ``message`` (which starts with the file's name)."""

    message: str
    # Text the message must not contain (e.g. what a link outside the folder points at).
    never_echoed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Quarantined:
    """The listed rows are quarantined; ``invalid_patients`` also lose every row in the other files."""

    rows: tuple[tuple[str, int, str, str | None, str], ...]
    invalid_patients: tuple[int, ...] = ()
    # Rows expected to leave each cohort table (beyond those of invalid patients) when exclusion is allowed.
    dropped: dict[str, pl.Expr] = field(default_factory=dict)


@dataclass(frozen=True)
class Blocked:
    """Each table in ``tables`` is held back by its blocking ``check``, whose description contains ``message``."""

    tables: tuple[str, ...]
    check: str
    message: str


@dataclass(frozen=True)
class Accepted:
    """Usable records that publish; ``identical`` is the (earlier, later) pair of byte-identical cuts warned about."""

    identical: tuple[str, str] | None = None
    # (file, row, column, value) of the valid values flagged for a second look (a time of 0).
    flagged: tuple[tuple[str, int, str, str], ...] = ()


@dataclass(frozen=True)
class Harmless:
    """What the files say is unchanged."""


@dataclass(frozen=True)
class Variant:
    file: str
    damage: Callable[[Path], None]
    outcome: Refused | Quarantined | Blocked | Accepted | Harmless


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


def rename(file: str, new_name: str) -> Callable[[Path], None]:
    return lambda study: (study / file).rename(study / new_name)


def link_to(file: str, target: str) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        (study / file).unlink(missing_ok=True)
        (study / file).symlink_to(target)

    return damage


def link_loop(file: str) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        if (study / file).is_dir():
            shutil.rmtree(study / file)
        else:
            (study / file).unlink()
        (study / file).symlink_to(study / f"{file}.loop")
        (study / f"{file}.loop").symlink_to(study / file)

    return damage


def fifo_instead(file: str) -> Callable[[Path], None]:
    """A named pipe where a file belongs: opening it for reading blocks until a writer comes, which none will."""

    def damage(study: Path) -> None:
        path = study / file
        if path.exists():
            path.unlink()
        os.mkfifo(path)

    return damage


def link_folder_outside(folder: str) -> Callable[[Path], None]:
    """The folder moved out of the study and replaced by a link to it."""

    def damage(study: Path) -> None:
        outside = study.parent / "outside" / folder
        outside.parent.mkdir()
        (study / folder).rename(outside)
        (study / folder).symlink_to(outside, target_is_directory=True)

    return damage


def patients_but_one_garbled(study: Path) -> None:
    """Every patient's age garbled but patient 1's: the cohort left would be one patient of 19."""
    lines = []
    for line in (study / "patients.csv").read_text().splitlines():
        fields = line.split(",")
        if fields[0] not in ("patient_id", "1"):
            fields[1] = "?"
        lines.append(",".join(fields))
    (study / "patients.csv").write_text("\n".join(lines) + "\n")


def settings(text: str | bytes) -> Callable[[Path], None]:
    data = text.encode() if isinstance(text, str) else text
    return lambda study: (study / "study.toml").write_bytes(data)


def both(*damages: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        for one in damages:
            one(study)

    return damage


def touched_at(file: str, when: dt.datetime) -> Callable[[Path], None]:
    return lambda study: os.utime(study / file, (when.timestamp(), when.timestamp()))


def new_cut(name: str, change: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[Path], None]:
    """A further cut file made from the shipped one by ``change``, written as the study team's export would be."""

    def damage(study: Path) -> None:
        change(pl.read_csv(study / CUT)).write_csv(study / "followup" / name)

    return damage


def when_patient(patient: int, column: str, value) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def change(cut: pl.DataFrame) -> pl.DataFrame:
        return cut.with_columns(pl.when(pl.col("patient_id") == patient).then(pl.lit(value)).otherwise(pl.col(column)).alias(column))

    return change


def followed_longer(cut: pl.DataFrame) -> pl.DataFrame:
    """A year later: every living patient followed 12 months longer, patient 1 died."""
    alive = pl.col("died") == 0
    return cut.with_columns(
        pl.when(alive).then(pl.col("os_months") + 12).otherwise(pl.col("os_months")).round(1).alias("os_months"),
        pl.when(pl.col("patient_id") == 1).then(1).otherwise(pl.col("died")).alias("died"),
    )


def half_way(cut: pl.DataFrame) -> pl.DataFrame:
    """An earlier cut consistent with the shipped one: everyone still event-free at half their times."""
    return cut.with_columns((pl.col("pfs_months") / 2).round(1), (pl.col("os_months") / 2).round(1), progressed=pl.lit(0), died=pl.lit(0))


def garbage_patients(study: Path) -> None:
    header = (study / "patients.csv").read_text().splitlines()[0]
    (study / "patients.csv").write_text(header + "\n" + "".join(f"row {i},?,?,?,?,?,?,?\n" for i in range(5)))


def quoted_lines(length: int, every: int) -> str:
    """A quoted value of about ``length`` characters broken into lines of ``every``: each line short, the value not."""
    return '"' + "\n".join(["A" * every] * (length // every)) + '"'


def subject(*ids: int) -> pl.Expr:
    return pl.col("SUBJID").is_in(list(ids))


def patient_term(patient: int, term: str) -> pl.Expr:
    return (pl.col("SUBJID") == patient) & (pl.col("AEDECOD") == term)


NOT_A_CATEGORY_SEX = "not one of Female, Male"
NOT_AN_AE_TERM = "not one of " + ", ".join(load_study(SHIPPED_DATA).values("adverse_events", "term"))
DEATH_NOT_PROGRESSION = "died = 1 but progressed = 0: a death is a PFS event (progressed: 1 = progression or death)"
NOT_A_RESPONSE = "not one of CR, PR, SD, PD, NE"
NOT_A_COMBINATION = "not one of None, Immunotherapy, Chemotherapy, Radiotherapy, Immunotherapy+Chemotherapy"

VARIANTS: dict[str, Variant] = {
    # ----- the file cannot be used: refused with its name and the problem -----
    "missing-file": Variant("patients.csv", remove("patients.csv"), Refused("patients.csv: file is missing")),
    "empty-file": Variant("response.csv", add_file("response.csv", b""), Refused("response.csv: file is empty")),
    "blank-lines-only": Variant("adverse_events.csv", add_file("adverse_events.csv", b"\n  \n\r\n"), Refused("adverse_events.csv: file is empty")),
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
        Refused("response.csv: the header is one column 'patient_id\\tbest_pct_change\\tbest_response'; the file must be comma-separated"),
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
    "folder-instead-of-file": Variant("patients.csv", make_folder_instead("patients.csv"), Refused("patients.csv: is a folder, not a CSV file")),
    "cut-name-not-a-date": Variant(
        "followup", copy_to(CUT, "followup/latest.csv"), Refused("latest.csv: follow-up files must be named by their ISO cut date")
    ),
    "cut-name-impossible-date": Variant("followup", copy_to(CUT, "followup/2021-02-30.csv"), Refused("'2021-02-30' is not a valid calendar date")),
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
        Quarantined(rows=((CUT, 4, "progressed", "0", DEATH_NOT_PROGRESSION),), dropped={"adtte": subject(3)}),
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
        Quarantined(rows=(("patients.csv", 8, "combination_therapy", "Immunotherapy, Chemotherapy", NOT_A_COMBINATION),), invalid_patients=(7,)),
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
        Quarantined(rows=(("response.csv", 12, "best_response", "SD'); DROP TABLE adsl; --", NOT_A_RESPONSE),), dropped={"adrs": subject(11)}),
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
    "windows-line-endings": Variant("adverse_events.csv", recode("adverse_events.csv", lambda data: data.replace(b"\n", b"\r\n")), Harmless()),
    "old-mac-line-endings": Variant("response.csv", recode("response.csv", lambda data: data.replace(b"\n", b"\r")), Harmless()),
    "every-field-quoted": Variant("patient_allocations.csv", quote_every_field("patient_allocations.csv"), Harmless()),
    "spaces-around-values": Variant("response.csv", each_line("response.csv", lambda line: line.replace(",", " , ")), Harmless()),
    "trailing-blank-lines": Variant("patients.csv", recode("patients.csv", lambda data: data + b"\n \n,,,,,,,\n"), Harmless()),
    "no-final-newline": Variant("adverse_events.csv", recode("adverse_events.csv", lambda data: data.rstrip(b"\n")), Harmless()),
    "hidden-file-in-followup": Variant("followup", add_file("followup/.DS_Store", b"\x00\x05\x16\x07\xff\xfe"), Harmless()),
}


NOT_YES_NO = "not one of Yes, No"
NOT_CHEMOTHERAPY = "not one of No, 1 line, 2 line, 3 line and more"
MODIFIED_2022 = dt.datetime(2022, 1, 1, 12, tzinfo=dt.UTC)
CUT_NOON = dt.datetime(2021, 3, 31, 12, tzinfo=dt.UTC)


def _chain(*changes: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def change(cut: pl.DataFrame) -> pl.DataFrame:
        for one in changes:
            cut = one(cut)
        return cut

    return change


def _without_patient(patient: int) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda cut: cut.filter(pl.col("patient_id") != patient)


def _folder(file: str) -> Callable[[Path], None]:
    return lambda study: (study / file).mkdir()


def _reordered_columns(file: str, order: list[str]) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        pl.read_csv(study / file, infer_schema=False).select(order).write_csv(study / file)

    return damage


VARIANTS.update(
    {
        # ----- values out of their declared domain: quarantined -----
        "age-above-maximum": Variant(
            "patients.csv",
            replace("patients.csv", "\n9,69,Male", "\n9,101,Male"),
            Quarantined(rows=(("patients.csv", 10, "age", "101", "above the maximum 100"),), invalid_patients=(9,)),
        ),
        "ecog-5": Variant(
            "patients.csv",
            replace("patients.csv", "\n13,41,Male,2,", "\n13,41,Male,5,"),
            Quarantined(rows=(("patients.csv", 14, "ecog", "5", "above the maximum 4"),), invalid_patients=(13,)),
        ),
        "ecog-negative": Variant(
            "patients.csv",
            replace("patients.csv", "\n16,52,Male,0,", "\n16,52,Male,-1,"),
            Quarantined(rows=(("patients.csv", 17, "ecog", "-1", "below the minimum 0"),), invalid_patients=(16,)),
        ),
        "age-with-decimals": Variant(
            "patients.csv",
            replace("patients.csv", "\n3,44,", "\n3,44.5,"),
            Quarantined(rows=(("patients.csv", 4, "age", "44.5", "not a whole number"),), invalid_patients=(3,)),
        ),
        "sex-in-lower-case": Variant(
            "patients.csv",
            replace("patients.csv", "\n6,72,Female", "\n6,72,female"),
            Quarantined(rows=(("patients.csv", 7, "sex", "female", NOT_A_CATEGORY_SEX),), invalid_patients=(6,)),
        ),
        "yes-no-in-lower-case": Variant(
            "patients.csv",
            replace("patients.csv", "\n8,52,Female,2,No,", "\n8,52,Female,2,no,"),
            Quarantined(rows=(("patients.csv", 9, "surgery_history", "no", NOT_YES_NO),), invalid_patients=(8,)),
        ),
        "chemotherapy-lines-reworded": Variant(
            "patients.csv",
            replace("patients.csv", "\n19,50,Female,2,Yes,Yes,3 line and more", "\n19,50,Female,2,Yes,Yes,3 lines and more"),
            Quarantined(rows=(("patients.csv", 20, "chemotherapy_history", "3 lines and more", NOT_CHEMOTHERAPY),), invalid_patients=(19,)),
        ),
        "patient-number-zero": Variant(
            "patients.csv",
            replace("patients.csv", "\n1,38,Female", "\n0,38,Female"),
            Quarantined(rows=(("patients.csv", 2, "patient_id", "0", "below the minimum 1"),), invalid_patients=(1,)),
        ),
        "line-break-inside-a-quoted-category": Variant(
            "patients.csv",
            replace("patients.csv", "\n11,53,Male,", '\n11,53,"Ma\nle",'),
            Quarantined(rows=(("patients.csv", 12, "sex", "Ma\nle", NOT_A_CATEGORY_SEX),), invalid_patients=(11,)),
        ),
        "nul-byte-in-a-number": Variant(
            "patients.csv",
            replace("patients.csv", "\n15,65,Female", "\n15,6\x005,Female"),
            Quarantined(rows=(("patients.csv", 16, "age", "6\x005", "not a whole number"),), invalid_patients=(15,)),
        ),
        "percent-sign-in-a-number": Variant(
            "response.csv",
            replace("response.csv", "\n2,-72.6,PR\n", "\n2,-72.6%,PR\n"),
            Quarantined(rows=(("response.csv", 3, "best_pct_change", "-72.6%", "not a number"),), dropped={"adrs": subject(2)}),
        ),
        "shrinkage-below-minus-100": Variant(
            "response.csv",
            replace("response.csv", "\n1,-76.2,PR", "\n1,-176.2,PR"),
            Quarantined(rows=(("response.csv", 2, "best_pct_change", "-176.2", "below the minimum -100"),), dropped={"adrs": subject(1)}),
        ),
        "response-in-lower-case": Variant(
            "response.csv",
            replace("response.csv", "\n17,47.5,PD", "\n17,47.5,pd"),
            Quarantined(rows=(("response.csv", 18, "best_response", "pd", NOT_A_RESPONSE),), dropped={"adrs": subject(17)}),
        ),
        "terminal-escape-in-a-value": Variant(
            "response.csv",
            replace("response.csv", "\n13,17.7,SD", "\n13,17.7,\x1b[31mSD"),
            Quarantined(rows=(("response.csv", 14, "best_response", "\x1b[31mSD", NOT_A_RESPONSE),), dropped={"adrs": subject(13)}),
        ),
        "patient-number-with-decimals": Variant(
            "response.csv",
            replace("response.csv", "\n14,19.7,SD", "\n14.5,19.7,SD"),
            Quarantined(rows=(("response.csv", 15, "patient_id", "14.5", "not a whole number"),), dropped={"adrs": subject(14)}),
        ),
        "duplicated-response-line": Variant(
            "response.csv",
            append("response.csv", "3,-36.6,PR"),
            Quarantined(
                rows=(
                    ("response.csv", 4, "patient_id", "3", "duplicate patient_id (rows 4, 21)"),
                    ("response.csv", 21, "patient_id", "3", "duplicate patient_id (rows 4, 21)"),
                ),
                dropped={"adrs": subject(3)},
            ),
        ),
        "allocation-for-unknown-patient": Variant(
            "patient_allocations.csv",
            append("patient_allocations.csv", "25,Lung,12,No,No"),
            Quarantined(rows=(("patient_allocations.csv", 21, "patient_id", "25", UNKNOWN_PATIENT),)),
        ),
        "pfs-written-NA": Variant(
            CUT,
            replace(CUT, "\n5,3.5,1,18.2,0", "\n5,NA,1,18.2,0"),
            Quarantined(rows=((CUT, 6, "pfs_months", "NA", "not a number"),), dropped={"adtte": subject(5)}),
        ),
        "os-written-NA-as-table-3-prints-it": Variant(
            CUT,
            replace(CUT, "\n8,6.5,1,20.9,0", "\n8,6.5,1,NA,0"),
            Quarantined(rows=((CUT, 9, "os_months", "NA", "not a number"),), dropped={"adtte": subject(8)}),
        ),
        "event-flag-as-a-word": Variant(
            CUT,
            replace(CUT, "\n9,14.1,1,23.5,1", "\n9,14.1,yes,23.5,1"),
            Quarantined(rows=((CUT, 10, "progressed", "yes", "not a whole number"),), dropped={"adtte": subject(9)}),
        ),
        "os-above-maximum": Variant(
            CUT,
            replace(CUT, "\n10,1.5,1,3.9,0", "\n10,1.5,1,639,0"),
            Quarantined(rows=((CUT, 11, "os_months", "639", "above the maximum 600"),), dropped={"adtte": subject(10)}),
        ),
        "a-date-for-a-time": Variant(
            CUT,
            replace(CUT, "\n11,3.3,1,6.0,1", "\n11,2021-03-31,1,6.0,1"),
            Quarantined(rows=((CUT, 12, "pfs_months", "2021-03-31", "not a number"),), dropped={"adtte": subject(11)}),
        ),
        "negative-os-shorter-than-pfs": Variant(
            CUT,
            replace(CUT, "\n12,0.7,1,9.2,1", "\n12,0.7,1,-9.2,1"),
            Quarantined(
                rows=(
                    (CUT, 13, "os_months", "-9.2", "below the minimum 0"),
                    (CUT, 13, "os_months", "-9.2", "OS is shorter than PFS"),
                ),
                dropped={"adtte": subject(12)},
            ),
        ),
        "followup-for-unknown-patient": Variant(
            CUT, append(CUT, "25,1.0,1,2.0,1"), Quarantined(rows=((CUT, 21, "patient_id", "25", UNKNOWN_PATIENT),))
        ),
        "patient-number-as-text": Variant(
            "adverse_events.csv",
            replace("adverse_events.csv", "\n14,Fatigue,1,1\n", "\nP14,Fatigue,1,1\n"),
            Quarantined(rows=(("adverse_events.csv", 35, "patient_id", "P14", "not a whole number"),), dropped={"adae": patient_term(14, "Fatigue")}),
        ),
        "grade-zero": Variant(
            "adverse_events.csv",
            replace("adverse_events.csv", "\n16,Diarrhea,1,1", "\n16,Diarrhea,1,0"),
            Quarantined(
                rows=(("adverse_events.csv", 39, "ctcae_grade", "0", "below the minimum 1"),), dropped={"adae": patient_term(16, "Diarrhea")}
            ),
        ),
        "episode-zero": Variant(
            "adverse_events.csv",
            replace("adverse_events.csv", "\n18,Constipation,1,1", "\n18,Constipation,0,1"),
            Quarantined(
                rows=(("adverse_events.csv", 43, "episode", "0", "below the minimum 1"),), dropped={"adae": patient_term(18, "Constipation")}
            ),
        ),
        "empty-term": Variant(
            "adverse_events.csv",
            replace("adverse_events.csv", "\n4,Fatigue,1,1", "\n4,,1,1"),
            Quarantined(rows=(("adverse_events.csv", 10, "term", None, "missing value"),), dropped={"adae": patient_term(4, "Fatigue")}),
        ),
        "adverse-event-without-patient": Variant(
            "adverse_events.csv",
            append("adverse_events.csv", ",Fatigue,1,2"),
            Quarantined(rows=(("adverse_events.csv", 48, "patient_id", None, "missing value"),)),
        ),
        # ----- files that cannot be used, or only by echoing too much: refused, naming file (and line) -----
        "line-of-fifty-megabytes": Variant(
            "patients.csv",
            replace("patients.csv", "\n4,45,Female", "\n4,45," + "F" * 50_000_000),
            Refused("patients.csv: line 5 is longer than 10,000 characters (it starts '4,45,FFFFFFFF"),
        ),
        "line-over-the-limit": Variant(
            "patients.csv",
            replace("patients.csv", "\n4,45,Female", "\n4,45," + "F" * 20_000),
            Refused("patients.csv: line 5 is longer than 10,000 characters"),
        ),
        "value-over-the-field-limit": Variant(
            "response.csv",
            replace("response.csv", "\n6,-14.0,SD\n", "\n6,-14.0," + "S" * 9_000 + "\n"),
            Refused("response.csv: line 7, column best_response: a value of 9,000 characters, over the limit of 2,000"),
        ),
        "quoted-value-over-many-lines": Variant(
            "response.csv",
            replace("response.csv", "\n6,-14.0,SD\n", "\n6,-14.0," + quoted_lines(5_000, every=100) + "\n"),
            Refused("response.csv: line 7, column best_response: a value of 5,049 characters, over the limit of 2,000"),
        ),
        "quoted-value-over-the-csv-field-limit": Variant(
            "response.csv",
            replace("response.csv", "\n6,-14.0,SD\n", "\n6,-14.0," + quoted_lines(200_000, every=1_000) + "\n"),
            Refused("response.csv: line 7 starts a value longer than 131,072 characters, over the limit of 2,000"),
        ),
        "long-column-name": Variant(
            "response.csv",
            replace("response.csv", "best_response\n", "best_response," + "x" * 5_000 + "\n"),
            Refused("response.csv: unexpected column(s) xxxxxxxxxx"),
        ),
        "terminal-escape-in-header": Variant(
            "response.csv",
            replace("response.csv", "best_response\n", "best_response,\x1b]0;owned\x07\n"),
            Refused("response.csv: unexpected column(s) \\x1b]0;owned\\x07"),
        ),
        "header-only-patients": Variant(
            "patients.csv", header_only("patients.csv"), Refused("patients.csv: has a header but no records; expected one row per patient")
        ),
        "empty-patients": Variant("patients.csv", add_file("patients.csv", b""), Refused("patients.csv: file is empty")),
        "provenance-missing": Variant("provenance.csv", remove("provenance.csv"), Refused("provenance.csv: file is missing")),
        "allocation-column-missing": Variant(
            "patient_allocations.csv",
            drop_column("patient_allocations.csv", "primary_site"),
            Refused("patient_allocations.csv: missing column(s) primary_site"),
        ),
        "grade-column-renamed": Variant(
            "adverse_events.csv",
            replace("adverse_events.csv", "ctcae_grade", "grade"),
            Refused("adverse_events.csv: missing column(s) ctcae_grade"),
        ),
        "link-to-the-process-environment": Variant(
            "patients.csv",
            link_to("patients.csv", "/proc/self/environ"),
            Refused("patients.csv: resolves to /proc/", never_echoed=("PATH=", "HOME=")),
        ),
        "link-that-points-to-itself": Variant("response.csv", link_loop("response.csv"), Refused("response.csv: cannot be followed to a file")),
        "dangling-link": Variant("response.csv", link_to("response.csv", "gone.csv"), Refused("response.csv: file is missing")),
        "too-many-fields": Variant(
            "patients.csv",
            append("patients.csv", "20,50,Female,2,Yes,Yes,No,None,extra"),
            Refused("patients.csv: line 21 has 9 fields but the header has 8"),
        ),
        "spreadsheet-saved-as-patients": Variant(
            "patients.csv",
            add_file("patients.csv", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb5U0#"),
            Refused("patients.csv: line 1 is not UTF-8 text"),
        ),
        # ----- follow-up cuts: the name, the date and the content against the other cuts -----
        "cut-dated-2099": Variant(
            "followup", copy_to(CUT, "followup/2099-01-01.csv"), Refused("followup/2099-01-01.csv: data cut 2099-01-01 is in the future (today is ")
        ),
        "cut-dated-9999-12-31": Variant(
            "followup", copy_to(CUT, "followup/9999-12-31.csv"), Refused("followup/9999-12-31.csv: data cut 9999-12-31 is in the future")
        ),
        "cut-dated-after-its-file-was-written": Variant(
            "followup",
            both(copy_to(CUT, "followup/2023-06-30.csv"), touched_at("followup/2023-06-30.csv", MODIFIED_2022)),
            Refused("followup/2023-06-30.csv: data cut 2023-06-30 is after the file was last modified (2022-01-01)"),
        ),
        "cut-written-on-its-cut-day": Variant(CUT, touched_at(CUT, CUT_NOON), Harmless()),
        "cut-with-upper-case-extension": Variant("followup", rename(CUT, "followup/2021-03-31.CSV"), Accepted()),
        "cut-copied-under-a-new-date": Variant(
            "followup",
            copy_to(CUT, "followup/2021-06-30.csv"),
            Accepted(identical=("followup/2021-03-31.csv", "followup/2021-06-30.csv")),
        ),
        "later-consistent-cut": Variant("followup", new_cut("2022-03-31.csv", followed_longer), Accepted()),
        "earlier-consistent-cut-added-later": Variant("followup", new_cut("2020-12-31.csv", half_way), Accepted()),
        "earlier-cut-contradicting-a-loaded-one": Variant(
            "followup",
            new_cut("2020-12-31.csv", _chain(half_way, when_patient(1, "died", 1), when_patient(1, "progressed", 1))),
            Blocked(
                ("adtte",),
                "followup_cuts_consistent",
                "patient 1 OS: an event in the earlier cut is censored in the later cut (2020-12-31: 12.9 months, event; 2021-03-31: 25.8 months, censored)",
            ),
        ),
        "later-cut-undoes-a-death": Variant(
            "followup",
            new_cut("2022-03-31.csv", when_patient(3, "died", 0)),
            Blocked(
                ("adtte",),
                "followup_cuts_consistent",
                "patient 3 OS: an event in the earlier cut is censored in the later cut (2021-03-31: 28.0 months, event; 2022-03-31: 28.0 months, censored)",
            ),
        ),
        "later-cut-shortens-follow-up": Variant(
            "followup",
            new_cut("2022-03-31.csv", when_patient(1, "os_months", 20.0)),
            Blocked(
                ("adtte",),
                "followup_cuts_consistent",
                "patient 1 OS: follow-up time shrank between cuts (2021-03-31: 25.8 months, censored; 2022-03-31: 20.0 months, censored)",
            ),
        ),
        "later-cut-moves-a-death": Variant(
            "followup",
            new_cut("2022-03-31.csv", when_patient(4, "os_months", 11.7)),
            Blocked(
                ("adtte",),
                "followup_cuts_consistent",
                "patient 4 OS: an event's time changed between cuts (2021-03-31: 10.7 months, event; 2022-03-31: 11.7 months, event)",
            ),
        ),
        "later-cut-loses-a-patient": Variant(
            "followup",
            new_cut("2022-03-31.csv", _without_patient(19)),
            Blocked(
                ("adtte",),
                "followup_cuts_consistent",
                "patient 19 OS: patient missing from the later cut (2021-03-31: 25.7 months, event; 2022-03-31: no row)",
            ),
        ),
        "published-cut-renamed-to-an-earlier-date": Variant(
            "followup",
            rename(CUT, "followup/2021-02-28.csv"),
            Blocked(("adtte",), "followup_cuts_consistent", "data cut 2021-03-31 is published but no file in followup/ gives it any more"),
        ),
        "cut-named-with-a-time": Variant(
            "followup",
            copy_to(CUT, "followup/2021-03-31T12.csv"),
            Refused("followup/2021-03-31T12.csv: follow-up files must be named by their ISO cut date"),
        ),
        "cut-named-without-dashes": Variant(
            "followup", copy_to(CUT, "followup/20210331.csv"), Refused("followup/20210331.csv: follow-up files must be named by their ISO cut date")
        ),
        "cut-named-day-first": Variant(
            "followup",
            copy_to(CUT, "followup/31-03-2021.csv"),
            Refused("followup/31-03-2021.csv: follow-up files must be named by their ISO cut date"),
        ),
        "folder-named-as-a-cut": Variant(
            "followup", _folder("followup/2022-03-31.csv"), Refused("followup/2022-03-31.csv: is a folder, not a CSV file")
        ),
        "cut-name-with-terminal-escape": Variant(
            "followup", copy_to(CUT, "followup/2021\x1b[2J.csv"), Refused("followup/2021\\x1b[2J.csv: follow-up files must be named")
        ),
        "cut-name-of-200-digits": Variant(
            "followup", copy_to(CUT, "followup/" + "9" * 200 + ".csv"), Refused("… (204 characters): follow-up files must be named")
        ),
        "cut-linked-outside": Variant(CUT, link_outside(CUT), Refused("followup/2021-03-31.csv: resolves to")),
        "cut-line-over-the-limit": Variant(
            CUT,
            replace(CUT, "\n7,2.1,1,5.2,1\n", "\n7,2.1,1,5.2,1" + "0" * 20_000 + "\n"),
            Refused(f"{CUT}: line 8 is longer than 10,000 characters"),
        ),
        "cut-empty": Variant(CUT, add_file(CUT, b""), Refused(f"{CUT}: file is empty")),
        "cut-utf-16": Variant(CUT, recode(CUT, lambda data: data.decode().encode("utf-16")), Refused(f"{CUT}: line 1 is not UTF-8 text")),
        "cut-semicolons": Variant(CUT, each_line(CUT, lambda line: line.replace(",", ";")), Refused(f"{CUT}: the header is one column")),
        "cut-missing-died": Variant(CUT, drop_column(CUT, "died"), Refused(f"{CUT}: missing column(s) died")),
        "cut-unclosed-quote": Variant(CUT, replace(CUT, "\n2,5.3,1,26.0,0\n", '\n2,"5.3,1,26.0,0\n'), Refused(f"{CUT}: line 3 is not valid CSV")),
        # ----- the study's settings -----
        "settings-not-toml": Variant("study.toml", settings("exclude_quarantined_rows = yes\n"), Refused("study.toml: is not valid TOML")),
        "settings-unknown-key": Variant(
            "study.toml",
            settings("exclude_rows = true\n"),
            Refused(
                "study.toml: unknown setting(s) exclude_rows; known: studyid, title, enrolment_start, enrolment_end, exclude_quarantined_rows, max_excluded_share, report_tables, survival_rows"
            ),
        ),
        "settings-quoted-boolean": Variant(
            "study.toml",
            replace("study.toml", "exclude_quarantined_rows = false", 'exclude_quarantined_rows = "true"'),
            Refused("study.toml: exclude_quarantined_rows must be true or false, not 'true'"),
        ),
        "settings-latin-1": Variant(
            "study.toml", settings(b"# r\xe9glages\nexclude_quarantined_rows = false\n"), Refused("study.toml: is not UTF-8 text")
        ),
        "settings-huge": Variant(
            "study.toml", settings("#" + "x" * 20_000 + "\n"), Refused("study.toml: 20,002 bytes; a settings file is a few lines")
        ),
        "settings-a-folder": Variant(
            "study.toml", both(remove("study.toml"), _folder("study.toml")), Refused("study.toml: is a folder, not a settings file")
        ),
        "settings-linked-outside": Variant("study.toml", link_outside("study.toml"), Refused("study.toml: resolves to")),
        # The study's identity and enrolment window are required: a folder that does not say which study it is is refused.
        "settings-absent": Variant("study.toml", remove("study.toml"), Refused("study.toml: missing from the study folder")),
        "settings-comments-only": Variant(
            "study.toml", settings("# nothing decided here\n"), Refused("study.toml: missing studyid, title, enrolment_start, enrolment_end")
        ),
        "study-id-with-spaces": Variant(
            "study.toml",
            replace("study.toml", 'studyid = "ZOU-LMS-ANLOTINIB"', 'studyid = "ZOU LMS"'),
            Refused("study.toml: studyid = 'ZOU LMS' must be 1-40 letters, digits, '-' or '_'"),
        ),
        "study-enrolment-quoted-date": Variant(
            "study.toml",
            replace("study.toml", "enrolment_start = 2018-01-01", 'enrolment_start = "2018-01-01"'),
            Refused("study.toml: enrolment_start = '2018-01-01' must be a TOML date, written unquoted as YYYY-MM-DD"),
        ),
        "study-enrolment-reversed": Variant(
            "study.toml",
            replace("study.toml", "enrolment_end = 2020-12-31", "enrolment_end = 2017-12-31"),
            Refused("study.toml: enrolment_end = 2017-12-31 is before enrolment_start = 2018-01-01"),
        ),
        # ----- an empty cohort fails a check, nothing crashes -----
        "all-garbage-patients": Variant(
            "patients.csv", garbage_patients, Blocked(COHORT, "no_quarantined_rows", "patients.csv line 2, column age, value '?': not a whole number")
        ),
        "all-garbage-patients-excluded": Variant(
            "patients.csv",
            both(garbage_patients, allow_exclusion),
            Blocked(COHORT, "has_patients", "no valid patient"),
        ),
        "no-adverse-events-at-all": Variant("adverse_events.csv", header_only("adverse_events.csv"), Accepted()),
        # ----- harmless: the same records in another dress -----
        "whole-number-written-with-decimals": Variant("patients.csv", replace("patients.csv", "\n2,43,Female", "\n2,43.0,Female"), Harmless()),
        "episode-written-with-decimals": Variant(
            "adverse_events.csv", replace("adverse_events.csv", "\n9,Hypoproteinemia,1,2", "\n9,Hypoproteinemia,1.0,2"), Harmless()
        ),
        "trailing-spaces-in-a-category": Variant(
            "patients.csv", replace("patients.csv", "\n18,60,Female,0,Yes,No,No,None\n", "\n18,60,Female,0,Yes,No,No,None   \n"), Harmless()
        ),
        "blank-line-in-the-middle": Variant("patients.csv", replace("patients.csv", "\n10,30,", "\n,,,,,,,\n10,30,"), Harmless()),
        "columns-in-another-order": Variant(
            "response.csv", _reordered_columns("response.csv", ["best_response", "patient_id", "best_pct_change"]), Harmless()
        ),
        "cut-byte-order-mark": Variant(CUT, recode(CUT, lambda data: b"\xef\xbb\xbf" + data), Harmless()),
        "cut-windows-line-endings": Variant(CUT, recode(CUT, lambda data: data.replace(b"\n", b"\r\n")), Harmless()),
        "cut-every-field-quoted": Variant(CUT, quote_every_field(CUT), Harmless()),
        "resource-fork-in-followup": Variant("followup", add_file("followup/._2021-03-31.csv", b"\x00\x05\x16\x07\x00\x02"), Harmless()),
    }
)

# The faults of issue "damaged inputs and faults": non-regular files, contradictory rows, non-finite numbers,
# disguised text, markup in a value, nested settings and a cohort excluded down to one patient.
MARKDOWN_IMAGE = "![i](http://127.0.0.1:9/x.png)"
VARIANTS.update(
    {
        "cut-a-named-pipe": Variant(
            "followup", fifo_instead("followup/2022-03-31.csv"), Refused("followup/2022-03-31.csv: is a named pipe (FIFO), not a CSV file")
        ),
        "record-file-a-named-pipe": Variant(
            "patients.csv", fifo_instead("patients.csv"), Refused("patients.csv: is a named pipe (FIFO), not a CSV file")
        ),
        "followup-folder-linked-outside": Variant("followup", link_folder_outside("followup"), Refused("followup: resolves to")),
        "followup-folder-a-link-loop": Variant("followup", link_loop("followup"), Refused("followup: cannot be followed to a file")),
        "death-not-progressed-before-os": Variant(
            CUT,
            replace(CUT, "\n3,12.4,1,28.0,1\n", "\n3,12.4,0,28.0,1\n"),
            Quarantined(rows=((CUT, 4, "progressed", "0", DEATH_NOT_PROGRESSION),), dropped={"adtte": subject(3)}),
        ),
        "time-written-nan": Variant(
            CUT,
            replace(CUT, "\n4,5.8,", "\n4,nan,"),
            Quarantined(rows=((CUT, 5, "pfs_months", "nan", "NaN is not a number"),), dropped={"adtte": subject(4)}),
        ),
        "time-written-infinity": Variant(
            CUT,
            replace(CUT, "\n3,12.4,1,28.0,1\n", "\n3,12.4,1,inf,1\n"),
            Quarantined(rows=((CUT, 4, "os_months", "inf", "infinity is not a finite number"),), dropped={"adtte": subject(3)}),
        ),
        "cyrillic-letter-in-a-category": Variant(
            "patients.csv",
            replace("patients.csv", "\n2,43,Female", "\n2,43,F\u0435male"),
            Quarantined(rows=(("patients.csv", 3, "sex", "F\u0435male", NOT_A_CATEGORY_SEX),), invalid_patients=(2,)),
        ),
        "right-to-left-override-in-a-term": Variant(
            "adverse_events.csv",
            replace("adverse_events.csv", "\n1,Hypertension,1,2\n", "\n1,\u202eHypertension,1,2\n"),
            Quarantined(
                rows=(("adverse_events.csv", 3, "term", "\u202eHypertension", NOT_AN_AE_TERM),), dropped={"adae": patient_term(1, "Hypertension")}
            ),
        ),
        "markdown-image-as-a-term": Variant(
            "adverse_events.csv",
            replace("adverse_events.csv", "\n1,Hypertension,1,2\n", f"\n1,{MARKDOWN_IMAGE},1,2\n"),
            Quarantined(rows=(("adverse_events.csv", 3, "term", MARKDOWN_IMAGE, NOT_AN_AE_TERM),), dropped={"adae": patient_term(1, "Hypertension")}),
        ),
        "markdown-image-as-a-column-name": Variant(
            "response.csv",
            replace("response.csv", "best_response\n", f"best_response,{MARKDOWN_IMAGE}\n"),
            Refused(f"response.csv: unexpected column(s) {MARKDOWN_IMAGE}; expected exactly patient_id, best_pct_change, best_response"),
        ),
        "death-at-time-0": Variant(
            CUT,
            replace(CUT, "\n7,2.1,1,5.2,1\n", "\n7,0,1,0,1\n"),
            Accepted(flagged=((CUT, 8, "os_months", "0"), (CUT, 8, "pfs_months", "0"))),
        ),
        "settings-nested-too-deep": Variant(
            "study.toml",
            settings("depth = " + "[" * 3000 + "]" * 3000 + "\n"),
            Refused("study.toml: a value is nested (arrays or tables inside each other) deeper"),
        ),
        "settings-label-nested-deep": Variant(
            "study.toml",
            replace("study.toml", 'pfs = "Median PFS, months (95% CI, SPSS method)"', "pfs = " + "{a = " * 300 + "1" + "}" * 300),
            Refused("study.toml: survival_rows.pfs = {'a': {'a': {'a': {...}}}} must be a non-empty quoted string"),
        ),
        "settings-excluded-share-nan": Variant(
            "study.toml",
            replace("study.toml", "max_excluded_share = 0\n", "max_excluded_share = nan\n"),
            Refused("study.toml: max_excluded_share = nan must be a number from 0 to 1"),
        ),
        "eighteen-of-nineteen-patients-excluded": Variant(
            "patients.csv",
            both(patients_but_one_garbled, allow_exclusion),
            Blocked(COHORT, "no_quarantined_rows", "more than max_excluded_share = 0.25"),
        ),
    }
)

# A sample of every outcome also runs through Dagster, to show the pure judgement is what the platform does.
THROUGH_DAGSTER = (
    "missing-file",
    "link-outside-study",
    "link-to-the-process-environment",
    "line-over-the-limit",
    "quoted-value-over-the-csv-field-limit",
    "text-for-a-number",
    "duplicate-patient-id",
    "unknown-grade",
    "negative-os-shorter-than-pfs",
    "cut-dated-2099",
    "cut-dated-after-its-file-was-written",
    "cut-copied-under-a-new-date",
    "cut-with-upper-case-extension",
    "later-cut-undoes-a-death",
    "earlier-cut-contradicting-a-loaded-one",
    "published-cut-renamed-to-an-earlier-date",
    "settings-not-toml",
    "all-garbage-patients",
    "all-garbage-patients-excluded",
    "byte-order-mark",
    "cut-a-named-pipe",
    "record-file-a-named-pipe",
    "followup-folder-linked-outside",
    "death-not-progressed-before-os",
    "time-written-nan",
    "cyrillic-letter-in-a-category",
    "markdown-image-as-a-term",
    "markdown-image-as-a-column-name",
    "settings-nested-too-deep",
    "eighteen-of-nineteen-patients-excluded",
)


# --- the pure judgement: the same reads, quarantine, derivations and gate rules as the assets ---------


@dataclass(frozen=True)
class Judgement:
    quarantine: pl.DataFrame
    candidates: dict[str, pl.DataFrame]
    # table -> {blocking check that fails at ERROR: its description}
    failures: dict[str, dict[str, str]]
    identical: list[tuple[str, str]]
    flagged: set[tuple]


RECORD_SCHEMAS = (schemas.PATIENTS, schemas.PATIENT_ALLOCATIONS, schemas.RESPONSE, schemas.ADVERSE_EVENTS, schemas.PROVENANCE)


# The cuts the warehouse each Dagster variant starts from has published.
PUBLISHED_CUTS = [dt.date(2021, 3, 31)]


def judge(study: Path, exclude: bool | None = None, max_share: float | None = None) -> Judgement:
    """What the ingest and cohort steps decide for ``study`` (``exclude`` and ``max_share`` override its study.toml's
    exclude_quarantined_rows and max_excluded_share), on a warehouse that has published ``PUBLISHED_CUTS``."""
    raw = {s.name: validation.read_raw(boundary.resolve_inside(study, s.location), s, label=s.location) for s in RECORD_SCHEMAS}
    raw["printed_values"] = validation.read_raw(
        boundary.resolve_inside(study, schemas.REGISTRY.location), schemas.REGISTRY, label=schemas.REGISTRY.location
    )
    cut_files = boundary.followup_files(study)
    cut_frames = [validation.read_raw(p, schemas.FOLLOWUP, label=f"followup/{p.name}") for p in cut_files]
    digests = {f"followup/{p.name}": boundary.content_hash(p) for p in cut_files}
    cuts = pl.concat(
        frame.with_columns(pl.lit(p.stem).alias("data_cut"), pl.lit(digests[f"followup/{p.name}"]).alias("content_hash"))
        for p, frame in zip(cut_files, cut_frames)
    )
    settings = load_study(study)
    judged_settings = dataclasses.replace(
        settings,
        exclude_quarantined_rows=settings.exclude_quarantined_rows if exclude is None else exclude,
        max_excluded_share=settings.max_excluded_share if max_share is None else max_share,
    )
    studyid = settings.studyid
    quarantine = validation.quarantine_rows(
        raw["patients"],
        raw["allocations"],
        raw["response"],
        cuts,
        raw["adverse_events"],
        raw["printed_values"],
        raw["provenance"],
        vocabulary=settings.vocabulary,
    )
    clean_cuts = validation.clean(cuts, schemas.FOLLOWUP, quarantine, keep=("data_cut", "content_hash"))
    provenance = validation.clean(raw["provenance"], schemas.PROVENANCE, quarantine)
    candidates = {
        "adsl": adam.adsl.derive_adsl(
            validation.clean(raw["patients"], schemas.PATIENTS, quarantine),
            validation.clean(raw["allocations"], schemas.PATIENT_ALLOCATIONS, quarantine),
            studyid=studyid,
            provenance=provenance,
        ),
        "adrs": adam.adrs.derive_adrs(validation.clean(raw["response"], schemas.RESPONSE, quarantine), studyid=studyid),
        "adtte": adam.adtte.derive_adtte(clean_cuts.with_columns(pl.col("data_cut").str.to_date("%Y-%m-%d")), studyid=studyid, provenance=provenance),
        "adae": adam.adae.derive_adae(validation.clean(raw["adverse_events"], schemas.ADVERSE_EVENTS, quarantine), studyid=studyid),
    }
    sources = {"adsl": raw["patients"], "adrs": raw["response"], "adtte": cuts, "adae": raw["adverse_events"]}
    # The rows each table may lose a share of: its record files' rows as read.
    source_rows = {**sources, "adsl": pl.concat([raw[f].select(validation.FILE, validation.ROW) for f in ("patients", "allocations")])}
    failures: dict[str, dict[str, str]] = {}
    for table in COHORT:
        blocking = validation.blocking_rows(quarantine, adam.common.SOURCES[table])
        if blocking.height:
            blocks, description, _ = quarantine_verdict(judged_settings, blocking, source_rows[table])
            if blocks:
                failures.setdefault(table, {})["no_quarantined_rows"] = description
        if candidates[table].is_empty() and not sources[table].is_empty():
            failures.setdefault(table, {})["has_patients"] = "no valid patient"
    regressions = adam.cuts.cut_regressions(candidates["adtte"])
    withdrawn = adam.cuts.withdrawn_cuts(candidates["adtte"], PUBLISHED_CUTS)
    if regressions.height or withdrawn:
        failures.setdefault("adtte", {})["followup_cuts_consistent"] = "; ".join(
            [*map(adam.cuts.describe_withdrawn, withdrawn), *map(adam.cuts.describe_regression, regressions.iter_rows(named=True))]
        )
    flagged = set(validation.flagged(cuts, schemas.FOLLOWUP).select("file", "row", "column", "value").iter_rows())
    return Judgement(quarantine, candidates, failures, boundary.identical_cuts(digests), flagged)


def fresh_study(root: Path) -> Path:
    study = root / "study"
    shutil.copytree(SHIPPED_DATA, study, ignore=shutil.ignore_patterns("warehouse", "README.md"))
    return study


@pytest.fixture(scope="module")
def pristine_judgement(tmp_path_factory) -> Judgement:
    judged = judge(fresh_study(tmp_path_factory.mktemp("pristine_judgement")))
    assert judged.quarantine.is_empty() and not judged.failures, "the shipped records must be clean for the corpus to mean anything"
    return judged


def unknown_patient_rows(study: Path, patients: tuple[int, ...]) -> set[tuple]:
    """Every row of the other files that names one of ``patients``: quarantined once the patient is invalid."""
    rows = set()
    for file in PATIENT_FILES:
        for line_number, line in enumerate((study / file).read_text().splitlines(), start=1):
            if line.split(",")[0] in {str(p) for p in patients}:
                rows.add((file, line_number, "patient_id", line.split(",")[0], UNKNOWN_PATIENT))
    return rows


def without_versions(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    # Each ADTTE row names the version of the cut file it came from, which any change to the file changes.
    return frame.drop("SRCHASH") if table == "adtte" else frame


def assert_cohort_lost_exactly(candidates: dict[str, pl.DataFrame], pristine: Judgement, outcome: Quarantined):
    for table in COHORT:
        gone = outcome.dropped.get(table, pl.lit(False))
        if outcome.invalid_patients:
            gone = gone | subject(*outcome.invalid_patients)
        # ASEQ numbers a patient's events and AOCCIFL flags one of them: losing an event may renumber or move them.
        across_rows = [c for c in ("ASEQ", "AOCCIFL") if table == "adae"]
        expected = without_versions(table, pristine.candidates[table].filter(~gone)).drop(across_rows)
        got = without_versions(table, candidates[table]).drop(across_rows)
        assert got.equals(expected), f"{table}: expected {pristine.candidates[table].height - expected.height} row(s) fewer"


def assert_bounded_and_printable(message: str):
    assert len(message) <= MESSAGE_LIMIT, f"{len(message)} characters: {message[:200]}…"
    assert not re.search(r"[\x00-\x1f\x7f]", message.replace("\n", "")), f"unescaped control character in {message!r}"
    # Nothing disguised: no invisible or bidi character, no Cyrillic е passing for a Latin e.
    assert all(errors.reveal(line) == line for line in message.split("\n")), f"hidden or confusable character in {message!r}"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_damaged_study_folder_is_judged(name: str, tmp_path: Path, pristine_judgement: Judgement):
    variant, study = VARIANTS[name], fresh_study(tmp_path)
    variant.damage(study)
    with no_hang():
        judge_variant(variant, study, pristine_judgement)


def judge_variant(variant: Variant, study: Path, pristine_judgement: Judgement) -> None:
    outcome = variant.outcome
    if isinstance(outcome, Refused):
        with pytest.raises(RecordFileError) as refused:
            judge(study)
        message = str(refused.value)
        assert outcome.message in message
        assert_bounded_and_printable(message)
        assert not [text for text in outcome.never_echoed if text in message]
        return

    judged = judge(study)
    if isinstance(outcome, Harmless):
        assert judged.quarantine.is_empty() and not judged.failures
        for table in COHORT:
            assert without_versions(table, judged.candidates[table]).equals(without_versions(table, pristine_judgement.candidates[table])), table
        return
    if isinstance(outcome, Accepted):
        assert judged.quarantine.is_empty() and not judged.failures
        assert judged.identical == ([outcome.identical] if outcome.identical else [])
        assert judged.flagged == set(outcome.flagged)
        return
    if isinstance(outcome, Blocked):
        assert set(judged.failures) == set(outcome.tables)
        for table in outcome.tables:
            assert outcome.message in judged.failures[table][outcome.check], judged.failures[table]
        return

    # Quarantined: exactly these rows; every table made from their files is held back, naming the first one.
    quarantined = set(judged.quarantine.select("file", "row", "column", "value", "reason").iter_rows())
    assert quarantined == set(outcome.rows) | unknown_patient_rows(study, outcome.invalid_patients)
    first_file, first_row, first_column, _, _ = sorted(outcome.rows, key=lambda r: (r[0], r[1], r[2]))[0]
    held_back = {t for t in COHORT if validation.blocking_rows(judged.quarantine, adam.common.SOURCES[t]).height}
    assert held_back and set(judged.failures) == held_back
    for table in held_back:
        description = judged.failures[table]["no_quarantined_rows"]
        if first_file == "patients.csv" or first_file.startswith(adam.common.SOURCES[table]):
            assert f"{first_file} line {first_row}, column {first_column}, value " in description.split("; ")[0], description
        assert_bounded_and_printable(description)
    # Where the study accepts losses, the cohort is the previous one without exactly the affected rows.
    excluded = judge(study, exclude=True, max_share=1.0)
    assert not excluded.failures
    assert_cohort_lost_exactly(excluded.candidates, pristine_judgement, outcome)


def test_the_corpus_is_large_and_covers_every_outcome():
    kinds = {type(v.outcome) for v in VARIANTS.values()}
    assert len(VARIANTS) >= 100
    assert {Refused, Quarantined, Blocked, Accepted, Harmless} == kinds
    assert {type(VARIANTS[n].outcome) for n in THROUGH_DAGSTER} == kinds


# --- the same variants through Dagster: what is published stays byte-for-byte as before --------------


@dataclass(frozen=True)
class Pristine:
    root: Path
    study: Path
    warehouse: Path
    digests: dict[str, str]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, shipped_cohort) -> Pristine:
    """The shipped study materialized once (the session's ``shipped_cohort``): the warehouse every Dagster variant
    starts from; ``root`` is this module's folder for the variants' copies."""
    root = tmp_path_factory.mktemp("pristine")
    study, warehouse = shipped_cohort["data"], shipped_cohort["warehouse"]
    return Pristine(root, study, warehouse, table_digests(warehouse))


@pytest.fixture
def workspace(pristine: Pristine) -> dict[str, Path]:
    """A fresh copy of the pristine study and warehouse, as ``platform_env`` paths (plus ``study``)."""
    work = pristine.root / "work"
    shutil.rmtree(work, ignore_errors=True)
    study, warehouse = work / "study", work / "warehouse" / "lms.duckdb"
    shutil.copytree(pristine.study, study, symlinks=True)
    warehouse.parent.mkdir(parents=True)
    for source in pristine.warehouse.parent.iterdir():
        shutil.copy2(source, warehouse.parent / source.name)
    return {"study": study, "data": study, "warehouse": warehouse, "outputs": work / "outputs"}


@pytest.fixture(scope="module")
def instance():
    """One in-memory instance for every variant's run (making one per run costs a third of a second)."""
    with DagsterInstance.ephemeral() as shared:
        yield shared


_JOBS = {}


def refresh(instance: DagsterInstance, raw_asset: str, paths: dict[str, Path]):
    """Materialize the damaged file's raw asset and everything after it up to the cohort on ``paths``, as the UI would."""
    key = (paths["warehouse"], raw_asset)
    if key not in _JOBS:
        defs = defs_for(paths)
        selection = AssetSelection.assets(raw_asset).downstream() & AssetSelection.assets(*COHORT).upstream()
        keys = set(selection.resolve(defs.resolve_asset_graph()))
        _JOBS[key] = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=keys)
    return _JOBS[key].execute_in_process(instance=instance, raise_on_error=False)


@pytest.mark.parametrize("name", THROUGH_DAGSTER)
def test_damaged_study_folder_through_dagster(name: str, pristine: Pristine, workspace: dict[str, Path], instance: DagsterInstance):
    variant = VARIANTS[name]
    variant.damage(workspace["study"])
    outcome = variant.outcome
    with no_hang():
        judged = None if isinstance(outcome, Refused) else judge(workspace["study"])
        result = refresh(instance, RAW_ASSET[variant.file], workspace)

    # Everything the UI renders as Markdown shows data as written: no image fetched, no link or tag made.
    assert_no_markup([e.description for e in result.get_asset_check_evaluations()])
    for evaluation in result.get_asset_check_evaluations():
        assert_bounded_and_printable(evaluation.description or "")
    if not result.success:
        assert_no_markup(failure_messages(result))
    digests = table_digests(workspace["warehouse"])  # reads every table: none is unreadable or half written
    assert set(digests) == set(pristine.digests), "no published table may appear or disappear"
    staged = set(table_digests(workspace["warehouse"], schema="staging"))
    if isinstance(outcome, Refused):
        assert not result.success
        assert outcome.message in failure_message(result)
        assert digests == pristine.digests
        assert not staged
        return
    failed = {
        (e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations() if not e.passed and e.severity.value == "ERROR"
    }
    assert failed == {(t, c) for t, checks in judged.failures.items() for c in checks}, "Dagster decides as the pure judgement does"
    if isinstance(outcome, (Harmless, Accepted)):
        assert result.success, failure_message(result)
        assert not staged
        if isinstance(outcome, Harmless):
            assert {t: digests[t] for t in COHORT} == {t: pristine.digests[t] for t in COHORT}
        warned = {e.description for e in result.get_asset_check_evaluations() if e.check_name == "followup_cuts_distinct" and not e.passed}
        assert warned == ({f"{outcome.identical[1]} is byte-identical to {outcome.identical[0]}"} if getattr(outcome, "identical", None) else set())
        return
    # Quarantined or Blocked: the tables held back keep their published content; their candidates are staged.
    assert not result.success
    held_back = set(judged.failures)
    first_lines = failure_first_lines(result)
    assert set(first_lines) == held_back
    for table in held_back:
        check = next(iter(judged.failures[table]))
        assert first_lines[table].startswith(f"{table} not published: {check}: "), first_lines[table]
        assert_bounded_and_printable(first_lines[table][:MESSAGE_LIMIT])
    assert staged == held_back
    assert {t: digests[t] for t in held_back} == {t: pristine.digests[t] for t in held_back}
    downstream_of_raw = {"quarantine", *COHORT, RAW_ASSET[variant.file]}
    assert {n: d for n, d in digests.items() if n not in downstream_of_raw} == {
        n: d for n, d in pristine.digests.items() if n not in downstream_of_raw
    }
