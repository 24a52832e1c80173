"""Group ``refresh``: keeping the analysis current as follow-up extends.

A sensor notices new or corrected data-cut files in the follow-up folder and re-runs everything that
depends on follow-up; a weekly schedule refreshes the whole graph.
"""

import json
from pathlib import Path

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from lms_assets.defs.resources import StudyFolder
from lms_assets.records import validation

# Every Monday at 06:00 (server time). Change the cron string here, or stop the schedule in the UI
# (Automation → weekly_full_refresh); its state is kept in DAGSTER_HOME.
WEEKLY_CRON = "0 6 * * 1"


followup_refresh_job = define_asset_job(
    "followup_refresh",
    # With everything those assets read, so the first run on an empty warehouse succeeds too; the
    # extra steps only re-read the small record files.
    selection=AssetSelection.assets("raw_followup").downstream().upstream(),
    description=("Re-runs everything that depends on the follow-up files (ADTTE, survival, charts, audit, report), with the record files they read."),
)

full_refresh_job = define_asset_job(
    "full_refresh",
    selection=AssetSelection.all(),
    description="Re-runs every asset of the study from the record files.",
)

weekly_full_refresh = ScheduleDefinition(
    name="weekly_full_refresh",
    cron_schedule=WEEKLY_CRON,
    job=full_refresh_job,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Weekly refresh of the whole study, so every table and check reflects the files as they are now.",
)


def followup_state(study: Path) -> dict[str, str]:
    """Every entry of the follow-up folder of ``study`` the ingest would validate, by name, with its content hash.

    The names are ``validation.followup_candidates``, the ingest's own list: a cut saved as ``.CSV`` is seen
    (the ingest reads it), and a file the ingest refuses (``notes.txt``, a link outside the study folder)
    still launches a run, which fails with the ingest's message instead of the file going unnoticed.
    """
    try:
        entries = validation.followup_candidates(study)
    except validation.RecordFileError:
        return {}
    state = {}
    for path in entries:
        try:
            validation.resolve_inside(study, str(path.relative_to(study)))
        except validation.RecordFileError:
            state[path.name] = "outside the study folder"  # never read what lies outside
            continue
        state[path.name] = validation.content_hash(path) if path.is_file() else "not a file"
    return state


@sensor(
    job=followup_refresh_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Watches the follow-up folder. A new data-cut file, or a corrected one (same name, new content), "
        "launches `followup_refresh`; the cursor lists each file's name and SHA-256, one per line. On the first start "
        "of an instance every shipped file is new, so that first tick builds the whole study (tag lms/first_start)."
    ),
)
def new_followup_sensor(context: SensorEvaluationContext, study_folder: StudyFolder):
    seen = json.loads(context.cursor) if context.cursor else {}
    current = followup_state(study_folder.root)
    changed = sorted(name for name, digest in current.items() if seen.get(name) != digest)
    if not changed:
        return SkipReason(f"no new or changed follow-up files among {len(current)}")
    # One file per line, so the UI's cursor view reads as a list of files and their hashes.
    context.update_cursor(json.dumps(current, sort_keys=True, indent=1))
    # With no cursor (the first start of an instance) every shipped file counts as new: that first run
    # builds the whole study, which an empty warehouse needs anyway; a tag says so in the Runs list.
    first_start = {"lms/first_start": "every shipped follow-up file is new to this instance"} if not seen else {}
    context.log.info(f"follow-up {'found at first start' if not seen else 'changed'}: {', '.join(changed)}")
    return RunRequest(
        run_key=validation.combined_hash([f"{name}:{digest}" for name, digest in sorted(current.items())]),
        tags={"lms/trigger": "new-followup", "lms/changed_files": ",".join(changed)[:200], **first_start},
    )


JOBS = [followup_refresh_job, full_refresh_job]
SCHEDULES = [weekly_full_refresh]
SENSORS = [new_followup_sensor]
