"""Concurrent runs, crashed runs and locks against one DuckDB warehouse.

DuckDB lets one process at a time open the file for writing. Every read and write of a run attaches the file
for that one operation (``defs/warehouse.py``), so runs interleave their operations; one that finds the file
locked sleeps until it is free, naming the holder, and fails after the IO manager's ``lock_wait_seconds``.
Each table is replaced in one transaction, so a run killed mid-write leaves the previous complete table (or
the new complete one), never a part.
"""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
import psutil
import pytest
from dagster import DagsterInstance, materialize

from lms_assets.definitions import build_defs
from lms_assets.defs.resources import WarehouseIOManager
from lms_assets.infra import recovery
from lms_assets_tests.conftest import COHORT, REPO, allow_exclusion, copy_warehouse, defs_for, run_assets, runnable_selection
from lms_assets_tests.dagster_process import instance_home, venv_bin
from lms_assets_tests.records.test_validation import failure_message, table_digests

LOCK_ERROR = "could not set lock"


def cli_env(home: Path, study: Path, warehouse: Path, outputs: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LMS_DATA_DIR": str(study),
        "LMS_DUCKDB_PATH": str(warehouse),
        "LMS_OUTPUT_DIR": str(outputs),
    }


def materialize_command(selection: str) -> list[str]:
    """The README's headless run."""
    return [venv_bin("dagster"), "asset", "materialize", "-m", "lms_assets.definitions", "--select", selection]


@contextmanager
def instance_at(home: Path) -> Iterator[DagsterInstance]:
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance


def prepared_home(folder: Path) -> Path:
    """A fresh DAGSTER_HOME prepared once, as `make run` and `make materialize` do before any run (`make instance`,
    which runs ``recovery.main``; its step in this process here, sparing a Python start with Dagster's imports)."""
    home = instance_home(folder)
    with instance_at(home) as instance:
        recovery.prepare_instance(instance)
    return home


# A process outside Dagster that holds the warehouse open, as an analyst's session would, until it is killed.
HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    connection = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read-only")
    print("open", flush=True)
    time.sleep(3600)
    """
)


@contextmanager
def holding(database: Path, mode: str = "read-write") -> Iterator[subprocess.Popen]:
    """Another process with ``database`` open for as long as the block runs."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(database), mode], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=30)


def another_process_can_write(database: Path) -> bool:
    opened = "import sys, duckdb; duckdb.connect(sys.argv[1]).close()"
    return subprocess.run([sys.executable, "-c", opened, str(database)], capture_output=True, timeout=120).returncode == 0


# --- the file is held for one operation at a time -------------------------------------------------


def test_between_two_reads_or_writes_the_warehouse_is_free_for_another_process(tmp_path: Path):
    """The IO manager holds the file only while it reads or writes, never for the rest of a step or run."""
    database = tmp_path / "lms.duckdb"
    with WarehouseIOManager(database=str(database)).yield_for_execution(None) as tables:
        tables.stage("scores", pl.DataFrame({"score": [1, 2]}))
        assert another_process_can_write(database)
        assert tables.published_values("scores", "score") is None  # staged, not published
        assert another_process_can_write(database)
        with tables.warehouse.attached():
            assert not another_process_can_write(database)


@pytest.mark.slow
def test_a_run_finding_the_warehouse_locked_sleeps_names_the_holder_and_finishes_once_it_is_free(platform_env, tmp_path: Path):
    """A headless run whose write meets another process's lock: it says once who holds the file, uses under 10 %
    of a core while it waits (its whole process tree, the run's own CPU time, whatever else the machine runs), and
    writes its table as soon as the holder lets go."""
    warehouse = platform_env["warehouse"]
    warehouse.parent.mkdir(parents=True)
    duckdb.connect(str(warehouse)).close()
    env = cli_env(prepared_home(tmp_path / "home"), platform_env["data"], warehouse, platform_env["outputs"])
    with holding(warehouse) as holder:
        run = subprocess.Popen(materialize_command("raw_patients"), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = []
        for line in run.stdout:
            seen.append(line)
            if "Waiting for the warehouse" in line:
                break
        assert f"process {holder.pid} (" in seen[-1], "".join(seen)[-3000:]
        tree = psutil.Process(run.pid)
        cpu = lambda: sum(sum(p.cpu_times()[:2]) for p in [tree, *tree.children(recursive=True)])  # noqa: E731
        start_cpu, start = cpu(), time.monotonic()
        time.sleep(5)
        waited_cpu, waited = cpu() - start_cpu, time.monotonic() - start
        assert run.poll() is None, "the run should still be waiting"
    rest = run.communicate(timeout=300)[0]

    assert waited_cpu / waited < 0.10, f"{waited_cpu:.2f} CPU s in {waited:.1f} s of waiting"
    assert run.returncode == 0, "".join(seen)[-3000:] + rest[-3000:]
    assert "".join(seen).count("Waiting for the warehouse") == 1 and "Waiting for the warehouse" not in rest
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM raw_patients").fetchone()[0] == 19


@pytest.mark.slow
def test_a_warehouse_held_open_past_the_wait_fails_the_step_naming_the_holder(platform_env):
    warehouse = platform_env["warehouse"]
    assert run_assets("raw_patients", paths=platform_env).success
    defs = defs_for(platform_env)
    impatient = {**defs.resources, "io_manager": WarehouseIOManager(database=str(warehouse), lock_wait_seconds=1)}
    with holding(warehouse, "read-only") as analyst:  # as the README shows
        result = materialize([defs.get_assets_def("raw_patients")], resources=impatient, raise_on_error=False)

    assert not result.success
    message = failure_message(result)
    assert f"locked by process {analyst.pid}" in message and "kept it open for 1 s" in message
    assert "Close that connection" in message and "open a copy" in message


# --- two runs at once --------------------------------------------------------------------------


# What the two concurrent runs build: the ingest, the quarantine, the cohort and one summary with its
# printed-value checks. Each writes the warehouse table by table, and the two runs' writes interleave on DuckDB's
# file lock (defs/warehouse.py), as a whole-graph run's do; the charts, report and R cross-check add steps of the same kind,
# not another way to collide. Whole-graph runs stay in the suite: the UI test's first build (dagster dev),
# the benchmark's smoke run (CLI) and the session's shipped_run (in process).
CONCURRENT_TARGET = "survival_summary"


@pytest.mark.slow
def test_two_runs_launched_together_both_finish(platform_env, tmp_path: Path):
    # The instance is created first, as `make materialize` does: two first runs on a fresh DAGSTER_HOME
    # would both create Dagster's SQLite schema, and one would fail ("table runs already exists").
    env = cli_env(prepared_home(tmp_path / "home"), platform_env["data"], platform_env["warehouse"], platform_env["outputs"])
    defs = build_defs()
    keys = runnable_selection(defs, CONCURRENT_TARGET)
    selection = [key.to_user_string() for key in keys]
    # A layer's tables are made in one step, named after the layer (the ingest, the ADaM datasets, the summary tables).
    steps = {defs.resolve_asset_graph().get(key).assets_def.op.name for key in keys}
    runs = [
        subprocess.Popen(materialize_command(",".join(selection)), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=900)[0] for run in runs]

    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output[-3000:]
        assert "RUN_SUCCESS" in output
        assert LOCK_ERROR not in output.lower()
        # Found anywhere in the output: the two streams (stdout, stderr) share the pipe, so a line may run into another.
        succeeded = set(re.findall(r" - (\w+) - STEP_SUCCESS - ", output))
        assert steps <= succeeded, f"{sorted(steps - succeeded)} never succeeded:\n{output[-3000:]}"
    with duckdb.connect(str(platform_env["warehouse"]), read_only=True) as connection:
        tables = [r[0] for r in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        rows = {name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
    assert {"raw_patients", "quarantine", "adsl", "adtte", "survival_curves", "survival_summary"} <= set(rows)
    assert rows["adsl"] == 19


# --- crashes -----------------------------------------------------------------------------------

WRITE_AND_DIE = textwrap.dedent(
    """
    import os, signal, sys
    import duckdb, polars as pl
    from lms_assets.defs.warehouse import replace_table

    database, die_at = sys.argv[1], sys.argv[2]

    class DyingConnection:
        # Dies (SIGKILL, no clean-up of any kind) at one point of the IO manager's write.
        def __init__(self, connection):
            self.connection = connection
        def execute(self, sql, *args):
            if die_at == "before-commit" and sql == "COMMIT":
                os.kill(os.getpid(), signal.SIGKILL)
            return self.connection.execute(sql, *args)
        def register(self, *args):
            return self.connection.register(*args)
        def unregister(self, *args):
            if die_at == "after-commit":
                os.kill(os.getpid(), signal.SIGKILL)
            return self.connection.unregister(*args)

    new = pl.DataFrame({"SUBJID": list(range(1, 1001)), "AVAL": [float(i) for i in range(1000)]})
    connection = duckdb.connect(database)
    replace_table(DyingConnection(connection), "main", "adtte", new)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(("die_at", "expected_rows"), [("before-commit", 3), ("after-commit", 1000)])
def test_a_process_killed_while_replacing_a_table_leaves_a_complete_table(tmp_path: Path, die_at: str, expected_rows: int):
    """Killed inside the transaction: the old table. Killed after COMMIT, before the file is checkpointed:
    the new table, replayed from DuckDB's write-ahead log when the file is next opened, read-only or not."""
    database = tmp_path / "lms.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("CREATE TABLE adtte AS SELECT * FROM (VALUES (1, 0.5), (2, 1.5), (3, 2.5)) t(SUBJID, AVAL)")

    died = subprocess.run([sys.executable, "-c", WRITE_AND_DIE, str(database), die_at], capture_output=True, text=True, timeout=120)

    assert died.returncode == -signal.SIGKILL, died.stderr
    if die_at == "after-commit":
        assert Path(f"{database}.wal").exists(), "the committed table should still be only in the write-ahead log"
    with duckdb.connect(str(database), read_only=True) as connection:
        table = connection.execute("SELECT * FROM adtte ORDER BY SUBJID").pl()
    assert table.height == expected_rows
    assert table["AVAL"].to_list() == ([0.5, 1.5, 2.5] if expected_rows == 3 else [float(i) for i in range(1000)])
    with duckdb.connect(str(database)) as connection:  # the next run opens it for writing
        assert connection.execute("SELECT count(*) FROM adtte").fetchone()[0] == expected_rows


def kill_at(table: str, env: dict[str, str]) -> list[str]:
    """Run the cohort headless and SIGKILL it as soon as ``table`` has been computed (its write begins).

    Returns the tables written before the kill."""
    run = subprocess.Popen(
        materialize_command(",".join(f"*{name}" for name in COHORT)),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    written, seen = [], []
    for line in run.stdout:
        seen.append(line)
        # A step makes several tables: each line names the output, which is the table.
        if " - HANDLED_OUTPUT - Handled output " in line:
            written.append(line.split('Handled output "', 1)[1].split('"', 1)[0])
        if f' - STEP_OUTPUT - Yielded output "{table}"' in line:
            run.kill()
            break
    run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL, "".join(seen)[-3000:]
    return written


@pytest.mark.slow
def test_runs_killed_mid_write_leave_every_table_complete(platform_env, shipped_cohort, tmp_path: Path):
    """Old tables from the shipped study; new ones from a changed study; a run killed at several points."""
    data, warehouse = platform_env["data"], platform_env["warehouse"]
    copy_warehouse(shipped_cohort["warehouse"], warehouse)
    old = table_digests(warehouse)
    old_file = tmp_path / "old.duckdb"
    old_file.write_bytes(warehouse.read_bytes())

    patients = data / "patients.csv"
    patients.write_text(patients.read_text().replace("\n12,60,Male,", "\n12,160,Male,"))
    # The bad row must flow through as an exclusion, so that every cohort table has a new complete version.
    allow_exclusion(data)
    warehouse.unlink()
    assert run_assets(*COHORT, paths=platform_env).success
    new = table_digests(warehouse)
    changed = {name for name in old if old[name] != new[name]}
    assert {"raw_patients", "quarantine", "adsl", "adrs", "adtte", "adae"} <= changed

    for step in ("raw_patients", "quarantine", "adtte"):
        warehouse.write_bytes(old_file.read_bytes())
        home = instance_home(tmp_path / f"home-{step}")
        written = kill_at(step, cli_env(home, data, warehouse, platform_env["outputs"]))

        after = table_digests(warehouse)  # opens the file as a reader would, replaying any write-ahead log
        assert set(after) == set(old), step
        for name, digest in after.items():
            assert digest in {old[name], new[name]}, f"{name} is neither its old nor its new complete version (killed at {step})"
        for name in written:
            assert after[name] == new[name], f"{name} was written before the kill at {step}"

    # The next run, on the warehouse the last crash left, completes it.
    assert run_assets(*COHORT, paths=platform_env).success
    assert table_digests(warehouse) == new
