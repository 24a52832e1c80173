"""The compute floor: the asset graph's tables and charts from the project's pure functions, without Dagster.

    .venv/bin/python benchmarks/bare.py --data data --duckdb /tmp/bare.duckdb [--outputs /tmp/bare-outputs]

Reads the study folder with the same ``lms_assets`` functions the assets call, derives the
same tables in the same order, renders the same charts, and stores every table in one DuckDB file
the way the warehouse IO manager does (string views, one transaction per table). Dagster is never
imported. The last line printed is JSON with the seconds spent reading CSV, computing, rendering
charts and storing, so the benchmark can tell the compute floor from the storage floor.

Not mirrored: the printed-value checks, the audit group and the study report (they compare with
the paper's registry, which synthetic studies do not have, and mostly read small summary tables), and
the checks' own bookkeeping; the ADaM consistency check of successive cuts is included.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from lms_assets.adam.adae import derive_adae
from lms_assets.adam.adrs import derive_adrs
from lms_assets.adam.adsl import derive_adsl
from lms_assets.adam.adtr import derive_adtr
from lms_assets.adam.adtte import derive_adtte
from lms_assets.adam.cuts import cut_regressions
from lms_assets.graphs import adverse_events, forest, history, km, km_subgroups, render, swimmer, waterfall
from lms_assets.records import boundary, schemas, validation
from lms_assets.records.study import load_study
from lms_assets.tables import baseline, response, survival, toxicity

SECONDS: dict[str, float] = defaultdict(float)
STEPS: dict[str, float] = defaultdict(float)


@contextmanager
def phase(name: str, step: str | None = None):
    """Adds the time spent to the phase (read_csv, compute, charts, store) and to the step it belongs to."""
    start = time.perf_counter()
    try:
        yield
    finally:
        SECONDS[name] += time.perf_counter() - start
        if step:
            STEPS[step] += time.perf_counter() - start


def store(connection: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Replace table ``name`` with ``frame`` in one transaction, as the warehouse IO manager does."""
    with phase("store", name):
        connection.register("__bare", frame.to_arrow(compat_level=pl.CompatLevel.newest()))
        connection.execute("BEGIN TRANSACTION")
        connection.execute(f"CREATE OR REPLACE TABLE main.{name} AS SELECT * FROM __bare")
        connection.execute("COMMIT")
        connection.unregister("__bare")
    return frame


def compute(connection: duckdb.DuckDBPyConnection, name: str, fn: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    with phase("compute", name):
        frame = fn()
    return store(connection, name, frame)


def chart(outputs: Path, name: str, build: Callable[[], object]) -> None:
    """Render a chart as the chart assets do: PNG bytes for the UI and an HTML file."""
    with phase("charts", name):
        value = build()
        render.render_chart(value, outputs / "charts" / f"{name}.html")


def read_study(connection: duckdb.DuckDBPyConnection, study: Path) -> dict[str, pl.DataFrame]:
    """The raw_* tables: every record file as it arrived."""
    raw = {}
    with phase("read_csv"):
        for schema in (schemas.PATIENTS, schemas.PATIENT_ALLOCATIONS, schemas.RESPONSE, schemas.ADVERSE_EVENTS, schemas.PROVENANCE):
            raw[schema.name] = validation.read_raw(study / schema.location, schema, label=schema.location)
        registry = study / schemas.REGISTRY.location
        raw["printed_values"] = (
            validation.read_raw(registry, schemas.REGISTRY, label=schemas.REGISTRY.location)
            if registry.exists()
            else pl.DataFrame(
                schema={**dict.fromkeys(schemas.REGISTRY.column_names, pl.String), validation.FILE: pl.String, validation.ROW: pl.Int64}
            )
        )
        cuts = []
        for path in boundary.followup_files(study):
            frame = validation.read_raw(path, schemas.FOLLOWUP, label=f"followup/{path.name}")
            cuts.append(frame.with_columns(pl.lit(path.stem).alias("data_cut"), pl.lit(boundary.content_hash(path)).alias("content_hash")))
        raw["followup"] = pl.concat(cuts, how="vertical")
        for path in [study / s.location for s in (schemas.PATIENTS, schemas.PATIENT_ALLOCATIONS, schemas.RESPONSE, schemas.ADVERSE_EVENTS)]:
            boundary.content_hash(path)
    for name, frame in raw.items():
        store(connection, f"raw_{name}", frame)
    return raw


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="study folder")
    parser.add_argument("--duckdb", type=Path, required=True, help="DuckDB file to write the tables to")
    parser.add_argument("--outputs", type=Path, default=None, help="folder for chart HTML (default: beside the DuckDB file)")
    args = parser.parse_args(argv)
    outputs = args.outputs or args.duckdb.parent / "outputs"
    args.duckdb.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    with duckdb.connect(str(args.duckdb)) as db:
        raw = read_study(db, args.data)
        quarantine = compute(
            db,
            "quarantine",
            lambda: validation.quarantine_rows(
                raw["patients"],
                raw["allocations"],
                raw["response"],
                raw["followup"],
                raw["adverse_events"],
                raw["printed_values"],
                raw["provenance"],
                vocabulary=load_study(args.data).vocabulary,
            ),
        )

        def cleaned(name: str, schema: schemas.FileSchema, keep: tuple[str, ...] = ()) -> pl.DataFrame:
            return validation.clean(raw[name], schema, quarantine, keep=keep)

        studyid = load_study(args.data).studyid
        declared = load_study(args.data).subgroups
        adsl = compute(
            db,
            "adsl",
            lambda: derive_adsl(
                cleaned("patients", schemas.PATIENTS),
                cleaned("allocations", schemas.PATIENT_ALLOCATIONS),
                studyid=studyid,
                provenance=cleaned("provenance", schemas.PROVENANCE),
            ),
        )
        adrs = compute(db, "adrs", lambda: derive_adrs(cleaned("response", schemas.RESPONSE), studyid=studyid))
        adtr = compute(db, "adtr", lambda: derive_adtr(cleaned("response", schemas.RESPONSE), studyid=studyid))
        adtte = compute(
            db,
            "adtte",
            lambda: derive_adtte(
                cleaned("followup", schemas.FOLLOWUP, keep=("data_cut", "content_hash")).with_columns(pl.col("data_cut").str.to_date("%Y-%m-%d")),
                studyid=studyid,
                provenance=cleaned("provenance", schemas.PROVENANCE),
            ),
        )
        adae = compute(db, "adae", lambda: derive_adae(cleaned("adverse_events", schemas.ADVERSE_EVENTS), studyid=studyid))
        with phase("compute", "followup_cuts_consistent"):
            cut_regressions(adtte)

        compute(db, "baseline_summary", lambda: baseline.baseline_summary(adsl))
        compute(db, "response_summary", lambda: response.response_summary(adrs))
        compute(db, "recist_consistency", lambda: response.recist_consistency(adrs, adtr))
        compute(db, "tumour_shrinkage", lambda: response.tumour_shrinkage(adsl, adrs, adtr, adtte))
        summary = compute(db, "ae_summary", lambda: toxicity.ae_summary(adae, adsl))
        curves = compute(db, "survival_curves", lambda: survival.km_curves(adtte))
        medians = compute(db, "survival_summary", lambda: survival.median_summary(curves))
        landmarks = compute(db, "survival_landmarks", lambda: survival.landmarks(curves))
        compute(db, "survival_followup", lambda: survival.reverse_km_followup(adtte))
        subgroups = compute(db, "survival_subgroups", lambda: survival.subgroup_comparisons(adtte, adsl, declared))
        by_cut = compute(db, "median_history", lambda: survival.median_history(medians))

        chart(outputs, "waterfall", lambda: waterfall.waterfall_chart(*waterfall.waterfall_data(adrs, adtr, adsl)))
        chart(outputs, "adverse_events", lambda: adverse_events.ae_chart(*adverse_events.ae_chart_data(summary)))
        for endpoint in ("PFS", "OS"):
            chart(outputs, f"km_{endpoint.lower()}", lambda e=endpoint: km.endpoint_chart(curves, landmarks, medians, e, None))
        chart(outputs, "subgroup_forest", lambda: forest.forest_chart(subgroups, medians))
        chart(outputs, "median_history", lambda: history.history_chart(by_cut))
        chart(outputs, "swimmer", lambda: swimmer.swimmer_chart(*swimmer.swimmer_data(adtte, adrs, adsl)))
        chart(outputs, "km_subgroups", lambda: km_subgroups.subgroup_chart(adtte, adsl, subgroups, declared))

    print(json.dumps({"total_s": time.perf_counter() - start, **{f"{k}_s": v for k, v in SECONDS.items()}, "steps": STEPS}))


if __name__ == "__main__":
    main()
