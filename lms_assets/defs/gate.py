"""Write-audit-publish: an asset's blocking checks run in the step that makes it, on the candidate, before it is stored.

An asset that publishes through the gate declares its blocking checks as ``check_specs`` (``blocking=True``),
computes its candidate table, evaluates those checks on it with pure functions, and hands both to the gate:

- every selected result is yielded, so the checks show in the UI as usual;
- if a blocking check failed at ERROR, the candidate is written to ``staging.<asset>`` for inspection and no
  ``Output`` is yielded, so the IO manager never replaces ``main.<asset>``, which keeps its last good content, and
  nothing downstream runs from the candidate (a later partial run reads ``main.<asset>``, the last good table);
  the step then fails with ``Failure``, one line per table held back, each saying what failed;
- otherwise the ``Output`` is yielded and the IO manager replaces ``main.<asset>`` (dropping any stale
  ``staging.<asset>`` in the same transaction).

A one-asset step returns ``yield from publish(context, warehouse, candidate, results, metadata)``. A layer's
multi-asset makes its tables in one step with a ``Publication``: ``publish`` for each table in turn (a table held
back does not stop the others), ``held_back`` before computing a table from another of the step, and ``finish``
after the last, which fails the step naming every table held back.
"""

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
)

from lms_assets.defs.markdown import plain_text
from lms_assets.defs.resources import WarehouseTables
from lms_assets.defs.steps import selected_results, table_key

# What a checked asset that is not a warehouse table yields once its checks pass (a chart's Output, the report's MaterializeResult).
Result = TypeVar("Result", Output, MaterializeResult)
# Metadata key under which a table that excludes quarantined patients says how many (see ``exclusion_metadata``).
PATIENTS_EXCLUDED = "patients_excluded"
# The failure's line of a table quotes this many failed checks (a summary may fail dozens); its metadata names them all.
QUOTED_FAILURES = 3
# Whose materialization carries the cohort's exclusion count for every summary downstream of it.
COHORT_RECORD = "adsl"


def blocking_failures(context: AssetExecutionContext, results: Iterable[AssetCheckResult]) -> list[AssetCheckResult]:
    """The results (each naming its asset) that must stop publication: failed, at ERROR, of a check declared blocking."""
    blocking = {(spec.asset_key, spec.name) for spec in context.assets_def.check_specs if spec.blocking}
    return [
        r for r in results if not r.passed and r.severity == AssetCheckSeverity.ERROR and (r.asset_key or context.asset_key, r.check_name) in blocking
    ]


def linked(context: AssetExecutionContext, results: Iterable[AssetCheckResult], asset_key: AssetKey) -> list[AssetCheckResult]:
    """The results, each linking the place of ``asset_key`` in the served report (the definitions give every asset
    its `report` link)."""
    report = context.assets_def.metadata_by_key.get(asset_key, {}).get("report")
    return [r.with_metadata({**r.metadata, "report": report}) if report is not None else r for r in results]


@dataclasses.dataclass(frozen=True)
class Held:
    """A table held back by its blocking checks: why, and where its candidate is (None when it is not a warehouse table)."""

    table: str
    reasons: str
    failed: tuple[str, ...]
    staged: str | None = None
    rows: int = 0

    @property
    def line(self) -> str:
        return f"{self.table} not published: {self.reasons}"

    @property
    def kept(self) -> str:
        if self.staged is None:
            return f"The stored {self.table} keeps its last good content"
        return f"The candidate ({self.rows} rows) is in {self.staged} for inspection; main.{self.table} keeps its last good content"


class Publication:
    """The write-audit-publish of every table one step makes, in the order the step makes them."""

    def __init__(self, context: AssetExecutionContext, warehouse: WarehouseTables | None = None):
        self.context, self.warehouse = context, warehouse
        self.held: list[Held] = []

    def _selected(self, table: str, results: Iterable[AssetCheckResult]) -> list[AssetCheckResult]:
        """The results of the checks selected in this run (a run may leave some out), named and linked."""
        return linked(self.context, selected_results(self.context, table, results), table_key(self.context, table))

    def _hold(self, table: str, failed: list[AssetCheckResult], staged: str | None = None, rows: int = 0) -> None:
        # The checks' descriptions are Markdown with data-borne text escaped: the failure keeps them so, the log reads them plain.
        reasons = " | ".join(f"{r.check_name}: {r.description or 'failed'}" for r in failed[:QUOTED_FAILURES])
        if len(failed) > QUOTED_FAILURES:
            reasons += f" | and {len(failed) - QUOTED_FAILURES} more blocking check(s) failed (see failed_checks)"
        held = Held(table, reasons, tuple(str(r.check_name) for r in failed), staged, rows)
        self.context.log.error(plain_text(held.line))
        self.held.append(held)

    def publish(
        self, table: str, candidate: pl.DataFrame, results: Iterable[AssetCheckResult], metadata: Mapping[str, Any] | None = None
    ) -> Iterator[AssetCheckResult | Output]:
        """Yield ``table``'s check results, then the candidate as its Output, unless a blocking check failed: then the
        candidate goes to ``staging.<table>`` and the table is held back.

        A failed result's ``description`` becomes part of the failure's line of the table: make it say what is wrong
        and where (file, line, column, value; patient and cut), in a few hundred characters at most.
        """
        results = self._selected(table, results)
        yield from results
        failed = blocking_failures(self.context, results)
        if failed:
            if self.warehouse is None:
                raise ValueError("a Publication that stages tables needs the warehouse")
            self._hold(table, failed, self.warehouse.stage(table, candidate), candidate.height)
            return
        yield Output(
            candidate,
            output_name=self.context.assets_def.get_output_name_for_asset_key(table_key(self.context, table)),
            metadata=dict(metadata or {}),
        )

    def check(self, name: str, results: Iterable[AssetCheckResult], output: Callable[[], Result]) -> Iterator[AssetCheckResult | Result]:
        """Yield ``name``'s check results, then ``output()``, unless a blocking check failed at ERROR: then it is held back.

        For an asset that is not a warehouse table (a chart, the report): ``output`` writes its files only when called,
        so a failed check leaves the stored files as they were and nothing downstream reads the rejected candidate.
        """
        results = self._selected(name, results)
        yield from results
        failed = blocking_failures(self.context, results)
        if failed:
            self._hold(name, failed)
            return
        yield output()

    def held_back(self, *tables: str) -> str | None:
        """The first of ``tables`` held back in this step, if any: a table computed from it must not be made from its candidate."""
        return next((h.table for h in self.held if h.table in tables), None)

    def finish(self) -> None:
        """Fail the step if any table was held back: one line per table saying why, then where each candidate is."""
        if not self.held:
            return
        kept = ". ".join(h.kept for h in self.held)
        if any(h.staged for h in self.held):
            kept += ", and nothing downstream is computed from the candidate" + ("s" if len(self.held) > 1 else "")
        staged = [h.staged for h in self.held if h.staged]
        raise Failure(
            description="\n".join([*(h.line for h in self.held), kept + "."]),
            metadata={
                **({"staged_table": ", ".join(staged)} if staged else {}),
                "failed_checks": ", ".join(name for h in self.held for name in h.failed),
            },
        )


def checked(context: AssetExecutionContext, results: Iterable[AssetCheckResult], output: Callable[[], Result]) -> Iterator[AssetCheckResult | Result]:
    """A one-asset step's ``Publication.check``: its results, then ``output()``, or ``Failure`` if a blocking check failed."""
    step = Publication(context)
    yield from step.check(context.asset_key.path[-1], results, output)
    step.finish()


def publish(
    context: AssetExecutionContext,
    warehouse: WarehouseTables,
    candidate: pl.DataFrame,
    results: Iterable[AssetCheckResult],
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[AssetCheckResult | Output]:
    """A one-asset step's ``Publication.publish``: its results, then the candidate as its Output, or ``Failure`` if a
    blocking check failed."""
    step = Publication(context, warehouse)
    yield from step.publish(context.asset_key.path[-1], candidate, results, metadata)
    step.finish()


def exclusion_metadata(context: AssetExecutionContext) -> dict[str, MetadataValue]:
    """``patients_excluded`` for a summary, as the published ADSL recorded it; empty where nothing may be excluded.

    Only a study whose settings allow excluding quarantined rows publishes a cohort with rows left out, and
    then ADSL's materialization says how many patients lost records; every summary repeats that count.
    """
    event = context.instance.get_latest_materialization_event(table_key(context, COHORT_RECORD))
    materialization = event.asset_materialization if event else None
    if materialization is None or PATIENTS_EXCLUDED not in materialization.metadata:
        return {}
    return {PATIENTS_EXCLUDED: materialization.metadata[PATIENTS_EXCLUDED]}
