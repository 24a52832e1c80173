"""Table 2's response rows, RECIST 1.1 consistency of each recorded response, and the Results' shrinkage values.

Pure functions on the ADaM frames (ADRS PARAMCD BOR, ADSL, ADTTE).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from lms_assets.tables import printed

RESPONSE_LABELS = {
    "CR": "Complete response (CR)",
    "PR": "Partial response (PR)",
    "SD": "Stable disease (SD)",
    "PD": "Progressive disease (PD)",
    "NE": "Not evaluable (NE)",
}
# Categories Table 2 reports even when nobody is in them; NE is shown only when present.
REPORTED_CATEGORIES = ("CR", "PR", "SD", "PD")
RATES = {
    "orr": ("Objective response rate, ORR (CR + PR)", ("CR", "PR")),
    "dcr": ("Disease control rate, DCR (CR + PR + SD)", ("CR", "PR", "SD")),
}
CI_NOTE = "exact Clopper–Pearson 95% CI, computed here (not printed in the paper)"
FISHER_NOTE = "Fisher's exact, two-sided (not in the paper)"

# RECIST 1.1 thresholds on the % change of the target-lesion sum.
PR_THRESHOLD = -30.0
PD_THRESHOLD = 20.0
SHRINKAGE_GT70 = -70.0
# "No significant benefit": a two-sided p below this would contradict the Discussion.
SIGNIFICANCE = 0.05

SUMMARY_SCHEMA = pl.Schema(
    {
        "row": pl.String(),
        "key": pl.String(),
        "n": pl.Int64(),
        "denominator": pl.Int64(),
        "pct": pl.Float64(),
        "ci_lower_pct": pl.Float64(),
        "ci_upper_pct": pl.Float64(),
        "ci_method": pl.String(),
        "patients": pl.List(pl.Int64),
    }
)

SHRINKAGE_SCHEMA = pl.Schema(
    {
        "key": pl.String(),
        "statistic": pl.String(),
        "data_cut": pl.Date(),
        "n": pl.Int64(),
        "denominator": pl.Int64(),
        "pct": pl.Float64(),
        "mean_pct": pl.Float64(),
        "p_value": pl.Float64(),
        "test": pl.String(),
        "patients": pl.List(pl.Int64),
    }
)


def best_responses(adrs: pl.DataFrame) -> pl.DataFrame:
    """Patients with a recorded best overall response: ADRS rows with PARAMCD BOR and a non-missing AVALC."""
    return adrs.filter((pl.col("PARAMCD") == "BOR") & pl.col("AVALC").is_not_null())


def with_best_change(bor: pl.DataFrame, adtr: pl.DataFrame) -> pl.DataFrame:
    """The BOR rows with PCHG, each patient's best % change of the target-lesion sum (ADTR's SDIAM at AVISIT BEST);
    null where none was measured."""
    change = adtr.filter((pl.col("PARAMCD") == "SDIAM") & (pl.col("AVISIT") == "BEST")).select("SUBJID", "PCHG")
    return bor.join(change, on="SUBJID", how="left", maintain_order="left")


def clopper_pearson(k: int, n: int) -> tuple[float | None, float | None]:
    """Exact (Clopper–Pearson) 95% interval of k/n in percent, by scipy's binomtest; None when n is 0."""
    if n == 0:
        return None, None
    # Imported here: scipy.stats takes ~1 s to import, which every process loading the definitions would pay.
    from scipy import stats

    interval = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return 100.0 * interval.low, 100.0 * interval.high


def _ids(frame: pl.DataFrame) -> list[int]:
    return frame["SUBJID"].sort().to_list()


def response_summary(adrs: pl.DataFrame) -> pl.DataFrame:
    """RECIST 1.1 best overall response: n and % of patients with a BOR per category; ORR = CR+PR, DCR = CR+PR+SD, exact 95% CIs."""
    bor = best_responses(adrs)
    denominator = bor.height
    present = set(bor["AVALC"].unique().to_list())
    categories = [*REPORTED_CATEGORIES, *(c for c in RESPONSE_LABELS if c not in REPORTED_CATEGORIES and c in present)]
    rows: list[tuple[str, str, list[int], tuple[float | None, float | None] | None]] = []
    for category in categories:
        ids = _ids(bor.filter(pl.col("AVALC") == category))
        rows.append((RESPONSE_LABELS[category], f"response.{category}", ids, None))
    for key, (label, members) in RATES.items():
        ids = _ids(bor.filter(pl.col("AVALC").is_in(members)))
        rows.append((label, key, ids, clopper_pearson(len(ids), denominator)))
    return pl.DataFrame(
        [
            {
                "row": label,
                "key": key,
                "n": len(ids),
                "denominator": denominator,
                "pct": 100.0 * len(ids) / denominator if denominator else None,
                "ci_lower_pct": ci[0] if ci else None,
                "ci_upper_pct": ci[1] if ci else None,
                "ci_method": CI_NOTE if ci else None,
                "patients": ids,
            }
            for label, key, ids, ci in rows
        ],
        schema=SUMMARY_SCHEMA,
    )


def recomputed_values(table: pl.DataFrame, published_cut: dt.date | None = None) -> pl.DataFrame:
    """Table 2's recomputed response values: the n and % cells of each response row, ORR and DCR."""
    return printed.count_values(table.select("key", "n", "pct", "patients"))


TABLE_2 = printed.PrintedQuantities("response_summary", ("response.", "orr.", "dcr."), recomputed_values)


def pchg_range(pchg: pl.Expr) -> pl.Expr:
    """RECIST 1.1 thresholds on the best % change: ≤ −30% is a PR-sized decrease, ≥ +20% a PD-sized increase, between SD-sized."""
    return (
        pl.when(pchg.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(pchg <= PR_THRESHOLD)
        .then(pl.lit("PR-sized (≤ −30%)"))
        .when(pchg >= PD_THRESHOLD)
        .then(pl.lit("PD-sized (≥ +20%)"))
        .otherwise(pl.lit("SD-sized (−30% to +20%)"))
    )


def recist_review_reason(avalc: pl.Expr, pchg: pl.Expr) -> pl.Expr:
    """RECIST 1.1: a recorded response whose best % change is outside its threshold needs review (null = consistent).

    PD is judged against the nadir (≥ 20% and ≥ 5 mm) or on new lesions, so the best change from
    baseline alone cannot refute a PD, nor prove one: a mismatch is flagged, never corrected.
    """
    return (
        pl.when(avalc == "NE")
        .then(pl.lit("not evaluable: no RECIST category to compare"))
        .when(pchg.is_null())
        .then(pl.lit("no best % change recorded to compare with the response"))
        .when(avalc.is_in(["CR", "PR"]) & (pchg > PR_THRESHOLD))
        .then(pl.lit("recorded as a response but the best decrease is under 30% (RECIST 1.1 PR needs ≥ 30%)"))
        .when((avalc == "SD") & (pchg <= PR_THRESHOLD))
        .then(pl.lit("SD with a decrease of ≥ 30%: a PR-sized change (unconfirmed PR?)"))
        .when((avalc == "SD") & (pchg >= PD_THRESHOLD))
        .then(pl.lit("SD with a best change of ≥ +20%: PD is judged from the nadir and needs ≥ 5 mm growth; check the lesions"))
        .when((avalc == "PD") & (pchg < PD_THRESHOLD))
        .then(pl.lit("PD with a best change under +20%: growth from the nadir, new or non-target lesions may explain it"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


def recist_consistency(adrs: pl.DataFrame, adtr: pl.DataFrame) -> pl.DataFrame:
    """Each patient's recorded best response against RECIST 1.1's thresholds on the best % change: 'consistent' or 'review' + reason."""
    reason = recist_review_reason(pl.col("AVALC"), pl.col("PCHG"))
    return (
        with_best_change(best_responses(adrs), adtr)
        .select(
            "USUBJID",
            "SUBJID",
            pl.col("AVALC").alias("recorded_response"),
            pl.col("PCHG").alias("best_pct_change"),
            pchg_range(pl.col("PCHG")).alias("threshold_range"),
            pl.when(reason.is_null()).then(pl.lit("consistent")).otherwise(pl.lit("review")).alias("status"),
            reason.fill_null("recorded response matches the RECIST 1.1 range of the best % change").alias("reason"),
        )
        .sort(pl.col("status") != "review", "SUBJID")
    )


def _row(key: str, statistic: str, ids: list[int], denominator: int | None, **extra) -> dict:
    pct = 100.0 * len(ids) / denominator if denominator else None
    return {"key": key, "statistic": statistic, "n": len(ids), "denominator": denominator, "pct": pct, "patients": ids, **extra}


def shrinkage_rows(bor: pl.DataFrame) -> list[dict]:
    """Tumour shrinkage: patients with a best change below 0% (of those with a change); their mean shrinkage = mean |change|."""
    measured = bor.filter(pl.col("PCHG").is_not_null())
    shrunk = measured.filter(pl.col("PCHG") < 0)
    mean = shrunk["PCHG"].abs().mean() if shrunk.height else None
    label = "Any tumour shrinkage (best change < 0%), with the mean shrinkage (mean |best change|)"
    return [_row("shrinkage", label, _ids(shrunk), measured.height, mean_pct=mean)]


def immunotherapy_rows(treated: pl.DataFrame, adtte: pl.DataFrame) -> list[dict]:
    """The study treatment + immunotherapy: patients, best responses, shrinkage over 70% and, per data cut, those of them alive (OS censored)."""
    immuno = treated.filter(pl.col("IMMUNOFL") == "Y")
    rows = [_row("immunotherapy", "Treated with the study treatment + immunotherapy", _ids(immuno), treated.height)]
    rows += [
        _row(f"immunotherapy.{c}", f"… with best response {c}", _ids(immuno.filter(pl.col("AVALC") == c)), immuno.height) for c in REPORTED_CATEGORIES
    ]
    deep = immuno.filter(pl.col("PCHG") < SHRINKAGE_GT70)
    rows.append(_row("shrinkage_gt70_immunotherapy", "… with shrinkage over 70%", _ids(deep), immuno.height))
    alive = adtte.filter((pl.col("PARAMCD") == "OS") & (pl.col("CNSR") == 1))
    for cut in adtte["DCUTDT"].unique().sort().to_list():
        alive_at_cut = alive.filter(pl.col("DCUTDT") == cut)["SUBJID"].implode()
        ids = _ids(deep.filter(pl.col("SUBJID").is_in(alive_at_cut)))
        label = "… with shrinkage over 70% and alive at the data cut"
        rows.append(_row("shrinkage_gt70_immunotherapy_alive", label, ids, deep.height, data_cut=cut))
    return rows


# Rates compared between combination therapy and the study treatment alone: registry key, printed label, counted responses.
# The Discussion prints the PR rates and says neither ORR nor DCR differed significantly.
COMBINATION_RATES = (
    ("pr_rate", "PR rate", ("PR",)),
    ("orr_by_combination", "ORR (CR + PR)", ("CR", "PR")),
    ("dcr_by_combination", "DCR (CR + PR + SD)", ("CR", "PR", "SD")),
)


def rate_by_combination_rows(treated: pl.DataFrame, key: str, label: str, members: tuple[str, ...]) -> list[dict]:
    """A response rate with combination therapy (COMBFL = Y) vs the study treatment alone (COMBFL = N), compared by Fisher's exact test, two-sided."""
    groups = {
        "combination": (f"{label}, study treatment + other therapy", treated.filter(pl.col("COMBFL") == "Y")),
        "monotherapy": (f"{label}, the study treatment alone", treated.filter(pl.col("COMBFL") == "N")),
    }
    responders = {name: _ids(group.filter(pl.col("AVALC").is_in(members))) for name, (_, group) in groups.items()}
    table = [[len(responders[name]), group.height - len(responders[name])] for name, (_, group) in groups.items()]
    from scipy import stats  # imported here, as in clopper_pearson

    p_value = stats.fisher_exact(table).pvalue if all(sum(r) for r in table) else None
    return [_row(f"{key}.{name}", text, responders[name], group.height, p_value=p_value, test=FISHER_NOTE) for name, (text, group) in groups.items()]


def tumour_shrinkage(adsl: pl.DataFrame, adrs: pl.DataFrame, adtr: pl.DataFrame, adtte: pl.DataFrame) -> pl.DataFrame:
    """The Results' and Discussion's response values: shrinkage (from ADTR), the study treatment + immunotherapy, PR, ORR and DCR by combination therapy."""
    bor = with_best_change(best_responses(adrs), adtr)
    treated = bor.join(adsl.select("SUBJID", "COMBFL", "IMMUNOFL"), on="SUBJID", how="inner")
    by_combination = [row for key, label, members in COMBINATION_RATES for row in rate_by_combination_rows(treated, key, label, members)]
    rows = [*shrinkage_rows(bor), *immunotherapy_rows(treated, adtte), *by_combination]
    return pl.DataFrame(rows, schema=SHRINKAGE_SCHEMA)


def shrinkage_recomputed_values(table: pl.DataFrame, published_cut: dt.date | None = None) -> pl.DataFrame:
    """The text's shrinkage values recomputed from the cells: n and % per row, the mean shrinkage, aliveness at the published cut (else the latest),
    and per rate compared by combination therapy ``<key>.significant.n``: 1 when the shown Fisher p is below 0.05, else 0
    (its patients are the responders of both groups: the table lists no others).
    """
    cuts = table["data_cut"].drop_nulls()
    cut = published_cut if published_cut is not None else (cuts.max() if cuts.len() else None)
    rows = table.filter(pl.col("data_cut").is_null() | (pl.col("data_cut") == cut))
    means = rows.filter(pl.col("mean_pct").is_not_null()).select(
        (pl.col("key") + ".mean_pct").alias("quantity"), pl.col("mean_pct").alias("value"), "patients"
    )
    compared = (
        rows.filter(pl.col("p_value").is_not_null())
        .group_by(pl.col("key").str.extract(r"^([^.]+)\.").alias("rate"), maintain_order=True)
        .agg(pl.col("p_value").first(), pl.col("patients").list.explode(keep_nulls=False, empty_as_null=False).unique().sort())
        .select(
            (pl.col("rate") + ".significant.n").alias("quantity"),
            (pl.col("p_value") < SIGNIFICANCE).cast(pl.Float64).alias("value"),
            "patients",
        )
    )
    counts = printed.count_values(rows.select("key", "n", "pct", "patients"))
    return pl.concat([counts, means.cast(printed.VALUES_SCHEMA), compared.cast(printed.VALUES_SCHEMA)])


SHRINKAGE = printed.PrintedQuantities(
    "tumour_shrinkage",
    ("shrinkage", "pr_rate.", "immunotherapy.", "orr_by_combination.", "dcr_by_combination."),
    shrinkage_recomputed_values,
)
