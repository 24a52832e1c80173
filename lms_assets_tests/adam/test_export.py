"""The ADaM exports: every dataset of a cut, as Dataset-JSON v1.1 and SAS XPORT v5, reads back as the warehouse table
it was written from, with the dictionary's labels; define.json lists every variable; and an export that does not
read back is not moved into place (the blocking check ``exports_read_back``)."""

import hashlib
import json
import re
from pathlib import Path

import duckdb
import polars as pl
import pyreadstat
import pytest
from dagster import AssetSelection

from lms_assets import dictionary
from lms_assets.adam import export, variables
from lms_assets_tests.conftest import _shipped_copy, copy_warehouse, run_assets, run_selection

CUT = "2021-03-31"
TABLES = sorted(variables.MODULES)
# Dataset-JSON v1.1's required attributes and patterns (the standard's schema, dataset.yaml).
REQUIRED = {"datasetJSONCreationDateTime", "datasetJSONVersion", "itemGroupOID", "records", "name", "label", "columns"}
VERSION = re.compile(r"^1\.1(\.(0|([1-9][0-9]*)))?$")
CREATED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(\.\d+)?([+-]\d{2}:\d{2}|Z)?$")
DATA_TYPES = {"string", "integer", "decimal", "float", "double", "boolean", "datetime", "date", "time", "URI"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """The shipped study's cohort and its exports, materialized once for this module (read-only)."""
    paths = _shipped_copy(tmp_path_factory.mktemp("exports"))
    assert run_assets("adam_exports", paths=paths).success
    return paths


def _warehouse(paths: dict[str, Path], table: str) -> pl.DataFrame:
    with duckdb.connect(str(paths["warehouse"]), read_only=True) as db:
        frame = db.sql(f"select * from main.{table}").pl()
    return frame.filter(pl.col("DCUTDT") == pl.lit(CUT).str.to_date()) if "DCUTDT" in frame.columns else frame


def _as_stored(frame: pl.DataFrame) -> pl.DataFrame:
    """Values as SAS holds them: numbers as doubles, missing text as empty."""
    return frame.select(
        pl.col(c).cast(pl.Float64) if frame[c].dtype.is_numeric() else pl.col(c).fill_null("") if frame[c].dtype == pl.String else pl.col(c)
        for c in frame.columns
    )


def _structure_problems(document: dict) -> list[str]:
    problems = [f"missing {key}" for key in REQUIRED - set(document)]
    if not VERSION.match(document["datasetJSONVersion"]) or not CREATED.match(document["datasetJSONCreationDateTime"]):
        problems.append("version or creation time does not match the schema's pattern")
    for column in document["columns"]:
        if not {"itemOID", "name", "label", "dataType"} <= set(column) or column["dataType"] not in DATA_TYPES or column.get("length", 1) < 1:
            problems.append(f"column {column}")
    if document["records"] != len(document["rows"]) or any(len(row) != len(document["columns"]) for row in document["rows"]):
        problems.append("records or row widths disagree with the rows")
    return problems


@pytest.mark.parametrize("table", TABLES)
def test_the_sas_xport_file_reads_back_as_the_warehouse_table_with_its_labels(exported, table):
    frame, meta = pyreadstat.read_xport(str(exported["outputs"] / "adam" / CUT / f"{table}.xpt"), output_format="polars")
    expected = _warehouse(exported, table)
    assert meta.table_name == table.upper() and meta.file_label == variables.DATASET_LABELS[table]
    assert meta.column_names_to_labels == {name: variables.LABELS[name] for name in dictionary.DERIVED[table]}
    assert frame.equals(_as_stored(expected), null_equal=True)


@pytest.mark.parametrize("table", TABLES)
def test_the_dataset_json_file_is_v1_1_and_reads_back_as_the_warehouse_table(exported, table):
    document = json.loads((exported["outputs"] / "adam" / CUT / f"{table}.json").read_text(encoding="utf-8"))
    assert _structure_problems(document) == []
    assert (document["name"], document["itemGroupOID"], document["datasetJSONVersion"]) == (table.upper(), f"IG.{table.upper()}", "1.1.0")
    expected = _warehouse(exported, table)
    assert [c["name"] for c in document["columns"]] == expected.columns
    assert [c["label"] for c in document["columns"]] == [variables.LABELS[c] for c in expected.columns]
    assert export.from_dataset_json(document).equals(expected.with_columns(pl.col(pl.Int32, pl.Int16).cast(pl.Int64)), null_equal=True)


def test_define_lists_every_variable_with_origin_and_derivation_and_reconstructed_ones_with_their_constraint(exported):
    define = json.loads((exported["outputs"] / "adam" / CUT / export.METADATA_FILE).read_text(encoding="utf-8"))
    assert [d["name"] for d in define["datasets"]] == [t.upper() for t in ("adsl", "adrs", "adtr", "adtte", "adae")]
    for dataset in define["datasets"]:
        table = dataset["name"].lower()
        assert [v["name"] for v in dataset["variables"]] == list(dictionary.DERIVED[table])
        assert dataset["records"] == _warehouse(exported, table).height
        for v in dataset["variables"]:
            assert v["origin"] and v["derivation"] and v["dataType"] and v["length"] >= 1, v
            assert (v["constraint"] is not None) == (v["origin"] == "Reconstructed"), v
    dose = next(v for v in define["datasets"][0]["variables"] if v["name"] == "DOSE0")
    assert "15 patients at 12 mg, 4 at 10 mg" in dose["constraint"]


def test_an_export_that_does_not_read_back_is_refused_and_the_published_files_are_kept(exported, platform_env, monkeypatch):
    copy_warehouse(exported["warehouse"], platform_env["warehouse"])
    published = exported["outputs"] / "adam"
    (platform_env["outputs"]).mkdir(parents=True)
    target = platform_env["outputs"] / "adam"
    target.mkdir()
    (target / CUT).mkdir()
    for file in (published / CUT).iterdir():
        (target / CUT / file.name).write_bytes(file.read_bytes())
    before = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in (target / CUT).iterdir()}
    original = pyreadstat.write_xport

    def one_age_wrong(frame, path, **kwargs):
        # A writer that slips one value: ADSL's first age off by one.
        if "AGE" in frame.columns:
            frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.col("AGE") + 1).otherwise(pl.col("AGE")).alias("AGE"))
        original(frame, path, **kwargs)

    monkeypatch.setattr(pyreadstat, "write_xport", one_age_wrong)
    result = run_selection(AssetSelection.assets("adam_exports"), platform_env)
    assert not result.success
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "exports_read_back")
    assert not check.passed and check.description == f"{CUT} adsl.xpt: AGE differs from the warehouse table"
    assert {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in (target / CUT).iterdir()} == before
    assert sorted(p.name for p in target.iterdir()) == [CUT], "no staged folder is left behind"
