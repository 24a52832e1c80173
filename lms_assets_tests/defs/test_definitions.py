"""What every asset of the definitions is declared with: group, kinds, owners, pool and IO manager, and which
layer's step makes it.

Pinned asset by asset, so moving the decorators' shared arguments into one place per domain
(``defs.constants.asset_defaults``) provably changed none of them, and a new asset states its own.
"""

import pytest
from dagster import AssetSelection

from lms_assets_tests.conftest import defs_for, run_selection, start_from_shipped_run
from lms_assets_tests.records.test_validation import failure_message, table_digests

OWNERS = ["team:study-biostatistics"]
# No concurrency pool: runs share the warehouse one read or write at a time (defs/warehouse.py), not step by step.
POOL = None
TABLES = "io_manager"
CHARTS = "chart_io_manager"
INGESTED = {"csv", "duckdb"}
FRAMES = {"polars", "duckdb"}
LIFELINES = {"polars", "duckdb", "lifelines"}

# asset → (group, kinds, IO manager); every one has OWNERS and the POOL.
DECLARED = {
    "raw_adverse_events": ("ingest", INGESTED, TABLES),
    "raw_followup": ("ingest", INGESTED, TABLES),
    "raw_discrepancies": ("ingest", INGESTED, TABLES),
    "raw_allocations": ("ingest", INGESTED, TABLES),
    "raw_patients": ("ingest", INGESTED, TABLES),
    "raw_printed_values": ("ingest", INGESTED, TABLES),
    "raw_provenance": ("ingest", INGESTED, TABLES),
    "raw_response": ("ingest", INGESTED, TABLES),
    "quarantine": ("ingest", FRAMES, TABLES),
    "adae": ("cohort", FRAMES, TABLES),
    "adrs": ("cohort", FRAMES, TABLES),
    "adsl": ("cohort", FRAMES, TABLES),
    "adtte": ("cohort", FRAMES, TABLES),
    "adtr": ("cohort", FRAMES, TABLES),
    "adam_exports": ("cohort", FRAMES, TABLES),
    "baseline_summary": ("baseline", FRAMES, TABLES),
    "recist_consistency": ("response", FRAMES, TABLES),
    "response_summary": ("response", FRAMES, TABLES),
    "tumour_shrinkage": ("response", FRAMES, TABLES),
    "ae_summary": ("toxicity", FRAMES, TABLES),
    "survival_curves": ("survival", LIFELINES, TABLES),
    "survival_followup": ("survival", LIFELINES, TABLES),
    "survival_landmarks": ("survival", LIFELINES, TABLES),
    "survival_subgroups": ("survival", LIFELINES, TABLES),
    "survival_summary": ("survival", LIFELINES, TABLES),
    "median_history": ("survival", FRAMES, TABLES),
    "ae_chart": ("charts", {"altair"}, CHARTS),
    "forest_chart": ("charts", {"altair"}, CHARTS),
    "km_os_chart": ("charts", {"altair"}, CHARTS),
    "km_pfs_chart": ("charts", {"altair"}, CHARTS),
    "history_chart": ("charts", {"altair"}, CHARTS),
    "swimmer_chart": ("charts", {"altair"}, CHARTS),
    "km_subgroups_chart": ("charts", {"altair"}, CHARTS),
    "waterfall_chart": ("charts", {"altair"}, CHARTS),
    "printed_values": ("audit", FRAMES, TABLES),
    "paper_consistency": ("audit", FRAMES, TABLES),
    "printed_audit": ("audit", FRAMES, TABLES),
    "sensitivity_ranges": ("audit", {"polars", "duckdb", "numpy"}, TABLES),
    "r_verification": ("audit", {"polars", "duckdb", "r"}, TABLES),
    "study_report": ("report", {"html"}, TABLES),
    "analysis_results": ("results", {"polars", "duckdb", "parquet", "csv"}, TABLES),
    "cut_changes": ("results", FRAMES, TABLES),
}
# Each layer's tables are made in one step (a multi-asset), named after the layer.
LAYER_STEPS = {
    "ingest": {name for name, (group, _, _) in DECLARED.items() if group == "ingest"},
    "adam": {"adsl", "adrs", "adtr", "adtte", "adae"},
    "tables": {name for name, (group, _, _) in DECLARED.items() if group in {"baseline", "response", "toxicity", "survival"}},
}


def _declared(defs) -> dict[str, tuple]:
    declared = {}
    for assets_def in defs.assets:
        for key in assets_def.keys:
            spec = assets_def.specs_by_key[key]
            declared[key.to_user_string()] = (
                spec.group_name,
                set(spec.kinds),
                assets_def.get_io_manager_key_for_asset_key(key),
                list(spec.owners),
                assets_def.op.pool,
            )
    return declared


# With the registry the summaries are built with one check per printed section; without it, with a stand-in check:
# both ways through ``gated_summary`` must declare the same.
@pytest.mark.parametrize("registry", [True, False], ids=["registry", "no registry"])
def test_every_asset_keeps_its_group_kinds_owners_pool_and_io_manager(platform_env, registry):
    if not registry:
        (platform_env["data"] / "printed_values.csv").unlink()
    defs = defs_for(platform_env)
    expected = {name: (group, kinds, io, OWNERS, POOL) for name, (group, kinds, io) in DECLARED.items()}
    assert _declared(defs) == expected
    # Every check is evaluated in its asset's step: none needs a step (and a read of its tables) of its own.
    assert list(defs.asset_checks or []) == []


def test_each_layer_is_one_step(platform_env):
    steps: dict[str, set[str]] = {}
    for assets_def in defs_for(platform_env).assets:
        steps.setdefault(assets_def.op.name, set()).update(key.path[-1] for key in assets_def.keys)
    assert {step: steps[step] for step in LAYER_STEPS} == LAYER_STEPS


# Dagster 1.13 draws the zoomed-out lineage (below MINIMAL_SCALE) with each node's label cut to 18 characters
# (withMiddleTruncation, maxLength 18, in ui-core's asset-graph/AssetNode.tsx); test_ui_e2e looks at it in Chromium.
LINEAGE_LABEL_CHARS = 18


def test_every_asset_name_fits_the_zoomed_out_lineage_label(platform_env):
    names = [key.path[-1] for assets_def in defs_for(platform_env).assets for key in assets_def.keys]
    assert len(names) == len(DECLARED)
    assert [n for n in names if len(n) > LINEAGE_LABEL_CHARS] == []


def test_a_selection_of_one_table_of_a_layer_makes_it_alone_from_the_stored_tables(shipped_run, platform_env):
    """The quarantine is made from the stored raw tables and ``median_history`` from the stored ``survival_summary``,
    as a one-asset step would read its inputs; nothing else of their layers is made, and the tables come out as the
    whole-graph run made them."""
    start_from_shipped_run(shipped_run, platform_env)
    before = table_digests(platform_env["warehouse"])
    result = run_selection(AssetSelection.assets("quarantine", "median_history"), platform_env)
    assert result.success, failure_message(result)
    assert {e.asset_key.path[-1] for e in result.get_asset_materialization_events()} == {"quarantine", "median_history"}
    assert {e.step_key for e in result.all_events if e.is_step_success} == {"ingest", "tables"}
    assert table_digests(platform_env["warehouse"]) == before
