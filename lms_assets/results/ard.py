"""The analysis results dataset (ARD): every statistic the summary tables compute, one row each, per data cut.

Columns follow the cards model (pharmaverse; the CDISC Analysis Results Standard): ``group1``/``group1_level`` (the
grouping), ``variable``/``variable_level`` (what is summarised), ``stat_name``/``stat_label``/``stat``. Beside them:
the ``analysis`` (the summary table) and its ``method``, the ``data_cut``, the registry ``quantity`` the printed-value
checks judge (null for a statistic no check reads), its ``basis`` (Table 3's rows or reconstructed inputs), the
patients counted (``n``, and the first ``MAX_LISTED`` in ``patients``) and the record lines they come from
(``source_file``, ``source_rows``: the SRCFILE/SRCROW of the ADaM rows the trace page shows, or the ADSL variable's
record file). A percentage is a percent
(``stat_name`` ``pct``), as the paper prints it, not cards' proportion ``p``.

Two sources: each table's ``recomputed_values`` (the cells the printed-value checks compare, so the ARD holds the
numbers they judged) and the survival and response statistics the paper never prints (both median methods,
intervals, follow-up, landmarks, subgroup tests).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

import polars as pl

from lms_assets.adam.adsl import VARIABLE_SOURCES
from lms_assets.audit import consistency
from lms_assets.audit.basis import basis_of
from lms_assets.tables import toxicity
from lms_assets.tables.printed import VALUES_SCHEMA, RecomputedValues, published_cut
from lms_assets.tables.subgroups import SUBGROUP_CLAIM

ARD_SCHEMA = pl.Schema(
    {
        "data_cut": pl.Date(),
        "analysis": pl.String(),
        "method": pl.String(),
        "group1": pl.String(),
        "group1_level": pl.String(),
        "variable": pl.String(),
        "variable_level": pl.String(),
        "stat_name": pl.String(),
        "stat_label": pl.String(),
        "stat": pl.Float64(),
        "quantity": pl.String(),
        "basis": pl.String(),
        "n": pl.Int64(),
        "patients": pl.List(pl.Int64()),
        "source_file": pl.String(),
        "source_rows": pl.List(pl.Int64()),
    }
)
# What names one statistic: no two rows of the ARD share these.
KEY = ("data_cut", "analysis", "method", "group1", "group1_level", "variable", "variable_level", "stat_name")
# The cut of a study without follow-up: its statistics belong to no cut.
NO_CUT: list[dt.date | None] = [None]

# Patients and record lines listed per statistic, as many as the trace page shows: ``n`` counts them all, and on a
# large study hundreds of survival statistics each count every patient.
MAX_LISTED = 500
# Who a statistic of a cut counts, by its quantity (``consistency.time_to_event_patients``).
Counted = Callable[[dt.date | None, str], list[int]]


@dataclass(frozen=True)
class Variable:
    """What a registry quantity's first part summarises: the cards ``variable``, where its rows come from (an ADaM
    dataset, or ``adsl`` for the record file of the ADSL variable) and the grouping its second part names."""

    name: str
    source: str
    group1: str | None = None


def _adsl(name: str) -> Variable:
    return Variable(name, "adsl")


VARIABLES: dict[str, Variable] = {
    "patients": _adsl("SUBJID"),
    "sex": _adsl("SEX"),
    "age": _adsl("AGE"),
    "ecog": _adsl("ECOG"),
    "site": _adsl("PRIMSITE"),
    "surgery": _adsl("SURGFL"),
    "radiotherapy": _adsl("RADIOFL"),
    "chemotherapy": _adsl("PRCHLN"),
    "dose": _adsl("DOSE0"),
    "combination": _adsl("COMBFL"),
    "dose_reduction": _adsl("DOSREDFL"),
    "discontinuation": _adsl("DISCAEFL"),
    "response": Variable("AVALC", "adrs"),
    "orr": Variable("ORR (CR + PR)", "adrs"),
    "dcr": Variable("DCR (CR + PR + SD)", "adrs"),
    "shrinkage": Variable("PCHG < 0", "adtr"),
    "immunotherapy": Variable("AVALC", "adrs", "IMMUNOFL"),
    "shrinkage_gt70_immunotherapy": Variable("PCHG < -70", "adtr", "IMMUNOFL"),
    "shrinkage_gt70_immunotherapy_alive": Variable("PCHG < -70, alive at the cut", "adtr", "IMMUNOFL"),
    "pr_rate": Variable("PR", "adrs", "COMBFL"),
    "orr_by_combination": Variable("ORR (CR + PR)", "adrs", "COMBFL"),
    "dcr_by_combination": Variable("DCR (CR + PR + SD)", "adrs", "COMBFL"),
    "ae": Variable("AEDECOD", "adae", "ATOXGRGP"),
    "treatment_related_deaths": Variable("AEDECOD", "adae", "ATOXGRGP"),
    "pfs": Variable("AVAL", "adtte", "PARAMCD"),
    "os": Variable("AVAL", "adtte", "PARAMCD"),
    "followup": Variable("AVAL (follow-up)", "adtte", "PARAMCD"),
    "subgroups": Variable("two-level subgroups", "adtte", "PARAMCD"),
}
GRADE_LEVELS = {"any": "Any grade", **toxicity.GRADE_GROUPS}
COMBINATION_LEVELS = {"combination": "Y", "monotherapy": "N"}
SIGNIFICANT = "significant"
STAT_LABELS = {
    "n": "n",
    "pct": "%",
    "median": "Median",
    "median_midpoint": "Median (plateau midpoint, R and SAS)",
    "min": "Minimum",
    "max": "Maximum",
    "se": "Standard error",
    "ci_lower": "95% CI lower limit",
    "ci_upper": "95% CI upper limit",
    "events": "Events",
    "censored": "Censored",
    "at_risk": "At risk",
    "surv": "Event-free rate S(t)",
    "mean_pct": "Mean shrinkage (%)",
    "p_value": "p",
    "n_ref": "n (reference)",
    "events_ref": "Events (reference)",
    "median_ref": "Median (reference)",
    "hr": "Hazard ratio",
    "hr_ci_lower": "HR 95% CI lower limit",
    "hr_ci_upper": "HR 95% CI upper limit",
    "cox_p": "Cox Wald p",
    "logrank_p": "Log-rank p",
}
SPSS, BROOKMEYER_CROWLEY = "spss", "brookmeyer_crowley_loglog"
METHODS = {
    "baseline_summary": "n and % of all ADSL patients; age median and range",
    "response_summary": "RECIST 1.1 best overall response: n and % of the patients with one",
    "tumour_shrinkage": "n and % of the row's patients; mean |best % change|; Fisher's exact two-sided, p < 0.05 counted",
    "ae_summary": "n and % of all patients at their worst CTCAE 4.03 grade (treatment-emergent)",
    SPSS: "Kaplan–Meier; SPSS 24 median, 95% CI = median ± 1.96·SE (Collett)",
    BROOKMEYER_CROWLEY: "Kaplan–Meier; Brookmeyer–Crowley 95% CI on the log(−log) band",
    "survival_followup": "reverse Kaplan–Meier median with its log(−log) 95% CI; range of observed times",
    "survival_subgroups": "log-rank test (lifelines), p < 0.05 counted; Cox HR (Efron ties) with Wald 95% CI",
    "survival_landmarks": "Kaplan–Meier at 3-monthly landmarks, log(−log) 95% CI",
    "clopper_pearson": "exact Clopper–Pearson 95% CI",
}


def cards_fields(quantity: str) -> dict[str, str | None]:
    """A registry quantity (``ae.hypertension.g34.pct``) as cards columns: group1 ATOXGRGP = Grade 3/4, variable
    AEDECOD = hypertension, stat_name pct."""
    prefix, *middle, stat = quantity.split(".")
    spec = VARIABLES.get(prefix, Variable(prefix, ""))
    level = None
    if spec.group1 == "PARAMCD":
        if prefix == "subgroups":
            level, middle = middle[0].upper(), middle[1:]
        else:
            level = "OS" if prefix == "followup" else prefix.upper()
    elif spec.group1 == "ATOXGRGP":
        if middle and middle[-1] in GRADE_LEVELS:
            level, middle = GRADE_LEVELS[middle[-1]], middle[:-1]
        elif middle == ["any_g34"]:
            level, middle = "Grade ≥3", ["any"]
        elif prefix == "treatment_related_deaths":
            level = GRADE_LEVELS["g5"]
    elif spec.group1 == "COMBFL" and middle and middle[0] in COMBINATION_LEVELS:
        level, middle = COMBINATION_LEVELS[middle[0]], middle[1:]
    elif spec.group1 == "IMMUNOFL":
        level = "Y"
    label = "Comparisons with p < 0.05" if middle[-1:] == [SIGNIFICANT] else STAT_LABELS.get(stat, stat)
    return {
        "group1": spec.group1,
        "group1_level": level,
        "variable": spec.name,
        "variable_level": ".".join(middle) or None,
        "stat_name": stat,
        "stat_label": label,
    }


def _method(analysis: str) -> str:
    return METHODS[SPSS if analysis == "survival_summary" else analysis]


def _rows(
    values: pl.DataFrame, analysis: str, cut: dt.date | None, method: str, quantity: bool, rests_on: str | None = None, **fields: str | None
) -> list[dict]:
    """ARD rows of a frame of (quantity, value, patients); ``quantity`` keeps the registry key, ``rests_on`` is the
    registry quantity whose inputs the rows rest on (their own by default), ``fields`` override the parsed columns."""
    return [
        {
            "data_cut": cut,
            "analysis": analysis,
            "method": method,
            **cards_fields(r["quantity"]),
            **fields,
            "stat": r["value"],
            "quantity": r["quantity"] if quantity else None,
            "_rests_on": rests_on or r["quantity"],
            "n": len(r["patients"]),
            "patients": r["patients"][:MAX_LISTED],
        }
        for r in values.iter_rows(named=True)
    ]


def _values(rows: list[tuple[str, float | None, list[int]]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=VALUES_SCHEMA, orient="row")


# The columns of each survival table given as statistics.
SUMMARY_STATS = ("n", "events", "median", "median_midpoint", "se", "ci_lower", "ci_upper")
FOLLOWUP_STATS = ("n", "censored", "median", "median_midpoint", "ci_lower", "ci_upper", "min", "max")
LANDMARK_STATS = ("at_risk", "surv", "ci_lower", "ci_upper")
SUBGROUP_STATS = ("n", "events", "median", "n_ref", "events_ref", "median_ref", "hr", "hr_ci_lower", "hr_ci_upper", "cox_p", "logrank_p")


def unprinted_rows(tables: Mapping[str, pl.DataFrame], counted: Counted, cut: dt.date | None) -> list[dict]:
    """The statistics no printed-value check reads: both median methods whole, follow-up of both endpoints,
    landmarks, subgroup comparisons, Clopper–Pearson intervals and Fisher p-values."""
    rows: list[dict] = []
    at_cut = {
        name: tables[name].filter(pl.col("data_cut") == cut)
        for name in ("survival_summary", "survival_followup", "survival_subgroups", "survival_landmarks")
    }
    for r in at_cut["survival_summary"].iter_rows(named=True):
        ep = r["endpoint"].lower()
        values = _values([(f"{ep}.{s}", r[s], counted(cut, f"{ep}.{s}")) for s in SUMMARY_STATS])
        rows += _rows(values, "survival_summary", cut, METHODS[r["method"]], False)
    for r in at_cut["survival_followup"].iter_rows(named=True):
        values = _values([(f"followup.{s}", r[s], r["patients"]) for s in FOLLOWUP_STATS])
        # OS follow-up rests on the OS times (followup.*), PFS follow-up on the PFS times.
        rests_on = "followup." if r["endpoint"] == "OS" else "pfs."
        rows += _rows(values, "survival_followup", cut, METHODS["survival_followup"], False, rests_on, group1_level=r["endpoint"])
    for r in at_cut["survival_landmarks"].iter_rows(named=True):
        ep = r["endpoint"].lower()
        values = _values([(f"{ep}.{s}", r[s], counted(cut, f"{ep}.all")) for s in LANDMARK_STATS])
        rows += _rows(values, "survival_landmarks", cut, METHODS["survival_landmarks"], False, variable_level=f"month {r['month']:g}")
    for r in at_cut["survival_subgroups"].iter_rows(named=True):
        ep = r["endpoint"].lower()
        values = _values([(f"subgroups.{ep}.{s}", r[s], counted(cut, f"{ep}.all")) for s in SUBGROUP_STATS])
        level = f"{r['factor']}: {r['level']} vs {r['reference']}"
        # Each comparison rests on what the Discussion's subgroup claim does (every factor's record column), as printed_audit says of it.
        claim = SUBGROUP_CLAIM.quantity_of(r["endpoint"])
        rows += _rows(values, "survival_subgroups", cut, METHODS["survival_subgroups"], False, claim, variable_level=level)
    for r in tables["response_summary"].filter(pl.col("ci_lower_pct").is_not_null()).iter_rows(named=True):
        values = _values([(f"{r['key']}.{s}", r[f"{s}_pct"], r["patients"]) for s in ("ci_lower", "ci_upper")])
        rows += _rows(values, "response_summary", cut, METHODS["clopper_pearson"], False)
    tested = tables["tumour_shrinkage"].filter(pl.col("p_value").is_not_null())
    for (rate,), group in tested.group_by(pl.col("key").str.extract(r"^([^.]+)\."), maintain_order=True):
        ids = sorted({i for ps in group["patients"].to_list() for i in ps})
        rows += _rows(_values([(f"{rate}.p_value", group["p_value"][0], ids)]), "tumour_shrinkage", cut, METHODS["tumour_shrinkage"], False)
    return rows


def _source_lines(ard: pl.DataFrame, datasets: Mapping[str, pl.DataFrame], ae_terms: pl.DataFrame) -> pl.DataFrame:
    """(_i, source_file, source_rows) of every ARD row: the record lines of the rows it counts, as the trace page finds them."""
    exploded = ard.select("_i", "_source", "data_cut", "group1_level", "variable", "variable_level", pl.col("patients").alias("SUBJID")).explode(
        "SUBJID"
    )
    exploded = exploded.drop_nulls("SUBJID")
    adtte = datasets["adtte"].select(pl.col("DCUTDT").alias("data_cut"), pl.col("PARAMCD").alias("group1_level"), "SUBJID", "SRCFILE", "SRCROW")
    adrs = datasets["adrs"].filter(pl.col("PARAMCD") == "BOR").select("SUBJID", "SRCFILE", "SRCROW")
    adtr = datasets["adtr"].select("SUBJID", "SRCFILE", "SRCROW")
    terms = (
        datasets["adae"]
        .join(ae_terms, left_on="AEDECOD", right_on="term")
        .select("SUBJID", pl.col("slug").alias("variable_level"), "SRCFILE", "SRCROW")
    )
    records = pl.concat(
        [
            datasets[name].select(
                pl.col("patient_id").cast(pl.Int64, strict=False).alias("SUBJID"), pl.col("_file").alias("SRCFILE"), pl.col("_row").alias("SRCROW")
            )
            for name in ("raw_patients", "raw_allocations")
        ]
    )
    adsl_files = pl.DataFrame({"variable": list(VARIABLE_SOURCES), "file": [f for f, _ in VARIABLE_SOURCES.values()]}).unique("variable")
    of = exploded.filter
    found = pl.concat(
        [
            of(pl.col("_source") == "adtte").join(adtte, on=["data_cut", "group1_level", "SUBJID"]),
            of(pl.col("_source") == "adrs").join(adrs, on="SUBJID"),
            of(pl.col("_source") == "adtr").join(adtr, on="SUBJID"),
            of((pl.col("_source") == "adae") & pl.col("variable_level").is_in(ae_terms["slug"].implode())).join(
                terms, on=["SUBJID", "variable_level"]
            ),
            of((pl.col("_source") == "adae") & ~pl.col("variable_level").is_in(ae_terms["slug"].implode()).fill_null(False)).join(
                datasets["adae"].select("SUBJID", "SRCFILE", "SRCROW"), on="SUBJID"
            ),
            of(pl.col("_source") == "adsl")
            .join(adsl_files, on="variable", how="left")
            .with_columns(pl.col("file").fill_null(VARIABLE_SOURCES["AGE"][0]))
            .join(records, left_on=["SUBJID", "file"], right_on=["SUBJID", "SRCFILE"])
            .with_columns(SRCFILE=pl.col("file")),
        ],
        how="diagonal_relaxed",
    )
    return found.group_by("_i").agg(
        source_file=pl.col("SRCFILE").unique().sort().str.join(" "),
        source_rows=pl.col("SRCROW").cast(pl.Int64).unique().sort().head(MAX_LISTED),
    )


def analysis_results(
    tables: Mapping[str, pl.DataFrame],
    sources: Mapping[str, RecomputedValues],
    datasets: Mapping[str, pl.DataFrame],
    provenance: pl.DataFrame,
) -> pl.DataFrame:
    """The ARD of every data cut in ADTTE (``NO_CUT`` without follow-up).

    ``tables``: the summary tables by asset name, ``sources`` each one's ``recomputed_values`` (the printed-value
    checks' map), ``datasets``: ``adtte``, ``adrs``, ``adae`` and the ``raw_patients``/``raw_allocations`` records.
    A statistic both sources give is kept once, from ``recomputed_values`` (with its registry quantity).
    """
    adtte = datasets["adtte"]
    # Who a survival statistic counts (consistency.time_to_event_patients), found once per cut and quantity: on a
    # large study each is a pass over ADTTE, and hundreds of statistics share a few populations.
    counted: Counted = functools.cache(lambda cut, quantity: consistency.time_to_event_patients(adtte, cut, quantity))
    cuts: list[dt.date | None] = adtte["DCUTDT"].unique().sort().to_list() or NO_CUT
    rows: list[dict] = []
    for cut in cuts:
        for analysis, recomputed in sources.items():
            values = recomputed(tables[analysis], cut)
            # survival_summary names no patients: a survival statistic counts its endpoint's patients at the cut, as printed_audit traces it.
            patients = [ids or counted(cut, q) for q, ids in zip(values["quantity"], values["patients"].to_list())]
            values = values.with_columns(pl.Series("patients", patients, dtype=pl.List(pl.Int64)))
            rows += _rows(values, analysis, cut, _method(analysis), True)
        if cut is not None:
            rows += unprinted_rows(tables, counted, cut)
    if not rows:
        return pl.DataFrame(schema=ARD_SCHEMA)
    frame = pl.DataFrame(rows, schema={**ARD_SCHEMA, "_rests_on": pl.String}).drop("basis", "source_file", "source_rows")
    frame = frame.unique(subset=list(KEY), keep="first", maintain_order=True).with_row_index("_i")
    bases = {q: basis_of(q, provenance) for q in frame["_rests_on"].unique().to_list()}
    frame = frame.with_columns(
        pl.col("_rests_on").replace_strict(bases, return_dtype=pl.String).alias("basis"),
        pl.col("_rests_on").str.extract(r"^([^.]+)").replace_strict({k: v.source for k, v in VARIABLES.items()}, default=None).alias("_source"),
    )
    ae_terms = tables["ae_summary"].filter(pl.col("section") == toxicity.TERM).select("term", pl.col("key").str.strip_prefix("ae.").alias("slug"))
    lines = _source_lines(frame, datasets, ae_terms)
    return frame.join(lines, on="_i", how="left").sort("_i").select(ARD_SCHEMA.names()).cast(ARD_SCHEMA)


def at_published_cut(ard: pl.DataFrame, printed_values: pl.DataFrame) -> tuple[dt.date | None, pl.DataFrame]:
    """The cut the printed values refer to (the latest in the ARD when the registry names none) and its ARD rows,
    as the printed-value checks choose it (``tables.survival_values``' rule)."""
    cut = published_cut(printed_values)
    if cut is None:
        cut = cast(dt.date | None, ard["data_cut"].max())
    return cut, ard.filter(pl.col("data_cut").is_null() if cut is None else pl.col("data_cut") == cut)
