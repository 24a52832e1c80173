"""Group ``cohort``: ADTR, the target-lesion change per patient, published through the gate as the other ADaM tables are.

Its blocking checks are those of ADRS, which reads the same record file: no quarantined row of patients.csv or
response.csv, and at least one patient whenever the file has rows.
"""

import polars as pl
from dagster import AssetExecutionContext, ResourceParam

from lms_assets import adam
from lms_assets.defs import gate
from lms_assets.defs.adam import _has_patients_result, _has_patients_spec, _metadata, _quarantine_result, _quarantine_spec, cohort_asset
from lms_assets.defs.records import study_of
from lms_assets.defs.resources import StudyFolder, WarehouseTables
from lms_assets.records import schemas, validation


@cohort_asset(
    description=(
        "ADTR, PARAMCD SDIAM at AVISIT BEST: the best % change of the target-lesion sum (PCHG) per measured patient, "
        "by RECIST 1.1, with its raw line (SRCFILE/SRCROW). The records hold only Table 3's best change, so there are no "
        "visit rows and no sums in mm (AVAL, BASE). Published only when its blocking checks pass (write-audit-publish)."
    ),
    check_specs=[_quarantine_spec("adtr"), _has_patients_spec("adtr")],
)
def adtr(
    context: AssetExecutionContext,
    io_manager: ResourceParam[WarehouseTables],
    study_folder: StudyFolder,
    raw_response: pl.DataFrame,
    quarantine: pl.DataFrame,
):
    settings = study_of(study_folder)
    candidate = adam.adtr.derive_adtr(validation.clean(raw_response, schemas.RESPONSE, quarantine), studyid=settings.studyid)
    results = [
        _quarantine_result(context, settings, quarantine, raw_response),
        _has_patients_result(candidate, raw_response, schemas.RESPONSE.location),
    ]
    yield from gate.publish(context, io_manager, candidate, results, _metadata(candidate, settings, quarantine))
