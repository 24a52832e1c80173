"""The study-folder boundary: which files are read, and reading them safely.

A record file is read only if it lies inside the study folder and is a regular file, within a timeout; its content
is hashed the same way. The follow-up folder holds one file per data cut, named by its date, and a name that is no
possible cut is refused. Every refusal is a ``RecordFileError`` naming the file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar, cast

from lms_assets.records.errors import RecordFileError, excerpt

_ISO_DATE_STEM = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
# A cut date may be a day past the date of the clock or of the file's time stamp: those dates are taken in UTC,
# and a cut exported late in the evening east of UTC is already dated the next day.
CUT_DATE_GRACE = dt.timedelta(days=1)

# A read of a record file on a local disk takes milliseconds; one that has not finished after this long is on a
# stalled network share or device, and the step fails saying so instead of holding its warehouse slot for ever.
READ_TIMEOUT_SECONDS = 120.0
_CHUNK_BYTES = 1 << 20
_T = TypeVar("_T")


def file_kind(mode: int) -> str:
    """What ``os.stat`` says a path is, in words."""
    for test, kind in (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "named pipe (FIFO)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return kind
    return "special file"


def _refuse_unless_regular(mode: int, path: Path, label: str, expected: str) -> None:
    """Refuse anything but a regular file: opening a FIFO or a device blocks until a writer appears, which may be never."""
    if stat.S_ISDIR(mode):
        raise RecordFileError(f"{label}: is a folder, not a {expected} ({path})")
    if not stat.S_ISREG(mode):
        raise RecordFileError(f"{label}: is a {file_kind(mode)}, not a {expected} ({path}); only regular files are read. Replace it with the file.")


def _open_regular(path: Path, label: str, expected: str) -> BinaryIO:
    """``path`` opened for reading after ``os.stat`` shows a regular file, checked again on the open descriptor.

    O_NONBLOCK makes the open itself return at once even if a FIFO was swapped in after the stat (it changes
    nothing for a regular file), and the second check on the descriptor then refuses it.
    """
    try:
        _refuse_unless_regular(os.stat(path).st_mode, path, label, expected)
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise RecordFileError(f"{label}: file is missing (expected at {path})") from None
    except OSError as err:
        # e.g. no read permission, a link loop, or a spreadsheet program holding the file locked
        raise RecordFileError(f"{label}: cannot be read ({err.strerror or err}; {path})") from None
    try:
        _refuse_unless_regular(os.fstat(descriptor).st_mode, path, label, expected)
    except RecordFileError:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def _within_timeout(label: str, action: Callable[[], _T]) -> _T:
    """``action()`` run in a daemon thread, or a ``RecordFileError`` after ``READ_TIMEOUT_SECONDS``.

    A read stuck in the kernel cannot be interrupted; a daemon thread left behind does not keep the process alive,
    so the step fails with the file's name and the run ends.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = action()
        except BaseException as err:  # handed to the caller's thread below
            outcome["error"] = err

    worker = threading.Thread(target=run, name=f"reading {label}", daemon=True)
    worker.start()
    worker.join(READ_TIMEOUT_SECONDS)
    if worker.is_alive():
        raise RecordFileError(
            f"{label}: reading it did not finish within {READ_TIMEOUT_SECONDS:g} s; is it on a network share or device that "
            "stopped answering? Copy the file into the study folder and run again."
        )
    if "error" in outcome:
        raise cast(BaseException, outcome["error"])
    return cast(_T, outcome["value"])


def read_regular(path: Path, label: str, expected: str = "CSV file", limit: int | None = None) -> bytes:
    """The bytes of ``path``, refused (naming ``label`` and the path) unless it is a regular file, read with a timeout.

    With ``limit``, at most ``limit + 1`` bytes are read: enough to tell that a file is too large without reading it.
    """

    def read() -> bytes:
        with _open_regular(path, label, expected) as handle:
            return handle.read() if limit is None else handle.read(limit + 1)

    return _within_timeout(label, read)


def content_hash(path: Path, label: str | None = None) -> str:
    """SHA-256 of the file's bytes, so a reviewer can tell which version produced which numbers.

    Streamed in chunks through the same regular-file check and timeout as every read: a large cut is never held whole.
    """
    label = label or path.name

    def digest() -> str:
        hasher = hashlib.sha256()
        with _open_regular(path, label, "CSV file") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                hasher.update(chunk)
        return hasher.hexdigest()

    return _within_timeout(label, digest)


def resolve_inside(study_dir: Path, relative: str) -> Path:
    """The path of a record file, refused if it escapes the study folder (``..``, absolute, or a link outside)."""
    root = study_dir.resolve()
    candidate = Path(relative)
    if candidate.is_absolute():
        raise RecordFileError(f"{relative}: record files are named relative to the study folder {study_dir}, not by absolute path")
    try:
        resolved = (study_dir / candidate).resolve()
    except (OSError, RuntimeError) as err:  # a link that points to itself, or a path the system cannot follow
        raise RecordFileError(f"{relative}: cannot be followed to a file ({err.__class__.__name__}); replace the link with the file") from None
    if resolved != root and root not in resolved.parents:
        raise RecordFileError(f"{relative}: resolves to {excerpt(resolved, 200)}, outside the study folder {root}; refusing to read it")
    return study_dir / candidate


def cut_date_of(path: Path) -> dt.date:
    """The data-cut date a follow-up file is named by (``YYYY-MM-DD.csv``; the extension in any case)."""
    if path.suffix.lower() != ".csv" or not _ISO_DATE_STEM.match(path.stem):
        raise RecordFileError(f"followup/{excerpt(path.name)}: follow-up files must be named by their ISO cut date, e.g. 2021-03-31.csv")
    try:
        return dt.date.fromisoformat(path.stem)
    except ValueError as err:
        raise RecordFileError(f"followup/{path.name}: '{path.stem}' is not a valid calendar date ({err})") from None


def followup_candidates(study_dir: Path) -> list[Path]:
    """Every entry of the follow-up folder that claims to be a data cut: all but hidden files, sorted by name.

    The ingest validates exactly these and the sensor watches exactly these, so a file the ingest would read
    (``2021-06-30.CSV``) or refuse (``notes.txt``) is never missed by the sensor.
    """
    folder = resolve_inside(study_dir, "followup")
    if not folder.is_dir():
        raise RecordFileError("followup: the follow-up folder is missing; it holds one CSV per data cut")
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def check_cut_date(path: Path, cut: dt.date, today: dt.date | None = None) -> None:
    """Refuse a cut dated in the future, or after its file was last written: the name would make it the latest cut."""
    today = today or dt.datetime.now(dt.UTC).date()
    label = f"followup/{path.name}"
    if cut > today + CUT_DATE_GRACE:
        raise RecordFileError(f"{label}: data cut {cut} is in the future (today is {today}); name the file by the date the data were cut")
    written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).date()
    if cut > written + CUT_DATE_GRACE:
        raise RecordFileError(
            f"{label}: data cut {cut} is after the file was last modified ({written}); a file cannot hold data cut after "
            "it was written. Name it by its cut date."
        )


def followup_files(study_dir: Path, today: dt.date | None = None) -> list[Path]:
    """Every data-cut file in the follow-up folder, oldest cut first; refuses names that are not dates, or not possible ones."""
    files = followup_candidates(study_dir)
    if not files:
        raise RecordFileError("followup: no data-cut files; add one named by its cut date, e.g. 2021-03-31.csv")
    seen: dict[dt.date, Path] = {}
    for path in files:
        resolve_inside(study_dir, str(path.relative_to(study_dir)))
        cut = cut_date_of(path)
        if cut in seen:
            raise RecordFileError(f"followup/{path.name}: data cut {cut} is also given by followup/{seen[cut].name}")
        if path.is_file():
            check_cut_date(path, cut, today)
        seen[cut] = path
    return [seen[c] for c in sorted(seen)]


def identical_cuts(digests: dict[str, str]) -> list[tuple[str, str]]:
    """Pairs (earlier file, later file) of cuts with byte-identical content: a copy under a new date, not new follow-up."""
    first: dict[str, str] = {}
    pairs = []
    for name, digest in digests.items():
        if digest in first:
            pairs.append((first[digest], name))
        else:
            first[digest] = name
    return pairs


def combined_hash(digests: list[str]) -> str:
    """One SHA-256 over several files' hashes, in order: changes when any file changes."""
    return hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()
