"""ADRS: the best overall response per patient by RECIST 1.1 (Table 3), and the responder parameters derived from it.

As admiral derives responder parameters (``derive_extreme_records`` over the best response): ORR and DCR are rows
of their own beside BOR, AVALC "Y"/"N" with AVAL 1/0, so the response rates are counts of ADRS rows. AVAL is the
BDS numeric analysis value (the IG has no AVALN); on BOR it codes the response as admiral's ``aval_resp`` does.
The tumour measurements (the best % change of the target-lesion sum) are ADTR's, not a variable of the response.
Each ``derive_*`` adds one parameter or variable and states its rule in its docstring.
"""

from __future__ import annotations

import polars as pl

from lms_assets.adam.common import subject_ids

# admiral's aval_resp(): the numeric code of a RECIST overall response.
RESPONSE_CODES = {"CR": 1, "PR": 2, "SD": 3, "PD": 5, "NE": 6}
# PARAMCD: (PARAMN, PARAM, the best responses that make a responder).
RESPONDER_PARAMETERS = {
    "ORR": (2, "Objective response (best overall response CR or PR, RECIST 1.1)", ("CR", "PR")),
    "DCR": (3, "Disease control (best overall response CR, PR or SD, RECIST 1.1)", ("CR", "PR", "SD")),
}


def derive_bor(response: pl.DataFrame, studyid: str) -> pl.DataFrame:
    """PARAMCD BOR (PARAMN 1): AVALC = the recorded RECIST 1.1 best overall response."""
    return response.select(
        *subject_ids(studyid),
        pl.lit("BOR").alias("PARAMCD"),
        pl.lit("Best Overall Response (RECIST 1.1)").alias("PARAM"),
        pl.col("best_response").alias("AVALC"),
        pl.col("_file").alias("SRCFILE"),
        pl.col("_row").alias("SRCROW"),
    )


def derive_bor_aval(bor: pl.DataFrame) -> pl.DataFrame:
    """AVAL on BOR = admiral's aval_resp(AVALC): CR 1, PR 2, SD 3, PD 5, NE 6."""
    return bor.with_columns(pl.col("AVALC").replace_strict(RESPONSE_CODES, return_dtype=pl.Int64).alias("AVAL"))


def derive_responder(bor: pl.DataFrame, paramcd: str) -> pl.DataFrame:
    """One ``paramcd`` row (ORR or DCR) per BOR row: AVALC "Y" when the best response is one of the parameter's responses, else
    "N"; AVAL 1/0 likewise. The row keeps BOR's source line, from which it is derived."""
    _, param, responses = RESPONDER_PARAMETERS[paramcd]
    responder = pl.col("AVALC").is_in(responses)
    return bor.with_columns(
        pl.lit(paramcd).alias("PARAMCD"),
        pl.lit(param).alias("PARAM"),
        pl.when(responder).then(pl.lit("Y")).otherwise(pl.lit("N")).alias("AVALC"),
        responder.cast(pl.Int64).alias("AVAL"),
    )


def derive_paramn(adrs: pl.DataFrame) -> pl.DataFrame:
    """PARAMN = the parameter's order: BOR 1, ORR 2, DCR 3."""
    order = {"BOR": 1, **{code: spec[0] for code, spec in RESPONDER_PARAMETERS.items()}}
    return adrs.with_columns(pl.col("PARAMCD").replace_strict(order, return_dtype=pl.Int64).alias("PARAMN"))


def derive_adrs(response: pl.DataFrame, *, studyid: str) -> pl.DataFrame:
    """ADRS: best overall response (PARAMCD BOR) and the responder parameters ORR and DCR, per patient; sorted by
    patient, then PARAMN."""
    bor = derive_bor(response, studyid).pipe(derive_bor_aval)
    rows = pl.concat([bor, *(derive_responder(bor, code) for code in RESPONDER_PARAMETERS)])
    return (
        rows.pipe(derive_paramn)
        .sort("SUBJID", "PARAMN")
        .select("STUDYID", "USUBJID", "SUBJID", "PARAMCD", "PARAM", "PARAMN", "AVALC", "AVAL", "SRCFILE", "SRCROW")
    )
