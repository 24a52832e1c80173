"""Table 4: treatment-emergent adverse events per term at each patient's worst CTCAE grade, and the Results' safety values.

Counted from ADAE's worst-grade flags, never by re-deriving the worst grade: a term's row from the events flagged
AOCCPIFL (one per patient and term), the any-event row from those flagged AOCCIFL (one per patient). Every
percentage is over all ADSL patients, not only those with an event (Table 4's denominator).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from lms_assets.tables import printed

# Column tag → ATOXGRGP label (``adam.adae.ctcae_grade_group``).
GRADE_GROUPS = {"g12": "Grade 1/2", "g34": "Grade 3/4", "g5": "Grade 5"}
ANY_EVENT = "Any adverse event"
TERM = "Adverse event"
ACTION = "Action taken"
# Action rows: printed term, registry key, ADSL flag.
ACTIONS = (
    ("Dose reduced", "dose_reduction", "DOSREDFL"),
    ("Discontinued for adverse reactions", "discontinuation", "DISCAEFL"),
)
# Registry suffix of each term value → the table column of its patients, and the prefix of its n and % cells.
_VALUE_COLUMNS = [("any", "patients", "total"), *((tag, f"patients_{tag}", tag) for tag in GRADE_GROUPS)]

TABLE_SCHEMA = {
    "section": pl.String,
    "term": pl.String,
    "key": pl.String,
    "denominator": pl.Int64,
    "total_n": pl.Int64,
    "total_pct": pl.Float64,
    **{f"{tag}_{stat}": dtype for tag in GRADE_GROUPS for stat, dtype in (("n", pl.Int64), ("pct", pl.Float64))},
    "patients": pl.List(pl.Int64),
    **{f"patients_{tag}": pl.List(pl.Int64) for tag in GRADE_GROUPS},
}


def _patient_lists() -> list[pl.Expr]:
    """Distinct patients overall and in each grade group, to aggregate flagged events per term or over all terms."""
    return [
        pl.col("SUBJID").unique().sort().alias("patients"),
        *(pl.col("SUBJID").filter(pl.col("ATOXGRGP") == label).unique().sort().alias(f"patients_{tag}") for tag, label in GRADE_GROUPS.items()),
    ]


def _counted(lists: pl.DataFrame, section: str, denominator: int) -> pl.DataFrame:
    def percent(n: pl.Expr) -> pl.Expr:
        return 100.0 * n / denominator if denominator else pl.lit(None, dtype=pl.Float64)

    columns = []
    for name, source in (("total", "patients"), *((tag, f"patients_{tag}") for tag in GRADE_GROUPS)):
        n = pl.col(source).list.len().cast(pl.Int64)
        columns += [n.alias(f"{name}_n"), percent(n).alias(f"{name}_pct")]
    return lists.with_columns(pl.lit(section).alias("section"), pl.lit(denominator, dtype=pl.Int64).alias("denominator"), *columns).select(
        TABLE_SCHEMA.keys()
    )


def term_rows(adae: pl.DataFrame, denominator: int) -> pl.DataFrame:
    """Per term (AEDECOD), from its AOCCPIFL events: patients at any grade and in their worst grade's group; most frequent first, then most grade 3/4, then name."""
    lists = (
        adae.filter(pl.col("AOCCPIFL") == "Y")
        .group_by(pl.col("AEDECOD").alias("term"))
        .agg(*_patient_lists())
        .with_columns(pl.col("term").map_elements(lambda t: f"ae.{printed.slug(t)}", return_dtype=pl.String).alias("key"))
    )
    table = _counted(lists, TERM, denominator)
    return table.sort(["total_n", "g34_n", pl.col("term").str.to_lowercase()], descending=[True, True, False])


def any_event_row(adae: pl.DataFrame, denominator: int) -> pl.DataFrame:
    """Patients with any adverse event, each counted once at their worst grade over all terms (the AOCCIFL event)."""
    lists = (
        adae.filter(pl.col("AOCCIFL") == "Y")
        .select(*(e.implode() for e in _patient_lists()))
        .with_columns(pl.lit(ANY_EVENT).alias("term"), pl.lit("ae.any").alias("key"))
    )
    return _counted(lists, ANY_EVENT, denominator)


def action_rows(adsl: pl.DataFrame) -> pl.DataFrame:
    """Dose reductions (DOSREDFL = Y) and discontinuations for adverse reactions (DISCAEFL = Y), n and % of all patients."""
    rows = []
    for term, key, flag in ACTIONS:
        ids = adsl.filter(pl.col(flag) == "Y")["SUBJID"].sort().to_list()
        pct = 100.0 * len(ids) / adsl.height if adsl.height else None
        rows.append(
            {
                "section": ACTION,
                "term": term,
                "key": key,
                "denominator": adsl.height,
                "total_n": len(ids),
                "total_pct": pct,
                "patients": ids,
            }
        )
    return pl.DataFrame(rows, schema=TABLE_SCHEMA)


def ae_summary(adae: pl.DataFrame, adsl: pl.DataFrame) -> pl.DataFrame:
    """Table 4 of treatment-emergent events (TRTEMFL = Y): any-event row, a row per term at the worst grade (both from ADAE's flags), then dose changes."""
    emergent = adae.filter(pl.col("TRTEMFL") == "Y")
    return pl.concat([any_event_row(emergent, adsl.height), term_rows(emergent, adsl.height), action_rows(adsl)])


def recomputed_values(table: pl.DataFrame, published_cut: dt.date | None = None) -> pl.DataFrame:
    """Table 4's and the Results' safety values recomputed from the n and % cells: per term any/grade 1–2/3–4, any grade ≥ 3, grade 5 deaths, dose changes."""
    terms = table.filter(pl.col("section") == TERM)
    overall = table.filter(pl.col("section") == ANY_EVENT)
    counted = [
        *(
            terms.select(
                (pl.col("key") + f".{name}").alias("key"),
                pl.col(f"{cell}_n").alias("n"),
                pl.col(f"{cell}_pct").alias("pct"),
                pl.col(column).alias("patients"),
            )
            for name, column, cell in _VALUE_COLUMNS
        ),
        # Grade ≥ 3 is grade 3/4 or 5; each patient is in one group, at the worst grade, so the cells add up.
        overall.select(
            pl.lit("ae.any_g34").alias("key"),
            (pl.col("g34_n") + pl.col("g5_n")).alias("n"),
            (pl.col("g34_pct") + pl.col("g5_pct")).alias("pct"),
            pl.concat_list("patients_g34", "patients_g5").alias("patients"),
        ),
        table.filter(pl.col("section") == ACTION).select("key", pl.col("total_n").alias("n"), pl.col("total_pct").alias("pct"), "patients"),
    ]
    deaths = overall.select(
        pl.lit("treatment_related_deaths.n").alias("quantity"),
        pl.col("g5_n").cast(pl.Float64).alias("value"),
        pl.col("patients_g5").alias("patients"),
    )
    return pl.concat([printed.count_values(pl.concat(counted)), deaths.cast(printed.VALUES_SCHEMA)])


TABLE_4 = printed.PrintedQuantities("ae_summary", ("ae.", "dose_reduction.", "discontinuation.", "treatment_related_deaths."), recomputed_values)
