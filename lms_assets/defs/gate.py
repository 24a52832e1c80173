"""Write-audit-publish: an asset's blocking checks run in its own step, on the candidate, before it is stored.

An asset that publishes through the gate declares its blocking checks as ``check_specs`` (``blocking=True``),
computes its candidate table, evaluates those checks on it with pure functions, and returns
``yield from publish(context, warehouse, candidate, results, metadata)``:

- every result is yielded, so the checks show in the UI as usual;
- if a blocking check failed at ERROR, the candidate is written to ``staging.<asset>`` for inspection and the
  step raises ``Failure`` whose first line says what failed; no ``Output`` is yielded, so the IO manager never
  replaces ``main.<asset>``, which keeps its last good content, and nothing downstream runs from the candidate
  (a later partial run reads ``main.<asset>``, the last good table);
- otherwise the ``Output`` is yielded and the IO manager replaces ``main.<asset>`` (dropping any stale
  ``staging.<asset>`` in the same transaction).
"""

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

# What a checked asset that is not a warehouse table yields once its checks pass (a chart's Output, the report's MaterializeResult).
Result = TypeVar("Result", Output, MaterializeResult)
# Metadata key under which a table that excludes quarantined patients says how many (see ``exclusion_metadata``).
PATIENTS_EXCLUDED = "patients_excluded"
# The failure's first line quotes this many failed checks (a summary may fail dozens); its metadata names them all.
QUOTED_FAILURES = 3
# Whose materialization carries the cohort's exclusion count for every summary downstream of it.
COHORT_RECORD = AssetKey("adsl")


def blocking_failures(context: AssetExecutionContext, results: Iterable[AssetCheckResult]) -> list[AssetCheckResult]:
    """The results that must stop publication: failed, at ERROR, of a check the asset declares blocking."""
    blocking = {spec.name for spec in context.assets_def.check_specs if spec.blocking}
    return [r for r in results if not r.passed and r.severity == AssetCheckSeverity.ERROR and r.check_name in blocking]


def linked(context: AssetExecutionContext, results: Iterable[AssetCheckResult]) -> list[AssetCheckResult]:
    """The results, each linking the asset's place in the served report (the definitions give every asset its `report` link)."""
    report = context.assets_def.metadata_by_key.get(context.asset_key, {}).get("report")
    return [r.with_metadata({**r.metadata, "report": report}) if report is not None else r for r in results]


def _reasons(context: AssetExecutionContext, failed: list[AssetCheckResult]) -> str:
    """The failed checks and their descriptions for the failure's first line, logged as an error too."""
    # The checks' descriptions are Markdown with data-borne text escaped: the failure keeps them so, the log reads them plain.
    reasons = " | ".join(f"{r.check_name}: {r.description or 'failed'}" for r in failed[:QUOTED_FAILURES])
    if len(failed) > QUOTED_FAILURES:
        reasons += f" | and {len(failed) - QUOTED_FAILURES} more blocking check(s) failed (see failed_checks)"
    context.log.error(plain_text(f"{context.asset_key.path[-1]} not published: {reasons}"))
    return reasons


def checked(context: AssetExecutionContext, results: Iterable[AssetCheckResult], output: Callable[[], Result]) -> Iterator[AssetCheckResult | Result]:
    """Yield the check results, then ``output()``, unless a blocking check failed at ERROR: then raise ``Failure`` first.

    For an asset that is not a warehouse table (a chart, the report): ``output`` writes its files only when called,
    so a failed check leaves the stored files as they were and nothing downstream reads the rejected candidate.
    """
    results = linked(context, results)
    yield from results
    failed = blocking_failures(context, results)
    if failed:
        name = context.asset_key.path[-1]
        raise Failure(
            description=f"{name} not published: {_reasons(context, failed)}\nThe stored {name} keeps its last good content.",
            metadata={"failed_checks": ", ".join(str(r.check_name) for r in failed)},
        )
    yield output()


def publish(
    context: AssetExecutionContext,
    warehouse: WarehouseTables,
    candidate: pl.DataFrame,
    results: Iterable[AssetCheckResult],
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[AssetCheckResult | Output]:
    """Yield the check results, then the candidate as the asset's Output, unless a blocking check failed.

    A failed result's ``description`` becomes part of the failure's first line: make it say what is wrong
    and where (file, line, column, value; patient and cut), in a few hundred characters at most.
    """
    results = linked(context, results)
    yield from results
    failed = blocking_failures(context, results)
    table = context.asset_key.path[-1]
    if failed:
        staged = warehouse.stage(table, candidate)
        reasons = _reasons(context, failed)
        raise Failure(
            description=(
                f"{table} not published: {reasons}\n"
                f"The candidate ({candidate.height} rows) is in {staged} for inspection; main.{table} keeps its last "
                "good content, and nothing downstream is computed from the candidate."
            ),
            metadata={"staged_table": staged, "failed_checks": ", ".join(str(r.check_name) for r in failed)},
        )
    yield Output(candidate, metadata=dict(metadata or {}))


def exclusion_metadata(context: AssetExecutionContext) -> dict[str, MetadataValue]:
    """``patients_excluded`` for a summary, as the published ADSL recorded it; empty where nothing may be excluded.

    Only a study whose settings allow excluding quarantined rows publishes a cohort with rows left out, and
    then ADSL's materialization says how many patients lost records; every summary repeats that count.
    """
    event = context.instance.get_latest_materialization_event(COHORT_RECORD)
    materialization = event.asset_materialization if event else None
    if materialization is None or PATIENTS_EXCLUDED not in materialization.metadata:
        return {}
    return {PATIENTS_EXCLUDED: materialization.metadata[PATIENTS_EXCLUDED]}
