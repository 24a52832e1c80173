"""Concurrent runs, crashed runs and locks against one DuckDB warehouse.

DuckDB lets one process at a time open the file for writing. The instance configuration (dagster.yaml,
which `make run` copies into DAGSTER_HOME) gives the "duckdb" pool one slot, enforced per step; every step
that opens the warehouse is in that pool, so steps of concurrent runs take turns instead of failing with
"could not set lock on file". Each table is replaced in one transaction, so a run killed mid-write leaves
the previous complete table (or the new complete one), never a part. A killed run's pool slot is freed by
the next run that waits for it; a run waiting for a live holder names it and stops on SIGTERM; a lock held
outside Dagster fails the step fast, naming the holder.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import duckdb
import polars as pl
import pytest
from dagster import DagsterInstance
from dagster._core.events import EngineEventData
from dagster._core.instance.config import PoolGranularity
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.test_utils import create_run_for_test

from lms_assets import recovery
from lms_assets.definitions import build_defs
from lms_assets.defs.constants import DUCKDB_POOL
from lms_assets_tests.conftest import COHORT, REPO, allow_exclusion, copy_warehouse, run_assets, runnable_selection
from lms_assets_tests.dagster_process import instance_home, venv_bin
from lms_assets_tests.test_bad_input import failure_message, table_digests

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
    which runs ``recovery.main``; its steps in this process here, sparing a Python start with Dagster's imports)."""
    home = instance_home(folder)
    with instance_at(home) as instance:
        recovery.prepare_instance(instance)
        assert recovery.free_stale_claims(instance) == []
    return home


def fake_run_holding_the_slot(instance: DagsterInstance, pid: int | None) -> str:
    """A run marked started that holds the pool's one slot, its recorded process ``pid`` (none when None)."""
    run = create_run_for_test(instance, job_name="holder", status=DagsterRunStatus.STARTED)
    if pid is not None:
        instance.report_engine_event(f"Executing steps in process (pid: {pid})", dagster_run=run, engine_event_data=EngineEventData.in_process(pid))
    instance.event_log_storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
    instance.event_log_storage.claim_concurrency_slot(DUCKDB_POOL, run.run_id, "holder_step")
    return run.run_id


def claimants(instance: DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
    return {s.run_id for s in info.claimed_slots} | {p.run_id for p in info.pending_steps}


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A live process to stand for a running run's process."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    yield process
    process.kill()
    process.wait(timeout=30)


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

    outside = set()
    for definition in build_defs().resolve_asset_graph().assets_defs:
        node = definition.node_def
        loads = any(not i.dagster_type.is_nothing for i in node.input_defs)
        stores = any(not node.output_def_named(o).dagster_type.is_nothing for o in definition.keys_by_output_name)
        if (loads or stores) and node.pool != DUCKDB_POOL:
            outside.add(node.name)
    assert not outside, f"steps that open the warehouse outside the {DUCKDB_POOL} pool: {', '.join(sorted(outside))}"


# --- one connection per step ------------------------------------------------------------------

OPEN_FOR_WRITING = "import sys, duckdb; duckdb.connect(sys.argv[1]).close()"


def another_process_can_write(database: Path) -> bool:
    return subprocess.run([sys.executable, "-c", OPEN_FOR_WRITING, str(database)], capture_output=True, timeout=120).returncode == 0


def test_the_executor_closes_the_warehouse_before_it_hands_on_the_end_of_a_step(tmp_path: Path):
    """A step's reads and writes share one connection; the run executor closes it when the step ends, before
    Dagster frees the step's pool slot for another run (which happens once the event has been handed on)."""
    from lms_assets.defs.executor import PoolWatchingExecutor
    from lms_assets.defs.resources import WarehouseIOManager

    database = tmp_path / "lms.duckdb"
    seen: list[tuple[str, bool]] = []

    class OneStep:
        """Dagster's in-process executor, reduced to one step that writes and reads the warehouse."""

        def execute(self, plan_context, execution_plan):
            with WarehouseIOManager(database=str(database), schema="main").yield_for_execution(None) as tables:
                tables.stage("scores", pl.DataFrame({"score": [1, 2]}))
                assert tables.published_values("scores", "score") is None  # staged, not published
                yield SimpleNamespace(name="STEP_OUTPUT", is_step_success=False, is_step_failure=False, is_step_up_for_retry=False)
                yield SimpleNamespace(name="STEP_SUCCESS", is_step_success=True, is_step_failure=False, is_step_up_for_retry=False)

    context = SimpleNamespace(instance=None, run_id="run", log=None)
    for event in PoolWatchingExecutor(OneStep()).execute(context, None):
        seen.append((event.name, another_process_can_write(database)))
    assert seen == [("STEP_OUTPUT", False), ("STEP_SUCCESS", True)]


def test_a_run_waiting_for_the_slot_sleeps_until_its_next_claim_check(tmp_path: Path, sleeper):
    """Dagster's own bookkeeping says "check again now" (≤ 0 s) while the claim is not due, so its loop spun a core
    for the whole wait; the executor's says how long until the claim is due. When Dagster fixes its method the
    first assertion fails, and ``_PacedClaims`` can go."""
    from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

    from lms_assets.defs.executor import _PacedClaims

    with instance_at(prepared_home(tmp_path / "home")) as instance:
        fake_run_holding_the_slot(instance, sleeper.pid)
        waiter = create_run_for_test(instance, job_name="waiter", status=DagsterRunStatus.STARTED)
        with InstanceConcurrencyContext(instance, waiter) as dagster_claims, _PacedClaims(instance, waiter) as paced:
            assert not dagster_claims.claim(DUCKDB_POOL, "adsl")
            assert dagster_claims.interval_to_next_pending_claim_check() <= 0
            refused_by = time.time()
            assert not paced.claim(DUCKDB_POOL, "adtte")
            interval = paced.interval_to_next_pending_claim_check()
            # The first retry is due 1 s after the refused claim (Dagster's INITIAL_INTERVAL_VALUE): what is left of it.
            assert refused_by + 1 - time.time() <= interval <= 1


# --- two runs at once --------------------------------------------------------------------------


# What the two concurrent runs build: the ingest, the quarantine, the cohort and one summary with its
# published-value checks (16 assets, 14 checks). Each writes the warehouse in many steps that the pool
# must interleave, as a whole-graph run does; the charts, report and R cross-check add steps of the same kind,
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
        succeeded = {line.split(" - ")[-3].strip() for line in output.splitlines() if " - STEP_SUCCESS - " in line}
        assert steps <= succeeded, sorted(steps - succeeded)
    # The runs took turns on the pool rather than relying on luck.
    assert any("Step blocked by limit for pool duckdb" in output for output in outputs)
    with duckdb.connect(str(platform_env["warehouse"]), read_only=True) as connection:
        tables = [r[0] for r in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        rows = {name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
    assert {"raw_patients", "quarantine", "adsl", "adrs", "adtte", "survival_curves", "survival_summary"} <= set(rows)
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


# --- stale claims, waiting, interrupts ---------------------------------------------------------


@pytest.mark.slow
def test_recovery_frees_the_claims_of_dead_runs_only_and_names_a_holder_it_cannot_check(tmp_path: Path, sleeper: subprocess.Popen):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    with instance_at(prepared_home(tmp_path / "home")) as instance:
        dead = fake_run_holding_the_slot(instance, int(gone.stdout))
        unknown = fake_run_holding_the_slot(instance, None)  # queued behind the dead one

        said = recovery.free_stale_claims(instance)

        assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
        assert claimants(instance) == {unknown}
        assert any(dead in s and "is gone" in s for s in said), said
        # The run that now holds the slot has recorded no process: it is named, with the one command that frees it.
        named = [s for s in said if unknown in s]
        assert len(named) == 1 and recovery.FREE_COMMAND.format(run_id=unknown) in named[0], said

        recovery.free_run(instance, unknown, "freed by hand")
        assert not claimants(instance)
        assert instance.get_run_by_id(unknown).status == DagsterRunStatus.FAILURE

        # A holder whose process runs is left alone.
        alive = fake_run_holding_the_slot(instance, sleeper.pid)
        assert recovery.free_stale_claims(instance) == []
        assert claimants(instance) == {alive}
        assert instance.get_run_by_id(alive).status == DagsterRunStatus.STARTED


@pytest.mark.slow
def test_the_next_run_frees_the_slot_a_killed_run_held_and_finishes(platform_env, tmp_path: Path):
    home = prepared_home(tmp_path / "home")
    env = cli_env(home, platform_env["data"], platform_env["warehouse"], platform_env["outputs"])
    killed = subprocess.Popen(materialize_command("raw_patients"), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in killed.stdout:
        if " - STEP_START - " in line:  # the step holds the pool's one slot
            killed.kill()
            break
    killed.wait(timeout=60)
    with instance_at(home) as instance:
        (dead_run,) = instance.get_runs()
        assert dead_run.status == DagsterRunStatus.STARTED and claimants(instance) == {dead_run.run_id}

    # Without make's recovery step: the waiting run frees the slot itself.
    after = subprocess.run(materialize_command("raw_patients"), cwd=REPO, env=env, capture_output=True, text=True, timeout=900)

    assert after.returncode == 0, after.stdout[-3000:] + after.stderr[-3000:]
    output = after.stdout + after.stderr
    assert f"Freed the duckdb pool slot held by run {dead_run.run_id}" in output
    with instance_at(home) as instance:
        assert instance.get_run_by_id(dead_run.run_id).status == DagsterRunStatus.FAILURE
        assert not claimants(instance)


@pytest.mark.slow
def test_a_run_waiting_for_a_live_holder_names_it_and_stops_on_sigterm(platform_env, tmp_path: Path, sleeper: subprocess.Popen):
    home = prepared_home(tmp_path / "home")
    with instance_at(home) as instance:
        holder = fake_run_holding_the_slot(instance, sleeper.pid)
    env = cli_env(home, platform_env["data"], platform_env["warehouse"], platform_env["outputs"])
    waiting = subprocess.Popen(materialize_command("raw_patients"), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in waiting.stdout:
        seen.append(line)
        if f"Waiting for run {holder}" in line:
            waiting.send_signal(signal.SIGTERM)
            break
    rest = waiting.communicate(timeout=120)[0]

    assert waiting.returncode == 130, "".join(seen)[-3000:] + rest[-3000:]
    assert f"its process {sleeper.pid} is running" in "".join(seen)
    with instance_at(home) as instance:
        runs = {r.run_id: r.status for r in instance.get_runs()}
        (waiter,) = set(runs) - {holder}
        assert runs[waiter] == DagsterRunStatus.CANCELED
        assert runs[holder] == DagsterRunStatus.STARTED
        assert claimants(instance) == {holder}, "the interrupted run's queued steps should be gone, the holder's slot kept"


# --- a lock held outside Dagster ---------------------------------------------------------------

ANALYST = textwrap.dedent(
    """
    import sys, time, duckdb
    connection = duckdb.connect(sys.argv[1], read_only=True)  # as the README shows
    print("open", flush=True)
    time.sleep(3600)
    """
)


@pytest.mark.slow
def test_a_warehouse_an_analyst_holds_open_fails_the_step_fast_naming_the_holder(platform_env):
    warehouse = platform_env["warehouse"]
    assert run_assets("raw_patients", paths=platform_env).success
    analyst = subprocess.Popen([sys.executable, "-c", ANALYST, str(warehouse)], stdout=subprocess.PIPE, text=True)
    try:
        assert analyst.stdout.readline().strip() == "open"
        result = run_assets("raw_patients", paths=platform_env)
    finally:
        analyst.kill()
        analyst.wait(timeout=30)

    assert not result.success
    message = failure_message(result)
    assert f"locked by process {analyst.pid}" in message
    assert "Close that connection" in message and "open a copy" in message
