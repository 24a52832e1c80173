"""The verdict on every printed value: what it rests on, what the paper contradicts about it, and the check's outcome.

``paper_consistency`` gathers, per printed value, its basis and every finding (``audit.findings``); ``judge`` sets a
printed value against the value its table shows, the one rule of the checks, ``printed_audit`` and the report;
``audit_row`` is ``printed_audit``'s row. Pure functions on the typed registry (``schemas.REGISTRY``).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from lms_assets.audit.basis import basis_of, basis_words, reconstructions_of
from lms_assets.audit.feasibility import Feasibility
from lms_assets.audit.findings import cross_source_findings, empty_findings, feasibility_findings, granularity_findings, paired_count_findings
from lms_assets.audit.rounding import rounding_audit
from lms_assets.tables.printed import ABSENT, AGREES, DIFFERS, compare, format_value

CONSISTENCY_SCHEMA = pl.Schema(
    {
        "value_id": pl.String(),
        "quantity": pl.String(),
        "source": pl.String(),
        "basis": pl.String(),
        "reconstruction": pl.String(),
        "findings": pl.List(pl.String),
        "explanation": pl.String(),
    }
)

AUDIT_SCHEMA = pl.Schema(
    {
        "value_id": pl.String(),
        "source": pl.String(),
        "quantity": pl.String(),
        "published": pl.String(),
        "recomputed": pl.Float64(),
        "shown": pl.String(),
        "status": pl.String(),
        "check_outcome": pl.String(),
        "basis": pl.String(),
        "computed_by": pl.String(),
        "patients": pl.List(pl.Int64),
        "findings": pl.List(pl.String),
        "explanation": pl.String(),
        "check_reason": pl.String(),
        "hypotheses": pl.String(),
        "rounding": pl.String(),
        "rounding_flag": pl.String(),
    }
)

# The reviewed-discrepancy columns the typed registry carries (null where the value is not reviewed).
REVIEW_SCHEMA = pl.Schema(
    {
        "reviewed_expected": pl.String,
        "reviewed_finding": pl.String,
        "reviewed_reason": pl.String,
        "reviewed_by": pl.String,
        "reviewed_on": pl.Date,
    }
)


def paper_consistency(registry: pl.DataFrame, provenance: pl.DataFrame, cohort_n: int, feasibility: Feasibility | None) -> pl.DataFrame:
    """Per printed value: what it rests on (basis, and which reconstruction) and every way the paper contradicts itself about it."""
    findings = pl.concat(
        [
            granularity_findings(registry, cohort_n),
            paired_count_findings(registry, cohort_n),
            cross_source_findings(registry),
            feasibility_findings(registry, feasibility) if feasibility is not None else empty_findings(),
        ]
    )
    per_value = findings.group_by("value_id").agg(
        pl.col("finding").unique(maintain_order=True).alias("findings"),
        pl.col("explanation").str.join("; ").alias("explanation"),
    )
    reconstructions = {q: "; ".join(reconstructions_of(q, provenance)) or None for q in registry["quantity"].unique().to_list()}
    return (
        registry.select("value_id", "quantity", "source")
        .with_columns(
            pl.col("quantity").map_elements(lambda q: basis_of(q, provenance), return_dtype=pl.String).alias("basis"),
            pl.col("quantity").replace_strict(reconstructions, default=None, return_dtype=pl.String).alias("reconstruction"),
        )
        .join(per_value, on="value_id", how="left")
        .with_columns(pl.col("findings").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        .select(list(CONSISTENCY_SCHEMA))
        .cast(CONSISTENCY_SCHEMA)
    )


def with_reviews(registry: pl.DataFrame, known: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """The registry with each value's reviewed-discrepancy entry (``REVIEW_SCHEMA``), and the entries naming no printed value."""
    reviews = known.select(
        "value_id",
        pl.col("expected_recomputed").alias("reviewed_expected"),
        pl.col("finding").alias("reviewed_finding"),
        pl.col("reason").alias("reviewed_reason"),
        "reviewed_by",
        "reviewed_on",
    ).cast(pl.Schema([("value_id", pl.String), *REVIEW_SCHEMA.items()]))
    orphans = sorted(set(reviews["value_id"].to_list()) - set(registry["value_id"].to_list()))
    return registry.join(reviews, on="value_id", how="left"), orphans


REPRODUCED, DISCREPANCY, NOT_RECOMPUTABLE = "reproduced", "discrepancy", "not_recomputable"
PASSED, WARN, ERROR = "passed", "WARN", "ERROR"


def status_of(comparison: str, findings: Sequence[str]) -> str:
    """The audit status: reproduced only when the shown value agrees and the paper does not contradict the printing.

    A printing the paper contradicts (87.5% printed as 16/19) is a discrepancy whether or not the data can recompute it.
    """
    if findings:
        return DISCREPANCY
    return {AGREES: REPRODUCED, DIFFERS: DISCREPANCY, ABSENT: NOT_RECOMPUTABLE}[comparison]


@dataclass(frozen=True)
class Verdict:
    """One printed value judged against the value its summary table shows."""

    status: str  # reproduced / discrepancy / not_recomputable (printed_audit and the report)
    check: str  # the printed-value check: passed, or failed at WARN or ERROR
    shown: str  # the shown value at the printed precision plus one digit
    explanation: str  # printed_audit's sentence; the reason a WARN check gives
    check_reason: str  # why the check passed, warned or stopped the run (its first metadata entry)


def _explanation(row: dict, comparison: str, shown: str, consistency: dict) -> str:
    paper_says = consistency["explanation"]
    basis = basis_words(consistency["basis"])
    if comparison == ABSENT:
        parts = ["The study's records hold nothing from which this value can be recomputed"]
    elif comparison == AGREES and not consistency["findings"]:
        return (
            ""
            if consistency["basis"] == "published_patient_data"
            else ("Reproduced from reconstructed inputs: this shows the pipeline's arithmetic, not that the paper is right")
        )
    elif comparison == AGREES:
        parts = [f"{basis[0].upper() + basis[1:]} give {shown}, which agrees with this printing, but the paper contradicts it elsewhere"]
    else:
        parts = [f"{row['source']} prints {row['printed']!r} ({row['value']:g}) but {basis} give {shown}"]
    if paper_says:
        parts.append(paper_says)
    if row.get("reviewed_reason"):
        parts.append(f"reviewed: {row['reviewed_reason']}")
    return "; ".join(parts)


def _same_shown(expected: str, shown: str, decimals: int) -> bool:
    """The reviewed value and the shown one at the printed precision plus one digit ("52" as a spreadsheet saves it is 52.0)."""
    try:
        return format_value(float(expected), decimals) == shown
    except ValueError:
        return expected.strip() == shown


def judge(row: dict, displayed: float | None, consistency: dict) -> Verdict:
    """The verdict on one printed value, from the value its summary table shows; the checks, printed_audit and the report all use it.

    ``row`` is a row of the typed registry (``printed_values``, with ``REVIEW_SCHEMA``), ``consistency`` its
    ``paper_consistency`` row. The check passes when the shown value agrees at the printed precision and no reviewed
    discrepancy says it should not. A failure is WARN only when the value is a reviewed discrepancy that still
    stands: the shown value is the reviewed ``expected_recomputed`` and its reviewed finding is still found. Any
    other failure is ERROR — a shown value that differs unreviewed, a reviewed one that moved, and a reviewed
    discrepancy that is suddenly reproduced (the review is stale and must be removed).
    """
    comparison = compare(row["value"], row["decimals"], displayed)
    shown = format_value(displayed, row["decimals"])
    status = status_of(comparison, consistency["findings"])
    explanation = _explanation(row, comparison, shown, consistency)
    expected = row.get("reviewed_expected")
    reviewed = expected is not None
    printed = f"{row['source']} prints {row['printed']!r} ({row['value']:g})"
    if comparison == AGREES:
        if not reviewed:
            return Verdict(status, PASSED, shown, explanation, f"reproduced: the table shows {shown}; {printed}")
        reason = (
            f"stale review: the reviewed discrepancy no longer stands — the table now shows {shown}, which reproduces "
            f"the printing (reviewed as {expected}); a changed derivation or input did this: find out why, then "
            "remove the entry from known_discrepancies.csv"
        )
        return Verdict(status, ERROR, shown, explanation, reason)
    if expected is None:
        reason = (
            f"regression or unreviewed discrepancy: {printed} but the table shows {shown}, and the value is not a "
            "reviewed discrepancy in known_discrepancies.csv"
        )
    elif not _same_shown(expected, shown, row["decimals"]):
        reason = f"the reviewed discrepancy moved: the table showed {expected} when reviewed and now shows {shown}; {printed}"
    elif row.get("reviewed_finding") and row["reviewed_finding"] not in consistency["findings"]:
        reason = (
            f"the reviewed finding {row['reviewed_finding']} is no longer found by paper_consistency "
            f"(now: {', '.join(consistency['findings']) or 'none'}); the review no longer explains the failure"
        )
    else:
        return Verdict(status, WARN, shown, explanation, explanation)
    paper_says = consistency["explanation"]
    return Verdict(status, ERROR, shown, explanation, f"{reason}; the paper: {paper_says}" if paper_says else reason)


def audit_row(row: dict, consistency: dict, recomputed: float | None, patients: list[int], computed_by: str | None) -> dict:
    """One registry value's audit row: the verdict (status, the check's outcome and reason), its basis and explanation.

    ``hypotheses`` is left empty here: ``hypotheses`` fills it, across every discrepancy at once.
    """
    verdict = judge(row, recomputed, consistency)
    return {
        "value_id": row["value_id"],
        "source": row["source"],
        "quantity": row["quantity"],
        "published": row["printed"],
        "recomputed": recomputed,
        "shown": verdict.shown,
        "status": verdict.status,
        "check_outcome": verdict.check,
        "basis": consistency["basis"],
        "computed_by": computed_by if recomputed is not None else None,
        "patients": patients,
        "findings": consistency["findings"],
        "explanation": verdict.explanation,
        "check_reason": verdict.check_reason,
        "hypotheses": None,
        **rounding_audit(row, recomputed),
    }


def time_to_event_patients(adtte: pl.DataFrame, cut, quantity: str) -> list[int]:
    """Who a survival value rests on: an event count on the patients with that event, anything else on every patient at the cut.

    Survival summaries hold one row per method, not per patient, so the audit traces them back to ADTTE.
    """
    parts = quantity.split(".")
    # A subgroup claim (subgroups.<endpoint>.significant.n) rests on every patient of its endpoint.
    endpoint = {"pfs": "PFS", "os": "OS", "followup": "OS"}.get(parts[1] if parts[0] == "subgroups" else parts[0])
    if endpoint is None or cut is None:
        return []
    rows = adtte.filter((pl.col("DCUTDT") == cut) & (pl.col("PARAMCD") == endpoint))
    if quantity.endswith(".events"):
        rows = rows.filter(pl.col("CNSR") == 0)
    return rows["SUBJID"].sort().to_list()
