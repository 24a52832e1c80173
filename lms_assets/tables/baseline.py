"""Table 1: baseline characteristics of the cohort, counted from ADSL.

Every percentage is over all ADSL patients (Table 1's denominator). Each counted row carries ``key``
(the registry prefix of its values, e.g. ``sex.male``) and ``patients`` (the SUBJIDs counted).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import cast

import polars as pl

from lms_assets.tables import printed

TABLE_SCHEMA = pl.Schema(
    {
        "characteristic": pl.String(),
        "level": pl.String(),
        "key": pl.String(),
        "n": pl.Int64(),
        "pct": pl.Float64(),
        "value": pl.Float64(),
        "patients": pl.List(pl.Int64),
    }
)

ECOG = "ECOG performance status"
CHEMOTHERAPY = "Chemotherapy history"
# ECOG levels Table 1 prints even when empty; higher observed levels are added after them.
ECOG_PRINTED_LEVELS = (0, 1, 2)
NOT_RECORDED = "Not recorded"
NOT_RECORDED_SUFFIX = "not_recorded"
YES_NO = [("Y", "Yes", "yes"), ("N", "No", "no")]
# PRCHLN counts prior lines, 3 standing for three or more.
CHEMOTHERAPY_LEVELS = [
    (0, "No", "none"),
    (1, "1 line", "1_line"),
    (2, "2 lines", "2_lines"),
    (3, "3 lines and more", "3plus_lines"),
]
SEX_LEVELS = [("M", "Male", "male"), ("F", "Female", "female")]
COMBINATION_LEVELS = [("N", "No", "no"), ("Y", "Yes", "yes")]


def category_rows(adsl: pl.DataFrame, characteristic: str, column: str, prefix: str, levels: Sequence[tuple[object, str, str]]) -> pl.DataFrame:
    """n and % of all ADSL patients at each level of one column; an empty level shows 0 (0.0%), a missing value 'Not recorded'.

    ``levels`` are (value in ``column``, printed label, key suffix) in the order Table 1 prints them;
    a row's registry key is ``<prefix>.<suffix>``.
    """
    unexpected = set(adsl[column].drop_nulls().unique().to_list()) - {value for value, _, _ in levels}
    if unexpected:
        raise ValueError(f"{characteristic}: values {sorted(map(str, unexpected))} in {column} have no Table 1 level")
    if adsl[column].null_count():
        levels = [*levels, (None, NOT_RECORDED, NOT_RECORDED_SUFFIX)]
    declared = pl.DataFrame(
        {
            "_value": [value for value, _, _ in levels],
            "level": [label for _, label, _ in levels],
            "key": [f"{prefix}.{suffix}" for _, _, suffix in levels],
        },
        schema={"_value": adsl.schema[column], "level": pl.String, "key": pl.String},
    )
    groups = adsl.group_by(column).agg(pl.col("SUBJID").sort().alias("patients"))
    counted = declared.join(groups, left_on="_value", right_on=column, how="left", nulls_equal=True, maintain_order="left")
    patients = pl.col("patients").fill_null(pl.lit([], dtype=pl.List(pl.Int64)))
    n = patients.list.len().cast(pl.Int64)
    return counted.select(
        pl.lit(characteristic).alias("characteristic"),
        "level",
        "key",
        n.alias("n"),
        (100.0 * n / adsl.height if adsl.height else pl.lit(None, dtype=pl.Float64)).alias("pct"),
        pl.lit(None, dtype=pl.Float64).alias("value"),
        patients.alias("patients"),
    )


def age_rows(adsl: pl.DataFrame) -> pl.DataFrame:
    """Age: median (the middle age; the mean of the two middle ages when n is even) and range, over ADSL patients with an age."""
    aged = adsl.filter(pl.col("AGE").is_not_null())
    everyone = aged["SUBJID"].sort().to_list()
    youngest, oldest = aged["AGE"].min(), aged["AGE"].max()
    stats = [
        ("Median", "age.median", aged["AGE"].median(), everyone),
        ("Minimum", "age.min", youngest, aged.filter(pl.col("AGE") == youngest)["SUBJID"].sort().to_list()),
        ("Maximum", "age.max", oldest, aged.filter(pl.col("AGE") == oldest)["SUBJID"].sort().to_list()),
    ]
    return pl.DataFrame(
        {
            "characteristic": ["Age (years)"] * 3,
            "level": [s[0] for s in stats],
            "key": [s[1] for s in stats],
            "n": [None] * 3,
            "pct": [None] * 3,
            "value": [None if s[2] is None else float(cast(float, s[2])) for s in stats],
            "patients": [s[3] for s in stats],
        },
        schema=TABLE_SCHEMA,
    )


def _observed(adsl: pl.DataFrame, column: str, descending: bool = False) -> list:
    return adsl[column].drop_nulls().unique().sort(descending=descending).to_list()


def _sites_by_frequency(adsl: pl.DataFrame) -> list[str]:
    counts = adsl.filter(pl.col("PRIMSITE").is_not_null()).group_by("PRIMSITE").len()
    return counts.sort(["len", "PRIMSITE"], descending=[True, False])["PRIMSITE"].to_list()


def baseline_summary(adsl: pl.DataFrame) -> pl.DataFrame:
    """Table 1: age median and range, then n (%) of all patients per level of sex, ECOG, site, prior therapy, dose, combination."""
    ecog_levels = [(e, str(e), str(e)) for e in sorted(set(ECOG_PRINTED_LEVELS) | set(_observed(adsl, "ECOG")))]
    site_levels = [(s, s, printed.slug(s)) for s in _sites_by_frequency(adsl)]
    dose_levels = [(d, f"{d} mg", f"{d}mg") for d in _observed(adsl, "DOSE0", descending=True)]
    everyone = adsl["SUBJID"].sort().to_list()
    header = pl.DataFrame(
        {
            "characteristic": ["Patients"],
            "level": ["All"],
            "key": ["patients"],
            "n": [adsl.height],
            "pct": [100.0 if adsl.height else None],
            "value": [None],
            "patients": [everyone],
        },
        schema=TABLE_SCHEMA,
    )
    return pl.concat(
        [
            header,
            age_rows(adsl),
            category_rows(adsl, "Gender", "SEX", "sex", SEX_LEVELS),
            category_rows(adsl, ECOG, "ECOG", "ecog", ecog_levels),
            category_rows(adsl, "Primary tumor site", "PRIMSITE", "site", site_levels),
            category_rows(adsl, "Surgery history", "SURGFL", "surgery", YES_NO),
            category_rows(adsl, "Radiotherapy history", "RADIOFL", "radiotherapy", YES_NO),
            category_rows(adsl, CHEMOTHERAPY, "PRCHLN", "chemotherapy", CHEMOTHERAPY_LEVELS),
            category_rows(adsl, "Starting dose", "DOSE0", "dose", dose_levels),
            category_rows(adsl, "Combination therapy", "COMBFL", "combination", COMBINATION_LEVELS),
        ]
    )


_NO_PRIOR_LINE = ["chemotherapy.none", f"chemotherapy.{NOT_RECORDED_SUFFIX}"]


def recomputed_values(table: pl.DataFrame, published_cut: dt.date | None = None) -> pl.DataFrame:
    """Table 1's recomputed values of its printed quantities, from its n and % cells, plus the text's groupings: ECOG 0–1, ≥2 and >2, any prior chemotherapy (≥1 line)."""
    counted = table.filter(pl.col("n").is_not_null()).select("key", "n", "pct", "patients")
    ecog = table.filter(pl.col("characteristic") == ECOG).with_columns(score=pl.col("level").cast(pl.Int64, strict=False))
    chemotherapy = table.filter((pl.col("characteristic") == CHEMOTHERAPY) & ~pl.col("key").is_in(_NO_PRIOR_LINE))
    groupings = [
        printed.pooled_cells(ecog.filter(pl.col("score") <= 1), "ecog.0-1"),
        printed.pooled_cells(ecog.filter(pl.col("score") >= 2), "ecog.ge2"),
        printed.pooled_cells(ecog.filter(pl.col("score") > 2), "ecog.gt2"),
        printed.pooled_cells(chemotherapy, "chemotherapy.any"),
    ]
    statistics = table.filter(pl.col("value").is_not_null()).select(pl.col("key").alias("quantity"), "value", "patients")
    counts = printed.count_values(pl.concat([counted, *groupings], how="vertical_relaxed"))
    return pl.concat([counts, statistics.cast(printed.VALUES_SCHEMA)])


TABLE_1 = printed.PrintedQuantities(
    "baseline_summary",
    ("patients.", "sex.", "age.", "ecog.", "site.", "surgery.", "radiotherapy.", "chemotherapy.", "dose.", "combination.", "metastasis."),
    recomputed_values,
)
