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

The variants are data: ``corpus/<outcome>.toml`` holds one table per variant (the file it damages, the damage
as steps of the kinds in ``DAMAGES`` below, and what the outcome must say), ``corpus/files/<variant>/`` the
files a damage puts in place whole; ``corpus/README.md`` describes the format.

Most variants are judged through the pure functions the assets call (``judge``, below: the same reads,
quarantine, derivations and gate rules as the ingest and cohort steps), which takes milliseconds each. A
sample of every outcome (``through_dagster = true``) also runs through Dagster on a copy of a warehouse built
once per module, re-materializing the damaged file's raw asset and everything after it up to the cohort, and
checks that the published (``main``) tables are byte-for-byte as before wherever the outcome says so.
"""

import csv
import dataclasses
import datetime as dt
import functools
import inspect
import io
import os
import re
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dagster import AssetSelection, DagsterInstance

from lms_assets import adam
from lms_assets.records import boundary, errors, schemas, validation
from lms_assets.records.errors import RecordFileError
from lms_assets.records.study import load_study, quarantine_verdict
from lms_assets_tests import conftest
from lms_assets_tests.conftest import COHORT, SHIPPED_DATA, defs_for
from lms_assets_tests.records.test_validation import assert_no_markup, failure_first_lines, failure_message, failure_messages, no_hang, table_digests

CORPUS = Path(__file__).parent / "corpus"
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
    steps: tuple[functools.partial[None], ...]
    outcome: Refused | Quarantined | Blocked | Accepted | Harmless
    through_dagster: bool = False

    def damage(self, study: Path) -> None:
        for step in self.steps:
            step(study)


# --- ways to damage a file: a step ``{kind = "<function name>", file = ..., <its arguments>}`` ---------


def expanded(value: str | list) -> str:
    """Text as the corpus writes it: a string, or a list of strings and runs too long to write out,
    ``{repeat = "F", times = 50_000_000}`` or ``{quoted_lines = 5_000, every = 100}`` (a quoted value of about
    that many characters broken into lines of ``every``: each line short, the value not)."""
    if isinstance(value, str):
        return value
    pieces = []
    for piece in value:
        if isinstance(piece, str):
            pieces.append(piece)
        elif "repeat" in piece:
            pieces.append(piece["repeat"] * piece["times"])
        else:
            length, every = piece["quoted_lines"], piece["every"]
            pieces.append('"' + "\n".join(["A" * every] * (length // every)) + '"')
    return "".join(pieces)


def replace(study: Path, file: str, old: str, new: str | list, every: bool = False) -> None:
    """``old`` (which must occur exactly once, unless ``every``) replaced by ``new``."""
    path = study / file
    content = path.read_text()
    assert every or content.count(old) == 1, f"{old!r} must occur once in {file}"
    path.write_text(content.replace(old, expanded(new)))


def append(study: Path, file: str, lines: list) -> None:
    with (study / file).open("a") as handle:
        handle.write("".join(expanded(line) + "\n" for line in lines))


def header_only(study: Path, file: str) -> None:
    (study / file).write_text((study / file).read_text().splitlines()[0] + "\n")


def cut_end(study: Path, file: str, text: str) -> None:
    """The file cut off at ``text`` at its end (the final newline lost too), as an interrupted copy leaves it."""
    path = study / file
    content = path.read_bytes().rstrip(b"\n")
    assert content.endswith(text.encode()), f"{file} does not end with {text!r}"
    path.write_bytes(content[: len(content) - len(text.encode())])


def prepend(study: Path, file: str, text: str) -> None:
    (study / file).write_bytes(text.encode() + (study / file).read_bytes())


def line_endings(study: Path, file: str, ending: str) -> None:
    (study / file).write_bytes((study / file).read_bytes().replace(b"\n", ending.encode()))


def recode(study: Path, file: str, encoding: str) -> None:
    """The UTF-8 file saved in another encoding."""
    (study / file).write_bytes((study / file).read_bytes().decode().encode(encoding))


def add_column(study: Path, file: str, header: str, value: str) -> None:
    """A column ``header`` (possibly without a name) holding ``value`` on every line."""
    path = study / file
    lines = path.read_text().splitlines()
    path.write_text(f"{lines[0]},{header}\n" + "".join(f"{line},{value}\n" for line in lines[1:]))


def duplicate_column(study: Path, file: str, name: str) -> None:
    """The column ``name`` written a second time, at the end of every line."""
    path = study / file
    lines = path.read_text().splitlines()
    index = lines[0].split(",").index(name)
    path.write_text("".join(f"{line},{line.split(',')[index]}\n" for line in lines))


def drop_column(study: Path, file: str, name: str) -> None:
    path = study / file
    rows = list(csv.reader(io.StringIO(path.read_text())))
    index = rows[0].index(name)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([r[:index] + r[index + 1 :] for r in rows])
    path.write_text(out.getvalue())


def reorder_columns(study: Path, file: str, order: list[str]) -> None:
    pl.read_csv(study / file, infer_schema=False).select(order).write_csv(study / file)


def quote_every_field(study: Path, file: str) -> None:
    path = study / file
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(csv.reader(io.StringIO(path.read_text())))
    path.write_text(out.getvalue())


def put(study: Path, file: str, stored: Path) -> None:
    """The file written whole from ``corpus/files/<variant>/<file>`` (bytes that are not text, a whole settings file)."""
    shutil.copyfile(stored, study / file)


def remove(study: Path, file: str) -> None:
    target = study / file
    shutil.rmtree(target) if target.is_dir() else target.unlink()


def folder(study: Path, file: str) -> None:
    """A folder where the file belongs."""
    (study / file).unlink(missing_ok=True)
    (study / file).mkdir()


def empty_folder(study: Path, file: str) -> None:
    for child in (study / file).iterdir():
        child.unlink()


def copy(study: Path, file: str, to: str | list) -> None:
    shutil.copyfile(study / file, study / expanded(to))


def rename(study: Path, file: str, to: str) -> None:
    (study / file).rename(study / to)


def link(study: Path, file: str, target: str) -> None:
    (study / file).unlink(missing_ok=True)
    (study / file).symlink_to(target)


def link_outside(study: Path, file: str) -> None:
    """The file (or folder) moved out of the study and replaced by a link to it."""
    outside = study.parent / "outside" / Path(file).name
    outside.parent.mkdir()
    (study / file).rename(outside)
    (study / file).symlink_to(outside, target_is_directory=outside.is_dir())


def link_loop(study: Path, file: str) -> None:
    remove(study, file)
    (study / file).symlink_to(study / f"{file}.loop")
    (study / f"{file}.loop").symlink_to(study / file)


def fifo(study: Path, file: str) -> None:
    """A named pipe where a file belongs: opening it for reading blocks until a writer comes, which none will."""
    path = study / file
    if path.exists():
        path.unlink()
    os.mkfifo(path)


def touch(study: Path, file: str, modified: dt.datetime) -> None:
    os.utime(study / file, (modified.timestamp(), modified.timestamp()))


def allow_exclusion(study: Path, file: str) -> None:
    """study.toml lets quarantined rows be excluded, up to a quarter of a table's rows (conftest's allow_exclusion)."""
    assert file == "study.toml", file
    conftest.allow_exclusion(study)


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


def one_patient_changed(cut: pl.DataFrame, patient: int, set: dict[str, Any] | None = None, remove: bool = False) -> pl.DataFrame:
    """``patient``'s row with the columns in ``set`` given new values, or without the row (``remove``)."""
    if remove:
        return cut.filter(pl.col("patient_id") != patient)
    is_patient = pl.col("patient_id") == patient
    return cut.with_columns(pl.when(is_patient).then(pl.lit(value)).otherwise(pl.col(column)).alias(column) for column, value in (set or {}).items())


CUT_CHANGES = {f.__name__: f for f in (followed_longer, half_way)}


def new_cut(study: Path, file: str, to: str, change: list) -> None:
    """A further cut ``to`` made from the cut ``file`` by ``change``, written as the study team's export would be: each
    change is the name of a function in ``CUT_CHANGES`` or the arguments of ``one_patient_changed``."""
    cut = pl.read_csv(study / file)
    for one in change:
        cut = CUT_CHANGES[one](cut) if isinstance(one, str) else one_patient_changed(cut, **one)
    cut.write_csv(study / to)


def every_age_but_patient_1_garbled(study: Path, file: str) -> None:
    """Every patient's age garbled but patient 1's: the cohort left would be one patient of 19."""
    lines = []
    for line in (study / file).read_text().splitlines():
        fields = line.split(",")
        if fields[0] not in ("patient_id", "1"):
            fields[1] = "?"
        lines.append(",".join(fields))
    (study / file).write_text("\n".join(lines) + "\n")


DAMAGES: dict[str, Callable[..., None]] = {
    f.__name__: f
    for f in (
        replace,
        append,
        header_only,
        cut_end,
        prepend,
        line_endings,
        recode,
        add_column,
        duplicate_column,
        drop_column,
        reorder_columns,
        quote_every_field,
        put,
        remove,
        folder,
        empty_folder,
        copy,
        rename,
        link,
        link_outside,
        link_loop,
        fifo,
        touch,
        allow_exclusion,
        new_cut,
        every_age_but_patient_1_garbled,
    )
}


# --- the corpus: variants read from corpus/*.toml ----------------------------------------------------

# Expectations computed from the platform's own lists, which the data names as ``{named = "..."}``.
NAMED: dict[str, Any] = {
    "COHORT": COHORT,
    "UNKNOWN_PATIENT": UNKNOWN_PATIENT,
    "NOT_AN_AE_TERM": "not one of " + ", ".join(load_study(SHIPPED_DATA).values("adverse_events", "term")),
    "NOT_A_CATEGORY_SEX": "not one of Female, Male",
    "NOT_A_RESPONSE": "not one of CR, PR, SD, PD, NE",
    "NOT_A_COMBINATION": "not one of None, Immunotherapy, Chemotherapy, Radiotherapy, Immunotherapy+Chemotherapy",
    "NOT_YES_NO": "not one of Yes, No",
    "NOT_CHEMOTHERAPY": "not one of No, 1 line, 2 line, 3 line and more",
    "DEATH_NOT_PROGRESSION": "died = 1 but progressed = 0: a death is a PFS event (progressed: 1 = progression or death)",
}


def resolved(value: Any) -> Any:
    if isinstance(value, dict):
        return NAMED[value["named"]] if set(value) == {"named"} else {k: resolved(v) for k, v in value.items()}
    return [resolved(v) for v in value] if isinstance(value, list) else value


def quarantined_row(file: str, row: int, column: str, reason: str, value: str | None = None) -> tuple[str, int, str, str | None, str]:
    return (file, row, column, value, reason)


def flagged_value(file: str, row: int, column: str, value: str) -> tuple[str, int, str, str]:
    return (file, row, column, value)


def dropped_rows(patients: list[int], term: str | None = None) -> pl.Expr:
    """A cohort table's rows of ``patients`` (for ADAE, of their adverse event ``term`` only)."""
    rows = pl.col("SUBJID").is_in(patients)
    return rows & (pl.col("AEDECOD") == term) if term else rows


def refused(message: str, never_echoed: tuple[str, ...] = ()) -> Refused:
    return Refused(message, tuple(never_echoed))


def quarantined(rows: list[dict], invalid_patients: tuple[int, ...] = (), dropped: dict[str, dict] | None = None) -> Quarantined:
    return Quarantined(
        tuple(quarantined_row(**row) for row in rows),
        tuple(invalid_patients),
        {table: dropped_rows(**which) for table, which in (dropped or {}).items()},
    )


def blocked(tables: tuple[str, ...], check: str, message: str) -> Blocked:
    return Blocked(tuple(tables), check, message)


def accepted(identical: tuple[str, str] | None = None, flagged: tuple[dict, ...] = ()) -> Accepted:
    return Accepted((identical[0], identical[1]) if identical else None, tuple(flagged_value(**value) for value in flagged))


OUTCOMES: dict[str, Callable[..., Refused | Quarantined | Blocked | Accepted | Harmless]] = {
    "refused": refused,
    "quarantined": quarantined,
    "blocked": blocked,
    "accepted": accepted,
    "harmless": Harmless,
}


def damage_step(variant: str, variant_file: str, kind: str, file: str | None = None, **arguments) -> functools.partial[None]:
    """One step of a variant's damage; its ``file`` is the variant's unless it names another."""
    file = file or variant_file
    if kind == "put":
        arguments["stored"] = CORPUS / "files" / variant / file
        assert arguments["stored"].is_file(), f"{arguments['stored']} is missing"
    inspect.signature(DAMAGES[kind]).bind(None, file=file, **arguments)  # a misspelt argument fails here, not mid-test
    return functools.partial(DAMAGES[kind], file=file, **arguments)


def read_variant(name: str, outcome: str, file: str, damage: dict | list[dict], through_dagster: bool = False, **expected) -> Variant:
    steps = tuple(damage_step(name, file, **step) for step in (damage if isinstance(damage, list) else [damage]))
    return Variant(file, steps, OUTCOMES[outcome](**resolved(expected)), through_dagster)


def read_corpus() -> dict[str, Variant]:
    """Every variant of ``corpus/<outcome>.toml``; a misspelt key, kind or name fails here, naming file and variant."""
    variants: dict[str, Variant] = {}
    for outcome in OUTCOMES:
        path = CORPUS / f"{outcome}.toml"
        try:
            entries = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path.relative_to(CORPUS.parent)}: {error}") from error
        for name, entry in entries.items():
            try:
                assert name not in variants, "also in another corpus file"
                variants[name] = read_variant(name, outcome, **entry)
            except (AssertionError, KeyError, TypeError) as error:
                raise ValueError(f"{path.relative_to(CORPUS.parent)} [{name}]: {error!r}") from error
    return variants


VARIANTS = read_corpus()
THROUGH_DAGSTER = tuple(name for name, variant in VARIANTS.items() if variant.through_dagster)


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
            gone = gone | dropped_rows(list(outcome.invalid_patients))
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
    # Every stored file is one a variant puts in place: none left over from a variant removed or changed.
    stored = {p for p in (CORPUS / "files").rglob("*") if p.is_file() and p.name != ".gitattributes"}
    assert stored == {step.keywords["stored"] for v in VARIANTS.values() for step in v.steps if step.func is put}


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
