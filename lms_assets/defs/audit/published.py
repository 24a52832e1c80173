"""Checks that compare every value the paper printed with the value its summary table shows, gating that table.

Each summary asset owns the registry quantities with its prefixes (``QUANTITY_OWNERS``). Its printed values are
grouped by the part of the paper that prints them (the registry's ``source``: Table 1, Abstract, Results: Efficacy…),
and the asset declares one blocking check per group (``check_specs``). Every value of a group is judged on its own:
the domain's pure ``recomputed_values`` function reads the candidate table's displayed cells and ``consistency.judge``
gives the verdict — the same verdict ``printed_audit`` and the report use. The check's first line says which values
failed and why; its ``printed values`` table lists every value, each distinct reason is a numbered ``reason`` entry,
and each value links to its trace in the served report. It is ERROR when any value failed at ERROR, WARN when every
failure is a reviewed discrepancy. One check per group rather than per value keeps the event log small. The checks
run on the candidate in the summary tables' step, which publishes each table through the gate (write-audit-publish):
a blocking ERROR keeps ``main.<asset>`` as it was. The checks are declared from the registry read at definition load
(``registry_at_load``), so these tables are declared with ``@gated_summary`` and built then, into the summary tables'
one step.
"""

import collections
import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    MetadataValue,
    Output,
    TableColumn,
    TableMetadataValue,
    TableRecord,
    TableSchema,
)

from lms_assets.audit import consistency
from lms_assets.defs.audit.registry_at_load import LoadedRegistry, typed_registry
from lms_assets.defs.markdown import escape_markdown
from lms_assets.defs.resources import OutputsFolder
from lms_assets.defs.tables.step import Table, build
from lms_assets.records import errors, schemas, validation
from lms_assets.tables import baseline, printed, response, survival, toxicity

# Which asset computes which printed quantities (by quantity prefix). The audit uses the same map for `computed_by`.
QUANTITY_OWNERS: dict[str, tuple[str, ...]] = {
    "baseline_summary": (
        "patients.",
        "sex.",
        "age.",
        "ecog.",
        "site.",
        "surgery.",
        "radiotherapy.",
        "chemotherapy.",
        "dose.",
        "combination.",
        "metastasis.",
    ),
    "response_summary": ("response.", "orr.", "dcr."),
    "tumour_shrinkage": ("shrinkage", "pr_rate.", "immunotherapy.", "orr_by_combination.", "dcr_by_combination."),
    "ae_summary": ("ae.", "dose_reduction.", "discontinuation.", "treatment_related_deaths."),
    "survival_summary": ("pfs.", "os."),
    "survival_followup": ("followup.",),
    "survival_subgroups": ("subgroups.",),
}

RecomputedValuesFn = Callable[[pl.DataFrame, dt.date | None], pl.DataFrame]

# The pure function that reads each owner's displayed cells as the values of its printed quantities (see ``tables.printed``).
# Signature: recomputed_values(table, published_cut) -> DataFrame[quantity, value, patients].
PRINTED_VALUE_SOURCES: dict[str, RecomputedValuesFn] = {
    "baseline_summary": baseline.recomputed_values,
    "response_summary": response.recomputed_values,
    "tumour_shrinkage": response.shrinkage_recomputed_values,
    "ae_summary": toxicity.recomputed_values,
    "survival_summary": survival.recomputed_values,
    "survival_followup": survival.followup_recomputed_values,
    "survival_subgroups": survival.subgroup_recomputed_values,
}

# What every owner's printed-value checks read besides its own candidate table.
CHECK_INPUTS = {"printed_values": AssetIn("printed_values"), "paper_consistency": AssetIn("paper_consistency")}
# The check an owner has when the definitions hold no registry rows of it.
STAND_IN = "printed_values"
GATED = (
    "Published only when its printed-value checks pass on the candidate in this step (write-audit-publish): "
    "a blocking ERROR keeps the last good table in main and the candidate in staging."
)

# The severity rule, said in every section check's description and in README "How the checks decide".
RULE = (
    "Blocking: ERROR on any unreviewed difference, a reviewed one whose value moved, or a reviewed one now reproduced "
    "(the review is stale); WARN when every difference is a reviewed discrepancy in known_discrepancies.csv."
)

# The columns of a section check's `values` table, in order: few and short, so the check panel shows them whole at
# 1440 px. Why a value differs is given in numbered `reason` entries, each clause once however many values share it.
VALUE_COLUMNS = (
    ("printed_value", "registry id (printed_values.csv)"),
    ("verdict", "passed, WARN or ERROR"),
    ("printed", "what the paper prints"),
    ("shown", "the table's value at the printed precision plus one digit"),
    ("basis", "Table 3's rows, or reconstructed inputs"),
    ("reasons", "the numbered reasons below that say why it differs"),
)
VALUES_SCHEMA = TableSchema(columns=[TableColumn(c, "string", description=d) for c, d in VALUE_COLUMNS])
# Where a printed value's trace (its ADaM rows and raw lines) is served, relative to the outputs folder.
TRACE_PAGE = "report/trace.html"


def owner_of(quantity: str) -> str | None:
    """The asset that computes a printed quantity, or None when no asset does."""
    for asset_name, prefixes in QUANTITY_OWNERS.items():
        if quantity.startswith(prefixes):
            return asset_name
    return None


def check_name(source: str) -> str:
    """The Dagster-safe name of the check of a printed section (``Table 1`` → ``printed_table_1``)."""
    return "printed_" + (re.sub(r"[^a-z0-9]+", "_", source.lower()).strip("_") or "unnamed")


RECONSTRUCTED = "reconstructed_inputs"
SEVERITY = {consistency.WARN: AssetCheckSeverity.WARN, consistency.ERROR: AssetCheckSeverity.ERROR}


@dataclasses.dataclass(frozen=True)
class ValueVerdict:
    """One printed value judged (``consistency.judge``) on the value its table shows."""

    row: dict
    verdict: consistency.Verdict
    paper: dict

    @property
    def id(self) -> str:
        return self.row["value_id"]

    @property
    def outcome(self) -> str:
        """passed, WARN or ERROR."""
        return "passed" if self.verdict.check == consistency.PASSED else SEVERITY.get(self.verdict.check, AssetCheckSeverity.ERROR).value

    @property
    def note(self) -> str:
        """Why a failed value differs, with its review when it has one; empty when it passed."""
        if self.outcome == "passed":
            return ""
        row = self.row
        reviewed = f" Reviewed by {row['reviewed_by']} on {row['reviewed_on']}." if row.get("reviewed_expected") is not None else ""
        return f"{self.verdict.check_reason}{reviewed}"

    def record(self, reasons: str) -> dict[str, str]:
        """The value's row of its check's ``values`` table (``VALUE_COLUMNS``), every cell text."""
        return {
            "printed_value": self.id,
            "verdict": self.outcome,
            "printed": self.row["printed"],
            "shown": self.verdict.shown,
            "basis": "reconstructed" if self.paper["basis"] == RECONSTRUCTED else "Table 3",
            "reasons": reasons,
        }


def value_verdict(row: dict, values: pl.DataFrame, paper: dict) -> ValueVerdict:
    """The verdict on one registry row: ``consistency.judge`` on the value ``values`` (a table's
    ``recomputed_values``) shows for its quantity."""
    match = values.filter(pl.col("quantity") == row["quantity"])
    shown = match["value"][0] if match.height else None
    return ValueVerdict(row, consistency.judge(row, shown, paper), paper)


def check_result(name: str, asset_name: str, verdicts: list[ValueVerdict], trace_url: Callable[[str], str]) -> AssetCheckResult:
    """The result of one section's check, for the check panel: a first line that says in one sentence what failed
    and why (the first failed value's first reason),
    a ``printed values`` table with one row per value, each distinct reason once (``reason N``; a long reason's
    clauses shared by several values are given once), and a link to each value's trace (``trace_url(id)``).

    ERROR when any value failed at ERROR, WARN when every failed value is a reviewed discrepancy. Dagster lists
    metadata by key, so the keys are named to read in that order: the table, its reasons, then the traces.
    """
    failed = [v for v in verdicts if v.outcome != "passed"]
    errors = [v.id for v in failed if v.outcome == AssetCheckSeverity.ERROR.value]
    warned = [v.id for v in failed if v.outcome != AssetCheckSeverity.ERROR.value]
    parts = [
        f"{len(errors)} unreviewed (ERROR): {', '.join(errors)}" if errors else "",
        f"{len(warned)} reviewed discrepancies (WARN): {', '.join(warned)}" if warned else "",
    ]
    # ERROR values first (a stable sort keeps registry order within each): they are what stops publication.
    first = sorted(failed, key=lambda v: v.outcome != AssetCheckSeverity.ERROR.value)[0] if failed else None
    summary = (
        f"{len(failed)} of {len(verdicts)} printed values differ from the paper; "
        + "; ".join(p for p in parts if p)
        + f". First, {first.id}: {first.note.split('; ')[0]}"
        if first
        else ""
    )
    reasons: dict[str, int] = {}
    cited = {v.id: [reasons.setdefault(clause, len(reasons) + 1) for clause in v.note.split("; ")] for v in failed}
    records = [TableRecord(v.record(", ".join(map(str, cited.get(v.id, []))))) for v in verdicts]
    return AssetCheckResult(
        check_name=name,
        asset_key=AssetKey(asset_name),
        passed=not failed,
        severity=AssetCheckSeverity.ERROR if errors or not failed else AssetCheckSeverity.WARN,
        description=escape_markdown(summary) if failed else None,
        metadata={
            "printed values": MetadataValue.table(records, schema=VALUES_SCHEMA),
            **{f"reason {n}": MetadataValue.text(clause) for clause, n in reasons.items()},
            **{f"trace {v.id}": MetadataValue.url(trace_url(v.id)) for v in verdicts},
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


def _stand_in_results(asset_name: str, printed_values: pl.DataFrame) -> list[AssetCheckResult]:
    owned = printed_values.filter(pl.col("owner") == asset_name).height
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


def owned_at_load(asset_name: str, loaded: LoadedRegistry) -> pl.DataFrame | None:
    """The registry rows ``asset_name`` computes, as the definitions saw them; None when the registry was not read."""
    if loaded.frame is None:
        return None
    return loaded.frame.filter(pl.col("quantity").map_elements(owner_of, return_dtype=pl.String) == asset_name)


def printed_value_specs(asset_name: str, owned: pl.DataFrame | None, problem: str | None) -> list[AssetCheckSpec]:
    """One blocking check per printed section with values owned by ``asset_name``, or the one stand-in when there is none."""
    if owned is None or owned.is_empty():
        return [_stand_in_spec(asset_name, problem)]
    sections: dict[str, list[dict]] = {}
    for r in owned.iter_rows(named=True):
        sections.setdefault(check_name(r["source"]), []).append(r)
    return [
        AssetCheckSpec(
            name,
            asset=asset_name,
            blocking=True,
            description=escape_markdown(
                f"{', '.join(dict.fromkeys(r['source'] for r in rows))}: the {len(rows)} printed values {asset_name} "
                f"computes, each compared with the table at the paper's precision. {RULE}"
            ),
        )
        for name, rows in sections.items()
    ]


def section_results(
    asset_name: str,
    table: pl.DataFrame,
    printed_values: pl.DataFrame,
    paper_consistency: pl.DataFrame,
    trace_url: Callable[[str], str],
    selected: set[str] | None = None,
) -> list[AssetCheckResult]:
    """The results of ``asset_name``'s section checks (those in ``selected``, or all) on ``table``, its candidate."""
    paper = {r["value_id"]: r for r in paper_consistency.iter_rows(named=True)}
    values = PRINTED_VALUE_SOURCES[asset_name](table, printed.published_cut(printed_values))
    sections: dict[str, list[ValueVerdict]] = {}
    for row in printed_values.iter_rows(named=True):
        if row["owner"] != asset_name or (selected is not None and row["check_name"] not in selected):
            continue
        sections.setdefault(row["check_name"], []).append(value_verdict(row, values, paper[row["value_id"]]))
    return [check_result(name, asset_name, verdicts, trace_url) for name, verdicts in sections.items()]


def published_value_results(
    context: AssetExecutionContext,
    asset_name: str,
    outputs: OutputsFolder,
    table: pl.DataFrame,
    printed_values: pl.DataFrame,
    paper_consistency: pl.DataFrame,
) -> list[AssetCheckResult]:
    """The results of ``asset_name``'s declared section checks on ``table`` (its candidate), by ``section_results``."""
    selected = {k.name for k in context.selected_asset_check_keys if k.asset_key.path[-1] == asset_name}
    results = section_results(asset_name, table, printed_values, paper_consistency, lambda id_: outputs.url(f"{TRACE_PAGE}#{id_}"), selected)
    outcomes = collections.Counter(
        r.data["verdict"] for result in results for r in cast(TableMetadataValue, result.metadata["printed values"]).records
    )
    context.log.info(
        f"{asset_name}: of {sum(outcomes.values())} printed values in {len(results)} section checks "
        f"{outcomes['passed']} reproduced, {outcomes['WARN']} reviewed discrepancies (WARN), "
        f"{outcomes['ERROR']} failed (ERROR)"
    )
    return results


@dataclasses.dataclass(frozen=True)
class GatedSummary:
    """A summary table whose printed-value checks gate its publication; built when the definitions load.

    ``compute`` is the table's body as a plain function of its upstream tables, returning the table's ``Output``
    (``metadata.table_output``); the checks are declared from the registry read at load, so the table is too, with
    ``declare_asset`` (its domain's ``defs/tables/step.table_defaults``) and ``asset_args``.
    """

    compute: Callable[..., Output]
    declare_asset: Callable[..., Any]
    ins: Mapping[str, AssetIn]
    asset_args: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.compute.__name__

    def build(self, loaded: LoadedRegistry) -> Table:
        name = self.name
        args = dict(self.asset_args)
        args["description"] = f"{args['description']} {GATED}"
        owned = owned_at_load(name, loaded)
        stand_in = owned is None or owned.is_empty()

        def checks(context: AssetExecutionContext, outputs_folder: OutputsFolder, table: pl.DataFrame, inputs: Mapping[str, pl.DataFrame]):
            if stand_in:
                return _stand_in_results(name, inputs["printed_values"])
            return published_value_results(context, name, outputs_folder, table, inputs["printed_values"], inputs["paper_consistency"])

        specs = printed_value_specs(name, owned, loaded.problem)
        return self.declare_asset(ins=self.ins, check_ins=CHECK_INPUTS, check_specs=specs, checks=checks, **args)(self.compute)


def gated_summary(
    declare_asset: Callable[..., Any], *, ins: Mapping[str, AssetIn] | None = None, **asset_args
) -> Callable[[Callable[..., Output]], GatedSummary]:
    """Declare a summary table that owns registry values, with its domain's ``defs/tables/step.table_defaults`` and further
    arguments of it; ``gated_summaries`` builds it at load."""

    def declare(compute: Callable[..., Output]) -> GatedSummary:
        if compute.__name__ not in PRINTED_VALUE_SOURCES:
            raise ValueError(f"{compute.__name__} owns no registry values (PRINTED_VALUE_SOURCES): declare it with its domain's summary_table")
        return GatedSummary(compute, declare_asset, dict(ins or {}), asset_args)

    return declare


def gated_summaries(modules, loaded: LoadedRegistry) -> list[AssetsDefinition]:
    """The summary tables' one step (``defs/tables/step.build``): every table declared in ``modules``, each
    ``GatedSummary`` built on the registry read at load; one per ``PRINTED_VALUE_SOURCES`` owner."""
    declared = [v for m in modules for v in vars(m).values() if isinstance(v, GatedSummary)]
    missing = set(PRINTED_VALUE_SOURCES) - {s.name for s in declared}
    if missing or len(declared) != len(PRINTED_VALUE_SOURCES):
        raise ValueError(f"every owner of registry values is declared once with @gated_summary; missing: {sorted(missing)}")
    plain = [v for m in modules for v in vars(m).values() if isinstance(v, Table)]
    return [build([*plain, *(s.build(loaded) for s in declared)])]


def printed_values_table(raw_registry: pl.DataFrame, raw_known: pl.DataFrame) -> pl.DataFrame:
    """The registry typed once, with each value's owner asset, the name of its section's check, the published cut and its reviewed entry.

    Raises ``errors.RecordFileError`` naming file, row and column when the reviewed list is malformed, or
    names a value that is not printed: a review that cannot be applied must not silently turn into an ERROR.
    """
    registry = typed_registry(raw_registry)
    problems = validation.problems(raw_known, schemas.KNOWN_DISCREPANCIES)
    if problems.height:
        first = "; ".join(f"row {r['row']} column {r['column']}: {r['reason']}" for r in problems.head(5).iter_rows(named=True))
        raise errors.RecordFileError(f"{schemas.KNOWN_DISCREPANCIES.location}: {problems.height} problem(s): {first}")
    known = validation.clean(raw_known, schemas.KNOWN_DISCREPANCIES, problems)
    reviewed, orphans = consistency.with_reviews(registry, known)
    if orphans:
        raise errors.RecordFileError(f"{schemas.KNOWN_DISCREPANCIES.location}: value_id {', '.join(orphans)} not in printed_values.csv")
    cut = printed.published_cut(registry)
    return reviewed.with_columns(
        pl.col("quantity").map_elements(owner_of, return_dtype=pl.String).alias("owner"),
        pl.col("source").map_elements(check_name, return_dtype=pl.String).alias("check_name"),
        pl.lit(cut, dtype=pl.Date).alias("published_cut"),
    ).drop(validation.FILE, validation.ROW)
