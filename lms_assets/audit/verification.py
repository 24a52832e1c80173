"""Independent verification: our tables against an independent R program (double programming).

``survival_check.R`` (package data beside this module) recomputes the study's statistics from the record files with
R's ``survival`` and ``stats`` and writes them in long form (table, data_cut, endpoint, key, time, statistic,
value). ``long_form`` puts our warehouse tables in the same shape, ``compare`` sets each of our values beside
R's, and ``verification_summary`` says what was reproduced. The pytest and the ``r_verification``
asset both call ``compare``, so they cannot disagree about what counts as agreement. The tables R does not read are
checked against lifelines in process (``lifelines_check``).

Pure functions on Polars frames; running R is the caller's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import polars as pl

# Agreement: |ours − R| ≤ TOLERANCE · max(1, |R|), both null (not estimable, not reached) also agreeing.
TOLERANCE = 1e-9

LONG_SCHEMA = pl.Schema(
    {
        "table": pl.String,
        "data_cut": pl.String,
        "endpoint": pl.String,
        "key": pl.String,
        "time": pl.Float64,
        "statistic": pl.String,
        "value": pl.Float64,
    }
)
JOIN_KEYS = ["table", "data_cut", "endpoint", "key", "time", "statistic"]


@dataclass(frozen=True)
class Compared:
    """One of our tables as R recomputes it: which row identifies a value, which statistics, which printed values it gives."""

    table: str
    value: str
    statistics: tuple[str, ...]
    key: str | None = None
    time: str | None = None
    rows: pl.Expr | None = None


COMPARED = (
    Compared(
        "survival_curves",
        "Figure 1A/B: Kaplan–Meier steps, n at risk, Greenwood SE, log(−log) band",
        ("at_risk", "events", "censored", "surv", "std_err", "ci_lower", "ci_upper"),
        time="time",
    ),
    Compared(
        "survival_summary",
        "Table 2 and Results: median PFS and OS with the SPSS and Brookmeyer–Crowley CIs",
        ("n", "events", "median", "median_midpoint", "se", "ci_lower", "ci_upper"),
        key="method",
    ),
    Compared(
        "survival_landmarks",
        "Figure 1A/B risk table: at risk, cumulative events, S(t) with CI every 3 months",
        ("at_risk", "events_cum", "censored_cum", "surv", "ci_lower", "ci_upper"),
        time="month",
    ),
    Compared(
        "survival_followup",
        "Results: median follow-up by reverse Kaplan–Meier, and its range",
        ("n", "censored", "median", "median_midpoint", "ci_lower", "ci_upper", "min", "max"),
    ),
    Compared(
        "survival_subgroups",
        "Discussion and forest plot: log-rank p, Cox HR (Efron) with CI and Wald p per subgroup",
        (
            "n",
            "events",
            "median",
            "median_midpoint",
            "n_ref",
            "events_ref",
            "median_ref",
            "median_ref_midpoint",
            "hr",
            "hr_ci_lower",
            "hr_ci_upper",
            "cox_p",
            "logrank_p",
        ),
        key="factor",
    ),
    Compared(
        "response_summary",
        "Table 2: best overall response, ORR and DCR with Clopper–Pearson CIs",
        ("n", "denominator", "pct", "ci_lower_pct", "ci_upper_pct"),
        key="key",
    ),
    Compared(
        "tumour_shrinkage",
        "Results: PR rate with and without combination therapy, Fisher's exact p",
        ("n", "denominator", "pct", "p_value"),
        key="key",
        rows=pl.col("key").str.starts_with("pr_rate."),
    ),
    Compared("baseline_summary", "Table 1: counts and percentages, age median and range", ("n", "pct", "value"), key="key"),
    Compared(
        "ae_summary",
        "Table 4: patients per term at the worst CTCAE grade",
        ("total_n", "total_pct", "g12_n", "g12_pct", "g34_n", "g34_pct", "g5_n", "g5_pct"),
        key="key",
    ),
)
TABLES = tuple(c.table for c in COMPARED)


@dataclass(frozen=True)
class NamedException:
    """A comparison made under another convention or tolerance than the rule, and why."""

    name: str
    tables: tuple[str, ...]
    statistics: tuple[str, ...]
    tolerance: float
    reason: str


# The one list of exceptions. Everything not named here must agree to TOLERANCE.
EXCEPTIONS = (
    NamedException(
        "plateau_median_first_crossing",
        ("survival_summary", "survival_followup", "survival_subgroups"),
        ("median", "median_ref"),
        TOLERANCE,
        "Where S(t) = 0.5 exactly over a stretch, R's quantile.survfit (like SAS PROC LIFETEST) takes the plateau's "
        "midpoint and SPSS the first time S(t) ≤ 0.5. The paper used SPSS, so `median` keeps the first crossing and is "
        "compared with the first crossing R's script reads off survfit's steps, not with quantile(); R's own median is "
        "compared with `median_midpoint` (the script rounds S to 12 digits before quantile(), whose opening test has "
        "no tolerance and so reads a plateau at exactly 0.5 left by rounding at 0.5 + 1e-16 as never reaching 0.5). "
        "Both values are reported.",
    ),
)

COMPARISON_SCHEMA = pl.Schema(
    {
        "table": pl.String,
        "value": pl.String,
        "data_cut": pl.String,
        "endpoint": pl.String,
        "key": pl.String,
        "time": pl.Float64,
        "statistic": pl.String,
        "ours": pl.Float64,
        "r": pl.Float64,
        "abs_diff": pl.Float64,
        "tolerance": pl.Float64,
        "exception": pl.String,
        "status": pl.String,
        "reference": pl.String,
    }
)
# Statuses: agree, disagree, missing_in_r, missing_in_ours; a run that could not happen is one row "not_run".
AGREE, DISAGREE, MISSING_IN_R, MISSING_IN_OURS, NOT_RUN = "agree", "disagree", "missing_in_r", "missing_in_ours", "not_run"


def read_reference(results_csv: Path) -> pl.DataFrame:
    """R's long output (``results.csv``) with the long schema; "NA" is null."""
    frame = pl.read_csv(results_csv, schema=LONG_SCHEMA, null_values=["NA"])
    return frame.with_columns(pl.col("data_cut", "endpoint", "key").fill_null(""))


def reference_label(versions: dict[str, str]) -> str:
    """'R 4.2.2, survival 3.5.3' from R's ``versions.csv`` rows."""
    return ", ".join(f"{name} {version}" for name, version in versions.items())


def long_form(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Our tables in R's long shape: one row per compared value, keyed as the R script keys it."""
    parts = []
    for spec in COMPARED:
        frame = tables[spec.table]
        if spec.rows is not None:
            frame = frame.filter(spec.rows)
        ids = [
            (pl.col("data_cut").cast(pl.String).fill_null("") if "data_cut" in frame.columns else pl.lit("")).alias("data_cut"),
            (pl.col("endpoint").fill_null("") if "endpoint" in frame.columns else pl.lit("")).alias("endpoint"),
            (pl.col(spec.key).cast(pl.String) if spec.key else pl.lit("")).alias("key"),
            (pl.col(spec.time).cast(pl.Float64) if spec.time else pl.lit(None, dtype=pl.Float64)).alias("time"),
        ]
        wide = frame.select(*ids, *(pl.col(s).cast(pl.Float64) for s in spec.statistics))
        parts.append(
            # Table 1 has a statistic named "value", so the melted column is named apart first.
            wide.unpivot(index=["data_cut", "endpoint", "key", "time"], variable_name="statistic", value_name="_value")
            .with_columns(table=pl.lit(spec.table), value=pl.col("_value"))
            .select(list(LONG_SCHEMA))
        )
    return pl.concat(parts).cast(LONG_SCHEMA)


def _unique(frame: pl.DataFrame, side: str) -> pl.DataFrame:
    """``frame`` itself, or an error naming the first repeated key: a repeated key would pair values arbitrarily."""
    repeated = frame.filter(pl.struct(JOIN_KEYS).is_duplicated())
    if repeated.height:
        raise ValueError(f"{side} has {repeated.height} rows with a repeated key, first {repeated.select(JOIN_KEYS).row(0, named=True)}")
    return frame


def compare(ours: pl.DataFrame, reference: pl.DataFrame, reference_name: str) -> pl.DataFrame:
    """Each of our values beside R's, with the tolerance applied, the named exception (if any) and a status.

    ``ours`` is ``long_form`` of our tables; ``reference`` is ``read_reference``'s frame, restricted here to
    the tables we compare. A value on one side only is reported as missing on the other, never dropped.
    """
    ours = _unique(ours.cast(LONG_SCHEMA), "our tables").rename({"value": "ours"}).with_columns(_in_ours=pl.lit(True))
    reference = _unique(reference.filter(pl.col("table").is_in(TABLES)).cast(LONG_SCHEMA), "R's output")
    reference = reference.rename({"value": "r"}).with_columns(_in_r=pl.lit(True))
    exceptions = pl.DataFrame(
        [(t, s, e.name, e.tolerance) for e in EXCEPTIONS for t in e.tables for s in e.statistics],
        schema={"table": pl.String, "statistic": pl.String, "exception": pl.String, "tolerance": pl.Float64},
        orient="row",
    )
    difference = (pl.col("ours") - pl.col("r")).abs()
    agrees = (pl.col("ours").is_null() & pl.col("r").is_null()) | (
        difference <= pl.col("tolerance") * pl.max_horizontal(pl.lit(1.0), pl.col("r").abs())
    )
    values = {c.table: c.value for c in COMPARED}
    return (
        ours.join(reference, on=JOIN_KEYS, how="full", coalesce=True, nulls_equal=True)
        .join(exceptions, on=["table", "statistic"], how="left")
        .with_columns(
            value=pl.col("table").replace_strict(values, default=None, return_dtype=pl.String),
            abs_diff=difference,
            tolerance=pl.col("tolerance").fill_null(TOLERANCE),
        )
        .with_columns(
            status=pl.when(pl.col("_in_r").is_null())
            .then(pl.lit(MISSING_IN_R))
            .when(pl.col("_in_ours").is_null())
            .then(pl.lit(MISSING_IN_OURS))
            .when(agrees.fill_null(False))
            .then(pl.lit(AGREE))
            .otherwise(pl.lit(DISAGREE)),
            reference=pl.lit(reference_name),
        )
        .select(list(COMPARISON_SCHEMA))
        .cast(COMPARISON_SCHEMA)
        .sort("table", "data_cut", "endpoint", "key", "time", "statistic", nulls_last=True)
    )


def not_run(reason: str) -> pl.DataFrame:
    """The record of a verification that did not happen: one row saying why, never a pass."""
    return pl.DataFrame([{"status": NOT_RUN, "reference": f"not run: {reason}"}], schema=COMPARISON_SCHEMA)


def verification_summary(table: pl.DataFrame) -> dict:
    """What the comparison shows, for the report and printed_audit's metadata.

    Keys: ``status`` (``reproduced``, ``disagreements`` or ``not run: …``), ``reference`` (R's and survival's
    versions), ``comparisons``, ``agreed``, ``disagreed``, ``missing`` (on one side only), ``values`` (per
    table: the printed objects it gives, comparisons and agreed), ``exceptions`` (name, reason, comparisons
    made under it) and ``markdown``, the same as a Markdown block.
    """
    ran = table.filter(pl.col("status") != NOT_RUN)
    reference = cast(str, table["reference"].drop_nulls().first()) if table.height else "not run: no comparison recorded"
    if ran.is_empty():
        summary: dict[str, Any] = {
            "status": reference,
            "reference": reference,
            "comparisons": 0,
            "agreed": 0,
            "disagreed": 0,
            "missing": 0,
            "values": [],
            "exceptions": [],
        }
        summary["markdown"] = f"**Independent verification (R):** {reference}. Nothing was compared."
        return summary
    counts = ran["status"].value_counts()
    count = dict(zip(counts["status"], counts["count"]))
    values = ran.group_by("table", "value", maintain_order=True).agg(comparisons=pl.len(), agreed=(pl.col("status") == AGREE).sum()).sort("table")
    used = ran.filter(pl.col("exception").is_not_null()).group_by("exception").len()
    used_count = dict(zip(used["exception"], used["len"]))
    exceptions = [
        {
            "name": e.name,
            "tables": list(e.tables),
            "statistics": list(e.statistics),
            "tolerance": e.tolerance,
            "reason": e.reason,
            "comparisons": int(used_count.get(e.name, 0)),
        }
        for e in EXCEPTIONS
    ]
    agreed = int(count.get(AGREE, 0))
    disagreed = int(count.get(DISAGREE, 0))
    missing = int(count.get(MISSING_IN_R, 0) + count.get(MISSING_IN_OURS, 0))
    summary = {
        "status": "reproduced" if agreed == ran.height else "disagreements",
        "reference": reference,
        "comparisons": ran.height,
        "agreed": agreed,
        "disagreed": disagreed,
        "missing": missing,
        "values": values.to_dicts(),
        "exceptions": exceptions,
    }
    lines = [
        f"**Independent verification ({reference}):** {agreed:,} of {ran.height:,} values agree "
        f"(|ours − R| ≤ {TOLERANCE:g}·max(1, |R|)); {disagreed} disagree; {missing} on one side only.",
        "",
        "| table | reproduces | compared | agreed |",
        "|---|---|---|---|",
        *(f"| {f['table']} | {f['value']} | {f['comparisons']} | {f['agreed']} |" for f in summary["values"]),
        "",
        "Named exceptions:",
        *(f"- `{e['name']}` ({e['comparisons']} comparisons, tolerance {e['tolerance']:g}): {e['reason']}" for e in exceptions),
    ]
    summary["markdown"] = "\n".join(lines)
    return summary
