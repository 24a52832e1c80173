"""The subgroups a study compares within each endpoint, and the printed claim that none differs significantly.

Pure; no Dagster imports. The comparisons are the study's (study.toml, ``[[subgroups]]``, read into
``Study.subgroups``): ``survival.subgroup_comparisons`` tests each, and the audit and the sensitivity analysis read
the same declarations, so a comparison is defined once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from lms_assets.records.declarations import Subgroup


@dataclass(frozen=True)
class Claim:
    """A printed claim that no subgroup comparison differs significantly: its registry quantity per endpoint
    (``{endpoint}`` the endpoint in lower case), judged on every comparison the study declares (study.toml,
    ``[[subgroups]]``) within each endpoint by the log-rank test, at SIGNIFICANCE.

    The blocking check of its printed counts (``subgroup_recomputed_values``), printed_audit's inputs (the audit's
    ``QUANTITY_INPUTS``) and sensitivity_ranges' verdict all read it, so the claim is judged one way everywhere.
    """

    quantity: str
    endpoints: tuple[str, ...] = ("PFS", "OS")

    def quantity_of(self, endpoint: str) -> str:
        return self.quantity.format(endpoint=endpoint.lower())


# That no comparison survival_subgroups shows differs significantly in PFS or OS: judged wherever the registry prints
# its counts (a study whose paper makes no such claim has no such row).
SUBGROUP_CLAIM = Claim("subgroups.{endpoint}.significant.n")


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
    if not subgroups:
        return adsl.select("SUBJID", code=pl.lit(0, dtype=pl.UInt32))
    digits = [
        pl.when(pl.col(s.column) == s.level).then(1).when(pl.col(s.column) == s.reference).then(0).otherwise(2).cast(pl.UInt32) * 3**i
        for i, s in enumerate(subgroups)
    ]
    return adsl.select("SUBJID", code=pl.sum_horizontal(digits))
