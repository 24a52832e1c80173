"""Consistency of successive data cuts: follow-up may only extend what an earlier cut recorded."""

import datetime as dt
import itertools

import polars as pl

REGRESSION_SCHEMA = pl.Schema(
    {
        "SUBJID": pl.Int64,
        "PARAMCD": pl.String,
        "earlier_cut": pl.Date,
        "later_cut": pl.Date,
        "earlier_aval": pl.Float64,
        "later_aval": pl.Float64,
        "earlier_cnsr": pl.Int64,
        "later_cnsr": pl.Int64,
        "problem": pl.String,
    }
)


def cut_regressions(adtte: pl.DataFrame) -> pl.DataFrame:
    """Each cut against the one before it: an event stays an event at the same time, times never shrink, no patient disappears."""
    cuts = adtte["DCUTDT"].unique().sort().to_list()
    found = [pl.DataFrame(schema=REGRESSION_SCHEMA)]
    for earlier_cut, later_cut in itertools.pairwise(cuts):
        earlier = adtte.filter(pl.col("DCUTDT") == earlier_cut).select("SUBJID", "PARAMCD", "AVAL", "CNSR")
        later = adtte.filter(pl.col("DCUTDT") == later_cut).select("SUBJID", "PARAMCD", "AVAL", "CNSR")
        paired = earlier.join(later, on=["SUBJID", "PARAMCD"], how="left", suffix="_later")
        problem = (
            pl.when(pl.col("AVAL_later").is_null())
            .then(pl.lit("patient missing from the later cut"))
            .when((pl.col("CNSR") == 0) & (pl.col("CNSR_later") != 0))
            .then(pl.lit("an event in the earlier cut is censored in the later cut"))
            .when((pl.col("CNSR") == 0) & (pl.col("AVAL_later") != pl.col("AVAL")))
            .then(pl.lit("an event's time changed between cuts"))
            .when(pl.col("AVAL_later") < pl.col("AVAL"))
            .then(pl.lit("follow-up time shrank between cuts"))
        )
        found.append(
            paired.with_columns(problem.alias("problem"))
            .filter(pl.col("problem").is_not_null())
            .select(
                "SUBJID",
                "PARAMCD",
                pl.lit(earlier_cut).alias("earlier_cut"),
                pl.lit(later_cut).alias("later_cut"),
                pl.col("AVAL").alias("earlier_aval"),
                pl.col("AVAL_later").alias("later_aval"),
                pl.col("CNSR").alias("earlier_cnsr"),
                pl.col("CNSR_later").alias("later_cnsr"),
                "problem",
            )
            .cast(REGRESSION_SCHEMA)
        )
    return pl.concat(found).sort("later_cut", "SUBJID", "PARAMCD")


def withdrawn_cuts(candidate: pl.DataFrame, published_cuts: list[dt.date]) -> list[dt.date]:
    """Cuts already published that the candidate lacks: their file was removed or renamed, so the analysis would go back."""
    present = set(candidate["DCUTDT"].unique().to_list())
    return [cut for cut in published_cuts if cut not in present]


def describe_withdrawn(cut: dt.date) -> str:
    """One sentence for a published cut whose file is gone."""
    return f"data cut {cut} is published but no file in followup/ gives it any more: restore it (cuts are only added)"


def describe_regression(row: dict) -> str:
    """One sentence a study nurse can act on."""
    return (
        f"patient {row['SUBJID']} {row['PARAMCD']}: {row['problem']} "
        f"({row['earlier_cut']}: {row['earlier_aval']} months, {'event' if row['earlier_cnsr'] == 0 else 'censored'}; "
        f"{row['later_cut']}: "
        + ("no row" if row["later_aval"] is None else f"{row['later_aval']} months, {'event' if row['later_cnsr'] == 0 else 'censored'}")
        + ")"
    )
