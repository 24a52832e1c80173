"""Boundaries: record files only from inside the study folder, pseudonymous ids only, no SQL from file
contents, and a UI that listens on loopback unless the user says otherwise."""

import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import DagsterInstance, Failure, RunRequest, SkipReason, build_sensor_context

from lms_assets.defs.refresh import new_followup_sensor
from lms_assets.defs.registry_at_load import registry_at_load
from lms_assets.defs.resources import StudyFolder
from lms_assets.defs.warehouse import Warehouse, replace_table, sql_identifier
from lms_assets.records import boundary, csv_text, errors, schemas, validation
from lms_assets.records.errors import RecordFileError
from lms_assets.records.study import load_study
from lms_assets_tests.conftest import REPO, copy_warehouse
from lms_assets_tests.records.test_validation import failure_first_lines, failure_message, no_hang, run_cohort, table_digests


@pytest.fixture
def loaded(platform_env, shipped_cohort):
    copy_warehouse(shipped_cohort["warehouse"], platform_env["warehouse"])
    return platform_env, table_digests(platform_env["warehouse"])


# --- the study folder's boundary ---------------------------------------------------------------


def test_a_name_that_climbs_out_of_the_study_folder_is_refused(study_dir: Path):
    (study_dir.parent / "secret.csv").write_text("patient_id\n1\n")
    with pytest.raises(RecordFileError, match=r"\.\./secret\.csv: resolves to .*, outside the study folder"):
        boundary.resolve_inside(study_dir, "../secret.csv")
    with pytest.raises(RecordFileError, match="outside the study folder"):
        boundary.resolve_inside(study_dir, "followup/../../secret.csv")


def test_an_absolute_name_is_refused_even_when_it_points_inside(study_dir: Path):
    inside = study_dir / "patients.csv"
    with pytest.raises(RecordFileError, match="relative to the study folder .*, not by absolute path"):
        boundary.resolve_inside(study_dir, str(inside))


def test_names_inside_the_folder_and_links_that_stay_inside_are_accepted(study_dir: Path):
    assert boundary.resolve_inside(study_dir, "followup/2021-03-31.csv") == study_dir / "followup" / "2021-03-31.csv"
    (study_dir / "archive").mkdir()
    (study_dir / "patients.csv").rename(study_dir / "archive" / "patients-v2.csv")
    (study_dir / "patients.csv").symlink_to(study_dir / "archive" / "patients-v2.csv")
    assert boundary.resolve_inside(study_dir, "patients.csv") == study_dir / "patients.csv"


def test_a_record_file_linked_to_outside_the_folder_fails_the_run_and_keeps_the_warehouse(loaded, tmp_path: Path):
    env, before = loaded
    outside = tmp_path / "elsewhere" / "patients.csv"
    outside.parent.mkdir()
    (env["data"] / "patients.csv").rename(outside)
    (env["data"] / "patients.csv").symlink_to(outside)

    result = run_cohort(env)

    assert not result.success
    message = failure_message(result)
    assert f"patients.csv: resolves to {outside}, outside the study folder" in message
    assert "refusing to read it" in message
    assert table_digests(env["warehouse"]) == before


def test_a_followup_folder_or_cut_file_linked_outside_is_refused(study_dir: Path, tmp_path: Path):
    outside_cut = tmp_path / "other-study-2022-03-31.csv"
    outside_cut.write_text((study_dir / "followup" / "2021-03-31.csv").read_text())
    (study_dir / "followup" / "2022-03-31.csv").symlink_to(outside_cut)
    with pytest.raises(RecordFileError, match=r"followup/2022-03-31\.csv: resolves to .*outside the study folder"):
        boundary.followup_files(study_dir)

    (study_dir / "followup" / "2022-03-31.csv").unlink()
    (study_dir / "followup").rename(tmp_path / "moved-followup")
    (study_dir / "followup").symlink_to(tmp_path / "moved-followup")
    with pytest.raises(RecordFileError, match="followup: resolves to .*outside the study folder"):
        boundary.followup_files(study_dir)


# --- pseudonymous ids only ---------------------------------------------------------------------


@pytest.mark.parametrize("column", ["name", "date_of_birth", "phone", "address", "national_id", "Patient_Name", "email"])
def test_a_column_that_looks_like_a_direct_identifier_is_refused_saying_why(study_dir: Path, column: str):
    path = study_dir / "patients.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([f"{lines[0]},{column}", *(f"{line},x" for line in lines[1:])]) + "\n")
    with pytest.raises(RecordFileError) as refused:
        validation.read_raw(path, schemas.PATIENTS)
    message = str(refused.value)
    assert message.startswith(f"patients.csv: column(s) {column} look like direct identifiers")
    assert "pseudonymous patient numbers only" in message


def test_the_declared_columns_are_not_mistaken_for_identifiers(study_dir: Path):
    for schema in (*schemas.RECORD_FILES, schemas.REGISTRY, schemas.PROVENANCE):
        assert not [c for c in schema.column_names if csv_text._IDENTIFIER_PATTERN.search(c)], schema.name


def test_an_identifier_column_fails_the_run_and_keeps_the_warehouse(loaded):
    env, before = loaded
    path = env["data"] / "adverse_events.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([f"{lines[0]},phone", *(f"{line},555-0100" for line in lines[1:])]) + "\n")

    result = run_cohort(env)

    assert not result.success
    assert "adverse_events.csv: column(s) phone look like direct identifiers" in failure_message(result)
    assert table_digests(env["warehouse"]) == before


# --- no SQL from file contents -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["adsl; DROP TABLE adsl", 'adsl" --', "raw patients", "", "1adsl", "adsl\n"])
def test_a_table_name_that_is_not_a_plain_identifier_is_refused(name: str):
    with pytest.raises(ValueError, match="is not a plain identifier"):
        sql_identifier(name)


def test_the_warehouse_writer_binds_values_and_checks_names(tmp_path: Path):
    """A value that reads like SQL is stored verbatim; a table name that is not an identifier never reaches SQL."""
    database = str(tmp_path / "w.duckdb")
    hostile = "x'); DROP TABLE adsl; --"
    frame = pl.DataFrame({"value": [hostile, 'a "quoted" value']})
    with duckdb.connect(database) as connection:
        connection.execute("CREATE TABLE adsl AS SELECT 1 AS SUBJID")
        replace_table(connection, "main", "notes", frame)
        with pytest.raises(ValueError, match="is not a plain identifier"):
            replace_table(connection, "main", "notes; DROP TABLE adsl", frame)
        stored = connection.execute("SELECT value FROM notes ORDER BY value").pl()
        tables = sorted(r[0] for r in connection.execute("SELECT table_name FROM information_schema.tables").fetchall())
    assert stored["value"].to_list() == sorted([hostile, 'a "quoted" value'])
    assert tables == ["adsl", "notes"]


# --- the UI stays on loopback ------------------------------------------------------------------


def _make_run_command(extra_env: dict[str, str], *args: str) -> str:
    """The command `make run` would execute (make -n prints it without running anything): the launcher, which hands
    its -h/-p to `dagster dev` (lms_assets/infra/launcher.py)."""
    env = {k: v for k, v in os.environ.items() if k not in {"HOST", "PORT"}} | extra_env
    out = subprocess.run(["make", "-n", "run", *args], cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    return next(line for line in out.splitlines() if " -m lms_assets.infra.launcher " in line)


def test_the_makefile_default_host_is_loopback():
    defaults = dict(re.findall(r"^(HOST|PORT)\s*[:?]?=\s*(\S+)\s*$", (REPO / "Makefile").read_text(), re.MULTILINE))
    assert defaults["HOST"] == "127.0.0.1"
    assert " -h 127.0.0.1 " in _make_run_command({})


def test_only_an_explicit_make_variable_changes_the_host():
    """`make run HOST=…` is the user saying so; a HOST variable inherited from the shell (many container
    images export HOST=0.0.0.0 for web servers) must not silently expose the UI."""
    assert " -h 10.1.2.3 " in _make_run_command({}, "HOST=10.1.2.3")
    assert " -h 127.0.0.1 " in _make_run_command({"HOST": "0.0.0.0"})


def test_the_docs_say_how_to_expose_the_ui_safely_and_why():
    readme = (REPO / "README.md").read_text()
    assert "no login" in readme and "authenticating proxy" in readme
    operations = (REPO / "docs" / "operations.md").read_text()
    section = operations[operations.index("## Exposing the UI") :]
    section = section[: section.index("\n## ")]
    assert "127.0.0.1" in section
    assert "no login" in section
    assert "authenticating" in section and "reverse proxy" in section


# --- a file the platform may not read ----------------------------------------------------------


def test_a_file_that_cannot_be_read_is_refused_naming_it(study_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """Permissions do not stop root (CI may run as root), so the refusal is exercised through a read that fails."""
    real_open = os.open

    def locked(path, flags, *args, **kwargs):
        if Path(path).name == "response.csv":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", locked)
    path = study_dir / "response.csv"
    with pytest.raises(RecordFileError, match=rf"^response\.csv: cannot be read \(Permission denied; {re.escape(str(path))}\)$"):
        validation.read_raw(path, schemas.RESPONSE)


# --- what a message may echo of a file -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Female", "Female"),
        ("a\tb\nc", "a\\tb\\nc"),
        ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
        ("Rash\u202egnp.exe", "Rash\\u202egnp.exe"),
        ("F\u0435male", "F\\u0435male"),
        ("Fem\u200bale", "Fem\\u200bale"),
        ("Female\u00a0", "Female\\xa0"),
        ("H\u00f4pital", "H\u00f4pital"),
        ("\u041c\u043e\u0441\u043a\u0432\u0430", "\u041c\u043e\u0441\u043a\u0432\u0430"),
        ("x" * 61, "x" * 60 + "… (61 characters)"),
        ("y" * 50_000_000, "y" * 60 + "… (50,000,000 characters)"),
    ],
    ids=[
        "plain",
        "whitespace",
        "terminal-escape",
        "bidi-override",
        "cyrillic-in-a-latin-word",
        "zero-width-space",
        "no-break-space",
        "accented-latin-kept",
        "cyrillic-word-kept",
        "just-over",
        "fifty-megabytes",
    ],
)
def test_an_excerpt_of_file_content_is_short_and_printable(text: str, shown: str):
    assert errors.excerpt(text) == shown


def test_the_study_settings_are_read_through_the_boundary_check(study_dir: Path, tmp_path: Path):
    outside = tmp_path / "elsewhere.toml"
    outside.write_text("exclude_quarantined_rows = true\n")
    (study_dir / "study.toml").unlink()
    (study_dir / "study.toml").symlink_to(outside)
    with pytest.raises(RecordFileError, match=r"^study\.toml: resolves to .*elsewhere\.toml, outside the study folder"):
        load_study(study_dir)


def test_without_a_study_file_the_folder_is_refused_naming_what_it_must_say(study_dir: Path):
    (study_dir / "study.toml").unlink()
    with pytest.raises(
        RecordFileError, match=r"^study\.toml: missing from the study folder; it names the study \(studyid, title, enrolment_start, enrolment_end\)"
    ):
        load_study(study_dir)


def test_a_toml_error_names_the_file_and_line_without_echoing_the_file(study_dir: Path):
    (study_dir / "study.toml").write_text("# fine\nexclude_quarantined_rows = " + "tru" * 1000 + "\n")
    with pytest.raises(RecordFileError) as refused:
        load_study(study_dir)
    message = str(refused.value)
    assert message.startswith("study.toml: is not valid TOML (") and "line 2" in message
    assert "trutrutru" not in message and len(message) < 200


# --- files that are not regular files, and reads that never end -------------------------------------


def test_a_named_pipe_is_refused_by_every_reader_without_opening_it(study_dir: Path):
    for file in ("patients.csv", "printed_values.csv", "study.toml", "followup/2021-03-31.csv"):
        (study_dir / file).unlink()
        os.mkfifo(study_dir / file)
    with no_hang():
        with pytest.raises(RecordFileError, match=r"^patients\.csv: is a named pipe \(FIFO\), not a CSV file \(.*patients\.csv\)"):
            validation.read_raw(study_dir / "patients.csv", schemas.PATIENTS, label="patients.csv")
        with pytest.raises(RecordFileError, match=r"^2021-03-31\.csv: is a named pipe \(FIFO\), not a CSV file"):
            boundary.content_hash(study_dir / "followup" / "2021-03-31.csv")
        with pytest.raises(RecordFileError, match=r"^study\.toml: is a named pipe \(FIFO\), not a settings file"):
            load_study(study_dir)
        # The definitions still load (one stand-in check per summary says the registry could not be read).
        assert registry_at_load(study_dir).problem == "printed_values.csv could not be read (RecordFileError)"


def test_a_read_that_does_not_finish_fails_naming_the_file(study_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """A stalled network share is stood in for by a read that waits until the test lets it go."""
    stalled = threading.Event()
    real_open = boundary._open_regular

    def stalling(path, label, expected):
        stalled.wait()
        return real_open(path, label, expected)

    monkeypatch.setattr(boundary, "_open_regular", stalling)
    monkeypatch.setattr(boundary, "READ_TIMEOUT_SECONDS", 0.5)
    try:
        with no_hang(), pytest.raises(RecordFileError, match=r"^response\.csv: reading it did not finish within 0\.5 s"):
            validation.read_raw(study_dir / "response.csv", schemas.RESPONSE)
    finally:
        stalled.set()


# --- the sensor: says why through a run, reads only what changed -------------------------------------


def _sensor_tick(study: Path, cursor: str | None = None):
    context = build_sensor_context(instance=DagsterInstance.ephemeral(), cursor=cursor, resources={"study_folder": StudyFolder(path=str(study))})
    return new_followup_sensor(context), context.cursor


@pytest.mark.parametrize("damage", ["linked-outside", "link-loop", "named-pipe"])
def test_the_sensor_launches_a_run_for_what_the_ingest_refuses(study_dir: Path, tmp_path: Path, damage: str):
    _, cursor = _sensor_tick(study_dir)
    folder = study_dir / "followup"
    if damage == "linked-outside":
        shutil.move(folder, tmp_path / "elsewhere")
        folder.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    elif damage == "link-loop":
        shutil.rmtree(folder)
        folder.symlink_to(study_dir / "followup.loop")
        (study_dir / "followup.loop").symlink_to(folder)
    else:
        os.mkfifo(folder / "2022-03-31.csv")
    with no_hang():
        request, _ = _sensor_tick(study_dir, cursor)
        assert isinstance(request, RunRequest), request
        with pytest.raises(RecordFileError, match=r"^followup(/2022-03-31\.csv)?: (resolves to|cannot be followed|is a named pipe)"):
            for path in boundary.followup_files(study_dir):
                validation.read_raw(path, schemas.FOLLOWUP, label=f"followup/{path.name}")


def test_the_sensor_hashes_a_cut_only_when_its_size_or_time_changed(study_dir: Path, monkeypatch: pytest.MonkeyPatch):
    hashed = []
    real_hash = boundary.content_hash
    monkeypatch.setattr(boundary, "content_hash", lambda path, label=None: hashed.append(path.name) or real_hash(path, label))
    first, cursor = _sensor_tick(study_dir)
    assert isinstance(first, RunRequest) and hashed == ["2021-03-31.csv"]
    same, cursor = _sensor_tick(study_dir, cursor)
    assert isinstance(same, SkipReason) and hashed == ["2021-03-31.csv"]
    cut = study_dir / "followup" / "2021-03-31.csv"
    os.utime(cut, ns=(cut.stat().st_atime_ns, cut.stat().st_mtime_ns + 1_000_000_000))
    touched, _ = _sensor_tick(study_dir, cursor)
    # Touched, same bytes: hashed again, and no run (the content did not change).
    assert isinstance(touched, SkipReason) and hashed == ["2021-03-31.csv"] * 2


# --- the warehouse: a file that cannot be used says what is wrong and how to rebuild ------------------


REBUILD_ADVICE = "and Materialize all; the record files are the source of truth"


def test_a_truncated_warehouse_fails_saying_how_to_rebuild_it(platform_env, shipped_cohort):
    copy_warehouse(shipped_cohort["warehouse"], platform_env["warehouse"])
    warehouse = platform_env["warehouse"]
    with open(warehouse, "r+b") as handle:
        handle.truncate(warehouse.stat().st_size // 2)
    result = run_cohort(platform_env)
    assert not result.success
    message = failure_message(result)
    assert f"The warehouse {warehouse} cannot be opened as a DuckDB database (IO Error: Could not read enough bytes" in message
    assert f"it is damaged or not a warehouse. To rebuild it, delete {warehouse} (and {warehouse}.wal beside it, if any) {REBUILD_ADVICE}" in message
    assert "Traceback" not in failure_first_lines(result).popitem()[1]


def open_warehouse(database: str) -> None:
    """Attach the warehouse once, as every read and write of the IO manager does first."""
    warehouse = Warehouse(database)
    try:
        with warehouse.attached():
            pass
    finally:
        warehouse.close()


def test_a_folder_for_a_warehouse_is_refused(tmp_path: Path):
    (tmp_path / "lms.duckdb").mkdir()
    with pytest.raises(Failure, match="is a folder; LMS_DUCKDB_PATH names the DuckDB file"):
        open_warehouse(str(tmp_path / "lms.duckdb"))


def test_a_mistyped_warehouse_path_creates_nothing(tmp_path: Path, shipped_cohort):
    with pytest.raises(Failure, match=r"does not exist, nor does its folder .*wherehouse: is LMS_DUCKDB_PATH mistyped\?"):
        open_warehouse(str(tmp_path / "dta" / "wherehouse" / "lms.duckdb"))
    assert not (tmp_path / "dta").exists()
    warehouse = tmp_path / "warehouse" / "lms.duckdb"
    copy_warehouse(shipped_cohort["warehouse"], warehouse)
    before = table_digests(warehouse)
    with pytest.raises(Failure, match=r"lms\.duckbd does not exist, but its folder holds lms\.duckdb: is the file name mistyped\?"):
        open_warehouse(str(warehouse.parent / "lms.duckbd"))
    assert not (warehouse.parent / "lms.duckbd").exists() and table_digests(warehouse) == before
    # The default layout's missing warehouse/ folder (a fresh clone) is still created on first use.
    (tmp_path / "fresh").mkdir()
    open_warehouse(str(tmp_path / "fresh" / "warehouse" / "lms.duckdb"))
    assert (tmp_path / "fresh" / "warehouse" / "lms.duckdb").is_file()


def test_a_foreign_duckdb_file_is_refused_and_left_as_it_was(tmp_path: Path):
    foreign = tmp_path / "shop.duckdb"
    with duckdb.connect(str(foreign)) as connection:
        connection.execute("CREATE SCHEMA sales; CREATE TABLE sales.orders AS SELECT 1 AS id")
    before = foreign.read_bytes()
    with pytest.raises(Failure, match=r"is a DuckDB database but not this platform's warehouse \(it has schema\(s\) sales;"):
        open_warehouse(str(foreign))
    assert foreign.read_bytes() == before


def test_a_warehouse_this_user_may_not_write_is_refused(tmp_path: Path, shipped_cohort, monkeypatch: pytest.MonkeyPatch):
    """Permissions do not stop root (CI may run as root), so the refusal is exercised through the access check."""
    warehouse = tmp_path / "warehouse" / "lms.duckdb"
    copy_warehouse(shipped_cohort["warehouse"], warehouse)
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != warehouse)
    with pytest.raises(Failure, match=r"cannot be read and written by this user \(its permissions\)"):
        open_warehouse(str(warehouse))


def test_an_unforeseen_fault_in_reading_a_record_file_names_the_file(study_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """Whatever goes wrong inside the reader (here Polars itself) is the file's error, never a traceback."""

    def broken(*args, **kwargs):
        raise RuntimeError("reader crashed")

    monkeypatch.setattr(pl, "read_csv", broken)
    with pytest.raises(RecordFileError, match=r"^response\.csv: cannot be read \(RuntimeError: reader crashed\)$"):
        validation.read_raw(study_dir / "response.csv", schemas.RESPONSE)
