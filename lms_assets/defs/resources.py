"""Where the platform reads and writes, as Dagster resources: the study folder, the outputs folder, and the warehouse
IO manager (each asset one DuckDB table named after it, replaced atomically).

``definitions.build_defs`` configures them; assets, checks and the sensor receive them as parameters and never read
the environment.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
from dagster import (
    ConfigurableIOManagerFactory,
    ConfigurableResource,
    InputContext,
    IOManager,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)

from lms_assets import dictionary
from lms_assets.defs.warehouse import LOCK_WAIT_SECONDS, PUBLISHED_SCHEMA, STAGING_SCHEMA, Warehouse, replace_table, sql_identifier
from lms_assets.records.study import Study, load_study

# Each location's environment variable and its default (relative to the working directory), read once by
# definitions.build_defs and by the deployment CLI, never by an asset.
LOCATIONS = {
    "study_dir": ("LMS_DATA_DIR", "data"),
    "warehouse": ("LMS_DUCKDB_PATH", "data/warehouse/lms.duckdb"),
    "outputs": ("LMS_OUTPUT_DIR", "outputs"),
}
# Where `make run` serves the outputs folder (lms_assets/infra/report_server.py): the UI's links into the report start here.
REPORT_URL = ("LMS_REPORT_URL", "http://127.0.0.1:3001")


def locations(env: Mapping[str, str]) -> dict[str, Path]:
    """The study folder, warehouse file and outputs folder that ``env`` names, with the defaults where it names none."""
    return {name: Path(env.get(variable) or default) for name, (variable, default) in LOCATIONS.items()}


class StudyFolder(ConfigurableResource):
    """The study folder: its record files, its registry and its study.toml (data/README.md)."""

    path: str

    @property
    def root(self) -> Path:
        return Path(self.path)

    def study(self) -> Study:
        """The folder's study.toml, validated (a ``RecordFileError`` names the file, key and value)."""
        return load_study(self.root)


class OutputsFolder(ConfigurableResource):
    """Where charts' interactive HTML and the study report are written, and the address that serves them read-only."""

    path: str
    base_url: str = REPORT_URL[1]

    @property
    def root(self) -> Path:
        return Path(self.path)

    def url(self, relative: str) -> str:
        """The served address of ``relative`` (a path under the folder, with an optional ``#anchor``)."""
        return f"{self.base_url.rstrip('/')}/{relative}"


def column_schema(frame: pl.DataFrame, table: str) -> TableSchema:
    """The frame's columns as Dagster's ``dagster/column_schema``, each with its data-dictionary description."""
    return TableSchema(
        columns=[TableColumn(name=n, type=str(t), description=dictionary.description(table, n)) for n, t in zip(frame.columns, frame.dtypes)]
    )


class WarehouseTables(IOManager):
    """The warehouse as assets see it: each asset one table ``main.<asset name>``, replaced in one transaction
    (``warehouse.replace_table``); an input loads only the columns its ``AssetIn`` metadata ``columns`` lists; and
    narrow reads and the staging of rejected candidates for the gate (``defs/gate.py``). Each read and write holds
    the file only while it runs (``warehouse.Warehouse``)."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def handle_output(self, context: OutputContext, obj: pl.DataFrame) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; the warehouse stores Polars DataFrames")
        table = context.asset_key.path[-1]
        with self.warehouse.attached() as connection:
            replace_table(connection, PUBLISHED_SCHEMA, table, obj, drop_staged=True)
        context.add_output_metadata(
            {
                "dagster/row_count": obj.height,
                "dagster/column_schema": column_schema(obj, table),
                "dagster/table_name": f"{PUBLISHED_SCHEMA}.{table}",
                "table": MetadataValue.text(f"{PUBLISHED_SCHEMA}.{table}"),
            }
        )

    def load_input(self, context: InputContext) -> pl.DataFrame:
        # Narrowed by the input's AssetIn metadata: ADTTE's text columns are most of its bytes on a large study.
        return self.read_columns(context.asset_key.path[-1], (context.definition_metadata or {}).get("columns"))

    def read_columns(self, table: str, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """A stored table, or only ``columns`` of it (all when None).

        Also for a check on the table's own asset: Dagster narrows (``AssetIn`` metadata ``columns``) only the inputs
        of other assets, and loads a check's own asset whole, which for a six-million-row ADTTE costs seconds and gigabytes.
        """
        selected = ", ".join(map(sql_identifier, columns)) if columns else "*"
        query = f"SELECT {selected} FROM {sql_identifier(PUBLISHED_SCHEMA)}.{sql_identifier(table)}"
        with self.warehouse.attached() as connection:
            return connection.execute(query).pl()

    def published_values(self, table: str, column: str) -> list | None:
        """The distinct values of a published table's column, or None while no published table has that column (never
        published, or published by a version of the platform that named the column otherwise)."""
        query = f"SELECT DISTINCT {sql_identifier(column)} FROM {sql_identifier(PUBLISHED_SCHEMA)}.{sql_identifier(table)} ORDER BY 1"
        with self.warehouse.attached() as connection:
            try:
                return [value for (value,) in connection.execute(query).fetchall()]
            except (duckdb.CatalogException, duckdb.BinderException):
                return None

    def cache_folder(self) -> Path:
        """The warehouse file's folder, where a result kept for unchanged inputs sits beside the tables it belongs with."""
        return Path(self.warehouse.database).parent

    def stage(self, table: str, frame: pl.DataFrame) -> str:
        """Keep a candidate that failed a blocking check as ``staging.<table>``; the published table is not touched."""
        with self.warehouse.attached() as connection:
            replace_table(connection, STAGING_SCHEMA, table, frame)
        return f"{STAGING_SCHEMA}.{table}"


class WarehouseIOManager(ConfigurableIOManagerFactory):
    """The DuckDB warehouse file ``database`` as Dagster's IO manager (``WarehouseTables``).

    An operation that finds the file locked by another process (another run's step, an analyst's connection)
    waits for it, at most ``lock_wait_seconds``, then fails naming the process."""

    database: str
    lock_wait_seconds: float = LOCK_WAIT_SECONDS

    def create_io_manager(self, context) -> WarehouseTables:
        return WarehouseTables(Warehouse(self.database, self.lock_wait_seconds))

    @contextmanager
    def yield_for_execution(self, context) -> Iterator[WarehouseTables]:
        """The IO manager for a run (in process) or a step, closing its in-memory DuckDB when that ends."""
        tables = self.create_io_manager(context)
        try:
            yield tables
        finally:
            tables.warehouse.close()
