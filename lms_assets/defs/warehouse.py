"""The DuckDB warehouse file, opened for one short operation at a time.

DuckDB lets one process at a time open a file for writing, and holds the file's lock for as long as the
process has it open. Every read and write of the warehouse attaches the file, does its work and detaches it,
so the lock is held for that one operation and never while a step computes: steps of concurrent runs (and the
UI's, the sensor's and the schedule's runs) interleave their operations instead of queueing on a Dagster pool.

An operation that meets the lock waits, sleeping between attempts, says once who holds the file (DuckDB names
the process), and after ``lock_wait_seconds`` fails saying who holds it and what to do.

The file is attached to one in-memory DuckDB kept per ``Warehouse``, not opened by a new connection each time:
starting a DuckDB instance costs several times what attaching a file does, and a run reads and writes hundreds
of times.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
from dagster import Failure, get_dagster_logger

from lms_assets.records.errors import excerpt

# Where published tables are, and where a candidate that failed a blocking check is kept for inspection (write-audit-publish, see defs/gate.py).
PUBLISHED_SCHEMA, STAGING_SCHEMA = "main", "staging"
# The schemas of this platform's warehouse: the published tables, the held-back candidates, the default of the
# Dagster IO manager that wrote it before, and DuckDB's own catalogs.
WAREHOUSE_SCHEMAS = frozenset({PUBLISHED_SCHEMA, STAGING_SCHEMA, "public", "information_schema", "pg_catalog"})
# What to do with a warehouse that cannot be used: it holds nothing that cannot be recomputed.
REBUILD = "delete {path} (and {path}.wal beside it, if any) and Materialize all; the record files are the source of truth"
# The one folder a new warehouse may create: the default's (data/warehouse/, resources.LOCATIONS), which a fresh clone
# lacks (git ignores it).
DEFAULT_FOLDER = "warehouse"

# How long an operation waits for a lock held by another process before it fails, unless configured.
LOCK_WAIT_SECONDS = 120.0
# The first pause after a refused attempt, doubled after each one up to the longest. An attempt costs about 2 ms
# of CPU, so a waiting run uses about 1 % of a core, and starts at most this long after the holder lets go.
FIRST_PAUSE_SECONDS = 0.01
LONGEST_PAUSE_SECONDS = 0.25

# Table and schema names come from asset keys and the resource config, never from file contents; they
# are still checked before they enter SQL text. Values never do: a frame is handed over as Arrow.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.{1,300}?) \(PID (?P<pid>\d+)\)")
# The name the file is attached under, on this module's own in-memory DuckDB.
_ALIAS = "warehouse"


def sql_identifier(name: str) -> str:
    """``name`` quoted for DuckDB, refused unless it is a plain identifier (letters, digits, underscores)."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain identifier; refusing to use it as a warehouse table or schema name")
    return f'"{name}"'


def replace_table(connection: duckdb.DuckDBPyConnection, schema_name: str, table_name: str, frame: pl.DataFrame, drop_staged: bool = False) -> None:
    """Replace ``schema.table`` by ``frame`` in one transaction; with ``drop_staged``, drop its staged candidate in it too.

    A reader sees the old table or the new one, never a mix, and an empty frame is still a table with its columns.
    """
    schema, table = sql_identifier(schema_name), sql_identifier(table_name)
    # String views are handed over without copying the strings: half the time and none of the memory
    # of the default large_string copy on wide tables (a 6-million-row ADTTE). DuckDB stores the same VARCHARs.
    connection.register("__lms_output", frame.to_arrow(compat_level=pl.CompatLevel.newest()))
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


def lock_holder(message: str) -> str:
    """Who holds the warehouse, as DuckDB's lock error names it: program and PID (not the command line, which
    may carry secrets)."""
    found = _LOCK_HOLDER.search(message)
    return f"process {found['pid']} ({found['program']})" if found else "another process"


def _unusable(database: str, problem: str) -> Failure:
    return Failure(description=f"The warehouse {database} {problem}. To rebuild it, {REBUILD.format(path=database)}.")


def check_location(database: str) -> None:
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
        query = "SELECT schema_name FROM information_schema.schemata WHERE catalog_name = current_database()"
        found = {name for (name,) in connection.execute(query).fetchall()}
    except duckdb.Error as err:
        raise _unusable(database, f"cannot be read ({excerpt(str(err).splitlines()[0], 200)}): it is damaged") from None
    foreign = sorted(found - WAREHOUSE_SCHEMAS)
    if foreign:
        raise _unusable(
            database,
            f"is a DuckDB database but not this platform's warehouse (it has schema(s) {excerpt(', '.join(foreign), 200)}; a "
            f"warehouse has only {PUBLISHED_SCHEMA} and {STAGING_SCHEMA}). If it belongs to something else, set LMS_DUCKDB_PATH "
            "to another file instead",
        )


class Warehouse:
    """One warehouse file, attached for one operation at a time (``attached``), by one thread at a time."""

    def __init__(self, database: str, lock_wait_seconds: float = LOCK_WAIT_SECONDS):
        self.database = database
        self.lock_wait_seconds = lock_wait_seconds
        self._memory: duckdb.DuckDBPyConnection | None = None
        self._checked = False
        self._mutex = threading.Lock()

    @contextmanager
    def attached(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection whose default database is the warehouse, checked, for one short operation; the file is free
        for other processes again when the block ends."""
        with self._mutex:
            check_location(self.database)
            if self._memory is None:
                self._memory = duckdb.connect(":memory:")
            connection = self._memory
            self._attach(connection)
            try:
                connection.execute(f"USE {_ALIAS}")
                if not self._checked:
                    _check_schemas(connection, self.database)
                    self._checked = True
                yield connection
            finally:
                connection.execute("USE memory")
                connection.execute(f"DETACH {_ALIAS}")

    def close(self) -> None:
        """Close the in-memory DuckDB the file is attached to (it holds no lock between operations)."""
        with self._mutex:
            memory, self._memory = self._memory, None
            if memory is not None:
                memory.close()

    def _attach(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Attach the file, waiting while another process holds its lock, at most ``lock_wait_seconds``."""
        literal = "'" + self.database.replace("'", "''") + "'"
        deadline, pause, said = time.monotonic() + self.lock_wait_seconds, FIRST_PAUSE_SECONDS, False
        while True:
            try:
                connection.execute(f"ATTACH {literal} AS {_ALIAS} (TYPE DUCKDB)")
                return
            # An I/O error other than the lock is the file's own (truncated, not DuckDB's); any other error is not the file's.
            except duckdb.IOException as err:
                if "could not set lock" not in str(err).lower():
                    raise _unusable(
                        self.database,
                        f"cannot be opened as a DuckDB database ({excerpt(str(err).splitlines()[0], 200)}): it is damaged or not a warehouse",
                    ) from None
                holder = lock_holder(str(err))
            if time.monotonic() + pause > deadline:
                raise Failure(
                    description=(
                        f"The warehouse {self.database} is locked by {holder}, which kept it open for {self.lock_wait_seconds:g} s "
                        "(DuckDB lets no one write while any other process has the file open, even read-only; a run's steps "
                        "open it only to read or write one table). Close that connection (for example an analyst's "
                        "duckdb.connect(..., read_only=True) session) and run again; to analyse while runs go on, open a copy "
                        "of the file (README, 'Reading the warehouse')."
                    )
                )
            if not said:
                get_dagster_logger().info(f"Waiting for the warehouse {self.database}: {holder} has it open.")
                said = True
            time.sleep(pause)
            pause = min(2 * pause, LONGEST_PAUSE_SECONDS)
