"""The printed-value checks in Dagster: ``checks.printed_values`` declared and reported once, for every summary table.

Each summary that owns printed values declares one blocking check per part of the paper that prints them
(``printed_value_specs``: ``printed_table_2``, ``printed_abstract``, …, named by ``printed_values.check_name``), from
the registry read when the definitions load. Its step evaluates them on the candidate table
(``published_value_results``) before the gate publishes it: the check's first line says which values failed and why;
its ``printed values`` table lists every value, each distinct reason is a numbered ``reason`` entry, and each value
links to its trace in the served report. One check per section rather than per value keeps the event log small.
"""

import collections
from collections.abc import Callable, Iterable, Mapping
from typing import cast

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    MetadataValue,
    TableColumn,
    TableMetadataValue,
    TableRecord,
    TableSchema,
)

from lms_assets.checks import printed_values
from lms_assets.checks.printed_values import SectionVerdict
from lms_assets.defs.markdown import escape_markdown
from lms_assets.defs.registry_at_load import LoadedRegistry
from lms_assets.defs.resources import OutputsFolder

# What every owner's printed-value checks read besides its own candidate table.
CHECK_INPUTS = {"printed_values": AssetIn("printed_values"), "paper_consistency": AssetIn("paper_consistency")}
# The check an owner has when the definitions hold no registry rows of it.
STAND_IN = "printed_values"
VALUES_SCHEMA = TableSchema(columns=[TableColumn(c, "string", description=d) for c, d in printed_values.VALUE_COLUMNS])
# Where a printed value's trace (its ADaM rows and raw lines) is served, relative to the outputs folder.
TRACE_PAGE = "report/trace.html"
SEVERITY = {printed_values.WARN: AssetCheckSeverity.WARN, printed_values.ERROR: AssetCheckSeverity.ERROR}


def check_result(section: SectionVerdict, asset_name: str, trace_url: Callable[[str], str]) -> AssetCheckResult:
    """The result of one section's check, for the check panel: its first line (``SectionVerdict.summary``), a
    ``printed values`` table with one row per value, each distinct reason once (``reason N``), and a link to each
    value's trace (``trace_url(id)``).

    Dagster lists metadata by key, so the keys are named to read in that order: the table, its reasons, then the traces.
    """
    reasons, records = section.reasons()
    return AssetCheckResult(
        check_name=section.name,
        asset_key=AssetKey(asset_name),
        passed=section.passed,
        severity=SEVERITY[section.severity],
        description=None if section.passed else escape_markdown(section.summary()),
        metadata={
            "printed values": MetadataValue.table([TableRecord(r) for r in records], schema=VALUES_SCHEMA),
            **{f"reason {n}": MetadataValue.text(clause) for clause, n in reasons.items()},
            **{f"trace {v.id}": MetadataValue.url(trace_url(v.id)) for v in section.verdicts},
        },
    )


def value_verdicts(checks: Iterable) -> dict[str, dict]:
    """Every printed value's row of its section check's ``values`` table, by id, with the check, its outcome and
    the text of its reasons (``reason``) and its trace link (``trace``).

    ``checks`` are check results or evaluations (both carry ``check_name``, ``passed``, ``severity`` and ``metadata``);
    for whoever reads a run's checks value by value: tests, clients.
    """
    rows = {}
    for check in checks:
        if "printed values" not in check.metadata:
            continue
        outcome = "passed" if check.passed else check.severity.value
        for record in check.metadata["printed values"].records:
            row = record.data
            cited = [check.metadata[f"reason {n}"].value for n in row["reasons"].split(", ") if n]
            trace = check.metadata[f"trace {row['printed_value']}"]
            rows[row["printed_value"]] = {
                **row,
                "reason": "; ".join(cited),
                "trace": trace.value,
                "check": check.check_name,
                "check_outcome": outcome,
            }
    return rows


def _stand_in_spec(asset_name: str, problem: str | None) -> AssetCheckSpec:
    """The one check of an asset when the definitions hold no registry rows for it."""
    why = (
        f"The registry could not be read when the definitions loaded ({problem}); raw_printed_values says why."
        if problem
        else "No printed-value registry in the study folder when the definitions loaded."
    )
    return AssetCheckSpec(
        STAND_IN,
        asset=asset_name,
        blocking=True,
        description=f"{why} Passes when the registry has no value of {asset_name}; fails (ERROR) when it has, "
        "because its values then have no checks: reload the code location.",
    )


def _stand_in_results(asset_name: str, registry: pl.DataFrame) -> list[AssetCheckResult]:
    owned = registry.filter(pl.col("owner") == asset_name).height
    unchecked = f"the registry now has {owned} value(s) of {asset_name} without checks: reload the code location"
    return [
        AssetCheckResult(
            check_name=STAND_IN,
            asset_key=AssetKey(asset_name),
            passed=owned == 0,
            severity=AssetCheckSeverity.ERROR,
            description=unchecked if owned else None,
            metadata={
                "reason": MetadataValue.text(unchecked if owned else "no printed-value registry in the study folder; nothing to compare"),
                "compared": MetadataValue.text("0"),
            },
        )
    ]


def printed_value_specs(asset_name: str, owned: pl.DataFrame | None, problem: str | None) -> list[AssetCheckSpec]:
    """One blocking check per printed section with values owned by ``asset_name``, or the one stand-in when there is none."""
    if owned is None or owned.is_empty():
        return [_stand_in_spec(asset_name, problem)]
    sections: dict[str, list[dict]] = {}
    for r in owned.iter_rows(named=True):
        sections.setdefault(printed_values.check_name(r["source"]), []).append(r)
    return [
        AssetCheckSpec(
            name,
            asset=asset_name,
            blocking=True,
            description=escape_markdown(
                f"{', '.join(dict.fromkeys(r['source'] for r in rows))}: the {len(rows)} printed values {asset_name} "
                f"computes, each compared with the table at the paper's precision. {printed_values.RULE}"
            ),
        )
        for name, rows in sections.items()
    ]


def section_results(
    asset_name: str,
    table: pl.DataFrame,
    registry: pl.DataFrame,
    paper_consistency: pl.DataFrame,
    trace_url: Callable[[str], str],
    selected: set[str] | None = None,
) -> list[AssetCheckResult]:
    """The results of ``asset_name``'s section checks (those in ``selected``, or all) on ``table``, its candidate."""
    sections = printed_values.section_verdicts(asset_name, table, registry, paper_consistency, selected)
    return [check_result(section, asset_name, trace_url) for section in sections]


def published_value_results(
    context: AssetExecutionContext,
    asset_name: str,
    outputs: OutputsFolder,
    table: pl.DataFrame,
    registry: pl.DataFrame,
    paper_consistency: pl.DataFrame,
) -> list[AssetCheckResult]:
    """The results of ``asset_name``'s declared section checks on ``table`` (its candidate), by ``section_results``."""
    selected = {k.name for k in context.selected_asset_check_keys if k.asset_key.path[-1] == asset_name}
    results = section_results(asset_name, table, registry, paper_consistency, lambda id_: outputs.url(f"{TRACE_PAGE}#{id_}"), selected)
    outcomes = collections.Counter(
        r.data["verdict"] for result in results for r in cast(TableMetadataValue, result.metadata["printed values"]).records
    )
    context.log.info(
        f"{asset_name}: of {sum(outcomes.values())} printed values in {len(results)} section checks "
        f"{outcomes['passed']} reproduced, {outcomes['WARN']} reviewed discrepancies (WARN), "
        f"{outcomes['ERROR']} failed (ERROR)"
    )
    return results


def printed_value_checks(asset_name: str, loaded: LoadedRegistry) -> tuple[list[AssetCheckSpec], Callable[..., list[AssetCheckResult]]]:
    """``asset_name``'s printed-value checks as declared from the registry read at load, and how its step evaluates
    them on a candidate (the stand-in when the registry held no value of it)."""
    owned = None if loaded.frame is None else printed_values.owned_rows(asset_name, loaded.frame)
    stand_in = owned is None or owned.is_empty()

    def checks(
        context: AssetExecutionContext, outputs_folder: OutputsFolder, table: pl.DataFrame, inputs: Mapping[str, pl.DataFrame]
    ) -> list[AssetCheckResult]:
        if stand_in:
            return _stand_in_results(asset_name, inputs["printed_values"])
        return published_value_results(context, asset_name, outputs_folder, table, inputs["printed_values"], inputs["paper_consistency"])

    return printed_value_specs(asset_name, owned, loaded.problem), checks
