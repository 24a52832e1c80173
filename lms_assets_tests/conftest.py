"""Shared fixtures: a private copy of the study folder and a private warehouse per test.

Definitions are built with explicit locations (``build_defs(study_dir=..., warehouse=..., outputs=...)``); no
in-process test sets the environment. Subprocess tests (CLI, dagster dev) pass it to the child instead.
"""

import shutil
from pathlib import Path

import pytest

from lms_assets.records.study import load_study

REPO = Path(__file__).resolve().parents[1]
SHIPPED_DATA = REPO / "data"
# The shipped study's study.toml: its STUDYID and enrolment window for tests that call the pure layers.
SHIPPED_STUDY = load_study(SHIPPED_DATA)


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    """A copy of the shipped study records (without any warehouse) that a test may damage."""
    target = tmp_path / "study"
    shutil.copytree(SHIPPED_DATA, target, ignore=shutil.ignore_patterns("warehouse", "README.md"))
    return target


@pytest.fixture
def platform_env(study_dir: Path, tmp_path: Path) -> dict[str, Path]:
    """The private study copy, warehouse and outputs folder a test's definitions use (``defs_for``, ``run_assets``)."""
    return {
        "data": study_dir,
        "warehouse": tmp_path / "warehouse" / "lms.duckdb",
        "outputs": tmp_path / "outputs",
    }


def defs_for(paths: dict[str, Path]):
    """Definitions reading ``paths["data"]``, storing in ``paths["warehouse"]``, writing under ``paths["outputs"]``."""
    from lms_assets.definitions import build_defs

    return build_defs(study_dir=paths["data"], warehouse=paths["warehouse"], outputs=paths["outputs"])


def run_assets(*names: str, paths: dict[str, Path]):
    """Materialize ``names``, everything upstream of them and of their checks' inputs, in-process, on ``paths``
    (a ``platform_env`` dict).

    Separate checks that read other tables (``adsl_patients_complete`` reads ADRS and ADTTE) need those tables
    too, as the full-graph run in the UI would have them. The summaries' published-figure checks run in their
    asset's step, so what they read (``published_figures``, ``paper_consistency``) is upstream of it anyway.
    """
    from dagster import AssetSelection

    defs = defs_for(paths)
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


def allow_exclusion(study: Path) -> None:
    """Set ``exclude_quarantined_rows = true`` in the study folder's study.toml, keeping the rest of the file."""
    path = study / "study.toml"
    text = path.read_text()
    assert "exclude_quarantined_rows = false" in text, "the shipped study.toml no longer sets exclude_quarantined_rows = false"
    path.write_text(text.replace("exclude_quarantined_rows = false", "exclude_quarantined_rows = true"))
