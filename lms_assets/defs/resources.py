"""Where the platform reads and writes, as Dagster resources: the study folder, the outputs folder, and the warehouse
IO manager (each asset one DuckDB table named after it, replaced atomically).

``definitions.build_defs`` configures them; assets, checks and the sensor receive them as parameters and never read
the environment.
"""

import os
import re
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
from dagster import ConfigurableResource, Failure, MetadataValue, OutputContext, TableColumn, TableSchema
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_polars import DuckDBPolarsIOManager
from dagster_duckdb_polars.duckdb_polars_type_handler import DuckDBPolarsTypeHandler

from lms_assets import dictionary
from lms_assets.records.errors import excerpt
from lms_assets.records.study import Study, load_study

# Each location's environment variable and its default (relative to the working directory), read once by
# definitions.build_defs and by the deployment CLI, never by an asset.
LOCATIONS = {
    "study_dir": ("LMS_DATA_DIR", "data"),
    "warehouse": ("LMS_DUCKDB_PATH", "data/warehouse/lms.duckdb"),
    "outputs": ("LMS_OUTPUT_DIR", "outputs"),
}
# Where `make run` serves the outputs folder (lms_assets/report_server.py): the UI's links into the report start here.
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


# Table and schema names come from asset keys and the resource config, never from file contents; they
# are still checked before they enter SQL text. Values never do: the frame is handed over as Arrow.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
# Where a candidate that failed a blocking check is kept for inspection (write-audit-publish, see defs/gate.py).
STAGING_SCHEMA = "staging"


def sql_identifier(name: str) -> str:
    """``name`` quoted for DuckDB, refused unless it is a plain identifier (letters, digits, underscores)."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain identifier; refusing to use it as a warehouse table or schema name")
    return f'"{name}"'


def column_schema(frame: pl.DataFrame, table: str) -> TableSchema:
    """The frame's columns as Dagster's ``dagster/column_schema``, each with its data-dictionary description."""
    return TableSchema(
        columns=[TableColumn(name=n, type=str(t), description=dictionary.description(table, n)) for n, t in zip(frame.columns, frame.dtypes)]
    )


def replace_table(connection, schema_name: str, table_name: str, frame: pl.DataFrame, drop_staged: bool = False) -> None:
    """Replace ``schema.table`` by ``frame`` in one transaction; with ``drop_staged``, drop its staged candidate in it too."""
    schema, table = sql_identifier(schema_name), sql_identifier(table_name)
    # String views are handed over without copying the strings: half the time and none of the memory
    # of the default large_string copy on wide tables (a 6-million-row ADTTE). DuckDB stores the same VARCHARs.
    arrow_table = frame.to_arrow(compat_level=pl.CompatLevel.newest())
    connection.register("__lms_output", arrow_table)
    try:
        connection.execute("BEGIN TRANSACTION")
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        connection.execute(f"CREATE OR REPLACE TABLE {schema}.{table} AS SELECT * FROM __lms_output")
        if drop_staged:
            # A published table supersedes whatever candidate was held back before it.
            connection.execute(f"DROP TABLE IF EXISTS {sql_identifier(STAGING_SCHEMA)}.{table}")
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise
    finally:
        connection.unregister("__lms_output")


class AtomicPolarsTypeHandler(DuckDBPolarsTypeHandler):
    """Stores a Polars frame by replacing the table in one transaction.

    The stock handler deletes the old rows, then inserts, and skips empty frames; a crash or a
    changed column set between the two left a half-written or stale table. Here readers see the old
    table or the new one, never a mix, and an empty result is still a table with its columns.
    Loading is inherited unchanged (it uses DuckDB's ``.arrow()``, hence duckdb < 2).
    """

    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj: pl.DataFrame, connection):
        replace_table(connection, table_slice.schema, table_slice.table, obj, drop_staged=table_slice.schema != STAGING_SCHEMA)
        context.add_output_metadata(
            {
                "dagster/row_count": obj.height,
                "dagster/column_schema": column_schema(obj, table_slice.table),
                "table": MetadataValue.text(f"{table_slice.schema}.{table_slice.table}"),
            }
        )


# Steps of concurrent runs take turns on the "duckdb" pool, so a lock met here is held by a process outside
# Dagster (an analyst's open connection, a notebook). Dagster's own client retries for about 100 s and then
# fails with DuckDB's bare message; a short wait covers a connection that is just closing, then the step says
# who holds the file and what to do.
LOCK_WAIT_SECONDS = 5.0
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.{1,300}?) \(PID (?P<pid>\d+)\)")


def _lock_holder(message: str) -> str:
    """Who holds the warehouse, as DuckDB's lock error names it: program and PID (not the command line, which
    may carry secrets)."""
    found = _LOCK_HOLDER.search(message)
    return f"process {found['pid']} ({found['program']})" if found else "another process"


# What to do with a warehouse that cannot be used: it holds nothing that cannot be recomputed.
REBUILD = "delete {path} (and {path}.wal beside it, if any) and Materialize all; the record files are the source of truth"
# The schemas of this platform's warehouse: the published tables, the held-back candidates, Dagster's default for an
# unconfigured IO manager, and DuckDB's own catalogs.
WAREHOUSE_SCHEMAS = frozenset({"main", STAGING_SCHEMA, "public", "information_schema", "pg_catalog"})
# The one folder a new warehouse may create: the default's (data/warehouse/), which a fresh clone lacks (git ignores it).
DEFAULT_FOLDER = Path(LOCATIONS["warehouse"][1]).parent.name


def _unusable(database: str, problem: str) -> Failure:
    return Failure(description=f"The warehouse {database} {problem}. To rebuild it, {REBUILD.format(path=database)}.")


def _check_location(database: str) -> None:
    """Refuse a path that is not a usable warehouse file before DuckDB opens it, and never create one silently
    where the path looks mistyped: a missing folder (other than a missing default ``warehouse/`` folder in an existing
    parent, which is created), or a new file beside another warehouse file."""
    path = Path(database)
    if path.is_dir():
        raise Failure(description=f"The warehouse path {database} is a folder; LMS_DUCKDB_PATH names the DuckDB file (e.g. {path / 'lms.duckdb'}).")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise Failure(
                description=f"The warehouse {database} cannot be read and written by this user (its permissions); make it "
                "readable and writable, or set LMS_DUCKDB_PATH to a warehouse this user may write."
            )
        return
    folder = path.parent
    if not folder.exists():
        if folder.name != DEFAULT_FOLDER or not folder.parent.is_dir():
            raise Failure(
                description=f"The warehouse {database} does not exist, nor does its folder {folder}: is LMS_DUCKDB_PATH mistyped? "
                f"A new, empty warehouse is created only in an existing folder (or in a missing '{DEFAULT_FOLDER}' folder of an "
                f"existing one, as on a fresh clone); create {folder} to start one there."
            )
        folder.mkdir()
    others = sorted(p.name for p in folder.glob("*.duckdb") if p != path)
    if others:
        raise Failure(
            description=f"The warehouse {database} does not exist, but its folder holds {', '.join(others)}: is the file name "
            "mistyped? Correct LMS_DUCKDB_PATH, or, to start a new, empty warehouse, use a folder of its own."
        )
    if not os.access(folder, os.W_OK):
        raise Failure(description=f"The warehouse {database} cannot be created: its folder {folder} is not writable by this user.")


def _check_schemas(connection: duckdb.DuckDBPyConnection, database: str) -> None:
    """Refuse a DuckDB file that is not this platform's warehouse (or whose catalog cannot be read)."""
    try:
        found = {name for (name,) in connection.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    except duckdb.Error as err:
        raise _unusable(database, f"cannot be read ({excerpt(str(err).splitlines()[0], 200)}): it is damaged") from None
    foreign = sorted(found - WAREHOUSE_SCHEMAS)
    if foreign:
        raise _unusable(
            database,
            f"is a DuckDB database but not this platform's warehouse (it has schema(s) {excerpt(', '.join(foreign), 200)}; a "
            f"warehouse has only {', '.join(sorted({'main', STAGING_SCHEMA}))}). If it belongs to something else, set LMS_DUCKDB_PATH "
            "to another file instead",
        )


def connect_warehouse(database: str, config: dict) -> duckdb.DuckDBPyConnection:
    """A writable connection to the warehouse, checked (a readable DuckDB file, writable, with the warehouse's schemas),
    or a ``Failure`` saying what is wrong and what to do; a lock held by another process is waited for
    LOCK_WAIT_SECONDS, then named."""
    _check_location(database)
    deadline, pause = time.monotonic() + LOCK_WAIT_SECONDS, 0.1
    while True:
        try:
            connection = duckdb.connect(database, read_only=False, config={"custom_user_agent": "dagster", **config})
            break
        # An I/O error other than the lock is the file's own (truncated, not DuckDB's); any other error is not the file's.
        except duckdb.IOException as err:
            if "could not set lock" not in str(err).lower():
                raise _unusable(
                    database, f"cannot be opened as a DuckDB database ({excerpt(str(err).splitlines()[0], 200)}): it is damaged or not a warehouse"
                ) from None
            if time.monotonic() + pause > deadline:
                raise Failure(
                    description=(
                        f"The warehouse {database} is locked by {_lock_holder(str(err))}, which has it open outside "
                        "Dagster (DuckDB lets no one write while any other process has the file open, even read-only). "
                        "Close that connection (for example an analyst's duckdb.connect(..., read_only=True) session) "
                        "and run again; to analyse while runs go on, open a copy of the file (README, 'Reading the warehouse')."
                    )
                ) from None
            time.sleep(pause)
            pause *= 2
    try:
        _check_schemas(connection, database)
    except Failure:
        connection.close()
        raise
    return connection


class _ReplacingDuckDbClient(DuckDbClient):
    """Leaves cleanup to the handler's CREATE OR REPLACE, so nothing is deleted outside its transaction, fails fast
    on a lock held outside Dagster, and keeps one connection open until ``release``.

    Opening the file costs 10-25 ms (DuckDB starts a database instance and loads its built-in extensions); a
    whole-graph run opened it 146 times, about 3 s of its 15. Each read and write gets its own cursor (a connection of
    its own, with its own transaction) on the held one, which costs microseconds.
    """

    def __init__(self, database: str, config: dict):
        self.database, self.config = database, config
        self._held: duckdb.DuckDBPyConnection | None = None

    @staticmethod
    def delete_table_slice(context, table_slice, connection) -> None:
        return None

    @contextmanager
    def connect(self, context, table_slice):  # type: ignore[override]  # an instance method: it keeps the connection
        if self._held is None:
            self._held = connect_warehouse(self.database, self.config)
            _HOLDING.add(self)
        cursor = self._held.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def release(self) -> None:
        """Close the held connection, if any: the file is free for other processes until the next ``connect``."""
        held, self._held = self._held, None
        _HOLDING.discard(self)
        if held is not None:
            held.close()


# The clients of this process that hold the warehouse open.
_HOLDING: "weakref.WeakSet[_ReplacingDuckDbClient]" = weakref.WeakSet()


def release_warehouse() -> None:
    """Close every warehouse connection this process holds.

    The run executor calls it as each step ends, before Dagster gives that step's "duckdb" pool slot to a step of
    another run, which could not open a file this process still held. Without it (``execute_in_process``, which
    uses Dagster's own executor) a run keeps the file open until its IO manager is torn down at the end of the run.
    """
    for client in list(_HOLDING):
        client.release()


class WarehouseTables(DbIOManager):
    """What ``WarehouseIOManager`` gives user code: Dagster's DB IO manager, plus narrow reads for checks."""

    def __init__(self, *, client: _ReplacingDuckDbClient, schema: str, **kwargs):
        super().__init__(db_client=client, database=client.database, schema=schema, **kwargs)
        self.client = client
        self.schema_name = schema

    def read_columns(self, table: str, columns: Sequence[str]) -> pl.DataFrame:
        """Some columns of a stored table, for a check on that table's own asset.

        Dagster narrows (``AssetIn`` metadata ``columns``) only the inputs of other assets; a check's own
        asset is loaded whole, which for a six-million-row ADTTE costs seconds and gigabytes.
        """
        query = f"SELECT {', '.join(map(sql_identifier, columns))} FROM {sql_identifier(self.schema_name)}.{sql_identifier(table)}"
        with self.client.connect(None, None) as connection:
            return pl.DataFrame(connection.execute(query).arrow())

    def published_values(self, table: str, column: str) -> list | None:
        """The distinct values of a published table's column, or None while the table has never been published."""
        query = f"SELECT DISTINCT {sql_identifier(column)} FROM {sql_identifier(self.schema_name)}.{sql_identifier(table)} ORDER BY 1"
        with self.client.connect(None, None) as connection:
            try:
                return [value for (value,) in connection.execute(query).fetchall()]
            except duckdb.CatalogException:
                return None

    def cache_folder(self) -> Path:
        """The warehouse file's folder, where a result kept for unchanged inputs sits beside the tables it belongs with."""
        return Path(self.client.database).parent

    def stage(self, table: str, frame: pl.DataFrame) -> str:
        """Keep a candidate that failed a blocking check as ``staging.<table>``; the published table is not touched."""
        with self.client.connect(None, None) as connection:
            replace_table(connection, STAGING_SCHEMA, table, frame)
        return f"{STAGING_SCHEMA}.{table}"


class WarehouseIOManager(DuckDBPolarsIOManager):
    """DuckDB + Polars IO manager of dagster-duckdb-polars with atomic table replacement."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [AtomicPolarsTypeHandler()]

    def create_io_manager(self, context) -> WarehouseTables:
        return WarehouseTables(
            client=_ReplacingDuckDbClient(self.database, dict(self.connection_config)),
            # Unconfigured, Dagster's DB IO manager writes to "public"; the narrow reads must look there too.
            schema=self.schema_ or "public",
            type_handlers=self.type_handlers(),
            default_load_type=pl.DataFrame,
            io_manager_name="WarehouseIOManager",
        )

    @contextmanager
    def yield_for_execution(self, context) -> Iterator[WarehouseTables]:
        """The IO manager for a run (in process) or a step, closing what it holds open when that ends."""
        tables = self.create_io_manager(context)
        try:
            yield tables
        finally:
            tables.client.release()
