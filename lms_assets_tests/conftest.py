"""Shared fixtures: a private copy of the study folder and a private warehouse per test."""

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED_DATA = REPO / "data"


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    """A copy of the shipped study records (without any warehouse) that a test may damage."""
    target = tmp_path / "study"
    shutil.copytree(SHIPPED_DATA, target, ignore=shutil.ignore_patterns("warehouse", "README.md"))
    return target


@pytest.fixture
def platform_env(study_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point the platform at the private study copy, warehouse and outputs folder."""
    paths = {
        "data": study_dir,
        "warehouse": tmp_path / "warehouse" / "lms.duckdb",
        "outputs": tmp_path / "outputs",
    }
    monkeypatch.setenv("LMS_DATA_DIR", str(paths["data"]))
    monkeypatch.setenv("LMS_DUCKDB_PATH", str(paths["warehouse"]))
    monkeypatch.setenv("LMS_OUTPUT_DIR", str(paths["outputs"]))
    return paths


def run_assets(*names: str):
    """Materialize ``names``, everything upstream of them and of their checks' inputs, in-process.

    Separate checks that read other tables (``adsl_patients_complete`` reads ADRS and ADTTE) need those tables
    too, as the full-graph run in the UI would have them. The summaries' published-figure checks run in their
    asset's step, so what they read (``published_figures``, ``paper_consistency``) is upstream of it anyway.
    """
    from dagster import AssetSelection

    from lms_assets.definitions import build_defs

    defs = build_defs()
    graph = defs.resolve_asset_graph()
    selected = set(AssetSelection.assets(*names).upstream().resolve(graph))
    while True:
        check_inputs = {
            parent
            for check in graph.asset_check_keys
            if check.asset_key in selected
            for parent in graph.get(check).parent_entity_keys
        }
        grown = selected | set(AssetSelection.assets(*check_inputs).upstream().resolve(graph))
        if grown == selected:
            break
        selected = grown
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(asset_selection=list(selected), raise_on_error=False)
