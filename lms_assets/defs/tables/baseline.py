"""Group ``baseline``: Table 1, the cohort's baseline characteristics, recomputed from ADSL."""

import polars as pl
from dagster import Output

from lms_assets.defs.constants import BASELINE
from lms_assets.defs.metadata import table_output
from lms_assets.defs.tables.step import gated_summary, table_defaults
from lms_assets.tables import baseline

baseline_table = table_defaults(group=BASELINE, kinds={"polars", "duckdb"})


@gated_summary(
    baseline_table,
    description=(
        "Table 1 recomputed from ADSL: age median and range, then n and % of all patients for each level of sex, "
        "ECOG, primary site, prior surgery, radiotherapy and chemotherapy lines, starting dose and combination "
        "therapy. `key` names the printed values a row gives (e.g. `sex.male` → sex.male.n / .pct); `patients` "
        "lists the SUBJIDs counted. Every printed Table 1 and text value is checked against these rows."
    ),
)
def baseline_summary(adsl: pl.DataFrame) -> Output[pl.DataFrame]:
    table = baseline.baseline_summary(adsl)
    return table_output(table, limit=40)
