"""The team deployment's PostgreSQL storage: dagster-postgres's run, event-log and schedule storage, each holding a
small connection pool instead of opening a new connection for every query.

dagster-postgres gives every process except the webserver a ``NullPool``, so each query connects anew and the
server forks a backend for it: a ``followup_refresh`` run of the shipped study opened 1,206 connections and took
40 s against 29 s on SQLite. With the pool Dagster itself gives the webserver (``optimize_for_webserver``, here
without a statement timeout, which would cut a run's long queries), the same run opened 88 and took 29 s (measured
2026-12-02, one warm 2-core machine). A connection lost when the server restarts is dropped from the pool on its
first failed use, as in the webserver; the daemon logs that tick's error and carries on (test_deployment.py).

``deploy/dagster.yaml`` names these classes; the instance passes them on to the run workers it launches.
"""

from __future__ import annotations

from typing import Any

from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

# One connection kept per storage and process; threads that need one at the same moment (the daemon's) open extra
# connections, closed when they are handed back.
MAX_OVERFLOW = 10
# Connections older than this are replaced on their next use, before a firewall or the server drops them idle.
POOL_RECYCLE_SECONDS = 3600
NO_STATEMENT_TIMEOUT = 0


class _Pooled:
    """Builds the storage as dagster-postgres does, then gives it a pooled engine."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.optimize_for_webserver(NO_STATEMENT_TIMEOUT, POOL_RECYCLE_SECONDS, MAX_OVERFLOW)

    def optimize_for_webserver(self, statement_timeout: int, pool_recycle: int, max_overflow: int) -> None:
        # The webserver calls this again with its own timeout: the engine built here is closed, not left holding a connection.
        previous = getattr(self, "_engine", None)
        super().optimize_for_webserver(statement_timeout, pool_recycle, max_overflow)  # type: ignore[misc]
        if previous is not None:
            previous.dispose()

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> Any:
        # dagster-postgres's own from_config_value builds its base class by name, not ``cls``.
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )


class PooledPostgresRunStorage(_Pooled, PostgresRunStorage):
    """dagster-postgres's run storage over a connection pool."""


class PooledPostgresEventLogStorage(_Pooled, PostgresEventLogStorage):
    """dagster-postgres's event-log storage over a connection pool."""


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):
    """dagster-postgres's schedule storage over a connection pool."""
