"""Concurrent runs and crashed runs against one DuckDB warehouse.

DuckDB lets one process at a time open the file for writing. The instance configuration (dagster.yaml,
which `make run` copies into DAGSTER_HOME) gives the "duckdb" pool one slot, enforced per step; every step
that opens the warehouse is in that pool, so steps of concurrent runs take turns instead of failing with
"could not set lock on file". Each table is replaced in one transaction, so a run killed mid-write leaves
the previous complete table (or the new complete one), never a part.
"""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance
from dagster._core.instance.config import PoolGranularity

from lms_assets.defs.constants import DUCKDB_POOL
from lms_assets_tests.conftest import REPO, run_assets
from lms_assets_tests.dagster_process import instance_home, venv_bin
from lms_assets_tests.test_bad_input import table_digests

COHORT = ("adsl", "adrs", "adtte", "adae")
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


# --- configuration -----------------------------------------------------------------------------


def test_the_instance_configuration_gives_the_duckdb_pool_one_slot_per_step(tmp_path: Path):
    with DagsterInstance.from_config(str(instance_home(tmp_path / "home"))) as instance:
        pools = instance.get_concurrency_config().pool_config
        monitoring = instance.run_monitoring_settings
    assert pools.default_pool_limit == 1
    # "op": enforced by every run's executor, so also for `dagster asset materialize`, which skips the queue.
    assert pools.pool_granularity == PoolGranularity.OP
    assert monitoring["enabled"] and monitoring["free_slots_after_run_end_seconds"] > 0


def test_every_step_that_opens_the_warehouse_is_in_the_duckdb_pool():
    """An asset check or chart that loads a table opens the file too; outside the pool it collides with a writer."""
    from lms_assets.definitions import build_defs

    outside = set()
    for definition in build_defs().resolve_asset_graph().assets_defs:
        node = definition.node_def
        loads = any(not i.dagster_type.is_nothing for i in node.input_defs)
        stores = any(not node.output_def_named(o).dagster_type.is_nothing for o in definition.keys_by_output_name)
        if (loads or stores) and node.pool != DUCKDB_POOL:
            outside.add(node.name)
    assert not outside, f"steps that open the warehouse outside the {DUCKDB_POOL} pool: {', '.join(sorted(outside))}"


# --- two runs at once --------------------------------------------------------------------------


@pytest.mark.slow
def test_two_full_runs_launched_together_both_finish(platform_env, tmp_path: Path):
    env = cli_env(instance_home(tmp_path / "home"), platform_env["data"], platform_env["warehouse"], platform_env["outputs"])
    runs = [
        subprocess.Popen(materialize_command("*"), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=900)[0] for run in runs]

    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output[-3000:]
        assert "RUN_SUCCESS" in output
        assert LOCK_ERROR not in output.lower()
    # The runs took turns on the pool rather than relying on luck.
    assert any("Step blocked by limit for pool duckdb" in output for output in outputs)
    with duckdb.connect(str(platform_env["warehouse"]), read_only=True) as connection:
        tables = [r[0] for r in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        rows = {name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
    assert {"adsl", "adtte", "figure_audit", "quarantine", "survival_summary"} <= set(rows)
    assert rows["adsl"] == 19


# --- crashes -----------------------------------------------------------------------------------

WRITE_AND_DIE = textwrap.dedent(
    """
    import os, signal, sys
    import duckdb, polars as pl
    from dagster import build_output_context
    from dagster._core.storage.db_io_manager import TableSlice
    from lms_assets.defs.resources import AtomicPolarsTypeHandler

    database, die_at = sys.argv[1], sys.argv[2]

    class DyingConnection:
        # Dies (SIGKILL, no clean-up of any kind) at one point of the handler's write.
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
    AtomicPolarsTypeHandler().handle_output(
        build_output_context(), TableSlice(table="adtte", schema="main", database=database), new, DyingConnection(connection)
    )
    """
)


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


def kill_at(step: str, env: dict[str, str]) -> list[str]:
    """Run the cohort headless and SIGKILL it as soon as ``step`` has computed its output (its write begins).

    Returns the steps whose table had been written before the kill."""
    run = subprocess.Popen(
        materialize_command(",".join(f"*{name}" for name in COHORT)),
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    written, seen = [], []
    for line in run.stdout:
        seen.append(line)
        if " - HANDLED_OUTPUT - " in line:
            written.append(line.split(" - ")[-3].strip())
        if f" - {step} - STEP_OUTPUT - " in line:
            run.kill()
            break
    run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL, "".join(seen)[-3000:]
    return written


@pytest.mark.slow
def test_runs_killed_mid_write_leave_every_table_complete(platform_env, tmp_path: Path):
    """Old tables from the shipped study; new ones from a changed study; a run killed at several points."""
    data, warehouse = platform_env["data"], platform_env["warehouse"]
    assert run_assets(*COHORT).success
    old = table_digests(warehouse)
    old_file = tmp_path / "old.duckdb"
    old_file.write_bytes(warehouse.read_bytes())

    patients = data / "patients.csv"
    patients.write_text(patients.read_text().replace("\n12,60,Male,", "\n12,160,Male,"))
    # The bad row must flow through as an exclusion, so that every cohort table has a new complete version.
    (data / "study.toml").write_text("exclude_quarantined_rows = true\n")
    warehouse.unlink()
    assert run_assets(*COHORT).success
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
    assert run_assets(*COHORT).success
    assert table_digests(warehouse) == new
