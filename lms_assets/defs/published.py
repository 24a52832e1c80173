"""Asset checks that compare every figure the paper printed with the value recomputed from the data.

Each summary asset owns the registry quantities with its prefixes (``QUANTITY_OWNERS``). For every
registry row it owns, one check on that asset loads the asset's table and the registry table,
recomputes the quantity with the domain's pure ``figures`` function and compares at the printed precision.
"""


import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from lms_assets import config
from lms_assets.analysis import figures as fig
from lms_assets.analysis import schemas, validation

# Which asset computes which printed quantities (by quantity prefix). The audit uses the same map for `computed_by`.
QUANTITY_OWNERS: dict[str, tuple[str, ...]] = {
    "baseline_characteristics": (
        "patients.", "sex.", "age.", "ecog.", "site.", "surgery.", "radiotherapy.", "chemotherapy.", "dose.",
        "combination.", "metastasis.",
    ),
    "response_summary": ("response.", "orr.", "dcr."),
    "tumour_shrinkage": ("shrinkage", "pr_rate.", "immunotherapy."),
    "adverse_event_summary": ("ae.", "dose_reduction.", "discontinuation.", "treatment_related_deaths."),
    "survival_summary": ("pfs.", "os.", "followup."),
}

FiguresFn = Callable[[pl.DataFrame, dt.date | None], pl.DataFrame]

# The pure function that turns each owner's table into a figures frame (see ``analysis.figures``).
# Signature: figures(table, published_cut) -> DataFrame[quantity, value, patients].
FIGURE_SOURCES: dict[str, FiguresFn] = {}


def owner_of(quantity: str) -> str | None:
    """The asset that computes a printed quantity, or None when no asset does."""
    for asset_name, prefixes in QUANTITY_OWNERS.items():
        if quantity.startswith(prefixes):
            return asset_name
    return None


def check_name(figure_id: str) -> str:
    """A Dagster-safe check name for a registry id (``T1.ecog.0-1.pct`` → ``T1_ecog_0_1_pct``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", figure_id)


def typed_registry(raw: pl.DataFrame) -> pl.DataFrame:
    """The registry with its declared types; rows that break the schema are left out (and quarantined upstream)."""
    return validation.clean(raw, schemas.REGISTRY, validation.problems(raw, schemas.REGISTRY))


def registry_at_load(study_dir: Path | None = None) -> pl.DataFrame | None:
    """The registry as the definitions see it when they load, to declare one check per printed figure."""
    path = (study_dir or config.data_dir()) / schemas.REGISTRY.location
    if not path.exists():
        return None
    return typed_registry(validation.read_raw(path, schemas.REGISTRY, label=schemas.REGISTRY.location))


def published_cut(registry: pl.DataFrame) -> dt.date | None:
    """The data cut the paper's figures refer to, as named in the registry."""
    cuts = registry["data_cut"].drop_nulls().unique()
    return cuts.max() if cuts.len() else None


def severity_for(figure_id: str, registry: pl.DataFrame) -> AssetCheckSeverity:
    """How serious a failed comparison is."""
    return AssetCheckSeverity.ERROR


def _result(row: dict, figures: pl.DataFrame, registry: pl.DataFrame) -> AssetCheckResult:
    match = figures.filter(pl.col("quantity") == row["quantity"])
    recomputed = match["value"][0] if match.height else None
    patients = match["patients"][0].to_list() if match.height else []
    passed = fig.agrees(row["value"], row["decimals"], recomputed)
    metadata = {
        "source": row["source"],
        "printed": row["printed"],
        "published_value": row["value"],
        "recomputed_value": MetadataValue.float(recomputed) if recomputed is not None else MetadataValue.text("not computable"),
        "compared_at": f"{row['decimals']} decimal place(s)",
        "quantity": row["quantity"],
        "patients": MetadataValue.text(", ".join(map(str, patients)) or "none"),
    }
    if not match.height:
        metadata["reason"] = MetadataValue.text("the data hold nothing from which this figure can be recomputed")
    return AssetCheckResult(
        check_name=check_name(row["figure_id"]),
        asset_key=AssetKey(owner_of(row["quantity"])),
        passed=passed,
        severity=severity_for(row["figure_id"], registry),
        metadata=metadata,
    )


def published_figure_checks(asset_name: str, figures_fn: FiguresFn, registry: pl.DataFrame | None):
    """One blocking check per registry figure owned by ``asset_name``, evaluated by ``figures_fn`` on the asset's table."""
    owned = (
        registry.filter(pl.col("quantity").map_elements(owner_of, return_dtype=pl.String) == asset_name)
        if registry is not None
        else None
    )
    key = AssetKey(asset_name)
    if owned is None or owned.is_empty():
        spec = AssetCheckSpec(
            "published_figures",
            asset=key,
            description="No published-figure registry in the study folder: there is nothing printed to compare with.",
        )

        @multi_asset_check(specs=[spec], name=f"{asset_name}_published_figures", ins={"table": AssetIn(key=key)})
        def _nothing(context: AssetCheckExecutionContext, table: pl.DataFrame):
            context.log.info(f"No published_figures.csv in {config.data_dir()}: nothing printed to compare with {asset_name}.")
            yield AssetCheckResult(
                check_name="published_figures",
                asset_key=key,
                passed=True,
                metadata={"compared": 0, "note": "no published-figure registry in the study folder; nothing to compare"},
            )

        return _nothing

    specs = [
        AssetCheckSpec(
            check_name(r["figure_id"]),
            asset=key,
            blocking=True,
            description=f"{r['source']} prints “{r['printed']}” ({r['quantity']} = {r['value']:g}); recomputed from the patient rows and compared at the printed precision.",
        )
        for r in owned.iter_rows(named=True)
    ]
    if len({s.name for s in specs}) != len(specs):
        raise ValueError(f"registry figure ids of {asset_name} collide after making them check names")

    @multi_asset_check(
        specs=specs,
        name=f"{asset_name}_published_figures",
        ins={"table": AssetIn(key=key), "raw_published_figures": AssetIn(key=AssetKey("raw_published_figures"))},
        can_subset=True,
    )
    def _checks(context: AssetCheckExecutionContext, table: pl.DataFrame, raw_published_figures: pl.DataFrame):
        current = typed_registry(raw_published_figures)
        figures = figures_fn(table, published_cut(current))
        selected = {k.name for k in context.selected_asset_check_keys}
        rows = [r for r in current.iter_rows(named=True) if owner_of(r["quantity"]) == asset_name and check_name(r["figure_id"]) in selected]
        failed = 0
        for row in rows:
            result = _result(row, figures, current)
            failed += not result.passed
            yield result
        context.log.info(f"{asset_name}: {len(rows) - failed} of {len(rows)} printed figures reproduced")

    return _checks


def all_published_figure_checks(registry: pl.DataFrame | None) -> list:
    """The published-figure checks of every asset in ``FIGURE_SOURCES``."""
    return [published_figure_checks(name, fn, registry) for name, fn in FIGURE_SOURCES.items()]
