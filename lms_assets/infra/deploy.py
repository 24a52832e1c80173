"""The team deployment's launcher: check the PostgreSQL settings, then run the webserver and the daemon.

``python -m lms_assets.infra.deploy start`` (what ``make run-team`` runs) checks the environment and the database,
writes ``deploy/dagster.yaml`` and the workspace (one code location per study, ``lms_assets.infra.studies``) into
``$DAGSTER_HOME``, then runs ``dagster-webserver`` and ``dagster-daemon`` as two processes over that
one instance, and the read-only server of the outputs folder (``lms_assets.infra.report_server``) as a third, and restarts
any of them, with backoff, if it exits. ``check`` runs the first
steps alone (the systemd units in deploy/systemd use them as ``ExecStartPre``); ``backup DIR`` writes a
``pg_dump`` of the Dagster database and a consistent copy of the warehouse (docs/deployment.md).

A bad setting stops the launcher with one line naming the variable, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import psycopg2
from dagster import DagsterInstance

from lms_assets.defs.resources import locations
from lms_assets.infra import recovery
from lms_assets.infra.studies import StudiesError, study_locations, write_workspace

REPO = Path(__file__).resolve().parents[2]
INSTANCE_CONFIG = REPO / "deploy" / "dagster.yaml"
WORKSPACE = REPO / "workspace.yaml"

# The variables deploy/dagster.yaml reads, and what each one is.
PG_VARIABLES = {
    "LMS_PG_HOST": "the PostgreSQL server's host name or address",
    "LMS_PG_PORT": "the PostgreSQL server's port",
    "LMS_PG_DB": "the database that holds Dagster's run, event-log and schedule storage",
    "LMS_PG_USER": "the PostgreSQL role Dagster logs in as",
    "LMS_PG_PASSWORD": "that role's password",
}
CONNECT_TIMEOUT_SECONDS = 5
# A process that stayed up this long before exiting starts its backoff again from the shortest delay.
STABLE_SECONDS = 60
MAX_BACKOFF_SECONDS = 60
STOP_GRACE_SECONDS = 20

log = logging.getLogger("lms_assets.infra.deploy")


class DeploymentError(Exception):
    """A setting or the database is not usable; the message is one line that names what to fix."""


@dataclass(frozen=True)
class PgSettings:
    host: str
    port: int
    db: str
    user: str
    password: str = field(repr=False)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def pg_settings(env: Mapping[str, str]) -> PgSettings:
    """Every LMS_PG_* variable must be set and non-empty; LMS_PG_PORT must be a port number."""
    missing = [name for name in PG_VARIABLES if not env.get(name, "").strip()]
    if missing:
        raise DeploymentError("; ".join(f"{name} is not set ({PG_VARIABLES[name]})" for name in missing))
    port_text = env["LMS_PG_PORT"].strip()
    if not (port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise DeploymentError(f"LMS_PG_PORT must be a port number (1-65535), got {port_text!r}")
    return PgSettings(
        host=env["LMS_PG_HOST"].strip(),
        port=int(port_text),
        db=env["LMS_PG_DB"].strip(),
        user=env["LMS_PG_USER"].strip(),
        password=env["LMS_PG_PASSWORD"],
    )


def dagster_home(env: Mapping[str, str]) -> Path:
    """DAGSTER_HOME must be set to an absolute path (Dagster refuses a relative one)."""
    value = env.get("DAGSTER_HOME", "").strip()
    if not value:
        raise DeploymentError("DAGSTER_HOME is not set (the folder that holds the instance's dagster.yaml)")
    home = Path(value)
    if not home.is_absolute():
        raise DeploymentError(f"DAGSTER_HOME must be an absolute path, got {value!r}")
    return home


def _hint(message: str) -> str:
    """Which variable a libpq connection error points at."""
    lowered = message.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        # The server gives the same answer for an unknown role, so as not to reveal which roles exist.
        return "check LMS_PG_USER and LMS_PG_PASSWORD"
    if "role" in lowered and "does not exist" in lowered:
        return "check LMS_PG_USER"
    if "database" in lowered and "does not exist" in lowered:
        return "check LMS_PG_DB"
    if "pg_hba.conf" in lowered:
        return "the server's pg_hba.conf does not admit this host, role and database"
    return "check LMS_PG_HOST and LMS_PG_PORT, and that the server is running"


def _libpq_reason(error: psycopg2.Error | str) -> str:
    """The reason in a libpq error, without the repeated 'connection to server at ... failed:' preamble."""
    text = " ".join(str(error).split())
    reason = text.rsplit(" failed: ", 1)[-1]
    return reason.removeprefix("FATAL: ").strip()


def check_database(settings: PgSettings, timeout: int = CONNECT_TIMEOUT_SECONDS) -> None:
    """The role logs in to the database and may create Dagster's tables in schema ``public``."""
    try:
        connection = psycopg2.connect(
            host=settings.host,
            port=settings.port,
            dbname=settings.db,
            user=settings.user,
            password=settings.password,
            connect_timeout=timeout,
        )
    except psycopg2.OperationalError as error:
        reason = _libpq_reason(error)
        raise DeploymentError(f"cannot connect to PostgreSQL at {settings.where} as {settings.user}: {reason} ({_hint(reason)})") from None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT has_schema_privilege('public', 'CREATE')")
            (may_create,) = cursor.fetchone()
    finally:
        connection.close()
    if not may_create:
        # PostgreSQL 15 grants CREATE on schema public only to the database's owner.
        raise DeploymentError(
            f"role {settings.user} may not create tables in database {settings.db} at {settings.where} "
            f"(make it the owner: ALTER DATABASE {settings.db} OWNER TO {settings.user}; check LMS_PG_USER and LMS_PG_DB)"
        )


def install_instance_config(home: Path) -> Path:
    """The instance reads ``$DAGSTER_HOME/dagster.yaml``: keep it equal to the repository's ``deploy/dagster.yaml``."""
    wanted = INSTANCE_CONFIG.read_bytes()
    target = home / "dagster.yaml"
    try:
        if not (target.exists() and target.read_bytes() == wanted):
            home.mkdir(parents=True, exist_ok=True)
            # Replaced in one step: the webserver's and the daemon's units may both install it at once.
            staging = home / f".dagster.yaml.{os.getpid()}"
            staging.write_bytes(wanted)
            staging.replace(target)
            log.info(f"wrote {INSTANCE_CONFIG.relative_to(REPO)} to {target}")
    except OSError as error:
        raise DeploymentError(f"DAGSTER_HOME {str(home)!r} is not usable: {error.strerror}") from None
    return target


def check(env: Mapping[str, str]) -> None:
    """Validate the environment and the database, and install the instance configuration."""
    problems = []
    for read in (dagster_home, pg_settings):
        try:
            read(env)
        except DeploymentError as problem:
            problems.append(str(problem))
    if problems:
        raise DeploymentError("; ".join(problems))
    home, settings = dagster_home(env), pg_settings(env)
    check_database(settings)
    install_instance_config(home)
    log.info(f"PostgreSQL at {settings.where}, database {settings.db}, role {settings.user}: reachable")
    # Created here, once, before the webserver and the daemon start: both would otherwise create the schema.
    with DagsterInstance.from_config(str(home)) as instance:
        recovery.prepare_instance(instance)
    studies = study_locations(env)
    for study in studies:
        # A new warehouse is created only in an existing folder (defs/warehouse.py): each study's is made here.
        study.warehouse.parent.mkdir(parents=True, exist_ok=True)
        log.info(f"study {study.name}: records {study.study_dir.resolve()}, warehouse {study.warehouse.resolve()}, outputs {study.outputs.resolve()}")
    if not studies:
        where = locations(env)
        log.info(f"warehouse {where['warehouse'].resolve()}, study records {where['study_dir'].resolve()}")
    log.info(f"workspace {write_workspace(home, studies, WORKSPACE, REPO)}: {len(studies) or 1} code location(s)")


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def copy_warehouse(source: Path, target: Path, wait_seconds: float) -> None:
    """A consistent copy made by DuckDB itself, while no run writes the file (a writer holds it exclusively)."""
    if not source.exists():
        raise DeploymentError(f"there is no warehouse at {source} (check LMS_DUCKDB_PATH)")
    deadline = time.monotonic() + wait_seconds
    delay = 1.0
    while True:
        try:
            with duckdb.connect() as connection:
                connection.execute(f"ATTACH {_sql_literal(str(source))} AS warehouse (READ_ONLY)")
                connection.execute(f"ATTACH {_sql_literal(str(target))} AS copy")
                connection.execute("COPY FROM DATABASE warehouse TO copy")
            return
        except duckdb.IOException as error:
            target.unlink(missing_ok=True)
            if "Could not set lock" not in str(error):
                raise DeploymentError(f"cannot copy the warehouse {source} to {target}: {error}") from None
            if time.monotonic() + delay > deadline:
                raise DeploymentError(f"the warehouse {source} stayed in use for {wait_seconds:.0f} s: {error}") from None
            log.info(f"the warehouse is being written by a run; trying again in {delay:.0f} s")
            time.sleep(delay)
            delay = min(2 * delay, 30.0)


def backup(env: Mapping[str, str], destination: Path, wait_seconds: float) -> None:
    """A ``pg_dump`` of the Dagster database and a copy of the warehouse, both named by the time they were made."""
    settings = pg_settings(env)
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise DeploymentError("pg_dump is not installed (Debian package postgresql-client)")
    destination.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    dump = destination / f"dagster-{stamp}.dump"
    result = subprocess.run(
        [
            pg_dump,
            "--format=custom",
            "--no-password",
            f"--file={dump}",
            f"--host={settings.host}",
            f"--port={settings.port}",
            f"--username={settings.user}",
            f"--dbname={settings.db}",
        ],
        # The password goes through the environment, never the command line that `ps` shows.
        env={**os.environ, "PGPASSWORD": settings.password},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        reason = " ".join(result.stderr.split()) or f"exit code {result.returncode}"
        raise DeploymentError(f"pg_dump of {settings.db} at {settings.where} failed: {reason}")
    # One copy per study's warehouse on a server of several studies, else the one warehouse.
    sources = {f"warehouse-{s.name}-{stamp}.duckdb": s.warehouse for s in study_locations(env)} or {
        f"warehouse-{stamp}.duckdb": locations(env)["warehouse"]
    }
    for name, source in sources.items():
        copy_warehouse(source, destination / name, wait_seconds)
    for path in (dump, *(destination / name for name in sources)):
        log.info(f"backed up to {path} ({path.stat().st_size} bytes)")


@dataclass
class Service:
    """One long-running Dagster process that the launcher keeps up."""

    name: str
    args: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL)
        self.started_at = time.monotonic()
        self.restart_at = None
        log.info(f"started {self.name} (pid {self.process.pid}): {' '.join(self.args)}")

    def watch(self, now: float) -> None:
        """Restart the process after it exits, waiting 1, 2, 4 … up to 60 s between attempts."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.start()
            return
        assert self.process is not None, "watch() before start()"
        code = self.process.poll()
        if code is None:
            return
        uptime = now - self.started_at
        self.failures = 1 if uptime >= STABLE_SECONDS else self.failures + 1
        delay = min(MAX_BACKOFF_SECONDS, 2 ** (self.failures - 1))
        log.warning(
            f"{self.name} (pid {self.process.pid}) exited with code {code} after {uptime:.0f} s; restarting in {delay} s (attempt {self.failures})"
        )
        self.restart_at = now + delay

    def stop(self) -> None:
        """SIGTERM (Dagster then stops its code servers), and SIGKILL after a grace period."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning(f"{self.name} (pid {self.process.pid}) ignored SIGTERM for {STOP_GRACE_SECONDS} s: killing it")
            self.process.kill()
            self.process.wait()


def services(host: str, port: int, report_port: int, outputs: Path, workspace: Path) -> list[Service]:
    """The webserver (UI and GraphQL) and the daemon (sensors, schedules, run queue), over one ``workspace``, and the
    server of the ``outputs`` folder on ``report_port`` that the UI's links to the report lead to."""
    scripts = Path(sys.executable).parent
    return [
        Service("dagster-daemon", [str(scripts / "dagster-daemon"), "run", "-w", str(workspace)]),
        Service(
            "dagster-webserver",
            [str(scripts / "dagster-webserver"), "-h", host, "-p", str(port), "-w", str(workspace)],
        ),
        Service(
            "lms-report-server",
            [sys.executable, "-m", "lms_assets.infra.report_server", "--host", host, "--port", str(report_port), "--directory", str(outputs)],
        ),
    ]


def supervise(running: list[Service], stop: threading.Event, poll_seconds: float = 1.0) -> None:
    """Keep every service up until ``stop`` is set, then stop them all."""
    for service in running:
        service.start()
    try:
        while not stop.wait(poll_seconds):
            now = time.monotonic()
            for service in running:
                service.watch(now)
    finally:
        log.info(f"stopping {', '.join(service.name for service in running)}")
        for service in running:
            service.stop()


def start(host: str, port: int, report_port: int) -> None:
    # Checked in a child process: the launcher stays small while it supervises.
    subprocess.run([sys.executable, "-m", "lms_assets.infra.deploy", "check"], check=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info(f"the UI will listen on http://{host}:{port} (loopback only unless HOST says otherwise)")
    # The definitions link to the report with it; behind a reverse proxy the environment names the public address.
    report_url = os.environ.setdefault("LMS_REPORT_URL", f"http://{host}:{report_port}")
    outputs = locations(os.environ)["outputs"].resolve()
    log.info(f"the outputs folder {outputs} will be served read-only on http://{host}:{report_port} (LMS_REPORT_URL={report_url})")
    supervise(services(host, port, report_port, outputs, dagster_home(os.environ) / "workspace.yaml"), stop)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lms_assets.infra.deploy", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="validate the environment and the database, install the instance config")
    backup_command = commands.add_parser("backup", help="pg_dump the Dagster database and copy the warehouse")
    backup_command.add_argument("destination", type=lambda p: Path(p).resolve(), help="folder for the two files (created if missing)")
    backup_command.add_argument("--wait", type=float, default=600, help="seconds to wait for a run that is writing the warehouse (default 600)")
    start_command = commands.add_parser("start", help="check, then run the webserver, the daemon and the report server")
    start_command.add_argument("--host", default="127.0.0.1", help="where the UI listens (default 127.0.0.1)")
    start_command.add_argument("--port", type=int, default=3000, help="the UI's port (default 3000)")
    start_command.add_argument("--report-port", type=int, default=3001, help="the outputs folder's port, on the same host (default 3001)")
    return parser


def main(argv: list[str] | None = None) -> int:
    # Only the launcher's own logger: Dagster's processes write their own logs to the same stream.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s lms_assets.infra.deploy %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    args = parser().parse_args(argv)
    # Relative LMS_* paths mean the same for the launcher and its processes: relative to the checkout.
    os.chdir(REPO)
    try:
        if args.command == "check":
            check(os.environ)
        elif args.command == "backup":
            backup(os.environ, args.destination, args.wait)
        else:
            start(args.host, args.port, args.report_port)
    except (DeploymentError, StudiesError) as error:
        log.error(str(error))
        return 2
    except subprocess.CalledProcessError as error:
        # The check child has already logged its own one-line reason.
        return error.returncode
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
