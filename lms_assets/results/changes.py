"""What changed from each data cut to the next: patients with new events or longer follow-up, every ARD statistic
whose value moved, the printed values whose verdict moved, and the Discussion's forecast that median OS "tended to
decline with the extension of follow-up time".

One long table, one row per change (``CHANGES_SCHEMA``), its ``kind`` one of ``KINDS``. Pure: every input is passed in.
"""

from __future__ import annotations

import itertools
import math

import polars as pl

from lms_assets.checks.printed_values import compare

PATIENT, STATISTIC, PRINTED, FORECAST = "patient", "statistic", "printed value", "forecast"
KINDS = (PATIENT, STATISTIC, PRINTED, FORECAST)
CHANGES_SCHEMA = pl.Schema(
    {
        "earlier_cut": pl.Date(),
        "later_cut": pl.Date(),
        "kind": pl.String(),
        "item": pl.String(),
        "SUBJID": pl.Int64(),
        "earlier_value": pl.Float64(),
        "later_value": pl.Float64(),
        "change": pl.String(),
        "basis": pl.String(),
    }
)
# The Discussion's forecast (unchecked_claims.csv DIS.os.decline), judged on the paper's median (SPSS's first crossing).
FORECAST_ID = "DIS.os.decline"
FORECAST_TEXT = "the median OS data tended to decline with the extension of follow-up time"
OS_MEDIAN = {"analysis": "survival_summary", "group1_level": "OS", "stat_name": "median", "quantity": "os.median"}
# A statistic recomputed from unchanged rows is bit-identical (sums run in one order); this only absorbs printing noise.
_TOLERANCE = 1e-12
# The ARD columns that name a statistic within a cut.
_STATISTIC = ("analysis", "method", "group1", "group1_level", "variable", "variable_level", "stat_name")


def _pairs(cuts: pl.Series) -> list[tuple]:
    return list(itertools.pairwise(cuts.drop_nulls().unique().sort().to_list()))


def patient_changes(adtte: pl.DataFrame) -> pl.DataFrame:
    """Per pair of successive cuts, each patient and endpoint whose record moved: a new event (censored before, or
    absent, and an event now), longer follow-up (still censored, later time), or a censored patient new to the later cut."""
    frames = [pl.DataFrame(schema=CHANGES_SCHEMA)]
    for earlier, later in _pairs(adtte["DCUTDT"]):
        before = adtte.filter(pl.col("DCUTDT") == earlier).select("SUBJID", "PARAMCD", "AVAL", "CNSR", "AVALRFL")
        after = adtte.filter(pl.col("DCUTDT") == later).select("SUBJID", "PARAMCD", "AVAL", "CNSR", "AVALRFL")
        paired = after.join(before, on=["SUBJID", "PARAMCD"], how="left", suffix="_before", maintain_order="left")
        event = pl.when(pl.col("PARAMCD") == "OS").then(pl.lit("death")).otherwise(pl.lit("progression or death"))
        change = (
            pl.when(pl.col("AVAL_before").is_null() & (pl.col("CNSR") == 0))
            .then(pl.lit("new event: ") + event + pl.lit(" (patient new to this cut)"))
            .when(pl.col("AVAL_before").is_null())
            .then(pl.lit("patient new to this cut, censored"))
            .when((pl.col("CNSR_before") == 1) & (pl.col("CNSR") == 0))
            .then(pl.lit("new event: ") + event)
            .when((pl.col("CNSR") == 1) & (pl.col("AVAL") > pl.col("AVAL_before")))
            .then(pl.lit("longer follow-up, still censored"))
        )
        frames.append(
            paired.with_columns(change.alias("change"))
            .filter(pl.col("change").is_not_null())
            .select(
                pl.lit(earlier).alias("earlier_cut"),
                pl.lit(later).alias("later_cut"),
                pl.lit(PATIENT).alias("kind"),
                pl.format("patient {} {}", "SUBJID", "PARAMCD").alias("item"),
                "SUBJID",
                pl.col("AVAL_before").alias("earlier_value"),
                pl.col("AVAL").alias("later_value"),
                "change",
                pl.when((pl.col("AVALRFL") == "Y") | (pl.col("AVALRFL_before") == "Y"))
                .then(pl.lit("reconstructed_inputs"))
                .otherwise(pl.lit("published_patient_data"))
                .alias("basis"),
            )
            .cast(CHANGES_SCHEMA)
            .sort("SUBJID", "item")
        )
    return pl.concat(frames)


def _item(row: dict) -> str:
    group = f"{row['group1']} = {row['group1_level']}, " if row["group1"] else ""
    level = f" = {row['variable_level']}" if row["variable_level"] else ""
    return f"{row['analysis']}: {group}{row['variable']}{level}, {row['stat_label']} ({row['method']})"


def _moved(before: float | None, after: float | None) -> bool:
    if before is None or after is None or math.isnan(before) or math.isnan(after):
        return (before is None) != (after is None)
    return abs(after - before) > _TOLERANCE * max(1.0, abs(before))


def statistic_changes(ard: pl.DataFrame) -> pl.DataFrame:
    """Per pair of successive cuts, every ARD statistic whose value moved, appeared or is no longer computed."""
    rows = []
    for earlier, later in _pairs(ard["data_cut"]):
        before = ard.filter(pl.col("data_cut") == earlier).select(*_STATISTIC, "stat_label", "stat", "basis")
        after = ard.filter(pl.col("data_cut") == later).select(*_STATISTIC, "stat_label", "stat", "basis")
        paired = after.join(before, on=list(_STATISTIC), how="full", coalesce=True, nulls_equal=True, suffix="_before", maintain_order="left_right")
        for r in paired.iter_rows(named=True):
            if r["stat_label"] is None:
                change = "no longer computed"
            elif _moved(r["stat_before"], r["stat"]):
                change = "new statistic" if r["stat_before"] is None and r["basis_before"] is None else "moved"
            else:
                continue
            rows.append(
                {
                    "earlier_cut": earlier,
                    "later_cut": later,
                    "kind": STATISTIC,
                    "item": _item({**r, "stat_label": r["stat_label"] or r["stat_label_before"]}),
                    "earlier_value": r["stat_before"],
                    "later_value": r["stat"],
                    "change": change,
                    "basis": r["basis"] or r["basis_before"],
                }
            )
    return pl.DataFrame(rows, schema=CHANGES_SCHEMA)


def printed_changes(ard: pl.DataFrame, printed_values: pl.DataFrame) -> pl.DataFrame:
    """Per pair of successive cuts, each printed value whose verdict moved: the cut's value agrees with the printing
    at its precision, differs, or is absent (``printed_values.compare``, the comparison every check uses)."""
    rows = []
    for earlier, later in _pairs(ard["data_cut"]):
        stats = {
            cut: dict(ard.filter((pl.col("data_cut") == cut) & pl.col("quantity").is_not_null()).select("quantity", "stat").iter_rows())
            for cut in (earlier, later)
        }
        basis = dict(ard.filter(pl.col("data_cut") == later).select("quantity", "basis").drop_nulls("quantity").iter_rows())
        for r in printed_values.iter_rows(named=True):
            before, after = stats[earlier].get(r["quantity"]), stats[later].get(r["quantity"])
            verdicts = [compare(r["value"], r["decimals"], v) for v in (before, after)]
            if verdicts[0] == verdicts[1]:
                continue
            rows.append(
                {
                    "earlier_cut": earlier,
                    "later_cut": later,
                    "kind": PRINTED,
                    "item": f"{r['value_id']}: {r['printed']}",
                    "earlier_value": before,
                    "later_value": after,
                    "change": f"{verdicts[0]} → {verdicts[1]}",
                    "basis": basis.get(r["quantity"]),
                }
            )
    return pl.DataFrame(rows, schema=CHANGES_SCHEMA)


def forecast_changes(ard: pl.DataFrame) -> pl.DataFrame:
    """Per pair of successive cuts, the Discussion's forecast judged on median OS: it declined (as forecast), rose or
    stayed (against it), or is not estimable at one of the cuts."""
    os_median = ard.filter(*(pl.col(c) == v for c, v in OS_MEDIAN.items()))
    medians = dict(os_median.select("data_cut", "stat").iter_rows())
    basis = dict(os_median.select("data_cut", "basis").iter_rows())
    rows = []
    for earlier, later in _pairs(ard["data_cut"]):
        before, after = medians.get(earlier), medians.get(later)
        if before is None or after is None:
            change = "not estimable at both cuts: the forecast cannot be judged"
        elif after < before:
            change = "declined, as the Discussion forecast"
        else:
            change = f"{'rose' if after > before else 'unchanged'}, against the Discussion's forecast"
        rows.append(
            {
                "earlier_cut": earlier,
                "later_cut": later,
                "kind": FORECAST,
                "item": f"{FORECAST_ID}: {FORECAST_TEXT} (median OS)",
                "earlier_value": before,
                "later_value": after,
                "change": change,
                "basis": basis.get(later),
            }
        )
    return pl.DataFrame(rows, schema=CHANGES_SCHEMA)


def cut_changes(ard: pl.DataFrame, adtte: pl.DataFrame, printed_values: pl.DataFrame) -> pl.DataFrame:
    """Every change from each cut to the next, latest pair first; within a pair the forecast and printed values lead."""
    frames = [forecast_changes(ard), printed_changes(ard, printed_values), patient_changes(adtte), statistic_changes(ard)]
    order = {FORECAST: 0, PRINTED: 1, PATIENT: 2, STATISTIC: 3}
    return (
        pl.concat(frames)
        .with_columns(pl.col("kind").replace_strict(order, return_dtype=pl.Int64).alias("_order"))
        .with_row_index("_row")
        .sort(["later_cut", "_order", "_row"], descending=[True, False, False])
        .drop("_order", "_row")
    )


def new_event_problems(changes: pl.DataFrame, ard: pl.DataFrame) -> list[str]:
    """Whether the patients listed with a new event add up: per pair of cuts and endpoint, their number is the rise of
    the ARD's Kaplan–Meier event count (survival_summary ``events``), which counts them independently of this table."""
    events = ard.filter((pl.col("analysis") == "survival_summary") & (pl.col("stat_name") == "events") & pl.col("quantity").is_not_null())
    counted = {(r["data_cut"], r["group1_level"]): r["stat"] for r in events.iter_rows(named=True)}
    listed = changes.filter((pl.col("kind") == PATIENT) & pl.col("change").str.starts_with("new event"))
    problems = []
    for earlier, later in _pairs(ard["data_cut"]):
        for endpoint in ("PFS", "OS"):
            before, after = counted.get((earlier, endpoint)), counted.get((later, endpoint))
            if before is None or after is None:
                continue
            named = listed.filter((pl.col("later_cut") == later) & pl.col("item").str.ends_with(f" {endpoint}"))
            if named.height != after - before:
                problems.append(
                    f"{endpoint} {earlier} → {later}: {named.height} patient(s) listed with a new event, but the Kaplan–Meier "
                    f"event count rose by {after - before:g} ({before:g} → {after:g})"
                )
    return problems


def value_problems(changes: pl.DataFrame, ard: pl.DataFrame, printed_values: pl.DataFrame) -> list[str]:
    """Whether every value the table shows is the ARD's at its cut, found again by item rather than by the pairing
    that made the table: each statistic's and printed value's earlier and later value, and the forecast's medians."""
    by_item = {(r["data_cut"], _item(r)): r["stat"] for r in ard.iter_rows(named=True)}
    by_quantity = {(r["data_cut"], r["quantity"]): r["stat"] for r in ard.filter(pl.col("quantity").is_not_null()).iter_rows(named=True)}
    printed = {f"{r['value_id']}: {r['printed']}": r["quantity"] for r in printed_values.iter_rows(named=True)}
    problems = []
    for r in changes.filter(pl.col("kind") != PATIENT).iter_rows(named=True):
        if r["kind"] == STATISTIC:
            stored = [by_item.get((cut, r["item"])) for cut in (r["earlier_cut"], r["later_cut"])]
        else:
            quantity = OS_MEDIAN["quantity"] if r["kind"] == FORECAST else printed.get(r["item"])
            stored = [by_quantity.get((cut, quantity)) for cut in (r["earlier_cut"], r["later_cut"])]
        if _moved(stored[0], r["earlier_value"]) or _moved(stored[1], r["later_value"]):
            problems.append(
                f"{r['item']} ({r['earlier_cut']} → {r['later_cut']}): shown {r['earlier_value']} → {r['later_value']}, "
                f"but analysis_results holds {stored[0]} → {stored[1]}"
            )
    return problems
