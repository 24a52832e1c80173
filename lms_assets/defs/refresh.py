"""Group ``refresh``: keeping the analysis current as follow-up extends.

A sensor notices new or corrected data-cut files in the follow-up folder and re-runs everything that
depends on follow-up; a weekly schedule refreshes the whole graph.
"""

import json
import os
import stat
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
from lms_assets.records import boundary, errors

# Every Monday at 06:00 (server time). Change the cron string here, or stop the schedule in the UI
# (Automation → weekly_full_refresh); its state is kept in DAGSTER_HOME.
WEEKLY_CRON = "0 6 * * 1"


followup_refresh_job = define_asset_job(
    "followup_refresh",
    # With everything those assets read, so the first run on an empty warehouse succeeds too; the
    # extra steps only re-read the small record files.
    # By name under any prefix: on a team server of several studies each location's keys carry its study's.
    selection=AssetSelection.from_string('key:"*raw_followup"').downstream().upstream(),
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


# A cut file's entry in the sensor's cursor: its SHA-256 with the size and modification time it was hashed at,
# or, for an entry the ingest will refuse, why (the run it launches fails saying so).
Entry = dict[str, str | int] | str


def _fingerprint(entry: Entry | None) -> str | None:
    """What decides whether an entry changed: a file's content hash, or the reason it cannot be read."""
    return str(entry["sha256"]) if isinstance(entry, dict) else entry


def followup_state(study: Path, known: dict[str, Entry] | None = None) -> dict[str, Entry]:
    """Every entry of the follow-up folder of ``study`` the ingest would validate, by name, with its content hash.

    The names are ``boundary.followup_candidates``, the ingest's own list: a cut saved as ``.CSV`` is seen
    (the ingest reads it), and what the ingest refuses (``notes.txt``, a link outside the study folder, a named
    pipe, a follow-up folder that is a link out of the study or a loop) still launches a run, which fails with the
    ingest's message instead of going unnoticed. Only regular files are read, and only when their size or
    modification time differs from ``known`` (the previous tick's state): a large cut is not re-read every tick.
    """
    known = known or {}
    try:
        entries = boundary.followup_candidates(study)
    except errors.RecordFileError as err:
        return {"followup/": f"refused: {err}"}
    state: dict[str, Entry] = {}
    for path in entries:
        try:
            boundary.resolve_inside(study, str(path.relative_to(study)))
            status = os.stat(path)
        except errors.RecordFileError:
            state[path.name] = "outside the study folder"  # never read what lies outside
            continue
        except OSError as err:  # a dangling link, or one that points to itself
            state[path.name] = f"cannot be followed ({err.strerror or err})"
            continue
        if not stat.S_ISREG(status.st_mode):
            state[path.name] = f"not a regular file ({boundary.file_kind(status.st_mode)})"
            continue
        previous = known.get(path.name)
        if isinstance(previous, dict) and (previous.get("size"), previous.get("mtime_ns")) == (status.st_size, status.st_mtime_ns):
            state[path.name] = previous
            continue
        try:
            digest = boundary.content_hash(path, label=f"followup/{path.name}")
        except errors.RecordFileError as err:
            state[path.name] = f"unreadable: {err}"
            continue
        state[path.name] = {"sha256": digest, "size": status.st_size, "mtime_ns": status.st_mtime_ns}
    return state


def _cursor(state: dict[str, Entry]) -> str:
    """The state as JSON with one file per line, so the UI's cursor view reads as a list of files and their hashes."""
    lines = (f"{json.dumps(name)}: {json.dumps(entry, sort_keys=True)}" for name, entry in sorted(state.items()))
    return "{\n" + ",\n".join(lines) + "\n}"


@sensor(
    job=followup_refresh_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Watches the follow-up folder. A new data-cut file, or a corrected one (same name, new content), "
        "launches `followup_refresh`; so does an entry the ingest refuses (a named pipe, a link out of the study), and "
        "the run fails saying why. The cursor lists each file's name and SHA-256 (with the size and modification time it "
        "was hashed at: a file is re-read only when they change), one per line. On the first start of an instance every "
        "shipped file is new, so that first tick builds the whole study (tag lms/first_start)."
    ),
)
def new_followup_sensor(context: SensorEvaluationContext, study_folder: StudyFolder):
    seen = json.loads(context.cursor) if context.cursor else {}
    current = followup_state(study_folder.root, seen)
    changed = sorted(name for name, entry in current.items() if _fingerprint(seen.get(name)) != _fingerprint(entry))
    context.update_cursor(_cursor(current))
    if not changed:
        return SkipReason(f"no new or changed follow-up files among {len(current)}")
    # With no cursor (the first start of an instance) every shipped file counts as new: that first run
    # builds the whole study, which an empty warehouse needs anyway; a tag says so in the Runs list.
    first_start = {"lms/first_start": "every shipped follow-up file is new to this instance"} if not seen else {}
    context.log.info(f"follow-up {'found at first start' if not seen else 'changed'}: {', '.join(changed)}")
    return RunRequest(
        run_key=boundary.combined_hash([f"{name}:{_fingerprint(entry)}" for name, entry in sorted(current.items())]),
        tags={"lms/trigger": "new-followup", "lms/changed_files": ",".join(changed)[:200], **first_start},
    )


JOBS = [followup_refresh_job, full_refresh_job]
SCHEDULES = [weekly_full_refresh]
SENSORS = [new_followup_sensor]
