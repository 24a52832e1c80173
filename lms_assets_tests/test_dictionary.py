"""Column descriptions: one source (record schemas for raw tables, the data dictionary for the rest), the same
text in the UI's column schema and in data/README.md, and a description for every column the platform writes."""

import polars as pl
import pytest

from lms_assets import dictionary
from lms_assets.columns import _table
from lms_assets.defs.resources import column_schema
from lms_assets.records import schemas
from lms_assets_tests.conftest import REPO

EVERY_TABLE = {**dictionary.RAW, **dictionary.DERIVED}


def test_data_readme_prints_the_dictionary_as_it_is():
    readme = (REPO / "data" / "README.md").read_text()
    start, end = readme.index(dictionary.README_START), readme.index(dictionary.README_END) + len(dictionary.README_END)
    assert readme[start:end] == dictionary.readme_section(), "data/README.md is stale: paste `python -m lms_assets.dictionary`"


def test_raw_descriptions_are_the_schema_declarations():
    for column in schemas.FOLLOWUP.columns:
        assert dictionary.description("raw_followup", column.name) == column.description
    assert dictionary.description("raw_followup", "data_cut") == dictionary.RAW_EXTRAS["data_cut"]
    assert "data_cut" not in dictionary.RAW["raw_patients"]


def test_descriptions_are_plain_one_line_text_and_the_readme_shows_them_as_such():
    for table, columns in EVERY_TABLE.items():
        for column, text in columns.items():
            assert text.strip() and not any(c in text for c in "`\n"), (table, column, text)
    # In markdown "<where printed>" would be an HTML tag, hidden; escaped, it reads as in the UI.
    assert "| value\\_id | Stable id: \\<where printed\\>.\\<quantity\\> |" in dictionary.readme_section()


def test_column_schema_carries_the_descriptions_and_leaves_unknown_columns_empty():
    frame = pl.DataFrame({"endpoint": ["OS"], "median": [23.5], "scratch": [1]})
    columns = {c.name: c for c in column_schema(frame, "survival_summary").columns}
    assert columns["median"].description == dictionary.DERIVED["survival_summary"]["median"]
    assert columns["median"].type == "Float64"
    assert columns["scratch"].description is None
    assert column_schema(frame, "no_such_table").columns[0].description is None


def test_listing_a_description_for_a_column_the_table_lacks_is_refused():
    with pytest.raises(ValueError, match="described but not listed"):
        _table("n", extra="text")


@pytest.mark.slow
def test_every_column_the_shipped_run_writes_is_described(shipped_run):
    undescribed, checked = {}, set()
    for event in shipped_run["result"].get_asset_materialization_events():
        materialization = event.materialization
        schema = materialization.metadata.get("dagster/column_schema")
        if schema is None:
            continue
        checked.add(materialization.asset_key.to_user_string())
        missing = [c.name for c in schema.value.columns if not c.description]
        if missing:
            undescribed[materialization.asset_key.to_user_string()] = missing
    assert {"raw_followup", "adtte", "survival_summary", "printed_audit"} <= checked, checked
    assert not undescribed, undescribed
