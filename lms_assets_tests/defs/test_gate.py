"""Write-audit-publish: a table is published only when its blocking checks pass on the candidate, in the
step that makes it (its own, or its layer's); a failed candidate is kept in ``staging`` and the published table keeps its last good content,
so no later run, whole or partial, computes anything from it."""

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSelection,
    AssetSpec,
    DagsterInstance,
    ResourceParam,
    asset,
    materialize,
    multi_asset,
)

from lms_assets import synthetic
from lms_assets.defs import gate
from lms_assets.defs.printed_checks import value_verdicts
from lms_assets.defs.resources import WarehouseIOManager, WarehouseTables
from lms_assets.records.study import load_study
from lms_assets.tables import response
from lms_assets_tests.conftest import SHIPPED_DATA, run_assets, run_selection, start_from_shipped_run
from lms_assets_tests.records.test_validation import failure_first_lines, table_digests

# --- the gate on its own -----------------------------------------------------------------------


def scores_assets(values: list[int], severity: AssetCheckSeverity = AssetCheckSeverity.ERROR):
    """A table whose blocking check wants every value positive, one advisory check, and a table downstream."""

    @asset(
        description="Scores published through the gate.",
        check_specs=[
            AssetCheckSpec("all_positive", asset="scores", blocking=True, description="Every score is positive."),
            AssetCheckSpec("advisory", asset="scores", description="Fails at ERROR but does not block."),
        ],
    )
    def scores(context: AssetExecutionContext, io_manager: ResourceParam[WarehouseTables]):
        candidate = pl.DataFrame({"score": values})
        bad = candidate.filter(pl.col("score") <= 0).height
        results = [
            AssetCheckResult(
                check_name="all_positive",
                passed=not bad,
                severity=severity,
                description=f"{bad} score(s) not positive" if bad else None,
            ),
            AssetCheckResult(check_name="advisory", passed=False, severity=AssetCheckSeverity.ERROR, description="advice"),
        ]
        yield from gate.publish(context, io_manager, candidate, results, {"rows": candidate.height})

    @asset(description="Twice each published score.")
    def doubled(scores: pl.DataFrame) -> pl.DataFrame:
        return scores.with_columns(pl.col("score") * 2)

    return [scores, doubled]


def tables(database: Path) -> dict[str, list]:
    with duckdb.connect(str(database), read_only=True) as con:
        names = con.sql("select table_schema || '.' || table_name from information_schema.tables order by 1").fetchall()
        return {n: con.sql(f"select * from {n} order by all").fetchall() for (n,) in names}


def test_the_gate_publishes_what_passes_and_stages_what_does_not(tmp_path: Path):
    database = tmp_path / "w.duckdb"
    resources = {"io_manager": WarehouseIOManager(database=str(database))}

    assert materialize(scores_assets([1, 2]), resources=resources).success
    assert tables(database) == {"main.doubled": [(2,), (4,)], "main.scores": [(1,), (2,)]}

    blocked = materialize(scores_assets([3, -1]), resources=resources, raise_on_error=False)
    assert not blocked.success
    assert failure_first_lines(blocked) == {"scores": "scores not published: all_positive: 1 score(s) not positive"}
    assert tables(database) == {
        "main.doubled": [(2,), (4,)],
        "main.scores": [(1,), (2,)],
        "staging.scores": [(-1,), (3,)],
    }
    assert not blocked.asset_materializations_for_node("doubled"), "nothing downstream runs from the candidate"
    checks = {e.check_name: e for e in blocked.get_asset_check_evaluations()}
    assert not checks["all_positive"].passed and checks["advisory"].description == "advice"

    # A later good candidate is published and the stale staged one goes with the same transaction.
    assert materialize(scores_assets([5]), resources=resources).success
    assert tables(database) == {"main.doubled": [(10,)], "main.scores": [(5,)]}


def test_a_warning_or_a_non_blocking_check_does_not_hold_the_table_back(tmp_path: Path):
    database = tmp_path / "w.duckdb"
    resources = {"io_manager": WarehouseIOManager(database=str(database))}
    result = materialize(scores_assets([-4], severity=AssetCheckSeverity.WARN), resources=resources)
    assert result.success
    assert tables(database) == {"main.doubled": [(-8,)], "main.scores": [(-4,)]}


def layer_assets(values: dict[str, list[int]]):
    """A layer's step: three tables (``b`` made from ``a``, ``c`` on its own), each published through the gate when
    its values are all positive."""

    @multi_asset(
        specs=[AssetSpec(n, deps=["a"] if n == "b" else []).with_io_manager_key("io_manager") for n in ("a", "b", "c")],
        check_specs=[AssetCheckSpec("all_positive", asset=n, blocking=True, description="Every value is positive.") for n in ("a", "b", "c")],
        can_subset=True,
    )
    def layer(context: AssetExecutionContext, io_manager: ResourceParam[WarehouseTables]):
        step = gate.Publication(context, io_manager)
        for name in ("a", "b", "c"):
            if step.held_back(*({"b": ["a"]}.get(name, []))):
                continue
            candidate = pl.DataFrame({"value": values[name]})
            bad = candidate.filter(pl.col("value") <= 0).height
            result = AssetCheckResult(check_name="all_positive", passed=not bad, description=f"{bad} value(s) not positive" if bad else None)
            yield from step.publish(name, candidate, [result])
        step.finish()

    return [layer]


def test_a_layers_step_publishes_each_table_that_passes_and_names_each_held_back(tmp_path: Path):
    database = tmp_path / "w.duckdb"
    resources = {"io_manager": WarehouseIOManager(database=str(database), schema="main")}
    assert materialize(layer_assets({"a": [1], "b": [2], "c": [3]}), resources=resources).success

    blocked = materialize(layer_assets({"a": [-1], "b": [20], "c": [30]}), resources=resources, raise_on_error=False)
    assert not blocked.success
    # a is held back, b (made from a) is not computed, c is published in the same step.
    assert tables(database) == {"main.a": [(1,)], "main.b": [(2,)], "main.c": [(30,)], "staging.a": [(-1,)]}
    assert failure_first_lines(blocked) == {"a": "a not published: all_positive: 1 value(s) not positive"}

    both = materialize(layer_assets({"a": [4], "b": [-5], "c": [-6]}), resources=resources, raise_on_error=False)
    message = both.get_step_failure_events()[0].step_failure_data.error.message
    assert failure_first_lines(both) == {
        "b": "b not published: all_positive: 1 value(s) not positive",
        "c": "c not published: all_positive: 1 value(s) not positive",
    }
    assert "The candidate (1 rows) is in staging.b for inspection; main.b keeps its last good content" in message
    assert "nothing downstream is computed from the candidates." in message
    assert tables(database) == {"main.a": [(4,)], "main.b": [(2,)], "main.c": [(30,)], "staging.b": [(-5,)], "staging.c": [(-6,)]}


def test_a_column_the_published_table_lacks_reads_as_never_published(tmp_path: Path):
    """A warehouse whose ADTTE was published with the cut as DATACUT: the cut check of the next run sees no published
    cut (and the run republishes ADTTE as DCUTDT) instead of failing on the missing column, run after run."""
    with WarehouseIOManager(database=str(tmp_path / "lms.duckdb")).yield_for_execution(None) as tables:
        with tables.warehouse.attached() as connection:
            connection.execute("CREATE TABLE main.adtte AS SELECT DATE '2021-03-31' AS DATACUT")
        assert tables.published_values("adtte", "DATACUT") == [dt.date(2021, 3, 31)]
        assert tables.published_values("adtte", "DCUTDT") is None


# --- a regressive cut, then a partial run --------------------------------------------------------


def _table(warehouse: Path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(f"select * from {name}").pl()


@pytest.mark.slow
def test_after_a_blocked_regressive_cut_a_partial_run_publishes_nothing_from_it(shipped_run, platform_env):
    start_from_shipped_run(shipped_run, platform_env)
    with DagsterInstance.ephemeral() as instance:
        good = table_digests(platform_env["warehouse"])["adtte"]
        cut = pl.read_csv(platform_env["data"] / "followup" / "2021-03-31.csv")
        # Patient 3's death is undone in a later export: OS would show 11 deaths instead of 12.
        cut.with_columns(pl.when(pl.col("patient_id") == 3).then(0).otherwise(pl.col("died")).alias("died")).write_csv(
            platform_env["data"] / "followup" / "2022-03-31.csv"
        )

        blocked = run_selection(AssetSelection.assets("adtte").upstream(), platform_env, instance)

        assert not blocked.success
        assert failure_first_lines(blocked)["adtte"].startswith(
            "adtte not published: followup_cuts_consistent: 1 violation(s): patient 3 OS: an event in the earlier cut is "
            "censored in the later cut (2021-03-31: 28.0 months, event; 2022-03-31: 28.0 months, censored)"
        )
        assert table_digests(platform_env["warehouse"])["adtte"] == good
        staged = _table(platform_env["warehouse"], "staging.adtte")
        assert sorted(staged["DCUTDT"].cast(pl.String).unique()) == ["2021-03-31", "2022-03-31"]

        # `dagster asset materialize --select 'survival_curves*'`: it reads main.adtte, the last good cut.
        partial = run_selection(AssetSelection.assets("survival_curves").downstream(), platform_env, instance)

    assert partial.success
    assert "survival_curves" in {e.asset_key.to_user_string() for e in partial.get_asset_materialization_events()}
    for name in ("survival_curves", "survival_summary", "median_history"):
        assert _table(platform_env["warehouse"], name)["data_cut"].cast(pl.String).unique().to_list() == ["2021-03-31"], name
    history = _table(platform_env["warehouse"], "median_history")
    assert history.filter((pl.col("endpoint") == "OS") & (pl.col("method") == "spss"))["events"].to_list() == [12]
    page = (platform_env["outputs"] / "report" / "study_report.html").read_text()
    assert "<dt>Data cuts</dt><dd>2021-03-31</dd>" in page


# --- every blocking check is evaluated through the gate ---------------------------------------------------


def test_every_blocking_check_runs_in_its_assets_step_one_per_printed_section():
    from lms_assets.checks.printed_values import PRINTED_VALUE_SOURCES, check_name, owner_of
    from lms_assets.definitions import build_defs

    defs = build_defs()
    graph = defs.resolve_asset_graph()
    blocking = {k for k in graph.asset_check_keys if graph.get_check_spec(k).blocking}
    # A blocking check declared on its asset's own definition runs in that step; a separate @asset_check would not.
    separate = {k for k in blocking if k not in defs.get_assets_def(k.asset_key).check_keys}
    assert not separate, sorted(k.to_user_string() for k in separate)
    registry = pl.read_csv(SHIPPED_DATA / "printed_values.csv")
    for owner in PRINTED_VALUE_SOURCES:
        printed = {check_name(source) for source, q in zip(registry["source"], registry["quantity"]) if owner_of(q) == owner}
        declared = {k.name for k in blocking if k.asset_key.to_user_string() == owner}
        assert declared == printed, owner


# --- a summary whose printed values fail is held back like a cohort table ------------------------------


@pytest.mark.slow
def test_a_summary_failing_its_printed_values_keeps_the_last_good_table(shipped_run, platform_env, monkeypatch):
    start_from_shipped_run(shipped_run, platform_env)
    with DagsterInstance.ephemeral() as instance:
        good = table_digests(platform_env["warehouse"])
        good_table = _table(platform_env["warehouse"], "response_summary")
        report = (platform_env["outputs"] / "report" / "study_report.html").read_bytes()
        # Table 2's % over 21 patients (the Results' printed denominator) instead of 19; the n cells stay right.
        original = response.response_summary
        monkeypatch.setattr(
            response, "response_summary", lambda adrs: original(adrs).with_columns(pct=100.0 * pl.col("n") / (pl.col("denominator") + 2))
        )

        blocked = run_selection(AssetSelection.assets("response_summary").downstream(), platform_env, instance)

    assert not blocked.success
    first_lines = failure_first_lines(blocked)
    assert list(first_lines) == ["response_summary"]
    assert first_lines["response_summary"].startswith(
        "response_summary not published: printed_abstract: 4 of 6 printed values differ from the paper; 4 unreviewed (ERROR): "
        "ABS.response.PR.pct, ABS.response.SD.pct, ABS.orr.pct, ABS.dcr.pct. First, ABS.response.PR.pct: regression or unreviewed discrepancy: Abstract prints "
        "'3 (15.8%) achieved partial response (PR)' (15.8) but the table shows 14.29"
    ), first_lines
    assert first_lines["response_summary"].endswith("| and 1 more blocking check(s) failed (see failed_checks)")
    failed = {e.check_name for e in blocked.get_asset_check_evaluations() if not e.passed and e.severity == AssetCheckSeverity.ERROR}
    assert failed == {"printed_abstract", "printed_discussion", "printed_results_efficacy", "printed_table_2"}
    values = value_verdicts(blocked.get_asset_check_evaluations())
    assert all(
        values[f]["verdict"] == "ERROR" and values[f]["check"] == "printed_table_2"
        for f in ("T2.response.PR.pct", "T2.response.SD.pct", "T2.orr.pct")
    )

    after = table_digests(platform_env["warehouse"])
    assert after["response_summary"] == good["response_summary"]
    assert _table(platform_env["warehouse"], "response_summary").equals(good_table)
    staged = _table(platform_env["warehouse"], "staging.response_summary")
    assert staged["n"].to_list() == good_table["n"].to_list()
    assert staged["pct"].to_list() == (100.0 * staged["n"] / (staged["denominator"] + 2)).to_list() != good_table["pct"].to_list()

    materialized = {e.asset_key.to_user_string() for e in blocked.get_asset_materialization_events()}
    assert not materialized & {"response_summary", "printed_audit", "study_report"}, sorted(materialized)
    assert after["printed_audit"] == good["printed_audit"]
    assert (platform_env["outputs"] / "report" / "study_report.html").read_bytes() == report


# --- a study that may exclude quarantined rows says so in every summary ----------------------------


SUMMARIES = (
    "baseline_summary",
    "response_summary",
    "recist_consistency",
    "tumour_shrinkage",
    "ae_summary",
    "survival_curves",
    "survival_summary",
    "survival_landmarks",
    "survival_followup",
    "survival_subgroups",
    "median_history",
)


def test_the_shipped_study_stops_on_quarantine_and_a_synthetic_one_may_exclude():
    assert load_study(SHIPPED_DATA).exclude_quarantined_rows is False
    assert "exclude_quarantined_rows = true" in synthetic.study_toml(60, seed=5)


def test_with_exclusion_allowed_every_summary_says_how_many_patients_were_excluded(tmp_path: Path):
    study = tmp_path / "study"
    synthetic.write(synthetic.generate(60, seed=5, cuts=2), study)
    patients = study / "patients.csv"
    lines = patients.read_text().splitlines()
    lines[3] = "3,old," + lines[3].split(",", 2)[2]  # patient 3's age is not a number
    lines[7] = lines[7].replace(",Female,", ",female,").replace(",Male,", ",male,")  # nor is patient 7's sex a category
    patients.write_text("\n".join(lines) + "\n")
    result = run_assets(*SUMMARIES, paths={"data": study, "warehouse": tmp_path / "warehouse" / "lms.duckdb", "outputs": tmp_path / "out"})

    assert result.success
    excluded = {
        e.asset_key.path[-1]: e.step_materialization_data.materialization.metadata.get(gate.PATIENTS_EXCLUDED)
        for e in result.all_events
        if e.is_step_materialization
    }
    for name in ("adsl", "adrs", "adtte", "adae", *SUMMARIES):
        assert excluded[name] is not None and excluded[name].value == 2, name
    assert _table(tmp_path / "warehouse" / "lms.duckdb", "adsl").height == 58
