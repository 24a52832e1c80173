"""What each printed quantity rests on in the study folder, and whether any of it is reconstructed."""

import polars as pl

from lms_assets.adam.adsl import VARIABLE_SOURCES
from lms_assets.checks.printed_values import PUBLISHED, RECONSTRUCTED
from lms_assets.records.declarations import SUBGROUP_COLUMNS
from lms_assets.tables.subgroups import SUBGROUP_CLAIM

# What each printed quantity rests on in data/: (file, column). "*" is every column of the file.
QUANTITY_INPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "site.": (("patient_allocations.csv", "primary_site"),),
    "dose.": (("patient_allocations.csv", "starting_dose_mg"),),
    "dose_reduction.": (("patient_allocations.csv", "dose_reduced"),),
    "discontinuation.": (("patient_allocations.csv", "discontinued_for_toxicity"),),
    "ae.": (("adverse_events.csv", "*"),),
    "treatment_related_deaths.": (("adverse_events.csv", "*"),),
    "os.events": (("followup/", "died"),),
    "os.": (("followup/", "os_months"), ("followup/", "died")),
    "followup.": (("followup/", "os_months"), ("followup/", "died")),
    "pfs.": (("followup/", "pfs_months"), ("followup/", "progressed")),
    "shrinkage_gt70_immunotherapy_alive": (("response.csv", "best_pct_change"), ("followup/", "died")),
    "shrinkage": (("response.csv", "best_pct_change"),),
    "response.": (("response.csv", "best_response"),),
    "orr.": (("response.csv", "best_response"),),
    "dcr.": (("response.csv", "best_response"),),
    "pr_rate.": (("response.csv", "best_response"), ("patients.csv", "combination_therapy")),
    "orr_by_combination.": (("response.csv", "best_response"), ("patients.csv", "combination_therapy")),
    "dcr_by_combination.": (("response.csv", "best_response"), ("patients.csv", "combination_therapy")),
    "immunotherapy.": (("response.csv", "best_response"), ("patients.csv", "combination_therapy")),
}
# A claim rests on its endpoint's times and on the record column of every factor it compares (SUBGROUP_CLAIM):
# every variable a study's subgroup may split (SUBGROUP_COLUMNS), a superset where a study declares fewer.
QUANTITY_INPUTS.update(
    {
        SUBGROUP_CLAIM.quantity_of(endpoint): (
            *QUANTITY_INPUTS[f"{endpoint.lower()}."],
            *dict.fromkeys(VARIABLE_SOURCES[column] for column in SUBGROUP_COLUMNS),
        )
        for endpoint in SUBGROUP_CLAIM.endpoints
    }
)


def reconstructions_of(quantity: str, provenance: pl.DataFrame) -> list[str]:
    """The reconstructed (or synthetic) inputs a quantity rests on, each named by file, column, patients and how it was made."""
    inputs = next((v for k, v in QUANTITY_INPUTS.items() if quantity.startswith(k)), ())
    reconstructed = provenance.filter(pl.col("origin") != "transcribed")
    named = []
    for file, column in inputs:
        hit = reconstructed.filter(pl.col("file").str.starts_with(file) & ((pl.col("column") == column) | (pl.col("column") == "*")))
        for row in hit.iter_rows(named=True):
            patients = f" of patients {row['patient_ids']}" if row["patient_ids"] not in (None, "", "all") else ""
            how = row["constraint"] or row["location"]
            named.append(f"{row['file']} {row['column']}{patients} ({row['origin']}: {how})")
    return named


def basis_of(quantity: str, provenance: pl.DataFrame) -> str:
    """`reconstructed_inputs` when anything the quantity rests on is reconstructed in data/, else `published_patient_data`."""
    return RECONSTRUCTED if reconstructions_of(quantity, provenance) else PUBLISHED
