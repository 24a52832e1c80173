"""The ARD as files a collaborator loads without this platform: per data cut, CSV and Parquet with a column dictionary.

``results/<cut>/analysis_results.csv`` and ``.parquet`` and ``analysis_results_columns.csv`` under the outputs
folder. The Parquet file keeps the list columns typed; the CSV gives each list as space-separated numbers, so R's
``read.csv`` reads every column without a parser. Each file is written whole or not at all.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import cast

import polars as pl

from lms_assets import dictionary
from lms_assets.results.ard import ARD_SCHEMA

FOLDER = Path("results")
NAME = "analysis_results"
# The folder of the statistics of a study without follow-up.
NO_CUT = "no_cut"


def cut_folder(cut: dt.date | None) -> str:
    """The folder name of a data cut."""
    return NO_CUT if cut is None else cut.isoformat()


def files(cut: dt.date | None) -> dict[str, Path]:
    """The exported files of one cut, relative to the outputs folder, by kind."""
    folder = FOLDER / cut_folder(cut)
    return {"csv": folder / f"{NAME}.csv", "parquet": folder / f"{NAME}.parquet", "columns": folder / f"{NAME}_columns.csv"}


def as_text(ard: pl.DataFrame) -> pl.DataFrame:
    """The ARD with its list columns as space-separated numbers, for CSV."""
    lists = [name for name, dtype in ard.schema.items() if isinstance(dtype, pl.List)]
    return ard.with_columns(pl.col(name).cast(pl.List(pl.String)).list.join(" ") for name in lists)


def columns() -> pl.DataFrame:
    """One row per ARD column: its name, type and meaning (the data dictionary's, ``lms_assets.dictionary``)."""
    names = ARD_SCHEMA.names()
    return pl.DataFrame(
        {"column": names, "type": [str(ARD_SCHEMA[c]) for c in names], "description": [dictionary.description(NAME, c) for c in names]}
    )


def _write(frame: pl.DataFrame, path: Path) -> None:
    """``frame`` in ``path`` (CSV or Parquet by its suffix) whole or not at all: a reader never loads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        frame.write_parquet(tmp)
    else:
        frame.write_csv(tmp)
    tmp.replace(path)


def write(ard: pl.DataFrame, root: Path) -> list[Path]:
    """Each cut's CSV, Parquet and column dictionary under ``root`` (the outputs folder); the paths written."""
    written = []
    for (cut,), rows in ard.group_by("data_cut", maintain_order=True):
        targets = files(cast(dt.date | None, cut))
        for kind, frame in (("parquet", rows), ("csv", as_text(rows)), ("columns", columns())):
            _write(frame, root / targets[kind])
            written.append(root / targets[kind])
    return written
