"""The summary tables in one step: every table of ``defs/tables/`` made from the ADaM datasets in memory.

Each domain module declares its tables with its decorator (``table_defaults(group=..., kinds=...)``, a
``summary_table`` with its group and kinds), a summary owning printed values with ``gated_summary`` (its checks
from ``defs/printed_checks.py``); ``gated_summaries`` makes the one multi-asset of them when the definitions load. In the step the tables are made in dependency order, each from the tables it reads:
the ADaM inputs, or a table made earlier in the step (passed in memory), or, when this run does not make that one,
the stored table. Each is published through the gate with its own checks (``gate.Publication``): a table held back
stops only the tables made from it, and the step fails at its end naming each table held back.
"""

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence, Set
from types import ModuleType
from typing import Any

import polars as pl
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, AssetIn, AssetsDefinition, Output, ResourceParam

from lms_assets.checks.printed_values import PRINTED_VALUE_SOURCES
from lms_assets.defs.gate import Publication
from lms_assets.defs.printed_checks import CHECK_INPUTS, printed_value_checks
from lms_assets.defs.records import study_of
from lms_assets.defs.registry_at_load import LoadedRegistry
from lms_assets.defs.resources import OutputsFolder, StudyFolder, WarehouseTables
from lms_assets.defs.steps import layer, selected, spec, stored

# What the step gives a table's ``compute`` besides tables, by parameter name.
GIVEN = ("context", "study")
# A table's checks on its candidate: given the step's context, the outputs folder (for links), the candidate and
# the tables it was made from, by name.
Checks = Callable[[AssetExecutionContext, OutputsFolder, pl.DataFrame, Mapping[str, pl.DataFrame]], list[AssetCheckResult]]


@dataclasses.dataclass(frozen=True)
class Table:
    """One table of the step: how it is made (``compute``: the tables it reads, by parameter name, to its ``Output``),
    what it reads (``ins``: an ``AssetIn`` per table, with the ``columns`` it needs), its description, group and
    kinds, and its checks, declared (``check_specs``) and evaluated on the candidate (``checks``)."""

    compute: Callable[..., Output]
    group: str
    kinds: Set[str]
    description: str
    ins: Mapping[str, AssetIn]
    check_specs: Sequence[AssetCheckSpec] = ()
    checks: Checks | None = None

    @property
    def name(self) -> str:
        return self.compute.__name__

    @property
    def parameters(self) -> list[str]:
        return list(inspect.signature(self.compute).parameters)


def summary_table(
    *,
    group: str,
    kinds: Set[str],
    description: str,
    ins: Mapping[str, AssetIn] | None = None,
    check_specs: Sequence[AssetCheckSpec] = (),
    checks: Checks | None = None,
    check_ins: Mapping[str, AssetIn] | None = None,
) -> Callable[[Callable[..., Output]], Table]:
    """Declare a table of the step from its ``compute``.

    ``compute`` reads its tables by parameter name (``context`` is the step's context, ``study`` the study folder's
    ``Study``, its study.toml); ``ins`` narrows one to the
    columns it reads (``AssetIn(metadata={"columns": [...]})``), every other parameter is read whole; ``check_ins``
    are the tables only its ``checks`` read.
    """

    def declare(compute: Callable[..., Output]) -> Table:
        reads = [p for p in inspect.signature(compute).parameters if p not in GIVEN]
        unknown = set(ins or {}) - set(reads)
        if unknown:
            raise ValueError(f"{compute.__name__}: ins {sorted(unknown)} are not parameters of the function")
        tables = {**{t: AssetIn(t) for t in reads}, **(ins or {}), **(check_ins or {})}
        return Table(compute, group, set(kinds), description, tables, tuple(check_specs), checks)

    return declare


def table_defaults(*, group: str, kinds: Set[str]) -> Callable[..., Callable[[Callable[..., Output]], Table]]:
    """A domain's ``summary_table`` with its group and kinds set; an argument given at the table overrides them."""
    return functools.partial(summary_table, group=group, kinds=kinds)


def _columns(reads: Sequence[AssetIn]) -> list[str] | None:
    """What one load of a table serves every table that reads it with: the union of their columns, or None (all) if
    one reads it whole."""
    columns = [r.metadata.get("columns") if r.metadata else None for r in reads]
    return None if any(c is None for c in columns) else sorted({c for cs in columns if cs for c in cs})


def _in_order(tables: Sequence[Table]) -> list[Table]:
    """The tables in dependency order (a table after every table of the step it reads), else as declared."""
    pending, ordered = list(tables), list[Table]()
    while pending:
        done = {t.name for t in ordered}
        ready = next((t for t in pending if not ({*t.ins} & {p.name for p in pending} - done - {t.name})), None)
        if ready is None:
            raise ValueError(f"the summary tables read each other in a cycle: {sorted(t.name for t in pending)}")
        ordered.append(ready)
        pending.remove(ready)
    return ordered


def build(tables: Sequence[Table]) -> AssetsDefinition:
    """The one multi-asset of ``tables`` (names unique).

    The ADaM datasets and audit tables they read are dependencies, not Dagster inputs: a multi-asset's input cannot
    be narrowed to some columns, and it would be loaded whether or not a selected table reads it. The step loads
    each once, narrowed to the columns its selected readers need (on a million patients ADTTE whole is six million
    wide rows), and hands each table the columns it declared.
    """
    ordered = _in_order(tables)
    names = {t.name for t in ordered}
    if len(names) != len(ordered):
        raise ValueError("every summary table is declared once")

    @layer(
        [spec(t.name, group=t.group, kinds=t.kinds, description=t.description, deps=t.ins) for t in ordered],
        name="tables",
        check_specs=[c for t in ordered for c in t.check_specs],
        description="The summary tables in one step, each published through its own checks (write-audit-publish).",
    )
    def summary_tables(
        context: AssetExecutionContext, io_manager: ResourceParam[WarehouseTables], outputs_folder: OutputsFolder, study_folder: StudyFolder
    ):
        given = {"context": context, "study": study_of(study_folder)}
        chosen = [t for t in ordered if t.name in selected(context)]
        step = Publication(context, io_manager)
        made: dict[str, pl.DataFrame] = {}
        reads: dict[str, list[AssetIn]] = {}
        for t in chosen:
            for name, asset_in in t.ins.items():
                reads.setdefault(name, []).append(asset_in)
        loaded: dict[str, pl.DataFrame] = {}
        for t in chosen:
            upstream = step.held_back(*t.ins)
            if upstream:
                context.log.warning(f"{t.name} not computed: {upstream}, which it is made from, was held back")
                continue
            frames = {}
            for name, asset_in in t.ins.items():
                if name in made:
                    frames[name] = made[name]
                    continue
                if name not in loaded:
                    loaded[name] = stored(io_manager, name, _columns(reads[name]))
                columns = asset_in.metadata.get("columns") if asset_in.metadata else None
                frames[name] = loaded[name].select(columns) if columns else loaded[name]
            output = t.compute(**{p: given[p] if p in GIVEN else frames[p] for p in t.parameters})
            results = t.checks(context, outputs_folder, output.value, frames) if t.checks else []
            yield from step.publish(t.name, output.value, results, output.metadata)
            made[t.name] = output.value
        step.finish()

    return summary_tables


GATED = (
    "Published only when its printed-value checks pass on the candidate in this step (write-audit-publish): "
    "a blocking ERROR keeps the last good table in main and the candidate in staging."
)


@dataclasses.dataclass(frozen=True)
class GatedSummary:
    """A summary table whose printed-value checks gate its publication; built when the definitions load.

    ``compute`` is the table's body as a plain function of its upstream tables, returning the table's ``Output``
    (``metadata.table_output``); the checks are declared from the registry read at load, so the table is too, with
    ``declare_asset`` (its domain's ``table_defaults``) and ``asset_args``.
    """

    compute: Callable[..., Output]
    declare_asset: Callable[..., Any]
    ins: Mapping[str, AssetIn]
    asset_args: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.compute.__name__

    def build(self, loaded: LoadedRegistry) -> Table:
        args = dict(self.asset_args)
        args["description"] = f"{args['description']} {GATED}"
        specs, checks = printed_value_checks(self.name, loaded)
        return self.declare_asset(ins=self.ins, check_ins=CHECK_INPUTS, check_specs=specs, checks=checks, **args)(self.compute)


def gated_summary(
    declare_asset: Callable[..., Any], *, ins: Mapping[str, AssetIn] | None = None, **asset_args
) -> Callable[[Callable[..., Output]], GatedSummary]:
    """Declare a summary table that owns registry values, with its domain's ``table_defaults`` and further
    arguments of it; ``gated_summaries`` builds it at load."""

    def declare(compute: Callable[..., Output]) -> GatedSummary:
        if compute.__name__ not in PRINTED_VALUE_SOURCES:
            raise ValueError(f"{compute.__name__} owns no registry values (PRINTED_VALUE_SOURCES): declare it with its domain's summary_table")
        return GatedSummary(compute, declare_asset, dict(ins or {}), asset_args)

    return declare


def gated_summaries(modules: Sequence[ModuleType], loaded: LoadedRegistry) -> list[AssetsDefinition]:
    """The summary tables' one step (``build``): every table declared in ``modules``, each ``GatedSummary`` built on
    the registry read at load; one per ``PRINTED_VALUE_SOURCES`` owner."""
    declared = [v for m in modules for v in vars(m).values() if isinstance(v, GatedSummary)]
    missing = set(PRINTED_VALUE_SOURCES) - {s.name for s in declared}
    if missing or len(declared) != len(PRINTED_VALUE_SOURCES):
        raise ValueError(f"every owner of registry values is declared once with @gated_summary; missing: {sorted(missing)}")
    plain = [v for m in modules for v in vars(m).values() if isinstance(v, Table)]
    return [build([*plain, *(s.build(loaded) for s in declared)])]
