"""Variable-level metadata of the ADaM datasets, in the spirit of Define-XML: each variable's label (at most 40
characters, as SAS XPORT v5 keeps), its origin and where its rule is written.

Origins are Define-XML's: Collected (transcribed from the paper), Derived, Assigned (a constant or a lineage
column), Not Available; and "Reconstructed" for a value that rests on a reconstructed record, whose constraint
provenance.csv gives. A derived variable's derivation is the docstring of its ``derive_<variable>`` in the
dataset's module, so the rule is written once, beside the code that applies it. Column descriptions are the data
dictionary's (``lms_assets.dictionary``), which exposes all of it per table.
"""

from __future__ import annotations

from types import ModuleType

from lms_assets.adam import adae, adrs, adsl, adtr, adtte
from lms_assets.records import schemas

MODULES: dict[str, ModuleType] = {"adsl": adsl, "adrs": adrs, "adtr": adtr, "adtte": adtte, "adae": adae}
DATASET_LABELS = {
    "adsl": "Subject-Level Analysis Dataset",
    "adrs": "Response Analysis Dataset",
    "adtr": "Tumor Results Analysis Dataset",
    "adtte": "Time-to-Event Analysis Dataset",
    "adae": "Adverse Events Analysis Dataset",
}

LABELS = {
    "STUDYID": "Study Identifier", "USUBJID": "Unique Subject Identifier", "SUBJID": "Subject Identifier for the Study",
    "SRCFILE": "Source Record File", "SRCROW": "Source Record File Line", "SRCHASH": "Source Record File SHA-256",
    "AGE": "Age", "AGEU": "Age Units", "SEX": "Sex", "ECOG": "ECOG Performance Status",
    "ECOGGR1": "ECOG Performance Status Group 1", "SURGFL": "Prior Surgery Flag", "RADIOFL": "Prior Radiotherapy Flag",
    "PRCHLN": "Prior Chemotherapy Lines", "PRCHCAT": "Prior Chemotherapy Category", "PRCHFL": "Prior Chemotherapy Flag",
    "COMBTRT": "Combined Therapy", "COMBFL": "Combination Therapy Flag", "IMMUNOFL": "Combined Immunotherapy Flag",
    "PRIMSITE": "Primary Tumour Site", "DOSE0": "Starting Daily Dose", "DOSE0U": "Starting Daily Dose Units",
    "DOSREDFL": "Dose Reduced for Toxicity Flag", "DISCAEFL": "Discontinued due to AE Flag",
    "RECONVAR": "Reconstructed Variables", "SAFFL": "Safety Population Flag", "FASFL": "Full Analysis Set Population Flag",
    "TRT01P": "Planned Treatment for Period 01", "TRT01A": "Actual Treatment for Period 01",
    "ECOGBL": "Baseline ECOG Performance Status", "DTHFL": "Subject Death Flag",
    "PARAMCD": "Parameter Code", "PARAM": "Parameter", "PARAMN": "Parameter (N)", "AVALC": "Analysis Value (C)",
    "AVAL": "Analysis Value", "PCHG": "Percent Change from Baseline", "AVISIT": "Analysis Visit",
    "DCUTDT": "Data Cutoff Date", "CNSR": "Censor", "EVNTDESC": "Event or Censoring Description",
    "AVALU": "Analysis Value Unit", "AVALRFL": "Analysis Value Reconstructed Flag",
    "CNSDTDSC": "Censor Date Description", "TRTP": "Planned Treatment", "ASEQ": "Analysis Sequence Number",
"AETERM": "Reported Term for the Adverse Event",
    "AEDECOD": "Dictionary-Derived Term", "AEEPINUM": "Episode Number", "ATOXGR": "Analysis Toxicity Grade", "ATOXGRN": "Analysis Toxicity Grade (N)",
    "ATOXGRGP": "Analysis Toxicity Grade Group", "TRTEMFL": "Treatment Emergent Analysis Flag",
    "AOCCIFL": "1st Max Sev./Int. Occurrence Flag", "AOCCPIFL": "1st Max Sev./Int. Occur Within PT Flag",
    "AEREL": "Causality",
}  # fmt: skip

LINEAGE = "SRCFILE SRCROW"
ORIGINS: dict[str, dict[str, str]] = {
    table: {variable: kind for kind, names in kinds.items() for variable in names.split()}
    for table, kinds in {
        "adsl": {
            "Collected": "SUBJID AGE SEX ECOG COMBTRT",
            "Derived": "USUBJID ECOGGR1 SURGFL RADIOFL PRCHLN PRCHCAT PRCHFL COMBFL IMMUNOFL RECONVAR TRT01A ECOGBL DTHFL",
            "Assigned": "STUDYID AGEU SAFFL FASFL TRT01P DOSE0U",
            "Reconstructed": "PRIMSITE DOSE0 DOSREDFL DISCAEFL",
        },
        "adrs": {"Collected": "SUBJID AVALC", "Derived": "USUBJID AVAL", "Assigned": f"STUDYID PARAMCD PARAM PARAMN {LINEAGE}"},
        "adtr": {"Collected": "SUBJID PCHG", "Derived": "USUBJID", "Assigned": f"STUDYID PARAMCD PARAM PARAMN AVISIT {LINEAGE}"},
        "adtte": {
            "Collected": "SUBJID DCUTDT",
            "Derived": "USUBJID CNSR EVNTDESC AVALRFL CNSDTDSC ASEQ",
            "Assigned": f"STUDYID PARAMCD PARAM PARAMN AVALU TRTP {LINEAGE} SRCHASH",
            "Reconstructed": "AVAL",
        },
        "adae": {
            "Collected": "SUBJID",
            "Derived": "USUBJID ASEQ AEDECOD ATOXGR ATOXGRGP AOCCIFL AOCCPIFL",
            "Assigned": f"STUDYID TRTEMFL {LINEAGE}",
            "Reconstructed": "AETERM AEEPINUM ATOXGRN",
            "Not Available": "AEREL",
        },
    }.items()
}

# (table, variable): the record file and column a collected or reconstructed value is taken from (ADSL's own list
# is adsl.VARIABLE_SOURCES).
RECORD_SOURCES = {
    **{("adsl", v): source for v, source in adsl.VARIABLE_SOURCES.items()},
    **{(table, "SUBJID"): (schemas.PATIENTS.location, "patient_id") for table in MODULES},
    ("adrs", "AVALC"): (schemas.RESPONSE.location, "best_response"),
    ("adtr", "PCHG"): (schemas.RESPONSE.location, "best_pct_change"),
    ("adtte", "DCUTDT"): (schemas.FOLLOWUP.location, "none (the date in the file name)"),
    ("adtte", "AVAL"): (schemas.FOLLOWUP.location, "pfs_months (PFS) or os_months (OS)"),
    ("adae", "AETERM"): (schemas.ADVERSE_EVENTS.location, "term"),
    ("adae", "AEEPINUM"): (schemas.ADVERSE_EVENTS.location, "episode"),
    ("adae", "ATOXGRN"): (schemas.ADVERSE_EVENTS.location, "ctcae_grade"),
}


# Rules written nowhere else: a variable set in the middle of a composition, or on some parameters only.
def _doc(function) -> str:
    """The docstring as one line of plain text (the metadata is read outside Python: no reST backticks)."""
    return " ".join((function.__doc__ or "").replace("``", "").split())


RULES = {
    **{(table, "USUBJID"): "STUDYID and SUBJID joined by a hyphen" for table in MODULES},
    ("adrs", "AVALC"): "BOR: as recorded; ORR, DCR: see derive_responder. " + _doc(adrs.derive_responder),
    ("adrs", "AVAL"): _doc(adrs.derive_bor_aval).rstrip(".") + "; ORR, DCR: 1 for a responder, else 0.",
    ("adtte", "CNSR"): "1 - the event column (progressed for PFS, died for OS): 0 = event, 1 = censored.",
}


def origin(table: str, variable: str) -> str | None:
    """The variable's origin (Collected, Derived, Assigned, Reconstructed, Not Available), None when not declared."""
    return ORIGINS.get(table, {}).get(variable)


def derivation(table: str, variable: str) -> str | None:
    """How the value is obtained: its ``derive_<variable>`` docstring, a rule above, or the record file and column it
    is taken from; None when none of these is written."""
    rule = getattr(MODULES.get(table), f"derive_{variable.lower()}", None)
    if rule is not None and rule.__doc__:
        return _doc(rule)
    if (table, variable) in RULES:
        return RULES[(table, variable)]
    if (table, variable) in RECORD_SOURCES:
        file, column = RECORD_SOURCES[(table, variable)]
        return f"From {file}, column {column}"
    return None
