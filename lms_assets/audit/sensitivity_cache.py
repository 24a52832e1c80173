"""A sensitivity result kept in one file, keyed by what it was computed from, so an unchanged study is not enumerated again.

Pure NumPy/Polars; no Dagster. The key hashes every input the computation reads (the study's arrays, the registry,
provenance, the sample size and seed) and its code: the package version, the source of every module of the pure
layers it can import (``records``, ``adam``, ``tables``, ``audit``) and the versions of NumPy, SciPy and Polars.
A result is read back only under the same key; any other key, or a file that cannot be read, is a miss, and the
next result replaces the file. It is written to a temporary file first and renamed, so a reader never sees half.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import zipfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import polars as pl

import lms_assets
from lms_assets.audit.reconstructions import Placements
from lms_assets.audit.sensitivity import Sensitivity
from lms_assets.audit.sensitivity_inputs import Study

CACHE_FILE = "sensitivity_ranges.cache.npz"
CODE_LAYERS = ("records", "adam", "tables", "audit")
_PLACEMENT_ARRAYS = ("death_times", "gap_lo", "gap_hi", "lower", "upper", "gaps", "median", "ci_lower", "ci_upper")


def code_version() -> str:
    """A hash of the code a sensitivity result depends on: any change to it misses the cache."""
    digest = hashlib.sha256()
    for name in ("lms-assets", "numpy", "scipy", "polars"):
        digest.update(f"{name} {importlib.metadata.version(name)}\n".encode())
    root = Path(lms_assets.__file__).parent
    for path in sorted(p for layer in CODE_LAYERS for p in (root / layer).rglob("*.py")):
        digest.update(f"{path.relative_to(root)}\n".encode() + path.read_bytes())
    return digest.hexdigest()


def _value_bytes(value: object) -> bytes:
    """Bytes that differ whenever the value does: arrays by dtype, shape and contents, frames by schema and contents."""
    if isinstance(value, pl.DataFrame):
        return f"{value.schema}\n".encode() + value.write_csv().encode()
    if isinstance(value, np.ndarray):
        contents = json.dumps(value.tolist()).encode() if value.dtype == object else value.tobytes()
        return f"{value.dtype.str} {value.shape}\n".encode() + contents
    if isinstance(value, dict):
        return b"".join(k.encode() + b"\n" + _value_bytes(v) for k, v in sorted(value.items()))
    return repr(value).encode()


def cache_key(study: Study, provenance: pl.DataFrame, sample_size: int, seed: int, code: str) -> str:
    """The hash of everything ``sensitivity_ranges`` reads, and of the ``code`` (``code_version``) it runs."""
    digest = hashlib.sha256(code.encode())
    for name, value in [
        *((f.name, getattr(study, f.name)) for f in fields(study)),
        ("provenance", provenance),
        ("sample", sample_size),
        ("seed", seed),
    ]:
        digest.update(f"\n{name}\n".encode() + _value_bytes(value))
    return digest.hexdigest()


def store(folder: Path, key: str, result: Sensitivity) -> Path:
    """Write ``result`` under ``key`` as ``folder/CACHE_FILE``, replacing what was there."""
    p = result.placements
    table = io.BytesIO()
    result.table.write_ipc(table)
    scalars = {
        "site_space": str(result.site_space),  # may exceed 64 bits
        "dose_space": result.dose_space,
        "sample_size": result.sample_size,
        "seed": result.seed,
        "shipped_consistent": result.shipped_consistent,
        "multisets": [p.multisets_examined, p.multisets_feasible, p.multisets_consistent],
        "printed": p.printed,
    }
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / CACHE_FILE
    temporary = folder / f".{CACHE_FILE}.{os.getpid()}"
    with temporary.open("wb") as file:
        np.savez(
            file,
            key=np.array(key),
            scalars=np.array(json.dumps(scalars)),
            table=np.frombuffer(table.getvalue(), dtype=np.uint8),
            **{name: getattr(p, name) for name in _PLACEMENT_ARRAYS},
        )
    os.replace(temporary, target)
    return target


def load(folder: Path, key: str) -> tuple[Sensitivity | None, str]:
    """The result stored under ``key`` in ``folder``, or None; and what was found, in words."""
    path = folder / CACHE_FILE
    if not path.exists():
        return None, f"miss: no cached result in {path}"
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None, "miss: the cached result was computed from other inputs or other code"
            scalars = json.loads(str(stored["scalars"]))
            table = pl.read_ipc(io.BytesIO(stored["table"].tobytes()))
            arrays = {name: stored[name] for name in _PLACEMENT_ARRAYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        return None, f"miss: {path} cannot be read ({type(error).__name__}: {error})"
    printed = {name: (value, decimals) for name, (value, decimals) in scalars["printed"].items()}
    placements = Placements(
        **arrays, **dict(zip(("multisets_examined", "multisets_feasible", "multisets_consistent"), scalars["multisets"])), printed=printed
    )
    result = Sensitivity(
        table, placements, int(scalars["site_space"]), scalars["dose_space"], scalars["sample_size"], scalars["seed"], scalars["shipped_consistent"]
    )
    return result, f"hit: read from {path}"
