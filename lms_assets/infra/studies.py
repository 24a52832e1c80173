"""Several studies on one team server: one Dagster code location per study folder.

``LMS_STUDY_DIRS`` lists the study folders, separated by ``:`` as in PATH. Each becomes the code location
``study_location.name``: its study.toml's ``studyid`` in lower case with ``_`` for ``-``. That name prefixes every asset
key of the location (a Dagster instance has one asset namespace, so two studies' ``adsl`` would otherwise share one
history) and names the study's own warehouse, ``<LMS_DUCKDB_PATH's folder>/<name>/<its file name>``, and outputs,
``<LMS_OUTPUT_DIR>/<name>``, which the one report server serves at ``<LMS_REPORT_URL>/<name>``.

The launcher's check (``lms_assets.infra.deploy``) writes ``workspace(...)`` to ``$DAGSTER_HOME/workspace.yaml``, which
the webserver and the daemon load; each of its locations loads the attribute ``study_<name>`` of this module, which
builds that study's definitions alone. Without ``LMS_STUDY_DIRS`` that file is the repository's ``workspace.yaml``: the
single location ``lms_assets.definitions`` of LMS_DATA_DIR, LMS_DUCKDB_PATH and LMS_OUTPUT_DIR, as before.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dagster import Definitions

from lms_assets.defs.location import study_defs
from lms_assets.defs.resources import REPORT_URL, locations
from lms_assets.records.errors import RecordFileError
from lms_assets.records.study import load_study

STUDY_DIRS = "LMS_STUDY_DIRS"
ATTRIBUTE_PREFIX = "study_"


class StudiesError(ValueError):
    """A study folder of LMS_STUDY_DIRS that cannot be a location; the message is one line naming the folder."""


@dataclass(frozen=True)
class StudyLocation:
    """One study's code location: its name (the key prefix), study folder, warehouse file, outputs folder and report address."""

    name: str
    study_dir: Path
    warehouse: Path
    outputs: Path
    report_url: str

    @property
    def attribute(self) -> str:
        return f"{ATTRIBUTE_PREFIX}{self.name}"


def location_name(studyid: str) -> str:
    """The location's name and asset key prefix: ``studyid`` in lower case, every character but a letter or digit as ``_``."""
    return re.sub(r"[^a-z0-9]", "_", studyid.lower())


def study_locations(env: Mapping[str, str]) -> list[StudyLocation]:
    """The locations ``env``'s LMS_STUDY_DIRS names, in its order; empty when it names none. Each folder's study.toml
    must load, and no two may give one name."""
    folders = [Path(part.strip()) for part in env.get(STUDY_DIRS, "").split(os.pathsep) if part.strip()]
    shared = locations(env)
    base_url = (env.get(REPORT_URL[0]) or REPORT_URL[1]).rstrip("/")
    found: dict[str, StudyLocation] = {}
    for folder in folders:
        try:
            name = location_name(load_study(folder).studyid)
        except (RecordFileError, OSError) as error:
            raise StudiesError(f"{STUDY_DIRS}: study folder {folder} is not usable: {error}") from None
        if name in found:
            raise StudiesError(f"{STUDY_DIRS}: {found[name].study_dir} and {folder} are both study {name!r}: each folder needs its own studyid")
        warehouse = shared["warehouse"].parent / name / shared["warehouse"].name
        found[name] = StudyLocation(name, folder, warehouse, shared["outputs"] / name, f"{base_url}/{name}")
    return list(found.values())


def workspace(studies: list[StudyLocation], working_directory: Path) -> dict:
    """The workspace of one ``python_module`` location per study, each loading its ``study_<name>`` attribute."""
    return {
        "load_from": [
            {
                "python_module": {
                    "module_name": __name__,
                    "attribute": study.attribute,
                    "location_name": study.name,
                    "working_directory": str(working_directory),
                }
            }
            for study in studies
        ]
    }


def write_workspace(home: Path, studies: list[StudyLocation], default: Path, working_directory: Path) -> Path:
    """``$DAGSTER_HOME/workspace.yaml``, what the webserver and the daemon load: one location per study of ``studies``,
    or the ``default`` workspace (the repository's: the one study of LMS_DATA_DIR) when there are none. Replaced in one
    step: the webserver's and the daemon's units may both write it at once."""
    # JSON is YAML: no YAML writer is needed for a file Dagster reads as YAML.
    text = f"# Written by lms_assets.infra.deploy from {STUDY_DIRS}: edit that, not this file.\n" + json.dumps(
        workspace(studies, working_directory), indent=2
    )
    target = home / "workspace.yaml"
    staging = home / f".workspace.yaml.{os.getpid()}"
    staging.write_text(text if studies else default.read_text())
    staging.replace(target)
    return target


@functools.cache
def _definitions(attribute: str) -> Definitions:
    for study in study_locations(os.environ):
        if study.attribute == attribute:
            return study_defs(study.study_dir, study.warehouse, study.outputs, study.report_url, key_prefix=study.name)
    raise AttributeError(
        f"{__name__} has no {attribute}: {STUDY_DIRS} names no study folder whose location is {attribute.removeprefix(ATTRIBUTE_PREFIX)!r}"
    )


def __getattr__(attribute: str) -> Definitions:
    """``study_<name>``: the definitions of the study of LMS_STUDY_DIRS whose location is ``<name>``, built once per process."""
    if not attribute.startswith(ATTRIBUTE_PREFIX):
        raise AttributeError(attribute)
    return _definitions(attribute)
