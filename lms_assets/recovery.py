"""The Dagster instance's housekeeping: create it once, and free pool slots that runs which died still hold.

A run killed outright (SIGKILL, out of memory) leaves its "duckdb" pool claims behind: the local run
launcher cannot tell that its process is gone, and run monitoring frees only the slots of runs that ended.
Every later run would wait behind it for ever. A run records its process id when it starts ("Executing steps
in process (pid: N)"); on an instance whose storage is on this machine (SQLite), a run still marked in
progress whose process is gone, or started after the run did, is dead: it is marked failed and its claims are
freed. Claims of runs that ended or were deleted are freed too. Where that cannot be decided (another machine's
storage, no /proc), nothing is freed and the run is named with the command below.

    .venv/bin/python -m lms_assets.recovery            # create the instance once, free what dead runs hold
    .venv/bin/python -m lms_assets.recovery --free-run RUN_ID   # free one run's claims, marking it failed
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from dagster import DagsterInstance
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRun
from dagster._utils.concurrency import ClaimedSlotInfo, PendingStepInfo

from lms_assets.defs.constants import DUCKDB_POOL as POOL

FREE_COMMAND = ".venv/bin/python -m lms_assets.recovery --free-run {run_id}"


@dataclass(frozen=True)
class Claim:
    """A run that holds or waits for slots of the pool, and what is known of its process."""

    run_id: str
    steps: tuple[str, ...]
    holds_slot: bool
    state: str  # "alive", "dead", "ended", "deleted" or "unknown"
    detail: str

    @property
    def stale(self) -> bool:
        return self.state in {"dead", "ended", "deleted"}


def prepare_instance(instance: DagsterInstance) -> None:
    """Create the instance's storage (runs, event log index, schedules) once, before any run.

    Two first runs on a fresh DAGSTER_HOME otherwise both create Dagster's SQLite schema, and one fails
    with "table runs already exists".
    """
    instance.get_runs(limit=1)
    instance.event_log_storage.get_concurrency_keys()
    instance.all_instigator_state()


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), or None if it does not exist or has exited (a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
    except (OSError, StopIteration):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, fields start at the 3rd (state)
    if fields[0] in {"Z", "X"}:
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _local_storage(instance: DagsterInstance) -> bool:
    return type(instance.run_storage).__name__.startswith("Sqlite") and Path("/proc/stat").exists()


def process_state(instance: DagsterInstance, run: DagsterRun) -> tuple[str, str]:
    """("alive" | "dead" | "ended" | "unknown", why) for a run, from its status and its recorded process."""
    if run.is_finished:
        return "ended", f"it ended ({run.status.value})"
    records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=20).records
    started = next(
        (
            (int(cast(int, r.event_log_entry.dagster_event.engine_event_data.metadata["pid"].value)), r.event_log_entry.timestamp)
            for r in records
            if r.event_log_entry.dagster_event and "pid" in (r.event_log_entry.dagster_event.engine_event_data.metadata or {})
        ),
        None,
    )
    if started is None:
        return "unknown", "it has not recorded its process yet"
    pid, since = started
    if not _local_storage(instance):
        return "unknown", f"its process {pid} may be on another machine"
    began = _process_start(pid)
    # A process started after the run began has only been given the dead one's id.
    if began is None or began > since + 1:
        return "dead", f"its process {pid} is gone"
    return "alive", f"its process {pid} is running"


def pool_claims(instance: DagsterInstance, pool: str = POOL) -> list[Claim]:
    """Every run with slots claimed or steps waiting in ``pool``, holders first."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    # A queued step that has been assigned the slot counts against the limit until its run claims it.
    holders = {s.run_id for s in info.claimed_slots} | {p.run_id for p in info.pending_steps if p.assigned_timestamp is not None}
    steps: dict[str, list[str]] = {}
    slots: list[ClaimedSlotInfo | PendingStepInfo] = [*info.claimed_slots, *info.pending_steps]
    for slot in slots:
        if slot.step_key not in steps.setdefault(slot.run_id, []):
            steps[slot.run_id].append(slot.step_key)
    claims = []
    for run_id, keys in steps.items():
        run = instance.get_run_by_id(run_id)
        state, detail = ("deleted", "the run was deleted") if run is None else process_state(instance, run)
        claims.append(Claim(run_id, tuple(keys), run_id in holders, state, detail))
    return sorted(claims, key=lambda c: not c.holds_slot)


def free_run(instance: DagsterInstance, run_id: str, reason: str) -> None:
    """Free every slot and queued step ``run_id`` has in any pool; a run still marked in progress is marked failed."""
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.report_run_failed(run, f"Marked failed by lms_assets.recovery: {reason}")
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def free_stale_claims(instance: DagsterInstance, pool: str = POOL) -> list[str]:
    """Free the claims of runs that are dead, ended or deleted; one sentence per run freed, and one for a
    holder left in place whose process cannot be checked, with the command that frees it."""
    said = []
    for claim in pool_claims(instance, pool):
        if claim.stale:
            free_run(instance, claim.run_id, claim.detail)
            said.append(f"freed run {claim.run_id} ({pool} pool, steps {', '.join(claim.steps)}): {claim.detail}")
    for claim in pool_claims(instance, pool):  # who holds the slot now
        if claim.state == "unknown" and claim.holds_slot:
            said.append(
                f"run {claim.run_id} holds the {pool} slot ({', '.join(claim.steps)}); {claim.detail}. "
                f"If it is not running, free it with: {FREE_COMMAND.format(run_id=claim.run_id)}"
            )
    return said


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lms_assets.recovery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--free-run", metavar="RUN_ID", help="free this run's pool claims (marking it failed if in progress)")
    args = parser.parse_args(argv)
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set: there is no persistent instance to prepare", file=sys.stderr)
        return 2
    with DagsterInstance.get() as instance:
        prepare_instance(instance)
        if args.free_run:
            free_run(instance, args.free_run, "freed by hand")
            print(f"freed the pool claims of run {args.free_run}")
        for sentence in free_stale_claims(instance):
            print(sentence)
    return 0


if __name__ == "__main__":
    sys.exit(main())
