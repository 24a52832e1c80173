"""The printed-value registry as the definitions read it when they load: the published-value checks are declared from it.

A registry that cannot be read does not take the code location down: ``registry_at_load`` says why, bounded and
sanitised, and the definitions load with a stand-in check per summary.
"""

import dataclasses
import logging
import re
from pathlib import Path

import polars as pl

from lms_assets.checks.printed_values import typed_registry
from lms_assets.records import boundary, errors, schemas, validation

log = logging.getLogger(__name__)

# Error texts at definition load quote at most this much of anything read from a file.
EXCERPT_CHARS = 160


def bounded(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A message safe to show every UI user: control characters replaced, at most ``limit`` characters."""
    clean = re.sub(r"[^\t\x20-\x7e\u00a0-\u2fff]", "?", text)
    return clean if len(clean) <= limit else clean[:limit] + f"… ({len(clean) - limit} more characters not shown)"


@dataclasses.dataclass(frozen=True)
class LoadedRegistry:
    """The registry as the definitions saw it when they loaded, or why it could not be read."""

    frame: pl.DataFrame | None
    problem: str | None = None


def registry_at_load(study_dir: Path) -> LoadedRegistry:
    """The registry read at definition load (to declare one check per printed value), behind the study-folder boundary.

    A registry that cannot be read does not take the code location down: the definitions load with one stand-in
    check per summary asset saying why, and ``raw_printed_values`` fails on the file with its own message.
    The load-time message quotes nothing read from the file (a header can hold anything, even an environment).
    """
    try:
        path = boundary.resolve_inside(study_dir, schemas.REGISTRY.location)
    except errors.RecordFileError as error:
        return _unreadable(str(error))
    if not path.exists():
        return LoadedRegistry(None)
    try:
        return LoadedRegistry(typed_registry(validation.read_raw(path, schemas.REGISTRY, label=schemas.REGISTRY.location)))
    # Anything at all: an exception here would take the UI, the sensor and the schedule down with it.
    except Exception as error:
        return _unreadable(f"{schemas.REGISTRY.location} could not be read ({type(error).__name__})")


def _unreadable(problem: str) -> LoadedRegistry:
    problem = bounded(problem)
    log.warning(f"printed_values.csv not read at definition load: {problem}")
    return LoadedRegistry(None, problem)
