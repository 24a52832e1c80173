"""What the reconstruction-sensitivity analysis reads of one study at the published cut, as NumPy arrays.

Pure NumPy/Polars; no Dagster. One ``Study`` holds the transcribed times and factors, the shipped
reconstruction (the censored patients' OS times, the site and dose allocation) and the printed counts that
constrain the allocations; the risk inputs turn its times into what ``batched.subgroup_tests`` takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from lms_assets.adam.adsl import ALLOCATED_VARIABLES, derive_adsl
from lms_assets.adam.adtte import derive_adtte
from lms_assets.audit.feasibility import bound_enumeration
from lms_assets.records import boundary, schemas, validation
from lms_assets.records.declarations import Subgroup
from lms_assets.records.study import Study as StudyFile
from lms_assets.records.study import load_study
from lms_assets.tables import printed


@dataclass(frozen=True)
class Study:
    """What the sensitivity analysis reads of one study at the published cut, ordered by SUBJID."""

    subjid: np.ndarray
    pfs: np.ndarray
    pfs_event: np.ndarray
    os: np.ndarray  # the shipped reconstruction's times for the censored
    died: np.ndarray
    lower: np.ndarray  # bounds of every patient's OS time if censored (ignored for deaths)
    upper: np.ndarray
    factors: dict[str, np.ndarray]  # transcribed two-level factors: 1 level, 0 reference, −1 neither
    sex: np.ndarray
    site: np.ndarray  # shipped allocation, level indices into site_levels
    site_levels: tuple[str, ...]
    site_counts: tuple[int, ...]
    dose: np.ndarray  # shipped allocation: 1 = the lower (reference-level) dose, 0 the other
    dose_levels: tuple[int, int]  # (level, reference) in mg
    dose_count: int
    registry: pl.DataFrame
    subgroups: tuple[Subgroup, ...] = ()  # the comparisons the study declares (study.toml), transcribed or not
    # A site's registry slug -> the one sex (ADSL code) that can have it (study.toml's sex_restricted_sites).
    sex_restricted: dict[str, str] = field(default_factory=dict)


def read_study(study_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """ADSL, ADTTE, the typed registry and provenance of a study folder, as the assets derive them (for scripts and tests)."""

    def clean(schema: schemas.FileSchema, path: Path | None = None, keep: tuple[str, ...] = ()) -> pl.DataFrame:
        path = path or study_dir / schema.location
        raw = validation.read_raw(path, schema, label=str(path.relative_to(study_dir)))
        return validation.clean(raw, schema, validation.problems(raw, schema), keep=keep)

    studyid = load_study(study_dir).studyid
    provenance = clean(schemas.PROVENANCE)
    adsl = derive_adsl(clean(schemas.PATIENTS), clean(schemas.PATIENT_ALLOCATIONS), studyid=studyid, provenance=provenance)
    cuts = [
        clean(schemas.FOLLOWUP, path).with_columns(data_cut=pl.lit(boundary.cut_date_of(path)), content_hash=pl.lit(boundary.content_hash(path)))
        for path in boundary.followup_files(study_dir)
    ]
    adtte = derive_adtte(pl.concat(cuts), studyid=studyid, provenance=provenance)
    return adsl, adtte, clean(schemas.REGISTRY), provenance


def _printed_counts(registry: pl.DataFrame, prefix: str) -> dict[str, int]:
    """Printed counts ``<prefix>.<level>.n``, one per level; printings that disagree are an error naming them."""
    rows = registry.filter(pl.col("quantity").str.starts_with(prefix + ".") & pl.col("quantity").str.ends_with(".n"))
    counts: dict[str, int] = {}
    for row in rows.iter_rows(named=True):
        level = row["quantity"].removeprefix(prefix + ".").removesuffix(".n")
        value = int(row["value"])
        if counts.get(level, value) != value:
            raise ValueError(f"printed_values.csv: {row['value_id']} prints {value} for {row['quantity']}, another printing {counts[level]}")
        counts[level] = value
    return counts


def transcribed_subgroups(subgroups: Sequence[Subgroup]) -> list[Subgroup]:
    """The subgroup factors taken from Table 3 as printed; those on allocated columns are varied with the allocations instead."""
    # ADSL's variables from patient_allocations.csv (adsl.VARIABLE_SOURCES) rest on the allocation, not on Table 3.
    return [s for s in subgroups if s.column not in ALLOCATED_VARIABLES]


def study_from_tables(
    adsl: pl.DataFrame,
    adtte_at_cut: pl.DataFrame,
    registry: pl.DataFrame,
    window: tuple[float, float],
    study_file: StudyFile,
) -> Study:
    """The study's arrays from ADSL, ADTTE at the published cut and the registry; ``window`` bounds a living patient's OS
    time, and ``study_file`` (study.toml) gives the subgroups compared and the sites only one sex can have."""

    def endpoint(code: str) -> pl.DataFrame:
        return adtte_at_cut.filter(pl.col("PARAMCD") == code).select("SUBJID", pl.col("AVAL").cast(pl.Float64), "CNSR").sort("SUBJID")

    pfs, os_ = endpoint("PFS"), endpoint("OS")
    frame = adsl.sort("SUBJID").join(pfs.rename({"AVAL": "PFS", "CNSR": "PFSCNSR"}), on="SUBJID").join(os_, on="SUBJID")
    site_counts = _printed_counts(registry, "site")
    by_slug = {printed.slug(s): s for s in frame["PRIMSITE"].drop_nulls().unique().to_list()}
    unknown = sorted(set(by_slug) - set(site_counts))
    if unknown:
        raise ValueError(f"patient_allocations.csv: primary_site {unknown} has no printed count in printed_values.csv")
    site_levels = tuple(by_slug.get(slug, slug.title()) for slug in site_counts)
    dose_counts = {int(level.removesuffix("mg")): n for level, n in _printed_counts(registry, "dose").items()}
    if len(dose_counts) != 2:
        raise ValueError(f"printed_values.csv: expected two printed starting doses, found {sorted(dose_counts)}")
    low, high = sorted(dose_counts)
    factors = {
        s.factor: frame.select(pl.when(pl.col(s.column) == s.level).then(1).when(pl.col(s.column) == s.reference).then(0).otherwise(-1))
        .to_series()
        .to_numpy()
        for s in transcribed_subgroups(study_file.subgroups)
    }
    pfs_times = frame["PFS"].to_numpy()
    return Study(
        subjid=frame["SUBJID"].to_numpy(),
        pfs=pfs_times,
        pfs_event=(frame["PFSCNSR"] == 0).to_numpy().astype(np.int64),
        os=frame["AVAL"].to_numpy(),
        died=(frame["CNSR"] == 0).to_numpy().astype(np.int64),
        lower=np.maximum(pfs_times, window[0]),
        upper=np.full(frame.height, window[1]),
        factors=factors,
        sex=frame["SEX"].to_numpy(),
        site=np.array([site_levels.index(s) for s in frame["PRIMSITE"].to_list()], dtype=np.int64),
        site_levels=site_levels,
        site_counts=tuple(site_counts.values()),
        dose=(frame["DOSE0"] == low).to_numpy().astype(np.int64),
        dose_levels=(low, high),
        dose_count=dose_counts[low],
        registry=registry,
        subgroups=study_file.subgroups,
        sex_restricted={printed.slug(site): sex for site, sex in study_file.sex_restricted_sites.items()},
    )


def os_risk_inputs(study: Study, deaths: np.ndarray, gaps: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """OS ``until`` (N, P) and ``event_index`` (1, P) over the distinct death times, for placements ``gaps``."""
    # Every placement's times of every patient are held at once: bounded by the gate of the enumerations.
    bound_enumeration("OS times of every labelled placement (placements × patients)", len(gaps), len(study.os))
    times = np.unique(deaths)
    censored = study.died == 0
    until = np.broadcast_to(np.searchsorted(times, study.os, side="right"), (len(gaps), len(study.os))).copy()
    until[:, censored] = gaps
    event_index = np.where(study.died == 1, np.searchsorted(times, study.os, side="left"), -1)[None, :]
    return until, event_index, len(times)


def pfs_risk_inputs(study: Study) -> tuple[np.ndarray, np.ndarray, int]:
    """PFS ``until`` and ``event_index`` (1, P) over the distinct progression times: transcribed, the same in every reconstruction."""
    times = np.unique(study.pfs[study.pfs_event == 1])
    until = np.searchsorted(times, study.pfs, side="right")[None, :]
    event_index = np.where(study.pfs_event == 1, np.searchsorted(times, study.pfs, side="left"), -1)[None, :]
    return until, event_index, len(times)
