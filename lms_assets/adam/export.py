"""The ADaM datasets in standard exchange formats: CDISC Dataset-JSON v1.1 and SAS XPORT v5, with a variable-level
metadata file in the spirit of Define-XML (JSON), per data cut; and the read-back that proves a written file holds
the table it was written from.

Pure (no Dagster). May import: ``adam``, ``dictionary``, Polars, pyreadstat. A cut's folder is written beside its
final place and moved there whole, so a reader never finds half a cut.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import polars as pl
import pyreadstat

from lms_assets import dictionary
from lms_assets.adam import variables

DATASET_JSON_VERSION = "1.1.0"
METADATA_FILE = "define.json"
# SAS XPORT v5: names of at most 8 characters, labels of at most 40, character values of at most 200 bytes.
XPORT_NAME_MAX, XPORT_LABEL_MAX, XPORT_CHAR_MAX = 8, 40, 200
# The cut of the datasets that have none (every table but ADTTE is one row per patient, event or parameter).
CUT_COLUMN = "DCUTDT"


def data_type(dtype: pl.DataType) -> str:
    """The Dataset-JSON dataType of a Polars column type: string, integer, double or date."""
    if dtype == pl.String:
        return "string"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "double"
    if dtype == pl.Date:
        return "date"
    raise TypeError(f"no Dataset-JSON type for {dtype}")


def length(column: pl.Series) -> int:
    """A variable's length: the longest value in bytes (UTF-8) for text, at least 1; 8 (a double) for a number or a date."""
    if column.dtype == pl.String:
        return max([1, *column.str.len_bytes().drop_nulls().to_list()])
    return 8


def variable_metadata(table: str, frame: pl.DataFrame, constraints: Mapping[tuple[str, str], str]) -> list[dict]:
    """The dictionary's variables of ``table`` (name, label, description, origin, derivation) with the type and length
    ``frame`` gives them, and for a reconstructed variable the constraint provenance.csv states (``constraints``)."""
    rows = []
    for variable in dictionary.adam_variables(table):
        name = str(variable["name"])
        column = frame[name]
        constraint = constraints.get((table, name)) if variable["origin"] == "Reconstructed" else None
        rows.append({**variable, "dataType": data_type(column.dtype), "length": length(column), "constraint": constraint})
    return rows


def reconstruction_constraints(provenance: pl.DataFrame) -> dict[tuple[str, str], str]:
    """(table, variable) → the constraints provenance.csv gives for the reconstructed record column the variable is
    taken from (``variables.RECORD_SOURCES``), joined by "; " when several files or patients' rows state one."""
    reconstructed = provenance.filter(pl.col("origin") == "reconstructed").iter_rows(named=True)
    found: dict[tuple[str, str], list[str]] = {}
    for row in reconstructed:
        for key, (file, column) in variables.RECORD_SOURCES.items():
            same_file = row["file"] == file or (row["file"].split("/")[0] == file.split("/")[0] and "/" in file)
            if same_file and (row["column"] == "*" or row["column"] in column.split()) and row["constraint"]:
                found.setdefault(key, []).append(f"{row['file']}, {row['column']}: {row['constraint']}")
    return {key: "; ".join(dict.fromkeys(texts)) for key, texts in found.items()}


def _rows_json(frame: pl.DataFrame) -> str:
    """The rows of ``frame`` as a JSON array of arrays in column order, encoded by Polars (a million rows in seconds,
    where Python objects take minutes): dates as ISO text; refused where a number has no JSON form."""
    for c in frame.columns:
        if frame[c].dtype.is_float() and not frame[c].is_finite().fill_null(True).all():
            raise ValueError(f"{c}: a non-finite number has no Dataset-JSON representation")
    # Each value as JSON: the one field of a struct, encoded, without its {"name": and closing brace.
    values = [
        pl.struct((pl.col(c).dt.to_string() if frame[c].dtype == pl.Date else pl.col(c)).alias("v"))
        .struct.json_encode()
        .str.slice(5)
        .str.strip_suffix("}")
        for c in frame.columns
    ]
    rows = frame.select(pl.concat_str(pl.lit("["), pl.concat_str(values, separator=","), pl.lit("]")).alias("row"))["row"]
    return "[" + ",".join(rows) + "]" if frame.width else "[]"


def dataset_json(table: str, frame: pl.DataFrame, metadata: list[dict], *, study: str, created: dt.datetime, source: tuple[str, str]) -> str:
    """The Dataset-JSON v1.1 document of ``frame`` (the dataset ``table``): top-level dataset attributes, one column per
    variable (itemOID IT.<DATASET>.<VARIABLE>, name, label, dataType, length) and the rows as arrays in column order.
    ``source`` is the (name, version) of the system that wrote it."""
    name = table.upper()
    attributes = {
        "datasetJSONCreationDateTime": created.isoformat(timespec="seconds"),
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": f"{study}.{name}",
        "sourceSystem": {"name": source[0], "version": source[1]},
        "studyOID": study,
        "metaDataVersionOID": f"MDV.{study}",
        "metaDataRef": METADATA_FILE,
        "itemGroupOID": f"IG.{name}",
        "records": frame.height,
        "name": name,
        "label": variables.DATASET_LABELS[table],
        "columns": [
            {"itemOID": f"IT.{name}.{v['name']}", "name": v["name"], "label": v["label"], "dataType": v["dataType"], "length": v["length"]}
            for v in metadata
        ],
    }
    return json.dumps(attributes, ensure_ascii=False)[:-1] + ', "rows": ' + _rows_json(frame) + "}"


def write_xport(table: str, frame: pl.DataFrame, metadata: list[dict], path: Path) -> None:
    """``frame`` as a SAS XPORT v5 file: member name and variable names upper case (at most 8 characters), the dataset's
    and each variable's label (at most 40); refused, naming the variable, where a name, label or value does not fit."""
    for v in metadata:
        if len(v["name"]) > XPORT_NAME_MAX or len(v["label"]) > XPORT_LABEL_MAX or v["length"] > XPORT_CHAR_MAX:
            raise ValueError(f"{table}.{v['name']}: does not fit SAS XPORT v5 (name ≤ 8, label ≤ 40, text ≤ 200 bytes)")
    pyreadstat.write_xport(
        frame,
        str(path),
        file_label=variables.DATASET_LABELS[table],
        column_labels={v["name"]: v["label"] for v in metadata},
        table_name=table.upper(),
        file_format_version=5,
    )


def at_cut(frame: pl.DataFrame, cut: dt.date) -> pl.DataFrame:
    """The rows of ``frame`` at data cut ``cut`` (a table without DCUTDT is the same at every cut)."""
    return frame.filter(pl.col(CUT_COLUMN) == cut) if CUT_COLUMN in frame.columns else frame


def write_cut(
    folder: Path,
    cut: dt.date,
    tables: Mapping[str, pl.DataFrame],
    provenance: pl.DataFrame,
    *,
    study: str,
    created: dt.datetime,
    source: tuple[str, str],
) -> list[dict]:
    """Every dataset of ``tables`` at ``cut`` as <table>.json and <table>.xpt, and define.json listing their variables, in
    ``folder`` (made, or emptied first). Returns one row per dataset: table, rows, variables, and the two files' names."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    constraints = reconstruction_constraints(provenance)
    written, define = [], []
    for table, full in tables.items():
        frame = at_cut(full, cut)
        metadata = variable_metadata(table, frame, constraints)
        (folder / f"{table}.json").write_text(dataset_json(table, frame, metadata, study=study, created=created, source=source), encoding="utf-8")
        write_xport(table, frame, metadata, folder / f"{table}.xpt")
        define.append({"name": table.upper(), "label": variables.DATASET_LABELS[table], "records": frame.height, "variables": metadata})
        written.append({"table": table, "rows": frame.height, "variables": frame.width, "json": f"{table}.json", "xpt": f"{table}.xpt"})
    document = {"study": study, "data_cut": cut.isoformat(), "created": created.isoformat(timespec="seconds"), "datasets": define}
    (folder / METADATA_FILE).write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return written


def publish_folder(staged: Path, final: Path) -> None:
    """Move the written ``staged`` folder to ``final``, replacing what was there only once the new one is whole."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    staged.rename(final)
    if old.exists():
        shutil.rmtree(old)


def _comparable(frame: pl.DataFrame) -> pl.DataFrame:
    """Values as both formats can hold them: text with null as empty (SAS has no missing text), numbers as doubles."""
    return frame.select(
        pl.col(c).fill_null("") if frame[c].dtype == pl.String else pl.col(c).cast(pl.Float64) if frame[c].dtype.is_numeric() else pl.col(c)
        for c in frame.columns
    )


def from_dataset_json(document: dict) -> pl.DataFrame:
    """The table a Dataset-JSON document holds, typed by its columns' dataType."""
    types = {"string": pl.String, "integer": pl.Int64, "double": pl.Float64, "date": pl.String}
    names = [c["name"] for c in document["columns"]]
    frame = pl.DataFrame(document["rows"], schema={c["name"]: types[c["dataType"]] for c in document["columns"]}, orient="row")
    dates = [c["name"] for c in document["columns"] if c["dataType"] == "date"]
    return frame.with_columns(pl.col(d).str.to_date() for d in dates).select(names)


def read_back_differences(folder: Path, tables: Mapping[str, pl.DataFrame], cut: dt.date) -> list[str]:
    """What the files in ``folder`` hold that differs from ``tables`` at ``cut``: per dataset and format, a missing file,
    other variables, another number of rows, or the first differing variable; empty when every file reads back."""
    problems = []
    for table, full in tables.items():
        expected = _comparable(at_cut(full, cut))
        readers = {
            "json": lambda t=table: from_dataset_json(json.loads((folder / f"{t}.json").read_text(encoding="utf-8"))),
            "xpt": lambda t=table: pyreadstat.read_xport(str(folder / f"{t}.xpt"), output_format="polars")[0],
        }
        for kind, read in readers.items():
            try:
                found = _comparable(read())
            except (OSError, ValueError, KeyError, pyreadstat.ReadstatError) as error:
                problems.append(f"{cut} {table}.{kind}: unreadable ({error})")
                continue
            if found.columns != expected.columns or found.height != expected.height:
                problems.append(
                    f"{cut} {table}.{kind}: {found.width} variables and {found.height} rows, expected {expected.width} and {expected.height}"
                )
                continue
            differing = [c for c in expected.columns if not found[c].equals(expected[c], null_equal=True)]
            if differing:
                problems.append(f"{cut} {table}.{kind}: {differing[0]} differs from the warehouse table")
    return problems
