"""What the study report is given (``ReportInputs``), the study summary read from it, and the package versions."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from lms_assets.graphs.render import Chart
from lms_assets.report.marks import MARKS, marked_audit

REPORTED_PACKAGES = (
    "lms-assets",
    "dagster",
    "dagster-webserver",
    "dagster-duckdb-polars",
    "duckdb",
    "polars",
    "pyarrow",
    "lifelines",
    "scipy",
    "numpy",
    "altair",
    "vl-convert-python",
    "great-tables",
)


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows; each frame as its asset stores it."""

    title: str
    generated_at: dt.datetime
    run_id: str
    patients: int
    data_cuts: Sequence[str]
    published_cut: dt.date | None  # the cut Tables 1, 2 and 4 and the audit are recomputed at
    tables: dict[str, pl.DataFrame]  # heading -> frame from ``compare_with_printed``
    registry: pl.DataFrame  # printed_values: each printing's value and decimals
    survival_summary: pl.DataFrame
    charts: Sequence[Chart]
    audit: pl.DataFrame
    quarantine: pl.DataFrame
    files: pl.DataFrame  # file, sha256, rows
    provenance: pl.DataFrame
    versions: dict[str, str]
    # ``r_verification`` as stored; None when the report is built without it.
    verification: pl.DataFrame | None = None
    sensitivity: pl.DataFrame | None = None  # sensitivity_ranges; None leaves the section out
    # (data cut, endpoint) whose survival estimates rest on reconstructed follow-up (ADTTE AVALRFL = Y).
    reconstructed: Collection[tuple[str, str]] = ()
    # cut_changes as stored, and the analysis-results files (kind -> path relative to the outputs folder).
    changes: pl.DataFrame | None = None
    results_files: dict[str, str] | None = None


def package_versions(names: Iterable[str] = REPORTED_PACKAGES) -> dict[str, str]:
    """Installed version of each package (and Python), so a reader can rebuild the environment."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def summary_items(inputs: ReportInputs) -> list[tuple[str, str]]:
    """The study summary's (label, value) pairs: the cohort, the cuts, the printed values by mark, what was kept out."""
    marks = dict(marked_audit(inputs.audit, inputs.registry).group_by("mark").len().iter_rows()) if inputs.audit.height else {}
    reconstructed = inputs.provenance.filter(pl.col("origin") == "reconstructed")
    return [
        ("Patients", str(inputs.patients)),
        ("Data cuts", ", ".join(inputs.data_cuts) or "none"),
        ("Published data cut (tables and audit)", str(inputs.published_cut) if inputs.published_cut else "none"),
        ("Printed values audited", str(inputs.audit.height)),
        *((f"… {MARKS[mark][0]} {MARKS[mark][1].split(':')[0]}", str(marks[mark])) for mark in MARKS if mark in marks),
        ("Quarantined record problems", str(inputs.quarantine.height)),
        ("Reconstructed inputs", f"{reconstructed.height} provenance entries (see Data provenance)"),
        ("Charts", str(len(inputs.charts))),
        ("Dagster run", inputs.run_id),
        ("Written", inputs.generated_at.isoformat(timespec="seconds")),
    ]
