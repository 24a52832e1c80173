"""Group ``audit``: independent verification, every compared statistic recomputed by R from the record files."""

import dataclasses
import importlib.resources
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    ResourceParam,
)

from lms_assets.audit import verification
from lms_assets.defs import gate
from lms_assets.defs.constants import AUDIT, asset_defaults
from lms_assets.defs.markdown import escape_markdown
from lms_assets.defs.metadata import preview
from lms_assets.defs.records import study_of
from lms_assets.defs.resources import StudyFolder, WarehouseTables
from lms_assets.records.declarations import SUBGROUP_KEYS
from lms_assets.records.study import load_study
from lms_assets.tables import survival

# R recomputes every statistic.
audit_asset = asset_defaults(group=AUDIT, kinds={"polars", "duckdb", "r"})

# The R reference program ships in the package (package data), beside the comparison that reads its output.
REFERENCE_SCRIPT = importlib.resources.files("lms_assets.audit") / "survival_check.R"
# R and survival take about 2 s on the shipped study; a run past this has hung.
TIMEOUT_SECONDS = 600
# Above this our Cox HRs are not fitted (survival.COX_MAX_ROWS), so a comparison would be incomplete; and the
# cross-check is the study's QC record, not part of the scale benchmarks' graph.
MAX_PATIENTS = survival.COX_MAX_ROWS
# R is part of the platform: where it is missing, the failure says how to get it.
R_INSTALL_HINT = "install R with `apt-get install r-base-core r-cran-survival`, or run `make test` or `make run`, which install it"
# The one reason R is not run that is not a failure: the study is beyond what our Cox fits cover (MAX_PATIENTS).
BEYOND_LIMIT = "exceed the cross-check's"
# What a study team without R declares (study.toml, independent_verification = false), and every result then says.
NOT_VERIFIED = "not independently verified: study.toml sets independent_verification = false, so R is not run"


@dataclass(frozen=True)
class ReferenceRun:
    """R's long output and versions, or why R did not run (``results`` is then None)."""

    results: pl.DataFrame | None
    reference: str


def run_reference(study_dir: Path, rscript: str | None = None, script: Traversable = REFERENCE_SCRIPT) -> ReferenceRun:
    """Run the R reference on ``study_dir``; a missing Rscript or script, an R run past ``TIMEOUT_SECONDS`` and a failing
    R run (with the end of R's stderr) are reported as why it did not run, so that agrees_with_r fails as a check."""
    rscript = rscript or shutil.which("Rscript")
    if rscript is None:
        return ReferenceRun(None, f"not run: Rscript not found; {R_INSTALL_HINT}")
    if not script.is_file():
        return ReferenceRun(None, f"not run: reference script not found at {script}")
    # as_file: a real path for Rscript even where the package is not unpacked on disk (a zip import).
    with importlib.resources.as_file(script) as path, tempfile.TemporaryDirectory(prefix="lms-r-reference-") as out:
        # The comparisons the study declares, for R to derive from the records itself.
        subgroups = Path(out) / "subgroups.csv"
        pl.DataFrame([dataclasses.asdict(s) for s in load_study(study_dir).subgroups], schema=dict.fromkeys(SUBGROUP_KEYS, pl.String)).write_csv(
            subgroups
        )
        try:
            done = subprocess.run(
                [rscript, "--vanilla", str(path), str(study_dir), out, str(subgroups)],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ReferenceRun(None, f"not run: {script.name} on {study_dir} was stopped after {TIMEOUT_SECONDS} s")
        if done.returncode != 0:
            return ReferenceRun(None, f"not run: {script.name} failed on {study_dir} (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
        versions = dict(pl.read_csv(Path(out) / "versions.csv", schema={"name": pl.String, "value": pl.String}).iter_rows())
        return ReferenceRun(verification.read_reference(Path(out) / "results.csv"), verification.reference_label(versions))


def verify(tables: dict[str, pl.DataFrame], study_dir: Path, rscript: str | None = None, independent: bool = True) -> pl.DataFrame:
    """The comparison table of our ``tables`` against R on ``study_dir``, or the one-row record that R did not run
    (``independent`` off: the study declared it has no R)."""
    if not independent:
        return verification.not_run(NOT_VERIFIED)
    patients = tables["baseline_summary"].filter(pl.col("key") == "patients")["n"].sum()
    if patients > MAX_PATIENTS:
        return verification.not_run(f"{patients:,} patients {BEYOND_LIMIT} {MAX_PATIENTS:,} (our Cox HRs stop there)")
    run = run_reference(study_dir, rscript)
    if run.results is None:
        return verification.not_run(run.reference.removeprefix("not run: "))
    ours = verification.long_form(tables)
    # R reads every cut file in the folder; a cut the gate held back (not in our published tables) is not analysed.
    analysed = run.results.filter((pl.col("data_cut") == "") | pl.col("data_cut").is_in(ours["data_cut"].unique().to_list()))
    return verification.compare(ours, analysed, run.reference)


AGREES_WITH_R = "agrees_with_r"


def problems_result(name: str, problems: list[str], passed_text: str) -> AssetCheckResult:
    """A blocking check's result from a pure rule's list of problems: ERROR naming the first ones, or passed saying what held."""
    if not problems:
        return AssetCheckResult(check_name=name, passed=True, description=passed_text[:500], metadata={"reason": MetadataValue.text(passed_text)})
    reason = f"{len(problems)} problem(s): " + "; ".join(problems)
    return AssetCheckResult(
        check_name=name,
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=reason[:500],
        metadata={"reason": MetadataValue.text(reason[:4000])},
    )


def agreement_result(table: pl.DataFrame, independent: bool = True) -> AssetCheckResult:
    """ERROR unless every compared value agrees with R, and when R could not run (with how to install it).

    Passed without a comparison only where the study declares it has no R (``independent`` off), saying it was not
    independently verified; WARN where the study is beyond the cross-check's size (``MAX_PATIENTS``).
    """
    summary = verification.verification_summary(table)
    if not summary["comparisons"]:
        if not independent:
            return AssetCheckResult(
                check_name=AGREES_WITH_R,
                passed=True,
                description=NOT_VERIFIED,
                metadata={"reason": MetadataValue.text(NOT_VERIFIED), "independently_verified": MetadataValue.bool(False)},
            )
        beyond = BEYOND_LIMIT in summary["status"]
        reason = f"{summary['status']}: nothing was independently verified"
        if R_INSTALL_HINT in reason:
            reason += " (a study team without R sets independent_verification = false in study.toml)"
        return AssetCheckResult(
            check_name=AGREES_WITH_R,
            passed=False,
            severity=AssetCheckSeverity.WARN if beyond else AssetCheckSeverity.ERROR,
            description=reason[:500],
            metadata={"reason": MetadataValue.text(reason), "independently_verified": MetadataValue.bool(False)},
        )
    failing = table.filter(~pl.col("status").is_in([verification.AGREE, verification.NOT_RUN]))
    first = "; ".join(
        f"{r['table']} {r['statistic']} {r['key'] or ''} {r['endpoint'] or ''} ours {r['ours']} vs R {r['r']} ({r['status']})"
        for r in failing.head(3).iter_rows(named=True)
    )
    reason = f"{summary['agreed']:,} of {summary['comparisons']:,} values agree with R ({summary['reference']})" + (
        f"; {failing.height} do not, first: {first}" if failing.height else ""
    )
    return AssetCheckResult(
        check_name=AGREES_WITH_R,
        passed=failing.is_empty(),
        severity=AssetCheckSeverity.ERROR,
        description=escape_markdown(reason[:500]),
        metadata={
            "reason": MetadataValue.text(reason[:2000]),
            "agreed": MetadataValue.text(f"{summary['agreed']:,} of {summary['comparisons']:,}"),
            "not_agreeing": preview(failing, limit=50) if failing.height else MetadataValue.text("none"),
        },
    )


@audit_asset(
    description=(
        "Independent double programming (issue #14): `lms_assets/audit/survival_check.R` recomputes, with R's "
        "`survival` (survfit, quantile, survdiff, coxph with Efron ties) and `stats` (binom.test, fisher.test), every "
        "statistic of the Kaplan–Meier curves, medians (SPSS and Brookmeyer–Crowley), landmarks, follow-up, subgroups, "
        "response rates, the PR-rate comparison and Tables 1 and 4 from the record files alone; each of our values is "
        f"set beside R's (agreement: |ours − R| ≤ {verification.TOLERANCE:g}·max(1, |R|); both null agrees). `status` "
        "is agree, disagree or missing on one side; `exception` names a comparison made under a named convention "
        "(lms_assets.audit.verification.EXCEPTIONS). Without Rscript, or above "
        f"{MAX_PATIENTS:,} patients, it records one row 'not run: <why>', never a pass. Its blocking check "
        "agrees_with_r fails with ERROR (and the comparison is staged, not published) when any value disagrees or is on "
        f"one side only, and when Rscript is missing ({R_INSTALL_HINT}); WARN above {MAX_PATIENTS:,} patients. A study "
        "team without R sets independent_verification = false in study.toml: R is not run and the check passes saying "
        "'not independently verified'."
    ),
    check_specs=[
        AssetCheckSpec(
            AGREES_WITH_R,
            asset="r_verification",
            blocking=True,
            description=(
                "Every compared value agrees with the independent R program (ERROR, blocking, otherwise: the comparison "
                "goes to staging and nothing downstream runs); ERROR too when Rscript is missing, saying how to install "
                f"it; WARN above {MAX_PATIENTS:,} patients; passed with 'not independently verified' only where study.toml "
                "sets independent_verification = false."
            ),
        )
    ],
)
def r_verification(
    context: AssetExecutionContext,
    io_manager: ResourceParam[WarehouseTables],
    study_folder: StudyFolder,
    survival_curves: pl.DataFrame,
    survival_summary: pl.DataFrame,
    survival_landmarks: pl.DataFrame,
    survival_followup: pl.DataFrame,
    survival_subgroups: pl.DataFrame,
    response_summary: pl.DataFrame,
    tumour_shrinkage: pl.DataFrame,
    baseline_summary: pl.DataFrame,
    ae_summary: pl.DataFrame,
):
    tables = {
        "survival_curves": survival_curves,
        "survival_summary": survival_summary,
        "survival_landmarks": survival_landmarks,
        "survival_followup": survival_followup,
        "survival_subgroups": survival_subgroups,
        "response_summary": response_summary,
        "tumour_shrinkage": tumour_shrinkage,
        "baseline_summary": baseline_summary,
        "ae_summary": ae_summary,
    }
    independent = study_of(study_folder).independent_verification
    table = verify(tables, study_folder.root, independent=independent)
    summary = verification.verification_summary(table)
    context.log.info(f"Independent verification: {summary['status']} ({summary['agreed']} of {summary['comparisons']} agree)")
    yield from gate.publish(
        context,
        io_manager,
        table,
        [agreement_result(table, independent)],
        {
            "dagster/row_count": table.height,
            "status": summary["status"],
            "reference": summary["reference"],
            # Text, not numbers: Dagster would plot each count as a series over runs.
            "agreed": MetadataValue.text(f"{summary['agreed']:,} of {summary['comparisons']:,}"),
            "disagreed": MetadataValue.text(str(summary["disagreed"])),
            "missing_on_one_side": MetadataValue.text(str(summary["missing"])),
            "summary": MetadataValue.md(summary["markdown"]),
        },
    )
