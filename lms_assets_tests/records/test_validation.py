"""Bad input: a bad file stops the load with a message naming it; a bad row is quarantined and stops the cohort
from being replaced (unless the study allows excluding it); nothing published is lost."""

import hashlib
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import polars as pl
import pytest

from lms_assets_tests.conftest import COHORT, allow_exclusion, copy_warehouse, run_assets


@contextmanager
def no_hang(seconds: float = 300.0) -> Iterator[None]:
    """Fail with ``TimeoutError`` after ``seconds`` instead of hanging: a regression that opens a named pipe blocks
    for ever. The limit is minutes, far above any run here even on a busy machine (SIGALRM: main thread only)."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds:g} s: blocked, e.g. reading a named pipe")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_cohort(paths):
    return run_assets(*COHORT, paths=paths)


def table_digests(warehouse, schema: str = "main") -> dict[str, str]:
    """A content digest of every published table (``main``; or of ``schema``), to prove nothing changed."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [r[0] for r in con.execute("select table_name from information_schema.tables where table_schema = ? order by 1", [schema]).fetchall()]
        return {n: hashlib.sha256(con.sql(f'select * from "{schema}"."{n}" order by all').pl().write_json().encode()).hexdigest() for n in names}


# A backslash before an ASCII punctuation character, as Markdown writes that character (CommonMark), or a code span:
# a run of backticks, its content and a run of exactly as many.
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])|(`+)(.*?)(?<!`)\2(?!`)")
# What a browser would fetch or render from a Markdown text: an image or a link, an HTML tag or an entity.
MARKUP = re.compile(r"(?<!\\)(!\[|\]\(|<[A-Za-z/!?]|&#?[A-Za-z0-9]+;)")


def assert_no_markup(texts) -> None:
    """No text (a failure, a check's description: rendered as Markdown by the UI) holds unescaped markup."""
    for text in texts:
        assert not MARKUP.search(text or ""), f"unescaped markup in {text!r}"


def as_shown(markdown: str) -> str:
    """``markdown`` as the UI shows it: each escaped character as itself, a code span's content as written."""
    return _MARKDOWN_ESCAPE.sub(_shown, markdown)


def _shown(match: re.Match) -> str:
    if match.group(1) is not None:
        return match.group(1)
    content = match.group(3)
    # CommonMark strips one space from each side of a code span's content that has both.
    return content[1:-1] if len(content) > 1 and content[0] == content[-1] == " " and content.strip() else content


def failure_messages(result) -> list[str]:
    """Every failure of the run's steps and their causes, as written (Markdown)."""
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "the run should have failed"
    messages = []
    for event in failures:
        error = event.step_failure_data.error
        while error is not None:
            messages.append(error.message)
            error = error.cause
    return messages


def failure_message(result) -> str:
    """Every failure of the run, as the UI shows it."""
    return as_shown("\n".join(failure_messages(result)))


# The line of a step's failure that says why one of its tables was held back (``gate.Held.line``).
HELD_BACK = re.compile(r"^(?P<table>\w+) not published: ")


def failure_first_lines(result) -> dict[str, str]:
    """Each table held back and the line of its step's failure that says why, as the UI shows it; a step that makes
    several tables (a layer's multi-asset) gives each held-back table a line of its own, its first table's first.
    For a failure that holds back no table (a bad file, a crash), the step's first line, by step key."""
    lines = {}
    for event in result.all_events:
        if event.is_step_failure:
            message = as_shown(event.step_failure_data.error.message).removeprefix("dagster._core.definitions.events.Failure: ")
            held = {m["table"]: line for line in message.splitlines() if (m := HELD_BACK.match(line))}
            lines.update(held or {event.step_key: message.splitlines()[0]})
    return lines


@pytest.fixture
def loaded(platform_env, shipped_cohort):
    """The shipped study's cohort in the test's own warehouse (a copy of the session's), with its digests before any damage."""
    copy_warehouse(shipped_cohort["warehouse"], platform_env["warehouse"])
    return platform_env, table_digests(platform_env["warehouse"])


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: (d / "patients.csv").unlink(), "patients.csv: file is missing"),
        (lambda d: (d / "response.csv").write_text(""), "response.csv: file is empty"),
        (
            lambda d: (d / "patients.csv").write_text((d / "patients.csv").read_text().replace("ecog,", "ps,", 1)),
            "patients.csv: missing column(s) ecog",
        ),
        (
            lambda d: (d / "adverse_events.csv").write_bytes((d / "adverse_events.csv").read_bytes() + b"3,Fatigue,9,\xff\xfe\n"),
            "adverse_events.csv: line 48 is not UTF-8",
        ),
        (lambda d: (d / "followup" / "March 2021.csv").write_text("x"), "must be named by their ISO cut date"),
    ],
    ids=["missing", "empty", "missing-column", "undecodable", "cut-not-a-date"],
)
def test_bad_file_fails_naming_it_and_keeps_the_warehouse(loaded, damage, expected):
    env, before = loaded
    damage(env["data"])
    result = run_cohort(env)
    assert not result.success
    assert expected in failure_message(result)
    assert table_digests(env["warehouse"]) == before


def test_bad_row_stops_the_cohort_naming_file_line_column_value_and_reason(loaded):
    env, before = loaded
    patients = env["data"] / "patients.csv"
    patients.write_text(patients.read_text().replace("\n12,60,Male,", "\n12,160,Male,"))
    result = run_cohort(env)
    assert not result.success
    first_lines = failure_first_lines(result)
    assert set(first_lines) == {"adsl", "adrs", "adtte", "adae"}
    assert first_lines["adsl"].startswith(
        "adsl not published: no_quarantined_rows: 2 quarantined problem(s) in 2 row(s): patients.csv line 13, column age, "
        "value '160': above the maximum 100; patient_allocations.csv line 13, column patient_id, value '12': patient is "
        "not among the valid rows of patients.csv. Correct the file(s)"
    )
    assert first_lines["adae"].startswith(
        "adae not published: no_quarantined_rows: 4 quarantined problem(s) in 4 row(s): patients.csv line 13, column age"
    )
    assert first_lines["adae"].endswith("in study.toml.")
    after = table_digests(env["warehouse"])
    for table in ("adsl", "adrs", "adtte", "adae"):
        assert after[table] == before[table], f"{table} was replaced although rows were quarantined"
    assert after["quarantine"] != before["quarantine"], "the quarantine itself is published: it is the record of the problem"


def test_with_exclusion_allowed_a_bad_row_is_left_out_and_good_rows_flow_on(loaded):
    env, _ = loaded
    allow_exclusion(env["data"])
    patients = env["data"] / "patients.csv"
    patients.write_text(patients.read_text().replace("\n12,60,Male,", "\n12,160,Male,"))
    result = run_cohort(env)
    assert result.success, failure_message(result)
    with duckdb.connect(str(env["warehouse"]), read_only=True) as con:
        quarantine = con.sql("select * from quarantine").pl()
        adsl = con.sql("select * from adsl").pl()
        adae = con.sql("select * from adae").pl()
    age = quarantine.filter(pl.col("file") == "patients.csv").row(0, named=True)
    assert (age["row"], age["column"], age["value"], age["reason"]) == (13, "age", "160", "above the maximum 100")
    # Patient 12's other rows refer to a patient who is no longer valid: quarantined too, not silently dropped.
    assert quarantine.filter((pl.col("file") == "adverse_events.csv") & (pl.col("value") == "12")).height == 3
    assert adsl.height == 18 and 12 not in adsl["SUBJID"].to_list()
    assert 12 not in adae["SUBJID"].to_list()
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert not checks[("quarantine", "no_quarantined_rows")].passed
    for table in ("adsl", "adrs", "adtte", "adae"):
        check = checks[(table, "no_quarantined_rows")]
        assert not check.passed and check.severity.value == "WARN"
        assert "patients.csv line 13, column age, value '160': above the maximum 100" in check.description
    adsl_event = next(e for e in result.all_events if e.is_step_materialization and e.asset_key.path == ["adsl"])
    assert adsl_event.step_materialization_data.materialization.metadata["patients_excluded"].value == 1
