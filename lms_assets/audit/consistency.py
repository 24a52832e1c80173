"""The audit of the published figures: which printed numbers the data support and which the paper contradicts.

Pure functions on the typed registry (see ``schemas.REGISTRY``), figures frames and the follow-up rows.
"""

import decimal
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import polars as pl

from lms_assets.adam.adsl import VARIABLE_SOURCES
from lms_assets.tables import printed as fig
from lms_assets.tables import survival

FINDINGS_SCHEMA = {"figure_id": pl.String, "finding": pl.String, "explanation": pl.String}

# Cells (rows × columns) an enumeration of reconstructions may hold at once. The shipped study's largest is about
# 2.1 million (24,570 labelled placements of 7 patients before deduplication: 302,400 × 7); each cell costs some
# 20 bytes with its temporaries, so this keeps a step under half a gigabyte. An inconsistent input (a fault in the
# SPSS SE once left only the median to match) asks for thousands of times more.
MAX_ENUMERATED_CELLS = 20_000_000


class EnumerationTooLarge(ValueError):
    """An enumeration of reconstructions would exceed ``MAX_ENUMERATED_CELLS``: raised before anything is allocated.

    The message names the quantity enumerated and its count, so the failure says what grew, not that memory ran out.
    """

    def __init__(self, quantity: str, rows: int, columns: int):
        self.quantity, self.rows, self.columns = quantity, rows, columns
        super().__init__(
            f"{quantity}: {rows:,} rows of {columns} to enumerate ({rows * columns:,} cells) exceed the limit of "
            f"{MAX_ENUMERATED_CELLS:,}; the records or the printed figures are inconsistent, or a computation upstream is wrong"
        )


def bound_enumeration(quantity: str, rows: int, columns: int) -> None:
    """Raise ``EnumerationTooLarge`` when ``rows`` × ``columns`` cells exceed ``MAX_ENUMERATED_CELLS``; call it before allocating."""
    if rows * max(columns, 1) > MAX_ENUMERATED_CELLS:
        raise EnumerationTooLarge(quantity, rows, columns)


# Quantities whose printed denominator is a subgroup (e.g. 2/7 on combination therapy), not the cohort.
SUBGROUP_PREFIXES = ("pr_rate.",)

# What each printed quantity rests on in data/: (file, column). "*" is every column of the file.
QUANTITY_INPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "site.": (("patient_allocations.csv", "primary_site"),),
    "dose.": (("patient_allocations.csv", "starting_dose_mg"),),
    "dose_reduction.": (("patient_allocations.csv", "dose_reduced"),),
    "discontinuation.": (("patient_allocations.csv", "discontinued_for_toxicity"),),
    "ae.": (("adverse_events.csv", "*"),),
    "treatment_related_deaths.": (("adverse_events.csv", "*"),),
    "os.events": (("followup/", "died"),),
    "os.": (("followup/", "os_months"), ("followup/", "died")),
    "followup.": (("followup/", "os_months"), ("followup/", "died")),
    "pfs.": (("followup/", "pfs_months"), ("followup/", "progressed")),
    "shrinkage_gt70_immunotherapy_alive": (("response.csv", "best_pct_change"), ("followup/", "died")),
    "shrinkage": (("response.csv", "best_pct_change"),),
    "response.": (("response.csv", "best_response"),),
    "orr.": (("response.csv", "best_response"),),
    "dcr.": (("response.csv", "best_response"),),
    "pr_rate.": (("response.csv", "best_response"), ("patients.csv", "combination_therapy")),
    "orr_by_combination.": (("response.csv", "best_response"), ("patients.csv", "combination_therapy")),
    "dcr_by_combination.": (("response.csv", "best_response"), ("patients.csv", "combination_therapy")),
    "immunotherapy.": (("response.csv", "best_response"), ("patients.csv", "combination_therapy")),
}
# A claim rests on its endpoint's times and on the record column of every factor it compares (survival.SUBGROUP_CLAIM).
QUANTITY_INPUTS.update(
    {
        survival.SUBGROUP_CLAIM.quantity_of(endpoint): (
            *QUANTITY_INPUTS[f"{endpoint.lower()}."],
            *dict.fromkeys(VARIABLE_SOURCES[s.column] for s in survival.SUBGROUP_CLAIM.comparisons),
        )
        for endpoint in survival.SUBGROUP_CLAIM.endpoints
    }
)


def _empty_findings() -> pl.DataFrame:
    return pl.DataFrame(schema=FINDINGS_SCHEMA)


def _findings(rows: Iterable[tuple[str, str, str]]) -> pl.DataFrame:
    rows = list(rows)
    return pl.DataFrame(rows, schema=FINDINGS_SCHEMA, orient="row") if rows else _empty_findings()


def _half_unit(decimals: int) -> float:
    return 0.5 * 10 ** (-decimals)


def grim_fractions(pct: float, decimals: int, n: int) -> list[int]:
    """GRIM (Brown & Heathers): the whole k for which 100·k/n rounds to the printed percentage."""
    return [k for k in range(n + 1) if fig.agrees(pct, decimals, 100.0 * k / n)]


def _nearest(pct: float, n: int) -> str:
    below = math.floor(pct * n / 100)
    options = [k for k in (below, below + 1) if 0 <= k <= n]
    return " and ".join(f"{k}/{n} = {100 * k / n:.1f}%" for k in options)


def granularity_findings(registry: pl.DataFrame, cohort_n: int) -> pl.DataFrame:
    """GRIM: every printed percentage of patients must be k/n for a whole k, and a printed k/n must agree with itself and the cohort.

    Only proportions of patients (quantities ending ``.pct``) are granular; a mean of percentages is not.
    """
    found = []
    proportions = registry.filter((pl.col("unit") == "percent") & pl.col("quantity").str.ends_with(".pct"))
    for row in proportions.iter_rows(named=True):
        pct, decimals = row["value"], row["decimals"]
        subgroup = row["quantity"].startswith(SUBGROUP_PREFIXES)
        num, den = row["numerator"], row["denominator"]
        if den is not None:
            if num is not None and not fig.agrees(pct, decimals, 100.0 * num / den):
                found.append(
                    (
                        row["figure_id"],
                        "self_inconsistent",
                        f"{row['source']} prints {pct:g}% as {num}/{den}, but {num}/{den} = {100 * num / den:.1f}%",
                    )
                )
            if (den != cohort_n and not subgroup) or den > cohort_n:
                found.append(
                    (row["figure_id"], "wrong_denominator", f"{row['source']} prints the denominator {den}, but the cohort has {cohort_n} patients")
                )
        n = den if (subgroup and den is not None) else cohort_n
        if not grim_fractions(pct, decimals, n):
            found.append(
                (
                    row["figure_id"],
                    "grim_impossible",
                    f"{row['source']} prints {pct:g}%, which is not k/{n} for any whole k (nearest: {_nearest(pct, n)})",
                )
            )
    return _findings(found)


def paired_count_findings(registry: pl.DataFrame, cohort_n: int) -> pl.DataFrame:
    """A printed "k (x%)" must agree with itself: x% = k/n for the cohort size n."""
    counts = registry.filter(pl.col("quantity").str.ends_with(".n")).with_columns(pl.col("quantity").str.strip_suffix(".n").alias("stem"))
    pcts = registry.filter(pl.col("quantity").str.ends_with(".pct")).with_columns(pl.col("quantity").str.strip_suffix(".pct").alias("stem"))
    pairs = pcts.join(counts.select("source", "stem", pl.col("value").alias("count")), on=["source", "stem"])
    found = []
    subgroup = pl.any_horizontal(pl.col("quantity").str.starts_with(p) for p in SUBGROUP_PREFIXES)
    for row in pairs.filter(~subgroup).iter_rows(named=True):
        implied = 100.0 * row["count"] / cohort_n
        if not fig.agrees(row["value"], row["decimals"], implied):
            found.append(
                (
                    row["figure_id"],
                    "self_inconsistent",
                    f"{row['source']} prints {row['count']:g} patients as {row['value']:g}%, but {row['count']:g}/{cohort_n} = {implied:.1f}%",
                )
            )
    return _findings(found)


def _compatible(a: dict, b: dict) -> bool:
    """Two printings can be the same number if their rounding intervals overlap."""
    return abs(a["value"] - b["value"]) <= _half_unit(a["decimals"]) + _half_unit(b["decimals"]) + 1e-9


def cross_source_findings(registry: pl.DataFrame) -> pl.DataFrame:
    """Cross-source: printings of the same quantity in different places must agree at their precisions."""
    found = []
    for (quantity,), group in registry.group_by("quantity", maintain_order=True):
        rows = list(group.iter_rows(named=True))
        for row in rows:
            others = [o for o in rows if o["figure_id"] != row["figure_id"] and not _compatible(row, o)]
            if others:
                listed = "; ".join(f"{o['source']} prints {o['printed']!r}" for o in others)
                found.append((row["figure_id"], "cross_source_conflict", f"{row['source']} prints {row['printed']!r} for {quantity}, but {listed}"))
    return _findings(found)


def reconstructions_of(quantity: str, provenance: pl.DataFrame) -> list[str]:
    """The reconstructed (or synthetic) inputs a quantity rests on, each named by file, column, patients and how it was made."""
    inputs = next((v for k, v in QUANTITY_INPUTS.items() if quantity.startswith(k)), ())
    reconstructed = provenance.filter(pl.col("origin") != "transcribed")
    named = []
    for file, column in inputs:
        hit = reconstructed.filter(pl.col("file").str.starts_with(file) & ((pl.col("column") == column) | (pl.col("column") == "*")))
        for row in hit.iter_rows(named=True):
            patients = f" of patients {row['patient_ids']}" if row["patient_ids"] not in (None, "", "all") else ""
            how = row["constraint"] or row["location"]
            named.append(f"{row['file']} {row['column']}{patients} ({row['origin']}: {how})")
    return named


def basis_of(quantity: str, provenance: pl.DataFrame) -> str:
    """`reconstructed_inputs` when anything the quantity rests on is reconstructed in data/, else `published_patient_data`."""
    return "reconstructed_inputs" if reconstructions_of(quantity, provenance) else "published_patient_data"


# --- feasibility of figures that rest on unpublished follow-up -------------------------------------------------


@dataclass(frozen=True)
class Feasibility:
    """What every assignment of the unpublished censoring times allows for the OS figures."""

    patterns_examined: int
    patterns_feasible: int
    estimates: pl.DataFrame  # one row per feasible pattern: median, CI, and the follow-up values it allows


def os_feasibility(death_times: Iterable[float], censor_bounds: Sequence[tuple[float, float]]) -> Feasibility:
    """Every placement of the censored patients among the death times, within each one's (lower, upper) bounds.

    The Kaplan–Meier median and SPSS's interval depend only on where each censoring falls among the death
    times (a censoring tied with a death counts as at risk at it), so the search is exact and exhaustive
    over multisets of gaps between death times; a multiset is feasible when the patients' bounds can fill it
    (Hall's condition on sorted bounds). All feasible patterns are estimated together, grouped by pattern.
    """
    deaths = sorted(death_times)
    distinct = sorted(set(deaths))
    # Gap j holds censorings in [distinct[j-1], distinct[j]); the last gap is beyond the last death.
    gap_lo = [0.0, *distinct]
    gap_hi = [*distinct, math.inf]
    # Any time strictly inside a gap orders the same way as every other time in it.
    gap_time = [(lo + hi) / 2 if hi != math.inf else lo + 1.0 for lo, hi in zip(gap_lo, gap_hi)]
    lowers = sorted(lo for lo, _ in censor_bounds)
    upper = min(hi for _, hi in censor_bounds)
    # Each pattern becomes a Kaplan–Meier curve of every patient: the frame below has (deaths + censored) rows per pattern.
    bound_enumeration(
        "OS gap multisets (placements of the censored among the death times)",
        math.comb(len(gap_lo) + len(censor_bounds) - 1, len(censor_bounds)),
        len(deaths) + len(censor_bounds),
    )
    patterns = np.array(list(itertools.combinations_with_replacement(range(len(gap_lo)), len(censor_bounds))), dtype=np.int64).reshape(
        -1, len(censor_bounds)
    )
    gaps = patterns[np.all((np.asarray(gap_hi)[patterns] > lowers) & (np.asarray(gap_lo)[patterns] <= upper), axis=1)]
    if not len(gaps):
        return Feasibility(len(patterns), 0, pl.DataFrame(schema=_FEASIBILITY_SCHEMA))
    n_pat, n_cens = gaps.shape
    frame = pl.DataFrame(
        {
            "pattern": np.repeat(np.arange(n_pat), len(deaths) + n_cens),
            "time": np.hstack([np.tile(deaths, (n_pat, 1)), np.asarray(gap_time)[gaps]]).ravel(),
            "event": np.tile(np.r_[np.ones(len(deaths), dtype=np.int64), np.zeros(n_cens, dtype=np.int64)], n_pat),
        }
    )
    medians = survival.spss_medians(survival.km_steps(frame, by=["pattern"]), by=["pattern"])
    # Reverse Kaplan–Meier (censorings are the events): its median falls in one gap; any time there is possible.
    reverse = survival.km_steps(frame.with_columns((1 - pl.col("event")).alias("event")), by=["pattern"])
    followup_gap = (
        reverse.filter((pl.col("events") > 0) & (pl.col("surv") <= 0.5 + survival.TOLERANCE))
        .group_by("pattern")
        .agg(pl.col("time").first())
        .with_columns(pl.col("time").replace_strict(gap_time, list(range(len(gap_time)))).alias("followup_gap"))
    )
    patterns_frame = pl.DataFrame(
        {
            "pattern": np.arange(n_pat),
            # From the 2-D array directly: building the list column from Python lists took a second.
            "gaps": pl.Series(gaps).cast(pl.List(pl.Int64)),
            "first_gap": gaps[:, 0],
            "last_gap": gaps[:, -1],
        }
    )
    estimates = (
        patterns_frame.join(medians, on="pattern")
        .join(followup_gap.select("pattern", "followup_gap"), on="pattern", how="left")
        .with_columns(
            followup_median_lo=pl.max_horizontal(
                pl.col("followup_gap").map_elements(lambda g: gap_lo[g], return_dtype=pl.Float64), pl.lit(lowers[0])
            ),
            followup_median_hi=pl.col("followup_gap").map_elements(lambda g: min(gap_hi[g], upper), return_dtype=pl.Float64),
            # Shortest follow-up: a censoring before the first death may sit anywhere from its bound up to it.
            followup_min_lo=pl.when(pl.col("first_gap") == 0).then(pl.lit(lowers[0])).otherwise(pl.lit(distinct[0])),
            followup_min_hi=pl.lit(distinct[0]),
            # Longest follow-up: at least the last death, the last censoring's gap and the largest bound.
            followup_max_lo=pl.max_horizontal(
                pl.lit(deaths[-1]), pl.col("last_gap").map_elements(lambda g: gap_lo[g], return_dtype=pl.Float64), pl.lit(lowers[-1])
            ),
            followup_max_hi=pl.max_horizontal(
                pl.lit(deaths[-1]), pl.col("last_gap").map_elements(lambda g: min(gap_hi[g], upper), return_dtype=pl.Float64)
            ),
        )
        .select(list(_FEASIBILITY_SCHEMA))
        .cast(_FEASIBILITY_SCHEMA)
    )
    return Feasibility(len(patterns), n_pat, estimates)


_FEASIBILITY_SCHEMA = pl.Schema(
    {
        "gaps": pl.List(pl.Int64),
        "median": pl.Float64(),
        "ci_lower": pl.Float64(),
        "ci_upper": pl.Float64(),
        "followup_median_lo": pl.Float64(),
        "followup_median_hi": pl.Float64(),
        "followup_min_lo": pl.Float64(),
        "followup_min_hi": pl.Float64(),
        "followup_max_lo": pl.Float64(),
        "followup_max_hi": pl.Float64(),
    }
)


def reachable(estimates: pl.DataFrame, printed: dict[str, tuple[float, int]]) -> bool:
    """Whether one feasible pattern reproduces every printed value in ``printed`` (name → (value, decimals)) at once."""
    mask = pl.lit(True)
    for name, (value, decimals) in printed.items():
        if name.startswith("followup_"):
            mask &= (pl.col(f"{name}_lo") <= value + _half_unit(decimals)) & (pl.col(f"{name}_hi") >= value - _half_unit(decimals))
        else:
            mask &= (pl.col(name) - value).abs() <= _half_unit(decimals) + 1e-9
    return estimates.filter(mask).height > 0


# Figures whose printed values rest on the unpublished last-contact times, by registry quantity.
_FEASIBILITY_QUANTITIES = {
    "os.median": "median",
    "os.ci_lower": "ci_lower",
    "os.ci_upper": "ci_upper",
    "followup.median": "followup_median",
    "followup.min": "followup_min",
    "followup.max": "followup_max",
}


def feasibility_findings(registry: pl.DataFrame, feasibility: Feasibility) -> pl.DataFrame:
    """Each place's printed OS figures, taken together, must be reachable by some placement of the unpublished times."""
    rows = registry.filter(pl.col("quantity").is_in(list(_FEASIBILITY_QUANTITIES)))
    found = []
    for (source,), group in rows.group_by("source", maintain_order=True):
        by_kind: dict[str, list[dict]] = {"os": [], "followup": []}
        for row in group.iter_rows(named=True):
            by_kind[row["quantity"].split(".")[0]].append(row)
        for printed_rows in by_kind.values():
            if not printed_rows:
                continue
            printed = {_FEASIBILITY_QUANTITIES[r["quantity"]]: (r["value"], r["decimals"]) for r in printed_rows}
            if reachable(feasibility.estimates, printed):
                continue
            what = ", ".join(f"{r['quantity']} = {r['value']:g}" for r in printed_rows)
            # Say which single values are reachable, so the sentence points at the impossible one.
            alone = [
                r["quantity"]
                for r in printed_rows
                if not reachable(feasibility.estimates, {_FEASIBILITY_QUANTITIES[r["quantity"]]: (r["value"], r["decimals"])})
            ]
            detail = f"; {', '.join(alone)} cannot be reached even alone" if alone else ""
            for r in printed_rows:
                found.append(
                    (
                        r["figure_id"],
                        "unreachable",
                        f"{source} prints {what}: no placement of the unpublished last-contact times "
                        f"({feasibility.patterns_feasible} feasible of {feasibility.patterns_examined} examined) "
                        f"gives these together under the paper's method{detail}",
                    )
                )
    return _findings(found)


# --- assembling the audit ------------------------------------------------------------------------------------

CONSISTENCY_SCHEMA = pl.Schema(
    {
        "figure_id": pl.String(),
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
        "figure_id": pl.String(),
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

# The reviewed-discrepancy columns the typed registry carries (null where the figure is not reviewed).
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
    """Per printed figure: what it rests on (basis, and which reconstruction) and every way the paper contradicts itself about it."""
    findings = pl.concat(
        [
            granularity_findings(registry, cohort_n),
            paired_count_findings(registry, cohort_n),
            cross_source_findings(registry),
            feasibility_findings(registry, feasibility) if feasibility is not None else _empty_findings(),
        ]
    )
    per_figure = findings.group_by("figure_id").agg(
        pl.col("finding").unique(maintain_order=True).alias("findings"),
        pl.col("explanation").str.join("; ").alias("explanation"),
    )
    reconstructions = {q: "; ".join(reconstructions_of(q, provenance)) or None for q in registry["quantity"].unique().to_list()}
    return (
        registry.select("figure_id", "quantity", "source")
        .with_columns(
            pl.col("quantity").map_elements(lambda q: basis_of(q, provenance), return_dtype=pl.String).alias("basis"),
            pl.col("quantity").replace_strict(reconstructions, default=None, return_dtype=pl.String).alias("reconstruction"),
        )
        .join(per_figure, on="figure_id", how="left")
        .with_columns(pl.col("findings").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        .select(list(CONSISTENCY_SCHEMA))
        .cast(CONSISTENCY_SCHEMA)
    )


def with_reviews(registry: pl.DataFrame, known: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """The registry with each figure's reviewed-discrepancy entry (``REVIEW_SCHEMA``), and the entries naming no printed figure."""
    reviews = known.select(
        "figure_id",
        pl.col("expected_recomputed").alias("reviewed_expected"),
        pl.col("finding").alias("reviewed_finding"),
        pl.col("reason").alias("reviewed_reason"),
        "reviewed_by",
        "reviewed_on",
    ).cast(pl.Schema([("figure_id", pl.String), *REVIEW_SCHEMA.items()]))
    orphans = sorted(set(reviews["figure_id"].to_list()) - set(registry["figure_id"].to_list()))
    return registry.join(reviews, on="figure_id", how="left"), orphans


def basis_words(basis: str, reconstruction: str | None = None) -> str:
    """The basis as a reader says it: Table 3's published rows, or the reconstructed inputs it names."""
    if basis == "published_patient_data":
        return "Table 3's published rows"
    return f"reconstructed inputs ({reconstruction})" if reconstruction else "reconstructed inputs"


REPRODUCED, DISCREPANCY, NOT_RECOMPUTABLE = "reproduced", "discrepancy", "not_recomputable"
PASSED, WARN, ERROR = "passed", "WARN", "ERROR"


def status_of(comparison: str, findings: Sequence[str]) -> str:
    """The audit status: reproduced only when the shown value agrees and the paper does not contradict the printing.

    A printing the paper contradicts (87.5% printed as 16/19) is a discrepancy whether or not the data can recompute it.
    """
    if findings:
        return DISCREPANCY
    return {fig.AGREES: REPRODUCED, fig.DIFFERS: DISCREPANCY, fig.ABSENT: NOT_RECOMPUTABLE}[comparison]


@dataclass(frozen=True)
class Verdict:
    """One printed figure judged against the value its summary table shows."""

    status: str  # reproduced / discrepancy / not_recomputable (printed_audit and the report)
    check: str  # the published-figure check: passed, or failed at WARN or ERROR
    shown: str  # the shown value at the printed precision plus one digit
    explanation: str  # printed_audit's sentence; the reason a WARN check gives
    check_reason: str  # why the check passed, warned or stopped the run (its first metadata entry)


def _explanation(row: dict, comparison: str, shown: str, consistency: dict) -> str:
    paper_says = consistency["explanation"]
    basis = basis_words(consistency["basis"])
    if comparison == fig.ABSENT:
        parts = ["The study's records hold nothing from which this figure can be recomputed"]
    elif comparison == fig.AGREES and not consistency["findings"]:
        return (
            ""
            if consistency["basis"] == "published_patient_data"
            else ("Reproduced from reconstructed inputs: this shows the pipeline's arithmetic, not that the paper is right")
        )
    elif comparison == fig.AGREES:
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
        return fig.format_value(float(expected), decimals) == shown
    except ValueError:
        return expected.strip() == shown


def judge(row: dict, displayed: float | None, consistency: dict) -> Verdict:
    """The verdict on one printed figure, from the value its summary table shows; the checks, printed_audit and the report all use it.

    ``row`` is a row of the typed registry (``printed_values``, with ``REVIEW_SCHEMA``), ``consistency`` its
    ``paper_consistency`` row. The check passes when the shown value agrees at the printed precision and no reviewed
    discrepancy says it should not. A failure is WARN only when the figure is a reviewed discrepancy that still
    stands: the shown value is the reviewed ``expected_recomputed`` and its reviewed finding is still found. Any
    other failure is ERROR — a shown value that differs unreviewed, a reviewed one that moved, and a reviewed
    discrepancy that is suddenly reproduced (the review is stale and must be removed).
    """
    comparison = fig.compare(row["value"], row["decimals"], displayed)
    shown = fig.format_value(displayed, row["decimals"])
    status = status_of(comparison, consistency["findings"])
    explanation = _explanation(row, comparison, shown, consistency)
    expected = row.get("reviewed_expected")
    reviewed = expected is not None
    printed = f"{row['source']} prints {row['printed']!r} ({row['value']:g})"
    if comparison == fig.AGREES:
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
            f"regression or unreviewed discrepancy: {printed} but the table shows {shown}, and the figure is not a "
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
    """One registry figure's audit row: the verdict (status, the check's outcome and reason), its basis and explanation.

    ``hypotheses`` is left empty here: ``hypotheses`` fills it, across every discrepancy at once.
    """
    verdict = judge(row, recomputed, consistency)
    return {
        "figure_id": row["figure_id"],
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


# --- rounding: which common rule and precision turn the recomputed value into the printed one -------------------

# The rules a table, a spreadsheet or a statistics package applies: half away from zero (SPSS, Excel, most readers),
# half to even (IEEE, R's and Python's round) and truncation (a value cut, not rounded).
ROUNDING_RULES = {"half-up": decimal.ROUND_HALF_UP, "half-even": decimal.ROUND_HALF_EVEN, "truncation": decimal.ROUND_DOWN}
ROUNDING_PRECISIONS = range(4)
# What the paper prints as an estimate a reader re-derives by rounding: means, medians, percentages and CI bounds.
ROUNDED_SUFFIXES = (".mean", ".median", ".pct", ".ci_lower", ".ci_upper")


def rounded(value: float, decimals: int, rule: str) -> decimal.Decimal:
    """``value`` rounded to ``decimals`` places by ``rule``, on its shortest decimal form (as the table shows it)."""
    return decimal.Decimal(repr(value)).quantize(decimal.Decimal(1).scaleb(-decimals), rounding=ROUNDING_RULES[rule])


def rounding_audit(row: dict, recomputed: float | None) -> dict[str, str | None]:
    """Which rule and precision reproduce a printed mean, median, percentage or CI bound from the recomputed value.

    ``rounding`` lists every (rule, decimals) that gives the printed value, "none" when none does, null where the
    figure is no such estimate or nothing is recomputed. ``rounding_flag`` says when only an unusual rule does:
    not half-up at the printed precision, which is what a reader (and SPSS) applies.
    """
    if recomputed is None or not math.isfinite(recomputed) or not row["quantity"].endswith(ROUNDED_SUFFIXES):
        return {"rounding": None, "rounding_flag": None}
    printed = decimal.Decimal(repr(row["value"])).quantize(decimal.Decimal(1).scaleb(-row["decimals"]))
    # A precision finer than the printed one would have printed more digits; a coarser one only trailing zeros.
    matches = {d: [rule for rule in ROUNDING_RULES if rounded(recomputed, d, rule) == printed] for d in ROUNDING_PRECISIONS if d <= row["decimals"]}
    found = ", ".join(f"{' / '.join(rules)} at {d} dp" for d, rules in matches.items() if rules)
    if not found:
        return {"rounding": "none", "rounding_flag": None}
    usual = "half-up" in matches.get(row["decimals"], [])
    return {"rounding": found, "rounding_flag": None if usual else f"unusual: only {found} reproduces the printed {printed}"}


def time_to_event_patients(adtte: pl.DataFrame, cut, quantity: str) -> list[int]:
    """Who a survival figure rests on: an event count on the patients with that event, anything else on every patient at the cut.

    Survival summaries hold one row per method, not per patient, so the audit traces them back to ADTTE.
    """
    parts = quantity.split(".")
    # A subgroup claim (subgroups.<endpoint>.significant.n) rests on every patient of its endpoint.
    endpoint = {"pfs": "PFS", "os": "OS", "followup": "OS"}.get(parts[1] if parts[0] == "subgroups" else parts[0])
    if endpoint is None or cut is None:
        return []
    rows = adtte.filter((pl.col("DATACUT") == cut) & (pl.col("PARAMCD") == endpoint))
    if quantity.endswith(".events"):
        rows = rows.filter(pl.col("CNSR") == 0)
    return rows["SUBJID"].sort().to_list()


# --- hypotheses: the usual ways a printed number goes wrong, tested against each discrepancy ---------------------


# Denominators tried for a percentage that is not k/n of the cohort: a subgroup or a miscount, half to twice the cohort.
def _candidate_denominators(cohort_n: int) -> range:
    return range(max(2, cohort_n // 2), 2 * cohort_n + 1)


def sample_means(adsl: pl.DataFrame, adtte: pl.DataFrame, cut) -> dict[str, float]:
    """The mean of the values behind each printed median: age, and the observed PFS, OS and follow-up times at the cut."""
    means: dict[str, float | None] = {"age.median": cast(float | None, adsl["AGE"].drop_nulls().mean())} if "AGE" in adsl.columns else {}
    at_cut = adtte.filter(pl.col("DATACUT") == pl.lit(cut, dtype=pl.Date))
    for quantity, endpoint in (("pfs.median", "PFS"), ("os.median", "OS"), ("followup.median", "OS")):
        times = at_cut.filter(pl.col("PARAMCD") == endpoint)["AVAL"]
        if times.len():
            means[quantity] = cast(float | None, times.mean())
    return {q: float(m) for q, m in means.items() if m is not None}


def _bc_bounds(steps: pl.DataFrame, lower: pl.Expr, upper: pl.Expr) -> tuple[float | None, float | None]:
    band = steps.with_columns(lower.alias("_lo"), upper.alias("_hi"))
    return survival.first_time_at_or_below(band, "_lo", 0.5), survival.first_time_at_or_below(band, "_hi", 0.5)


def ci_alternatives(curves: pl.DataFrame, summary: pl.DataFrame, cut) -> dict[str, list[tuple[str, float | None, float | None]]]:
    """Per endpoint, the median's CI by other standard methods: SPSS at 90% and 99%, Brookmeyer–Crowley on plain, log and log-log bands."""
    found: dict[str, list[tuple[str, float | None, float | None]]] = {}
    z90, z99 = 1.6448536269514722, 2.5758293035489004
    for row in summary.filter((pl.col("data_cut") == pl.lit(cut, dtype=pl.Date)) & (pl.col("method") == "spss")).iter_rows(named=True):
        endpoint, median, se = row["endpoint"].lower(), row["median"], row["se"]
        options = []
        if median is not None and se is not None:
            options += [(f"SPSS median ± z·SE at {level}", median - z * se, median + z * se) for level, z in (("90%", z90), ("99%", z99))]
        steps = curves.filter((pl.col("data_cut") == cut) & (pl.col("endpoint") == row["endpoint"]))
        if steps.height:
            s, se_s, z = pl.col("surv"), pl.col("std_err").fill_null(0.0), survival.Z_95
            safe = pl.when(s > 0).then(s).otherwise(None)
            bands = (
                ("Brookmeyer–Crowley, plain band, 95%", s - z * se_s, s + z * se_s),
                ("Brookmeyer–Crowley, log band, 95%", s * (-z * se_s / safe).exp(), s * (z * se_s / safe).exp()),
                ("Brookmeyer–Crowley, log-log band, 95%", pl.col("ci_lower"), pl.col("ci_upper")),
            )
            options += [(name, *_bc_bounds(steps, lower, upper)) for name, lower, upper in bands]
        found[endpoint] = options
    return found


def _at(value: float, decimals: int) -> str:
    return fig.format_value(value, decimals)


def _interval(method: tuple[str, float | None, float | None], decimals: int) -> str:
    return "–".join(_at(v, decimals) if v is not None else "not reached" for v in method[1:])


def hypotheses(
    audit_rows: list[dict],
    registry: pl.DataFrame,
    cohort_n: int,
    means: dict[str, float],
    intervals: dict[str, list[tuple[str, float | None, float | None]]],
) -> dict[str, str]:
    """Per discrepancy, the explanations the numbers fit, worded as hypotheses (none is proven by fitting).

    Tried: a printed median that is the rounded mean; a percentage exact for another denominator (the same candidate
    denominators across every anomalous percentage, the one fitting most reported first); a CI that another standard
    method or confidence level gives; a range bound equal to another printed quantity.
    """
    by_id = {r["figure_id"]: r for r in registry.iter_rows(named=True)}
    discrepant = [r for r in audit_rows if r["status"] == DISCREPANCY]
    found: dict[str, list[str]] = {}

    def add(figure_id: str, text: str) -> None:
        found.setdefault(figure_id, []).append(f"Hypothesis: {text}")

    for audited in discrepant:
        row = by_id[audited["figure_id"]]
        value, decimals, quantity = row["value"], row["decimals"], row["quantity"]
        differs = not fig.agrees(value, decimals, audited["recomputed"])
        if quantity.endswith(".median") and differs and quantity in means and fig.agrees(value, decimals, means[quantity]):
            add(
                row["figure_id"],
                f"the printed median {value:g} is the mean rounded (mean = {_at(means[quantity], decimals)}, median = {audited['shown']})",
            )
        if quantity.endswith((".ci_lower", ".ci_upper")) and differs:
            bound: Literal[1, 2] = 1 if quantity.endswith(".ci_lower") else 2
            methods = intervals.get(quantity.split(".")[0], [])
            fitting = [m for m in methods if m[bound] is not None and fig.agrees(value, decimals, m[bound])]
            for method in fitting:
                add(row["figure_id"], f"{value:g} is the {'lower' if bound == 1 else 'upper'} bound of {method[0]} ({_interval(method, decimals)})")
            if methods and not fitting:
                tried = "; ".join(f"{m[0]}: {_interval(m, decimals)}" for m in methods)
                found.setdefault(row["figure_id"], []).append(f"No other standard CI method or level gives {value:g} (tried {tried}).")
        if quantity.endswith((".min", ".max")) and differs:
            family = quantity.rsplit(".", 1)[0] + "."
            same = [
                o for o in registry.iter_rows(named=True) if not o["quantity"].startswith(family) and o["unit"] == row["unit"] and _compatible(row, o)
            ]
            if same:
                quantities = sorted({o["quantity"] for o in same})
                add(
                    row["figure_id"],
                    f"the printed {'shortest' if quantity.endswith('.min') else 'longest'} value {value:g} equals the "
                    f"printed {', '.join(quantities)} ({same[0]['source']}: {same[0]['printed']!r}), as if copied from it",
                )

    # A printed k/n whose percentage is k over the cohort: the printed denominator is the slip, not the percentage.
    for audited in discrepant:
        row = by_id[audited["figure_id"]]
        num, den = row.get("numerator"), row.get("denominator")
        if (
            num is not None
            and den is not None
            and den != cohort_n
            and "self_inconsistent" in audited["findings"]
            and fig.agrees(row["value"], row["decimals"], 100.0 * num / cohort_n)
        ):
            add(
                row["figure_id"],
                f"the printed denominator {den} is a slip for the cohort's {cohort_n}: "
                f"{num}/{cohort_n} = {100.0 * num / cohort_n:.{row['decimals'] + 1}f}%, as printed",
            )

    # Percentages impossible for the cohort, or printed as an inconsistent k/n: which other denominators make them exact.
    anomalies = [
        by_id[r["figure_id"]]
        for r in discrepant
        if r["quantity"].endswith(".pct")
        and not r["quantity"].startswith(SUBGROUP_PREFIXES)
        and {"grim_impossible", "self_inconsistent"} & set(r["findings"])
    ]
    fits = {d: [(a, grim_fractions(a["value"], a["decimals"], d)) for a in anomalies] for d in _candidate_denominators(cohort_n) if d != cohort_n}
    fits = {d: [(a, ks) for a, ks in pairs if ks] for d, pairs in fits.items()}
    ranked = sorted((d for d in fits if fits[d]), key=lambda d: (-len(fits[d]), d))
    if ranked:
        best = ranked[0]
        shared = ", ".join(f"{a['value']:g}% = {ks[0]}/{best}" for a, ks in fits[best])
        for anomaly, _ in fits[best]:
            add(
                anomaly["figure_id"],
                f"a denominator of {best} instead of the cohort's {cohort_n} fits "
                f"{len(fits[best])} of the {len(anomalies)} anomalous percentages exactly ({shared})",
            )
        for anomaly in anomalies:
            if anomaly["figure_id"] not in found or not any("denominator" in h for h in found[anomaly["figure_id"]]):
                own = next((d for d in sorted(fits) if any(a is anomaly for a, _ in fits[d])), None)
                if own is not None:
                    ks = next(ks for a, ks in fits[own] if a is anomaly)
                    add(anomaly["figure_id"], f"{anomaly['value']:g}% is exactly {ks[0]}/{own}; no other anomalous percentage fits {own}")
    return {figure_id: " ".join(texts) for figure_id, texts in found.items()}
