"""Group ``toxicity``: Table 4, adverse events at each patient's worst grade, and the Results' safety values."""

import polars as pl
from dagster import AssetIn, Output

from lms_assets.defs.constants import TOXICITY
from lms_assets.defs.metadata import table_output
from lms_assets.defs.tables.step import gated_summary, table_defaults
from lms_assets.tables import toxicity

toxicity_table = table_defaults(group=TOXICITY, kinds={"polars", "duckdb"})


@gated_summary(
    toxicity_table,
    # Only the columns read: ADAE and ADSL whole cost seconds and gigabytes on a large study.
    ins={
        "adae": AssetIn(metadata={"columns": ["SUBJID", "AEDECOD", "ATOXGRGP", "TRTEMFL", "AOCCIFL", "AOCCPIFL"]}),
        "adsl": AssetIn(metadata={"columns": ["SUBJID", "DOSREDFL", "DISCAEFL"]}),
    },
    description=(
        "Table 4 recomputed from ADAE: one row per term (most frequent first; ties by grade 3/4 count, then name), "
        "each patient counted once per term at their worst CTCAE grade (ADAE's AOCCPIFL event), as n and % of all ADSL "
        "patients: any grade, grade 1/2, grade 3/4 and grade 5. Above the terms, patients with any event at their "
        "worst grade overall (AOCCIFL); "
        "below, dose reductions and discontinuations for adverse reactions from ADSL. `patients*` list the SUBJIDs."
    ),
)
def ae_summary(adae: pl.DataFrame, adsl: pl.DataFrame) -> Output[pl.DataFrame]:
    table = toxicity.ae_summary(adae, adsl)
    shown = table.drop("key", "denominator", "patients_g12", "patients_g34", "patients_g5")
    if not table["g5_n"].fill_null(0).sum():
        shown = shown.drop("g5_n", "g5_pct")
    return table_output(table, shown=shown, limit=40)
