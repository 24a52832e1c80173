"""ADTR: target-lesion change per patient (RECIST 1.1), the tumour measurements apart from the response itself.

The records hold only Table 3's best % change of the target-lesion sum: no visit, no baseline or post-baseline sum.
So ADTR has one row per measured patient, PARAMCD SDIAM at the visit of the best change (AVISIT "BEST"), with PCHG;
AVAL and BASE (the sums in mm) are not derived, because nothing gives them. Each ``derive_*`` states its rule.
"""

from __future__ import annotations

import polars as pl

from lms_assets.adam.common import subject_ids


def derive_sdiam(response: pl.DataFrame, studyid: str) -> pl.DataFrame:
    """PARAMCD SDIAM (PARAMN 1), AVISIT "BEST": one row per patient with a recorded best % change; PCHG = that change."""
    return response.filter(pl.col("best_pct_change").is_not_null()).select(
        *subject_ids(studyid),
        pl.lit("SDIAM").alias("PARAMCD"),
        pl.lit("Sum of target-lesion diameters (RECIST 1.1)").alias("PARAM"),
        pl.lit(1, dtype=pl.Int64).alias("PARAMN"),
        pl.lit("BEST").alias("AVISIT"),
        pl.col("best_pct_change").alias("PCHG"),
        pl.col("_file").alias("SRCFILE"),
        pl.col("_row").alias("SRCROW"),
    )


def derive_adtr(response: pl.DataFrame, *, studyid: str) -> pl.DataFrame:
    """ADTR: the best % change of the target-lesion sum (PARAMCD SDIAM, AVISIT BEST) per measured patient, sorted by patient."""
    return derive_sdiam(response, studyid).sort("SUBJID")
