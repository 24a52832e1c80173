"""Re-runs: unchanged inputs give identical tables and unchanged data versions; a changed file is told apart."""

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from lms_assets.definitions import build_defs
from lms_assets.records import boundary
from lms_assets_tests.conftest import materialize_everything
from lms_assets_tests.records.test_validation import table_digests

RAW_FILES = {
    "raw_patients": "patients.csv",
    "raw_allocations": "patient_allocations.csv",
    "raw_response": "response.csv",
    "raw_adverse_events": "adverse_events.csv",
    "raw_printed_values": "printed_values.csv",
    "raw_provenance": "provenance.csv",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def graph(platform_env):
    """The cohort part of the graph, run against one persistent instance as the UI's would be."""
    defs = build_defs(study_dir=platform_env["data"], warehouse=platform_env["warehouse"], outputs=platform_env["outputs"])
    asset_graph = defs.resolve_asset_graph()
    cohort = sorted(AssetSelection.assets("adsl", "adrs", "adtr", "adtte", "adae").upstream().resolve(asset_graph))
    job = defs.resolve_implicit_global_asset_job_def()
    home = platform_env["warehouse"].parent.parent / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:

        def run(keys):
            assert job.execute_in_process(asset_selection=list(keys), instance=instance).success

        def data_version(name: str) -> str:
            event = instance.get_latest_materialization_event(AssetKey(name))
            return event.asset_materialization.tags["dagster/data_version"]

        def status(name: str) -> StaleStatus:
            resolver = CachingStaleStatusResolver(instance, asset_graph, LoadingContextForTest(instance))
            return resolver.get_status(AssetKey(name))

        def stale_because(name: str) -> set[str]:
            resolver = CachingStaleStatusResolver(instance, asset_graph, LoadingContextForTest(instance))
            return {c.dependency.asset_key.path[-1] for c in resolver.get_stale_causes(AssetKey(name)) if c.dependency}

        yield {
            "run": run,
            "cohort": cohort,
            "raw": [k for k in cohort if k.path[-1].startswith("raw_")],
            "data_version": data_version,
            "status": status,
            "stale_because": stale_because,
            "env": platform_env,
        }


def test_unchanged_inputs_give_identical_tables_and_data_versions(graph):
    env = graph["env"]
    graph["run"](graph["cohort"])
    first_tables = table_digests(env["warehouse"])
    first_versions = {name: graph["data_version"](name) for name in [*RAW_FILES, "raw_followup"]}

    # Re-reading unchanged files (as the sensor would) leaves everything downstream fresh.
    graph["run"](graph["raw"])
    assert {graph["status"](n) for n in ("adsl", "adrs", "adtte", "adae", "quarantine")} == {StaleStatus.FRESH}
    graph["run"](graph["cohort"])

    assert table_digests(env["warehouse"]) == first_tables
    assert {name: graph["data_version"](name) for name in first_versions} == first_versions
    # The data version is the file's content hash (the follow-up's, the hash of its cut files' hashes).
    for name, file in RAW_FILES.items():
        assert first_versions[name] == sha256(env["data"] / file), name
    cut = env["data"] / "followup" / "2021-03-31.csv"
    assert first_versions["raw_followup"] == boundary.combined_hash([sha256(cut)])


def test_a_changed_file_gets_a_new_data_version_and_only_its_dependents_go_stale(graph):
    env = graph["env"]
    graph["run"](graph["cohort"])
    before_tables = table_digests(env["warehouse"])
    before_versions = {name: graph["data_version"](name) for name in RAW_FILES}

    response = env["data"] / "response.csv"
    response.write_text(response.read_text().replace("\n5,-17.5,SD\n", "\n5,-18.5,SD\n"))
    graph["run"](graph["raw"])

    after_versions = {n: graph["data_version"](n) for n in RAW_FILES}
    assert after_versions["raw_response"] == sha256(response) != before_versions["raw_response"]
    assert {n: v for n, v in after_versions.items() if n != "raw_response"} == {n: v for n, v in before_versions.items() if n != "raw_response"}
    # The best % change is ADTR's; ADRS is made from the same file, so both wait for a re-run.
    for made_from_it in ("adrs", "adtr"):
        assert graph["status"](made_from_it) == StaleStatus.STALE
        assert graph["stale_because"](made_from_it) == {"raw_response"}
    assert graph["status"]("quarantine") == StaleStatus.STALE
    assert {graph["status"](n) for n in ("adsl", "adtte", "adae")} == {StaleStatus.FRESH}

    graph["run"](graph["cohort"])
    after_tables = table_digests(env["warehouse"])
    changed = {name for name in before_tables if after_tables[name] != before_tables[name]}
    assert changed == {"raw_response", "adtr"}


# --- every table, byte for byte ------------------------------------------------------------------


def column_values(warehouse: Path) -> dict[tuple[str, str], str]:
    """The SHA-256 of every column of every table: its values in stored row order, each float by its shortest
    round-trip repr (so a last-bit change shows), a null as None. Not the raw Arrow buffers: what DuckDB leaves
    in the value slots of null entries is not content."""
    digests = {}
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = [r[0] for r in connection.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        for table in tables:
            arrow = connection.execute(f'SELECT * FROM "{table}"').arrow().read_all()
            for name in arrow.column_names:
                digests[(table, name)] = hashlib.sha256(repr(arrow.column(name).to_pylist()).encode()).hexdigest()
    return digests


@pytest.fixture(scope="module")
def two_full_runs(shipped_run, tmp_path_factory):
    """The whole graph run twice on unchanged inputs into one warehouse: every column's digest after each run.

    The first run is the session's ``shipped_run``; the second runs on a copy of the warehouse it left, as a
    second run into the same file would (each in-process run has its own ephemeral instance either way)."""
    root = tmp_path_factory.mktemp("reruns")
    first = column_values(shipped_run["warehouse"])
    shutil.copytree(shipped_run["warehouse"].parent, root / "warehouse")
    warehouse = root / "warehouse" / shipped_run["warehouse"].name
    study = {p.relative_to(shipped_run["data"]): sha256(p) for p in shipped_run["data"].rglob("*") if p.is_file()}
    assert materialize_everything({"data": shipped_run["data"], "warehouse": warehouse, "outputs": root / "outputs"}).success
    assert {p.relative_to(shipped_run["data"]): sha256(p) for p in shipped_run["data"].rglob("*") if p.is_file()} == study, (
        "a run changed the study folder it read"
    )
    return [first, column_values(warehouse)]


@pytest.mark.slow
def test_every_table_is_byte_identical_across_reruns(two_full_runs):
    first, second = two_full_runs
    assert first.keys() == second.keys()
    tables = {table for table, _ in first}
    assert {"adsl", "adtte", "survival_subgroups", "printed_audit", "median_history", "quarantine"} <= tables
    # survival_subgroups.logrank_p once varied in its last bits; tables/survival.py now sorts before lifelines.
    differ = {key for key in first if first[key] != second[key]}
    assert not differ, f"columns that differ between two runs on the same inputs: {sorted(differ)}"
