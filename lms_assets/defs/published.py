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
from lms_assets.analysis import audit
from lms_assets.analysis import figures as fig
from lms_assets.analysis import schemas, validation
from lms_assets.defs.constants import DUCKDB_POOL
from lms_assets.analysis import baseline, response, survival, toxicity

# Which asset computes which printed quantities (by quantity prefix). The audit uses the same map for `computed_by`.
QUANTITY_OWNERS: dict[str, tuple[str, ...]] = {
    "baseline_characteristics": (
        "patients.", "sex.", "age.", "ecog.", "site.", "surgery.", "radiotherapy.", "chemotherapy.", "dose.",
        "combination.", "metastasis.",
    ),
    "response_summary": ("response.", "orr.", "dcr."),
    "tumour_shrinkage": ("shrinkage", "pr_rate.", "immunotherapy."),
    "adverse_event_summary": ("ae.", "dose_reduction.", "discontinuation.", "treatment_related_deaths."),
    "survival_summary": ("pfs.", "os."),
    "survival_followup": ("followup.",),
}

FiguresFn = Callable[[pl.DataFrame, dt.date | None], pl.DataFrame]

# The pure function that turns each owner's table into a figures frame (see ``analysis.figures``).
# Signature: figures(table, published_cut) -> DataFrame[quantity, value, patients].
FIGURE_SOURCES: dict[str, FiguresFn] = {
    "baseline_characteristics": baseline.figures,
    "response_summary": response.figures,
    "tumour_shrinkage": response.shrinkage_figures,
    "adverse_event_summary": toxicity.figures,
    "survival_summary": survival.figures,
    "survival_followup": survival.followup_figures,
}


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


def _result(row: dict, figures: pl.DataFrame, consistency: dict) -> AssetCheckResult:
    match = figures.filter(pl.col("quantity") == row["quantity"])
    recomputed = match["value"][0] if match.height else None
    patients = match["patients"][0].to_list() if match.height else []
    passed = fig.agrees(row["value"], row["decimals"], recomputed)
    # The audit's findings decide: a failure the paper itself explains is a warning; anything else is a regression.
    explained = audit.paper_contradicts_itself(consistency["findings"], consistency["basis"], passed)
    metadata = {
        "source": row["source"],
        "printed": row["printed"],
        "published_value": row["value"],
        "recomputed_value": MetadataValue.float(recomputed) if recomputed is not None else MetadataValue.text("not computable"),
        "compared_at": f"{row['decimals']} decimal place(s)",
        "quantity": row["quantity"],
        # Capped: on a large study the ids of every figure would flood the event log; figure_audit keeps them all.
        "patients": MetadataValue.text(
            (", ".join(map(str, patients[:50])) + (f", … ({len(patients)} in all)" if len(patients) > 50 else "")) or "none"
        ),
        "basis": consistency["basis"],
        "paper_findings": MetadataValue.text(consistency["explanation"] or "none"),
    }
    if not match.height:
        metadata["reason"] = MetadataValue.text("the data hold nothing from which this figure can be recomputed")
    return AssetCheckResult(
        check_name=check_name(row["figure_id"]),
        asset_key=AssetKey(owner_of(row["quantity"])),
        passed=passed,
        severity=AssetCheckSeverity.WARN if explained else AssetCheckSeverity.ERROR,
        metadata=metadata,
    )


def published_figure_checks(asset_name: str, figures_fn: FiguresFn, registry: pl.DataFrame | None):
    """One blocking check per registry figure owned by ``asset_name``, evaluated by ``figures_fn`` on the asset's table.

    A failure is WARN when the audit (``paper_consistency``) shows the paper contradicts itself about that
    figure, and ERROR otherwise, so only a genuine regression blocks what is downstream.
    """
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

        @multi_asset_check(
            specs=[spec], name=f"{asset_name}_published_figures", ins={"table": AssetIn(key=key)}, pool=DUCKDB_POOL
        )
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
            additional_deps=[AssetKey("raw_published_figures"), AssetKey("paper_consistency")],
            description=f"{r['source']} prints “{r['printed']}” ({r['quantity']} = {r['value']:g}); recomputed from the patient rows and compared at the printed precision.",
        )
        for r in owned.iter_rows(named=True)
    ]
    if len({s.name for s in specs}) != len(specs):
        raise ValueError(f"registry figure ids of {asset_name} collide after making them check names")

    @multi_asset_check(
        specs=specs,
        pool=DUCKDB_POOL,
        name=f"{asset_name}_published_figures",
        ins={
            "table": AssetIn(key=key),
            "raw_published_figures": AssetIn(key=AssetKey("raw_published_figures")),
            "paper_consistency": AssetIn(key=AssetKey("paper_consistency")),
        },
        can_subset=True,
    )
    def _checks(
        context: AssetCheckExecutionContext,
        table: pl.DataFrame,
        raw_published_figures: pl.DataFrame,
        paper_consistency: pl.DataFrame,
    ):
        current = typed_registry(raw_published_figures)
        consistency = {r["figure_id"]: r for r in paper_consistency.iter_rows(named=True)}
        figures = figures_fn(table, published_cut(current))
        selected = {k.name for k in context.selected_asset_check_keys}
        rows = [r for r in current.iter_rows(named=True) if owner_of(r["quantity"]) == asset_name and check_name(r["figure_id"]) in selected]
        failed = 0
        for row in rows:
            result = _result(row, figures, consistency[row["figure_id"]])
            failed += not result.passed
            yield result
        context.log.info(f"{asset_name}: {len(rows) - failed} of {len(rows)} printed figures reproduced")

    return _checks


def all_published_figure_checks(registry: pl.DataFrame | None) -> list:
    """The published-figure checks of every asset in ``FIGURE_SOURCES``."""
    return [published_figure_checks(name, fn, registry) for name, fn in FIGURE_SOURCES.items()]
