"""Shared fixtures: a private copy of the study folder and a private warehouse per test, and one whole-graph run
of the shipped study per session that read-only tests share.

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


def runnable_selection(defs, *names: str) -> list:
    """The asset keys of ``names``, everything upstream of them and of their checks' inputs.

    Separate checks that read other tables (``adsl_patients_complete`` reads ADRS and ADTTE) need those tables
    too, as the full-graph run in the UI would have them. The summaries' printed-value checks run in their
    asset's step, so what they read (``printed_values``, ``paper_consistency``) is upstream of it anyway.
    """
    from dagster import AssetSelection

    graph = defs.resolve_asset_graph()
    selected = set(AssetSelection.assets(*names).upstream().resolve(graph))
    while True:
        check_inputs = {parent for check in graph.asset_check_keys if check.asset_key in selected for parent in graph.get(check).parent_entity_keys}
        grown = selected | set(AssetSelection.assets(*check_inputs).upstream().resolve(graph))
        if grown == selected:
            return sorted(selected)
        selected = grown


def _execute(defs, keys: list, instance=None):
    """Materialize the asset ``keys`` of ``defs`` in-process, on ``instance`` when given (an ephemeral one otherwise)."""
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(asset_selection=keys, instance=instance, raise_on_error=False)


def run_assets(*names: str, paths: dict[str, Path]):
    """Materialize ``runnable_selection(names)`` in-process, on ``paths`` (a ``platform_env`` dict)."""
    defs = defs_for(paths)
    return _execute(defs, runnable_selection(defs, *names))


def run_selection(selection, paths: dict[str, Path], instance=None):
    """Materialize ``selection`` (an ``AssetSelection``, taken as it is) in-process on ``paths``, as a CLI run with
    ``--select`` would; on ``instance`` when given (an ephemeral one otherwise)."""
    defs = defs_for(paths)
    return _execute(defs, list(selection.resolve(defs.resolve_asset_graph())), instance)


def allow_exclusion(study: Path, max_share: float = 0.25) -> None:
    """Set ``exclude_quarantined_rows = true`` and ``max_excluded_share = max_share`` in the study folder's study.toml,
    keeping the rest of the file."""
    path = study / "study.toml"
    text = path.read_text()
    for setting in ("exclude_quarantined_rows = false", "max_excluded_share = 0\n"):
        assert setting in text, f"the shipped study.toml no longer sets {setting.strip()}"
    text = text.replace("exclude_quarantined_rows = false", "exclude_quarantined_rows = true")
    path.write_text(text.replace("max_excluded_share = 0\n", f"max_excluded_share = {max_share}\n"))


# The patient-level datasets, with the raw files and quarantine they are built from.
COHORT = ("adsl", "adrs", "adtte", "adae")


def materialize_everything(paths: dict[str, Path]):
    """The whole graph, in-process, on ``paths``."""
    return defs_for(paths).resolve_implicit_global_asset_job_def().execute_in_process(raise_on_error=False)


def _shipped_copy(root: Path) -> dict[str, Path]:
    study = root / "study"
    shutil.copytree(SHIPPED_DATA, study, ignore=shutil.ignore_patterns("warehouse", "README.md"))
    return {"data": study, "warehouse": root / "warehouse" / "lms.duckdb", "outputs": root / "outputs"}


def copy_warehouse(source: Path, target: Path) -> None:
    """Copy the DuckDB file ``source`` to ``target`` with whatever else its folder holds (a write-ahead log)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for file in source.parent.iterdir():
        shutil.copy2(file, target.parent / file.name.replace(source.name, target.name, 1))


@pytest.fixture(scope="session")
def shipped_cohort(tmp_path_factory) -> dict[str, Path]:
    """``COHORT`` materialized once per session on a copy of the shipped study: the good warehouse that bad-input
    tests copy (``copy_warehouse``) before they damage a study and show the warehouse is kept. Read-only; keys
    ``data``, ``warehouse``, ``outputs``."""
    paths = _shipped_copy(tmp_path_factory.mktemp("shipped_cohort"))
    assert run_assets(*COHORT, paths=paths).success
    return paths


# The xdist group of the tests that read ``shipped_run``.
SHIPPED_RUN_GROUP = "shipped_run"


@pytest.fixture(scope="session")
def shipped_run(tmp_path_factory) -> dict:
    """The whole graph materialized once per session on a copy of the shipped study, for tests that only read it.

    Keys: ``result`` (the run), ``data``, ``warehouse``, ``outputs``. Read-only by contract: a test that changes
    the study, the warehouse or the outputs works on its own copy (``platform_env``, or a copy of these files).
    A test that uses it is marked ``slow`` and put in its xdist group (``pytest_collection_modifyitems``); one
    that asks for it with ``request.getfixturevalue`` marks itself ``xdist_group(SHIPPED_RUN_GROUP)``.
    """
    paths = _shipped_copy(tmp_path_factory.mktemp("shipped_run"))
    return {"result": materialize_everything(paths), **paths}


def start_from_shipped_run(shipped_run: dict, paths: dict[str, Path]) -> None:
    """Give ``paths`` (a ``platform_env`` on a fresh copy of the shipped study) the warehouse and outputs folder the
    session's ``shipped_run`` left: the published state a test needs before it changes something, without a
    whole-graph run of its own. Each run has its own ephemeral instance either way. The stored charts still name
    the interactive HTML files in ``shipped_run``'s outputs folder (render.Chart.html)."""
    copy_warehouse(shipped_run["warehouse"], paths["warehouse"])
    shutil.copytree(shipped_run["outputs"], paths["outputs"])


# The longest slow tests, 1.5-3 minutes each on a loaded 2-core machine (dagster dev and Chromium; webserver, daemon
# and PostgreSQL; the benchmark's three CLI runs), start first and in this order, so neither worker is left
# finishing one of them alone while the other is idle. A whole module is named where its tests share a set-up.
LONGEST_FIRST = ("test_ui_e2e.py::", "test_ui_hostile.py::test_every_page", "test_deployment.py::", "test_synthetic.py::test_benchmark_smoke_run")


def _longest_first(item: pytest.Item) -> int:
    return next((rank for rank, name in enumerate(LONGEST_FIRST) if name in item.nodeid), len(LONGEST_FIRST))


def _shared_setup(item: pytest.Item) -> tuple:
    """The module and the values of the item's parametrized module-scoped fixtures (``verified``'s study in
    test_r_crosscheck): items with the same key share one set-up of those fixtures when they run one after another."""
    callspec = getattr(item, "callspec", None)
    definitions = item._fixtureinfo.name2fixturedefs if callspec else {}  # pytest keeps the fixture definitions there
    shared = (
        tuple(sorted((name, index) for name, index in callspec.indices.items() if definitions.get(name) and definitions[name][-1].scope == "module"))
        if callspec
        else ()
    )
    return (item.path, shared)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]):
    """Whole-graph tests are slow, and the readers of ``shipped_run`` share one xdist worker (--dist loadgroup), so
    the session materializes the shipped study once rather than once per worker. Marks are added before every
    other implementation runs (before `-m` deselects and before xdist reads the groups).

    Then, after pytest's own reordering, slow tests go first, the longest of them (``LONGEST_FIRST``) at the head,
    otherwise in collection order: the long tests start early on both workers and the short ones fill in around
    them, instead of one long test finishing alone at the end. Pytest's grouping of parametrized module-scoped
    set-ups varies from run to run under xdist (it interleaved test_r_crosscheck's studies, materializing some of
    them twice), so the sort also keeps the items of one such set-up together, where the first of
    them stood."""
    for item in items:
        if "shipped_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group(SHIPPED_RUN_GROUP))
    result = yield
    first_seen: dict[tuple, int] = {}
    for position, item in enumerate(items):
        first_seen.setdefault(_shared_setup(item), position)
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, _longest_first(item), first_seen[_shared_setup(item)]))
    return result
