"""The survival assets in Dagster: tables in DuckDB, printed-value checks at the printed precision, charts."""

import json
from pathlib import Path

import duckdb
import polars as pl
from dagster import AssetSelection

from lms_assets.defs.printed_checks import value_verdicts
from lms_assets_tests.conftest import defs_for

SURVIVAL_ASSETS = (
    "survival_curves",
    "survival_summary",
    "survival_landmarks",
    "survival_followup",
    "survival_subgroups",
    "km_pfs_chart",
    "km_os_chart",
    "forest_chart",
)


def _materialize_survival(paths):
    """The survival assets with everything upstream of them and of their checks (the registry, the paper audit), on ``paths``."""
    defs = defs_for(paths)
    keys = AssetSelection.assets(*SURVIVAL_ASSETS, "adrs", "paper_consistency").upstream().resolve(defs.resolve_asset_graph())
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(asset_selection=list(keys), raise_on_error=False)


def _table(warehouse: Path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return pl.from_arrow(con.sql(f"select * from {name}").to_arrow_table())


def _values_of(result, asset: str) -> dict:
    """The printed values judged by ``asset``'s section checks: value id → its row of the check's values table."""
    return value_verdicts(e for e in result.get_asset_check_evaluations() if e.asset_key.path == [asset])


def _materialized(result) -> dict:
    return {e.asset_key.path[-1]: e.materialization for e in result.get_asset_materialization_events()}


def test_survival_assets_per_cut_with_checks_on_the_published_cut(platform_env):
    """The shipped study plus a later cut: everything is computed per cut, the printed values are checked at the
    published cut (2021-03-31), and the charts draw the latest cut with the published one overlaid."""
    shipped = pl.read_csv(platform_env["data"] / "followup" / "2021-03-31.csv")
    later = shipped.with_columns(
        os_months=pl.when(pl.col("died") == 0).then(pl.col("os_months") + 6.0).otherwise(pl.col("os_months")),
        died=pl.when(pl.col("patient_id") == 1).then(1).otherwise(pl.col("died")),
    )
    later.write_csv(platform_env["data"] / "followup" / "2021-09-30.csv")
    result = _materialize_survival(platform_env)
    materialized = _materialized(result)
    assert set(SURVIVAL_ASSETS) <= set(materialized), f"not materialized: {set(SURVIVAL_ASSETS) - set(materialized)}"
    warehouse = platform_env["warehouse"]

    summary = _table(warehouse, "survival_summary")
    assert summary.columns == ["data_cut", "endpoint", "method", "n", "events", "median", "median_midpoint", "se", "ci_lower", "ci_upper", "note"]
    assert summary.schema["data_cut"] == pl.Date and summary.height == 8
    spss = summary.filter(pl.col("method") == "spss")
    pfs = spss.filter((pl.col("endpoint") == "PFS") & (pl.col("data_cut") == pl.date(2021, 3, 31))).row(0, named=True)
    assert (pfs["median"], round(pfs["ci_lower"], 2), round(pfs["ci_upper"], 2), pfs["events"]) == (4.1, 2.96, 5.24, 19)
    assert spss.filter((pl.col("endpoint") == "OS") & (pl.col("data_cut") == pl.date(2021, 9, 30)))["events"].item() == 13

    # The Brookmeyer–Crowley upper bound of OS at the published cut is not reached (R: NA), and says so.
    loglog_os = summary.filter(
        (pl.col("method") == "brookmeyer_crowley_loglog") & (pl.col("endpoint") == "OS") & (pl.col("data_cut") == pl.date(2021, 3, 31))
    )
    assert loglog_os["ci_upper"].item() is None and "upper bound not reached" in loglog_os["note"].item()

    curves = _table(warehouse, "survival_curves")
    adtte = _table(warehouse, "adtte")
    assert curves.height == adtte.group_by("DCUTDT", "PARAMCD").agg(pl.col("AVAL").n_unique())["AVAL"].sum()

    values = _values_of(result, "survival_summary")
    agreeing = {
        "EFF.pfs.median",
        "EFF.pfs.ci_lower",
        "EFF.pfs.ci_upper",
        "T2.pfs.ci_lower",
        "ABS.pfs.ci_lower",
        "EFF.os.ci_lower",
        "EFF.os.ci_upper",
        "EFF.pfs.events",
        "EFF.os.events",
        "T2.os.median",
    }
    assert all(values[name]["verdict"] == "passed" for name in agreeing)  # the published cut's 12 deaths, not the later 13
    # Table 2 and the abstract print an OS interval (14.2–32.7) the data cannot give; those values must fail.
    for name in ("T2.os.ci_lower", "T2.os.ci_upper", "ABS.os.ci_lower", "ABS.os.ci_upper"):
        assert values[name]["verdict"] != "passed" and values[name]["check_outcome"] != "passed"
    lower = values["T2.os.ci_lower"]
    assert lower["printed"] == "23.5 (14.2~32.7)" and lower["shown"] == "12.29" and lower["basis"] == "reconstructed"

    followup = _values_of(result, "survival_followup")
    assert set(followup) == {"EFF.followup.median", "EFF.followup.min", "EFF.followup.max"}
    median = followup["EFF.followup.median"]
    # Reverse KM on the (partly reconstructed) OS gives 25.8, not the printed 17.8: reported, not bent.
    assert median["shown"] == "25.80" and "17.8" in median["printed"]
    assert median["verdict"] != "passed" and median["check"] == "printed_results_efficacy"

    # The Discussion's "no significant differences" is judged by the blocking checks of its printed counts.
    subgroups = _values_of(result, "survival_subgroups")
    assert subgroups["DIS.subgroups.pfs.significant.n"]["verdict"] == subgroups["DIS.subgroups.os.significant.n"]["verdict"] == "passed"

    for chart in ("km_pfs_chart", "km_os_chart", "forest_chart"):
        metadata = materialized[chart].metadata
        assert f"/charts/{chart}.png?sha256=" in metadata["picture"].value
        assert metadata["chart page"].value.endswith(f"/charts/{chart}.html")
        assert (platform_env["outputs"] / "charts" / f"{chart}.html").is_file()
    html = (platform_env["outputs"] / "charts" / "km_os_chart.html").read_text()
    assert "Data cut 2021-09-30 (latest)" in html and "Data cut 2021-03-31 (published)" in html
    # The published cut's log(−log) interval in the chart's caption: the upper bound is not reached, not 28.0.
    # (Altair writes the spec as JSON with non-ASCII characters escaped.)
    assert json.dumps("log(−log) CI 6.90–not reached")[1:-1] in html and json.dumps("6.90–28.00")[1:-1] not in html
