"""One step per layer: what a layer's multi-asset needs to make several tables in one step.

A layer (the record ingest, the ADaM datasets, the summary tables) is one ``@multi_asset(specs=..., can_subset=True)``:
Dagster runs it as one step, and the tables it makes pass from one to the next in memory, each stored once by the IO
manager and never read back. Lineage still shows one asset per table, with its own description, checks and metadata.
A run that selects some of a layer's tables makes only those (``selected``); one made from a table of the same layer
that the run does not make reads that table as it is stored (``stored``), as a one-asset step would read its input.
"""

from collections.abc import Iterable, Sequence, Set

import polars as pl
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    IOManager,
    PythonObjectDagsterType,
    build_input_context,
    build_output_context,
)

from lms_assets.defs.constants import OWNERS

# What ``stored`` asks the IO manager for.
FRAME = PythonObjectDagsterType(pl.DataFrame)


def spec(name: str, *, group: str, kinds: Set[str], description: str, deps: Iterable[str] = ()) -> AssetSpec:
    """The spec of one table of a layer's step: its group, kinds and description, the tables it is made from, ``OWNERS``,
    stored by the warehouse IO manager (a spec without an IO manager is a table the step writes itself)."""
    return AssetSpec(name, group_name=group, kinds=set(kinds), description=description, deps=list(deps), owners=OWNERS).with_io_manager_key(
        "io_manager"
    )


def selected(context: AssetExecutionContext) -> set[str]:
    """The names of the step's tables this run makes."""
    return {key.path[-1] for key in context.selected_asset_keys}


def selected_results(context: AssetExecutionContext, table: str, results: Iterable[AssetCheckResult]) -> list[AssetCheckResult]:
    """``table``'s check results of the checks this run evaluates (a run may leave some out), each naming its asset."""
    key = AssetKey(table)
    named = [r if r.asset_key else r._replace(asset_key=key) for r in results]
    return [r for r in named if AssetCheckKey(key, str(r.check_name)) in context.selected_asset_check_keys]


def stored(io_manager: IOManager, table: str, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """A table of the step that this run does not make, as the IO manager stored it (only ``columns``, when given)."""
    key = AssetKey(table)
    metadata = {"columns": list(columns)} if columns else None
    context = build_input_context(
        asset_key=key, definition_metadata=metadata, dagster_type=FRAME, upstream_output=build_output_context(asset_key=key)
    )
    return io_manager.load_input(context)
