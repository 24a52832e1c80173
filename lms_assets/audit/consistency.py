"""Every printed value audited: what it rests on, what the paper contradicts about it, and its verdict.

``paper_consistency`` gathers, per printed value, its basis and every finding (``audit.findings``); ``audit_row`` is
``printed_audit``'s row, with the verdict of the checks (``checks.printed_values.judge``). Pure functions on the
typed registry (``schemas.REGISTRY``).
"""

import polars as pl

from lms_assets.audit.basis import basis_of, reconstructions_of
from lms_assets.audit.feasibility import Feasibility
from lms_assets.audit.findings import cross_source_findings, empty_findings, feasibility_findings, granularity_findings, paired_count_findings
from lms_assets.audit.rounding import rounding_audit
from lms_assets.checks.printed_values import judge

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
