"""The foundation: definitions load, the shipped study materializes, and the cohort is what Table 3 says."""

import duckdb
import polars as pl
import pytest

from lms_assets.defs.resources import WarehouseIOManager
from lms_assets_tests.conftest import defs_for, run_assets


def _materialize_cohort(paths, *names):
    return run_assets(*(names or ("adsl", "adrs", "adtr", "adtte", "adae")), paths=paths)


def _table(warehouse, name: str) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(f"select * from {name}").pl()


def test_definitions_load(platform_env):
    defs = defs_for(platform_env)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_patients", "raw_followup", "quarantine", "adsl", "adrs", "adtte", "adae"} <= keys
    for spec in defs.resolve_asset_graph().asset_nodes:
        assert spec.description, f"{spec.key} has no description"


def test_cohort_from_shipped_study(platform_env):
    result = _materialize_cohort(platform_env)
    assert result.success
    warehouse = platform_env["warehouse"]
    adsl = _table(warehouse, "adsl")
    adrs = _table(warehouse, "adrs")
    adtte = _table(warehouse, "adtte")
    adae = _table(warehouse, "adae")
    assert _table(warehouse, "quarantine").is_empty()
    # ADRS: BOR and the responder parameters ORR and DCR per patient.
    assert adsl.height == 19 and adrs.height == 3 * 19 and adrs.filter(pl.col("PARAMCD") == "BOR").height == 19
    assert adtte.height == 38  # PFS and OS for 19 patients at the one published cut
    # Table 3: patient 7 is 40, female, PS 2, three or more prior lines, immunotherapy + chemotherapy.
    p7 = adsl.filter(pl.col("SUBJID") == 7).row(0, named=True)
    assert (p7["AGE"], p7["SEX"], p7["ECOG"], p7["PRCHLN"], p7["COMBFL"], p7["IMMUNOFL"]) == (40, "F", 2, 3, "Y", "Y")
    assert adsl["COMBFL"].eq("Y").sum() == 7
    assert adsl["PRCHFL"].eq("Y").sum() == 14
    assert _table(warehouse, "adtr").filter(pl.col("SUBJID") == 19)["PCHG"].item() == pytest.approx(89.2)
    os_ = adtte.filter(pl.col("PARAMCD") == "OS")
    assert os_["CNSR"].eq(0).sum() == 12  # "12 patients died"
    assert adtte.filter(pl.col("PARAMCD") == "PFS")["CNSR"].eq(0).sum() == 19  # all progressed
    assert os_.filter(pl.col("SUBJID") == 3)["AVAL"].item() == pytest.approx(28.0)
    # One row per episode; the worst grade is flagged: patient 3 had hand-foot skin syndrome at grade 2, then grade 3.
    hfs3 = adae.filter((pl.col("SUBJID") == 3) & (pl.col("AEDECOD") == "Hand foot skin syndrome")).sort("AEEPINUM")
    assert hfs3.select("ATOXGRN", "ATOXGRGP", "AOCCPIFL").rows() == [(2, "Grade 1/2", None), (3, "Grade 3/4", "Y")]
    assert adae.height == 46 and adae.select("SUBJID", "AEDECOD", "AEEPINUM").is_duplicated().sum() == 0


def test_raw_assets_record_content_hash(platform_env):
    result = _materialize_cohort(platform_env, "raw_patients")
    materialization = next(e.materialization for e in result.get_asset_materialization_events() if e.asset_key.path == ["raw_patients"])
    digest = materialization.metadata["content_hash"].value
    import hashlib

    assert digest == hashlib.sha256((platform_env["data"] / "patients.csv").read_bytes()).hexdigest()
    assert materialization.tags["dagster/data_version"] == digest


def test_warehouse_round_trip_through_duckdb_polars_loader(platform_env):
    """dagster-duckdb-polars loads inputs with DuckDB's .arrow(); duckdb 2.0 removed it, so this breaks first."""
    result = _materialize_cohort(platform_env, "adrs")
    assert result.success, "a downstream asset failed to load its input from DuckDB"
    assert int(duckdb.__version__.split(".")[0]) < 2, "dagster-duckdb-polars 0.29 cannot load from duckdb 2.x"


def test_a_check_reads_only_the_columns_of_its_own_asset_it_names(platform_env):
    """``WarehouseTables.read_columns`` (for checks on a six-million-row ADTTE) gives those columns, stored values unchanged."""
    _materialize_cohort(platform_env, "adtte")
    with WarehouseIOManager(database=str(platform_env["warehouse"])).yield_for_execution(None) as tables:
        narrow = tables.read_columns("adtte", ["SUBJID", "DCUTDT", "AVAL"])
        with pytest.raises(ValueError, match="plain identifier"):
            tables.read_columns("adtte", ["AVAL; DROP TABLE adtte"])
    assert narrow.columns == ["SUBJID", "DCUTDT", "AVAL"]
    assert narrow.equals(_table(platform_env["warehouse"], "adtte").select("SUBJID", "DCUTDT", "AVAL"))
    assert narrow.schema["DCUTDT"] == pl.Date
