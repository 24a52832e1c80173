"""The run executor: Dagster's in-process executor, plus a watch over the run while it waits for the "duckdb" pool.

Waiting for a pool slot, Dagster's in-process loop only waits: it says so once at DEBUG, never looks at who
holds the slot, and ignores SIGINT and SIGTERM, which it handles only when a step starts. While this run has
steps queued for the pool, a watcher thread

- frees the slot of a holder that is dead, ended or deleted (``lms_assets.recovery``) and says so;
- names a live holder once, and a holder it cannot check together with the one command that frees it;
- on SIGINT or SIGTERM, marks this run canceled, frees its claims and ends the process. No step is running
  then (the step would have taken the signal), so no table is being written.

It also closes the warehouse as each step ends (``resources.release_warehouse``): a step keeps one connection for
all its reads and writes, and another run's step may open the file as soon as this one's slot is free.

And it makes the wait a sleep. Dagster 1.13's ``InstanceConcurrencyContext.interval_to_next_pending_claim_check``
returns ``min([0, …])``, never more than 0, so its loop never sleeps: a run waiting for the slot spun one core at
100 % until it got it, and on a 2-core machine took that core from the run holding the slot (two CLI runs of
``survival_summary`` started together: 29 CPU s for 14 s of work). ``_PacedClaims`` returns the time to the next
due claim check instead; the checks themselves are Dagster's, at the same moments.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import cast

from dagster import ExecutorDefinition, InitExecutorContext, in_process_executor
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.execute_plan import inner_plan_execution_iterator
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.base import Executor
from dagster._core.executor.in_process import InProcessExecutor
from dagster._utils.interrupts import check_captured_interrupt
from dagster._utils.timing import time_execution_scope
from dagster_shared.utils.timing import format_duration

from lms_assets import recovery
from lms_assets.defs.constants import DUCKDB_POOL
from lms_assets.defs.resources import release_warehouse

POLL_SECONDS = 2.0
INTERRUPTED_EXIT_CODE = 130


class _PoolWatch(threading.Thread):
    def __init__(self, context: PlanOrchestrationContext):
        super().__init__(name="lms-pool-watch", daemon=True)
        self.context = context
        self.instance = context.instance
        self.run_id = context.run_id
        self.stopped = threading.Event()
        self.named: set[tuple[str, str]] = set()
        self.failures: set[str] = set()

    def waiting(self) -> bool:
        info = self.instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
        return any(p.run_id == self.run_id and p.assigned_timestamp is None for p in info.pending_steps)

    def run(self) -> None:
        while not self.stopped.wait(POLL_SECONDS):
            try:
                if self.waiting():
                    self.look_at_holders()
                    # A signal taken outside a step stays unhandled: the run is waiting, not writing.
                    if check_captured_interrupt() and self.waiting():
                        self.cancel()
            except Exception as err:  # the watch must never take the run down with it; said once per kind of error
                if repr(err) not in self.failures:
                    self.failures.add(repr(err))
                    self.context.log.warning(f"pool watch: {err!r}")

    def look_at_holders(self) -> None:
        for claim in recovery.pool_claims(self.instance, DUCKDB_POOL):
            if claim.run_id == self.run_id or not claim.holds_slot:
                continue
            if claim.stale:
                recovery.free_run(self.instance, claim.run_id, claim.detail)
                self.context.log.warning(
                    f"Freed the {DUCKDB_POOL} pool slot held by run {claim.run_id} (step {', '.join(claim.steps)}): "
                    f"{claim.detail}; it is marked failed if it was in progress."
                )
            elif (claim.run_id, claim.state) not in self.named:
                self.named.add((claim.run_id, claim.state))
                if claim.state == "alive":
                    self.context.log.info(
                        f"Waiting for run {claim.run_id} (step {', '.join(claim.steps)}), which holds the {DUCKDB_POOL} pool slot: {claim.detail}."
                    )
                else:
                    self.context.log.warning(
                        f"Waiting for run {claim.run_id} (step {', '.join(claim.steps)}), which holds the {DUCKDB_POOL} pool slot; "
                        f"{claim.detail}. If it is not running, free its slot with: {recovery.FREE_COMMAND.format(run_id=claim.run_id)}"
                    )

    def cancel(self) -> None:
        run = self.instance.get_run_by_id(self.run_id)
        if run is not None and not run.is_finished:
            self.instance.report_run_canceled(run, f"Interrupted while waiting for the {DUCKDB_POOL} pool; no step had started.")
        self.instance.event_log_storage.free_concurrency_slots_for_run(self.run_id)
        os._exit(INTERRUPTED_EXIT_CODE)


class PoolWatchingExecutor(Executor):
    """Runs the plan with ``inner`` (a ``PacedInProcessExecutor``) while a ``_PoolWatch`` looks after the pool."""

    def __init__(self, inner: Executor):
        self.inner = inner

    @property
    def retries(self) -> RetryMode:
        return self.inner.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self.inner.step_dependency_config

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        watch = _PoolWatch(plan_context)
        watch.start()
        try:
            for event in self.inner.execute(plan_context, execution_plan):
                # Dagster frees the step's pool slot once this event is handed on: the warehouse must be closed first.
                if event.is_step_success or event.is_step_failure or event.is_step_up_for_retry:
                    release_warehouse()
                yield event
        finally:
            watch.stopped.set()


class _PacedClaims(InstanceConcurrencyContext):
    """Dagster's claim bookkeeping, telling its loop how long to sleep before the next due claim check."""

    def interval_to_next_pending_claim_check(self) -> float:
        due = [self._pending_timeouts[step] for step in self._pending_claims if step in self._pending_timeouts]
        return max(0.0, min(due) - time.time()) if due else 0.0


def _paced_iterator(job_context: PlanExecutionContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
    """Dagster's ``inprocess_execution_iterator`` with ``_PacedClaims``."""
    with _PacedClaims(job_context.instance, job_context.dagster_run) as claims:
        yield from inner_plan_execution_iterator(job_context, execution_plan, claims)


class PacedInProcessExecutor(InProcessExecutor):
    """Dagster's in-process executor whose wait for a pool slot sleeps (``_PacedClaims``); the events, the
    recorded pid that ``recovery`` reads included, are those of ``InProcessExecutor.execute``."""

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        pid, step_keys = os.getpid(), execution_plan.step_keys_to_execute
        yield DagsterEvent.engine_event(
            plan_context, f"Executing steps in process (pid: {pid})", event_specific_data=EngineEventData.in_process(pid, step_keys)
        )
        with time_execution_scope() as timer:
            yield from ExecuteRunWithPlanIterable(
                execution_plan=plan_context.execution_plan,
                iterator=_paced_iterator,
                execution_context_manager=PlanExecutionContextManager(
                    job=plan_context.job,
                    retry_mode=plan_context.retry_mode,
                    execution_plan=plan_context.execution_plan,
                    run_config=plan_context.run_config,
                    dagster_run=plan_context.dagster_run,
                    instance=plan_context.instance,
                    raise_on_error=plan_context.raise_on_error,
                    output_capture=plan_context.output_capture,
                    step_dependency_config=self.step_dependency_config,
                ),
            )
        yield DagsterEvent.engine_event(
            plan_context,
            f"Finished steps in process (pid: {pid}) in {format_duration(timer.millis)}",
            event_specific_data=EngineEventData.in_process(pid, step_keys),
        )


# Dagster's in-process executor always has its creation function; the attribute's type allows None.
_in_process_creation = cast("Callable[[InitExecutorContext], Executor]", in_process_executor.executor_creation_fn)


def _paced(dagster_executor: Executor) -> PacedInProcessExecutor:
    """Dagster's in-process executor as its configuration made it, made again as a ``PacedInProcessExecutor``."""
    assert isinstance(dagster_executor, InProcessExecutor)
    return PacedInProcessExecutor(dagster_executor.retries, dagster_executor.step_dependency_config, dagster_executor.marker_to_close)


pool_watching_in_process_executor = ExecutorDefinition(
    name="in_process",
    config_schema=in_process_executor.config_schema.as_field(),
    requirements=in_process_executor.get_requirements,
    executor_creation_fn=lambda init_context: PoolWatchingExecutor(_paced(_in_process_creation(init_context))),
    description=(
        "Dagster's in-process executor, plus a watch that frees dead runs' pool slots and lets a waiting run be interrupted; "
        "a run waiting for a pool slot sleeps between claim checks instead of spinning a core."
    ),
)
