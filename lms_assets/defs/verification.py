"""Group ``audit``: independent verification, every compared statistic recomputed by R from the record files."""

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from lms_assets import config
from lms_assets.analysis import survival, verification
from lms_assets.defs.constants import AUDIT, DUCKDB_POOL, OWNERS
from lms_assets.defs.metadata import markdown_table

# The reference program lives with the tests, its other user; from the package it is found relative to the
# repository checkout (an editable install, as `make install` makes). A wheel without it records "not run".
REFERENCE_SCRIPT = Path(__file__).resolve().parents[2] / "lms_assets_tests" / "reference" / "survival_check.R"
# R and survival take about 2 s on the shipped study; a run past this has hung.
TIMEOUT_SECONDS = 600
# Above this our Cox HRs are not fitted (survival.COX_MAX_ROWS), so a comparison would be incomplete; and the
# cross-check is the study's QC record, not part of the scale benchmarks' graph.
MAX_PATIENTS = survival.COX_MAX_ROWS


@dataclass(frozen=True)
class ReferenceRun:
    """R's long output and versions, or why R did not run (``results`` is then None)."""

    results: pl.DataFrame | None
    reference: str


def run_reference(study_dir: Path, rscript: str | None = None, script: Path = REFERENCE_SCRIPT) -> ReferenceRun:
    """Run the R reference on ``study_dir``; a missing Rscript or script is reported, a failing R run raises with R's stderr."""
    rscript = rscript or shutil.which("Rscript")
    if rscript is None:
        return ReferenceRun(None, "not run: Rscript not found")
    if not script.is_file():
        return ReferenceRun(None, f"not run: reference script not found at {script}")
    with tempfile.TemporaryDirectory(prefix="lms-r-reference-") as out:
        done = subprocess.run(
            [rscript, "--vanilla", str(script), str(study_dir), out],
            capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{script.name} failed on {study_dir} (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
        versions = dict(pl.read_csv(Path(out) / "versions.csv", schema={"name": pl.String, "value": pl.String}).iter_rows())
        return ReferenceRun(verification.read_reference(Path(out) / "results.csv"), verification.reference_label(versions))


def verify(tables: dict[str, pl.DataFrame], study_dir: Path, rscript: str | None = None) -> pl.DataFrame:
    """The comparison table of our ``tables`` against R on ``study_dir``, or the one-row record that R did not run."""
    patients = tables["baseline_characteristics"].filter(pl.col("key") == "patients")["n"].sum()
    if patients > MAX_PATIENTS:
        return verification.not_run(f"{patients:,} patients exceed the cross-check's {MAX_PATIENTS:,} (our Cox HRs stop there)")
    run = run_reference(study_dir, rscript)
    if run.results is None:
        return verification.not_run(run.reference.removeprefix("not run: "))
    return verification.compare(verification.long_form(tables), run.results, run.reference)


@asset(
    group_name=AUDIT,
    kinds={"polars", "duckdb", "r"},
    owners=OWNERS,
    pool=DUCKDB_POOL,
    description=(
        "Independent double programming (issue #14): `lms_assets_tests/reference/survival_check.R` recomputes, with R's "
        "`survival` (survfit, quantile, survdiff, coxph with Efron ties) and `stats` (binom.test, fisher.test), every "
        "statistic of the Kaplan–Meier curves, medians (SPSS and Brookmeyer–Crowley), landmarks, follow-up, subgroups, "
        "response rates, the PR-rate comparison and Tables 1 and 4 from the record files alone; each of our values is "
        f"set beside R's (agreement: |ours − R| ≤ {verification.TOLERANCE:g}·max(1, |R|); both null agrees). `status` "
        "is agree, disagree or missing on one side; `exception` names a comparison made under a named convention "
        "(lms_assets.analysis.verification.EXCEPTIONS). Without Rscript, or above "
        f"{MAX_PATIENTS:,} patients, it records one row 'not run: <why>', never a pass."
    ),
)
def independent_verification(
    context: AssetExecutionContext,
    survival_curves: pl.DataFrame,
    survival_summary: pl.DataFrame,
    survival_landmarks: pl.DataFrame,
    survival_followup: pl.DataFrame,
    survival_subgroups: pl.DataFrame,
    response_summary: pl.DataFrame,
    tumour_shrinkage: pl.DataFrame,
    baseline_characteristics: pl.DataFrame,
    adverse_event_summary: pl.DataFrame,
) -> Output[pl.DataFrame]:
    tables = {
        "survival_curves": survival_curves,
        "survival_summary": survival_summary,
        "survival_landmarks": survival_landmarks,
        "survival_followup": survival_followup,
        "survival_subgroups": survival_subgroups,
        "response_summary": response_summary,
        "tumour_shrinkage": tumour_shrinkage,
        "baseline_characteristics": baseline_characteristics,
        "adverse_event_summary": adverse_event_summary,
    }
    table = verify(tables, config.data_dir())
    summary = verification.verification_summary(table)
    context.log.info(f"Independent verification: {summary['status']} ({summary['agreed']} of {summary['comparisons']} agree)")
    problems = table.filter(~pl.col("status").is_in([verification.AGREE, verification.NOT_RUN]))
    return Output(
        table,
        metadata={
            "dagster/row_count": table.height,
            "status": summary["status"],
            "reference": summary["reference"],
            "comparisons": summary["comparisons"],
            "agreed": summary["agreed"],
            "disagreed": summary["disagreed"],
            "missing_on_one_side": summary["missing"],
            "summary": MetadataValue.md(summary["markdown"]),
            "not_agreeing": MetadataValue.md(markdown_table(problems.head(50))) if problems.height else MetadataValue.text("none"),
        },
    )
