"""One step per layer: what a layer's multi-asset needs to make several tables in one step.

A layer (the record ingest, the ADaM datasets, the summary tables, the charts) is one subsettable multi-asset (``layer``):
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
    AssetIn,
    AssetKey,
    AssetOut,
    AssetSpec,
    IOManager,
    PythonObjectDagsterType,
    build_input_context,
    build_output_context,
    multi_asset,
)

from lms_assets.defs.constants import OWNERS

# What ``stored`` asks the IO manager for.
FRAME = PythonObjectDagsterType(pl.DataFrame)


def spec(name: str, *, group: str, kinds: Set[str], description: str, deps: Iterable[str] = ()) -> AssetSpec:
    """The spec of one table of a layer's step: its group, kinds and description, the tables it is made from, ``OWNERS``."""
    return AssetSpec(name, group_name=group, kinds=set(kinds), description=description, deps=list(deps), owners=OWNERS)


def layer(specs: Sequence[AssetSpec], *, io_manager_key: str = "io_manager", ins: dict[str, AssetIn] | None = None, **kwargs):
    """``@multi_asset`` making ``specs`` in one subsettable step, each stored by ``io_manager_key``.

    Built from outputs, not ``specs=``: a spec carries its IO manager as the definition metadata entry
    ``dagster/io_manager_key``, which the asset page then shows in its metadata table (and widens it past the page).
    """
    ins = ins or {}
    own = {s.key for s in specs}
    taken = {AssetKey(name) if a.key is None else a.key for name, a in ins.items()}
    outside = sorted({d.asset_key for s in specs for d in s.deps} - own - taken, key=lambda k: k.to_user_string())
    return multi_asset(
        outs={
            s.key.path[-1]: AssetOut(
                key=s.key,
                group_name=s.group_name,
                kinds=set(s.kinds),
                description=s.description,
                owners=list(s.owners),
                metadata=dict(s.metadata),
                io_manager_key=io_manager_key,
                is_required=False,
            )
            for s in specs
        },
        internal_asset_deps={s.key.path[-1]: {d.asset_key for d in s.deps} for s in specs},
        deps=outside,
        ins=ins,
        can_subset=True,
        **kwargs,
    )


def selected(context: AssetExecutionContext) -> set[str]:
    """The names of the step's tables this run makes."""
    return {key.path[-1] for key in context.selected_asset_keys}


def table_key(context: AssetExecutionContext, table: str) -> AssetKey:
    """The key of ``table`` in this step's code location: the prefix its own keys carry (the study's, on a server that
    runs several) and the table's name."""
    return AssetKey([*next(iter(context.assets_def.keys)).path[:-1], table])


def selected_results(context: AssetExecutionContext, table: str, results: Iterable[AssetCheckResult]) -> list[AssetCheckResult]:
    """``table``'s check results of the checks this run evaluates (a run may leave some out), each naming its asset
    by its key in this code location."""
    key = table_key(context, table)
    named = [r._replace(asset_key=key) for r in results]
    return [r for r in named if AssetCheckKey(key, str(r.check_name)) in context.selected_asset_check_keys]


def stored(io_manager: IOManager, table: str, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """A table of the step that this run does not make, as the IO manager stored it (only ``columns``, when given)."""
    key = AssetKey(table)
    metadata = {"columns": list(columns)} if columns else None
    context = build_input_context(
        asset_key=key, definition_metadata=metadata, dagster_type=FRAME, upstream_output=build_output_context(asset_key=key)
    )
    return io_manager.load_input(context)
