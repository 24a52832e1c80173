"""The subgroups the study compares within each endpoint, and the printed claim that none differs significantly.

Pure; no Dagster imports. ``survival.subgroup_comparisons`` tests each; the audit and the sensitivity analysis read
the same declarations, so a comparison is defined once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Subgroup:
    """A two-level ADSL factor compared within each endpoint: ``level`` against ``reference``."""

    factor: str
    column: str
    reference: str
    level: str
    reference_label: str
    level_label: str


# The factors the issue names; "No" (or the majority, for sex) is the reference.
SUBGROUPS = (
    Subgroup("Sex", "SEX", "F", "M", "Female", "Male"),
    Subgroup("ECOG", "ECOGGR1", "0-1", ">=2", "ECOG 0–1", "ECOG ≥2"),
    Subgroup("Combination therapy", "COMBFL", "N", "Y", "Monotherapy", "Combination"),
    Subgroup("Prior chemotherapy", "PRCHFL", "N", "Y", "None", "Any"),
    Subgroup("Prior surgery", "SURGFL", "N", "Y", "No", "Yes"),
    Subgroup("Prior radiotherapy", "RADIOFL", "N", "Y", "No", "Yes"),
    # The Discussion names primary site; the two most common sites (8 and 5 patients) are compared, the rest left out.
    Subgroup("Primary site", "PRIMSITE", "Retroperitoneal", "Extremities", "Retroperitoneal", "Extremities"),
)


@dataclass(frozen=True)
class Claim:
    """A printed claim that no comparison differs significantly, and the one list of comparisons that decides it.

    The blocking check of its printed counts (``subgroup_recomputed_values``), printed_audit's inputs (the audit's
    ``QUANTITY_INPUTS``) and sensitivity_ranges' verdict all read it, so the claim is judged one way everywhere.
    """

    quantity: str  # registry quantity per endpoint, ``{endpoint}`` the endpoint in lower case
    comparisons: tuple[Subgroup, ...]  # each compared within each endpoint by the log-rank test, at SIGNIFICANCE
    endpoints: tuple[str, ...] = ("PFS", "OS")

    def quantity_of(self, endpoint: str) -> str:
        return self.quantity.format(endpoint=endpoint.lower())


# The Discussion: "In the analysis of gender, PS score, treatment history, primary site, combination therapy and other
# subgroups, we did not find significant differences in PFS and OS": every comparison survival_subgroups shows.
SUBGROUP_CLAIM = Claim("subgroups.{endpoint}.significant.n", SUBGROUPS)


SUBGROUP_SCHEMA = {
    "data_cut": pl.Date,
    "endpoint": pl.String,
    "factor": pl.String,
    "level": pl.String,
    "reference": pl.String,
    "n": pl.Int64,
    "events": pl.Int64,
    "median": pl.Float64,
    "median_midpoint": pl.Float64,
    "n_ref": pl.Int64,
    "events_ref": pl.Int64,
    "median_ref": pl.Float64,
    "median_ref_midpoint": pl.Float64,
    "hr": pl.Float64,
    "hr_ci_lower": pl.Float64,
    "hr_ci_upper": pl.Float64,
    "cox_p": pl.Float64,
    "logrank_p": pl.Float64,
    "note": pl.String,
}


def subgroup_codes(adsl: pl.DataFrame, subgroups: Sequence[Subgroup]) -> pl.DataFrame:
    """SUBJID and one base-3 digit per subgroup (0 reference, 1 level, 2 neither), so patient rows are joined and aggregated once."""
    digits = [
        pl.when(pl.col(s.column) == s.level).then(1).when(pl.col(s.column) == s.reference).then(0).otherwise(2).cast(pl.UInt32) * 3**i
        for i, s in enumerate(subgroups)
    ]
    return adsl.select("SUBJID", code=pl.sum_horizontal(digits))
