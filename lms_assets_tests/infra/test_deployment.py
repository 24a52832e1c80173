"""The team deployment end to end, against a real PostgreSQL server started from Debian's binaries.

A throwaway cluster listens on 127.0.0.1 only; the launcher (``python -m lms_assets.infra.deploy start``) runs
``dagster-webserver`` and ``dagster-daemon`` over an instance whose storage is that server, with two studies side by
side, one code location each (``LMS_STUDY_DIRS``). Each location's follow-up sensor builds its own study, the shipped
one with a newly dropped data cut, into its own warehouse and outputs under its own asset keys; a backup is taken;
the webserver is restarted and the run history is still there; the database goes away and comes back while the
daemon keeps running.
"""

import glob
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg2
import pytest

from lms_assets.infra import deploy, studies
from lms_assets_tests.dagster_process import running
from lms_assets_tests.defs.test_refresh import later_cut
from lms_assets_tests.graphql_client import DagsterGraphQL, GraphQLError, free_port
from lms_assets_tests.test_second_study import SECOND, review_misprint

RUNS_QUERY = """
query Runs($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) {
    __typename
    ... on Runs { results { runId jobName status tags { key value } repositoryOrigin { repositoryLocationName } } }
    ... on PythonError { message }
  }
}
"""
HEARTBEATS_QUERY = "{ instance { daemonHealth { allDaemonStatuses { daemonType lastHeartbeatTime } } } }"
NEW_CUT = "2022-03-31.csv"
# One xdist worker for the module, so its tests share one PostgreSQL cluster and start together, first (conftest).
pytestmark = pytest.mark.xdist_group("postgres")


def postgres_bindir() -> Path | None:
    """The newest Debian PostgreSQL server binaries (``/usr/lib/postgresql/<major>/bin``), or those on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None


@dataclass
class PostgresServer:
    """A private cluster on 127.0.0.1, run by an unprivileged user, with one password-protected role."""

    bindir: Path
    folder: Path
    port: int
    as_owner: list[str]
    user: str = "lms"
    db: str = "dagster"
    password: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {
            "LMS_PG_HOST": "127.0.0.1",
            "LMS_PG_PORT": str(self.port),
            "LMS_PG_DB": self.db,
            "LMS_PG_USER": self.user,
            "LMS_PG_PASSWORD": self.password,
        }

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_owner, str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), *args],
            check=True,
            capture_output=True,
            timeout=90,
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.folder}"
            # A throwaway cluster: durability is not what is tested, and fsync is slow on shared disks.
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self.pg_ctl("-l", str(self.folder / "server.log"), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "-w", "stop")

    def connect(self):
        """The test role over TCP with its password, as Dagster connects."""
        return psycopg2.connect(host="127.0.0.1", port=self.port, dbname=self.db, user=self.user, password=self.password)

    def admin(self, statements: list[tuple[str, tuple]]) -> None:
        """Run statements as the superuser, who reaches the cluster only over its private socket."""
        connection = psycopg2.connect(host=str(self.folder), port=self.port, user="postgres", dbname="postgres")
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                for statement, parameters in statements:
                    cursor.execute(statement, parameters)
        finally:
            connection.close()


@pytest.fixture(scope="module")
def postgres():
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed; `make system-deps` installs them")
    # PostgreSQL refuses to run as root: as root, the cluster belongs to the Debian package's `postgres` user.
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="lms-pg-"))
    if as_owner:
        shutil.chown(folder, "postgres", "postgres")
    server = PostgresServer(bindir=bindir, folder=folder, port=free_port(), as_owner=as_owner)
    try:
        subprocess.run(
            [
                *as_owner,
                str(bindir / "initdb"),
                "-D",
                str(folder / "data"),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        server.start()
        server.password = secrets.token_urlsafe(18)
        server.admin(
            [
                (f"CREATE ROLE {server.user} LOGIN PASSWORD %s", (server.password,)),
                (f"CREATE DATABASE {server.db} OWNER {server.user}", ()),
            ]
        )
        yield server
    finally:
        if (folder / "data" / "postmaster.pid").exists():
            server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


# How long a poll below may wait for what it waits for. Each returns as soon as it sees it, so these limits cost
# nothing when all is well; they only have to be out of reach of a busy 2-core machine.
STARTUP_SECONDS = 300  # a webserver answering GraphQL; the daemon's first sensor tick
STALL_SECONDS = 300  # a run in which no step moved along (DagsterGraphQL.wait_for_run)
EVENT_SECONDS = 180  # a restart, a logged outage, a heartbeat after it


def wait_for(condition, timeout: float, what: str, poll: float = 0.5):
    """The first truthy value of ``condition()`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def started_pids(log_text: str, service: str) -> list[int]:
    return [int(pid) for pid in re.findall(rf"started {service} \(pid (\d+)\)", log_text)]


def daemon_errors(log_text: str) -> list[str]:
    """Error lines of the daemon's threads (e.g. "SensorDaemon caught an error", "Failed to add heartbeat")."""
    return [line for line in log_text.splitlines() if "dagster.daemon." in line and "ERROR" in line]


def runs_tagged(client: DagsterGraphQL, key: str, value: str) -> list[dict]:
    result = client.execute(RUNS_QUERY, {"tags": [{"key": key, "value": value}]})["runsOrError"]
    assert result["__typename"] == "Runs", result
    return result["results"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"LMS_PG_PASSWORD": "wrong"}, 'password authentication failed for user "lms" (check LMS_PG_USER and LMS_PG_PASSWORD)'),
        ({"LMS_PG_USER": "nobody"}, 'password authentication failed for user "nobody" (check LMS_PG_USER and LMS_PG_PASSWORD)'),
        ({"LMS_PG_DB": "nodb"}, 'database "nodb" does not exist (check LMS_PG_DB)'),
    ],
)
def test_wrong_credentials_name_the_variable(postgres, change, message):
    settings = deploy.pg_settings({**postgres.env, **change})
    with pytest.raises(deploy.DeploymentError) as error:
        deploy.check_database(settings)
    assert str(error.value).startswith(f"cannot connect to PostgreSQL at 127.0.0.1:{postgres.port} as {settings.user}: ")
    assert str(error.value).endswith(message)
    assert postgres.password not in str(error.value)


@pytest.mark.slow
def test_role_that_cannot_create_tables_is_refused(postgres):
    # Since PostgreSQL 15 only the database's owner may create tables in schema public.
    postgres.admin([("CREATE ROLE reader LOGIN PASSWORD %s", (postgres.password,))])
    settings = deploy.pg_settings({**postgres.env, "LMS_PG_USER": "reader"})
    with pytest.raises(deploy.DeploymentError) as error:
        deploy.check_database(settings)
    assert str(error.value).startswith(f"role reader may not create tables in database {postgres.db}")


def second_study(tmp_path: Path) -> Path:
    """A copy of the second study (another shape: test_second_study) that the test's server reads, its misprint
    reviewed so that its first run publishes."""
    target = tmp_path / "second"
    shutil.copytree(SECOND, target, ignore=shutil.ignore_patterns("README.md"))
    review_misprint(target)
    return target


@pytest.mark.slow
def test_team_deployment_end_to_end(postgres, study_dir, tmp_path):
    home = tmp_path / "dagster_home"
    env = {
        **os.environ,
        **postgres.env,
        "DAGSTER_HOME": str(home),
        "LMS_STUDY_DIRS": os.pathsep.join([str(study_dir), str(second_study(tmp_path))]),
        "LMS_DUCKDB_PATH": str(tmp_path / "warehouse" / "lms.duckdb"),
        "LMS_OUTPUT_DIR": str(tmp_path / "outputs"),
    }
    shipped, second = studies.study_locations(env)
    # A later data cut lands in the shipped study's follow-up folder: the patients alive in 2021 are followed a year longer.
    later_cut(study_dir, name=NEW_CUT, deaths=(), extra_months=12.0)
    port = free_port()
    client = DagsterGraphQL(f"http://127.0.0.1:{port}")
    log_path = tmp_path / "launcher.log"
    command = [
        sys.executable,
        "-m",
        "lms_assets.infra.deploy",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--report-port",
        str(free_port()),
    ]

    with running(command, env, log_path, grace=60) as launcher:

        def log_text() -> str:
            return launcher.log_tail(2_000_000)

        try:
            client.wait_until_up(timeout=STARTUP_SECONDS, alive=launcher.alive)

            # Each location's sensor sees its study's cut files at its first tick (its cursor starts empty) and launches one run.
            def sensor_runs_of_both() -> list[dict] | None:
                found = runs_tagged(client, "lms/trigger", "new-followup")
                return found if len(found) >= 2 else None

            sensor_runs = wait_for(sensor_runs_of_both, STARTUP_SECONDS, "a sensor run of each study")
            runs = {r["repositoryOrigin"]["repositoryLocationName"]: r for r in sensor_runs}
            assert len(sensor_runs) == 2 and set(runs) == {shipped.name, second.name}
            run = runs[shipped.name]
            tags = {t["key"]: t["value"] for t in run["tags"]}
            assert {r["jobName"] for r in sensor_runs} == {"followup_refresh"}
            assert NEW_CUT in tags["lms/changed_files"].split(",")
            assert tags["dagster/sensor_name"] == "new_followup_sensor"

            reports = {name: client.wait_for_run(r["runId"], timeout=STALL_SECONDS) for name, r in runs.items()}
            for study in (shipped, second):
                assert reports[study.name].status == "SUCCESS", reports[study.name].describe()
                assert {f"{study.name}/raw_followup", f"{study.name}/adtte"} <= reports[study.name].materialized
                with duckdb.connect(str(study.warehouse), read_only=True) as db:
                    cuts = db.execute("SELECT DISTINCT CAST(DCUTDT AS VARCHAR) FROM adtte ORDER BY 1").fetchall()
                    (studyid,) = db.execute("SELECT DISTINCT STUDYID FROM adsl").fetchone()
                assert [c for (c,) in cuts] == sorted(p.stem for p in (study.study_dir / "followup").glob("*.csv"))
                assert studies.location_name(studyid) == study.name
                assert (study.outputs / "report" / "study_report.html").is_file()
            report = reports[shipped.name]

            # One code location per study: the same tables, every asset key under its study's name.
            keys = client.asset_keys()
            tables = {name: {k.split("/", 1)[1] for k in keys if k.startswith(f"{name}/")} for name in runs}
            assert sum(map(len, tables.values())) == len(keys)
            assert tables[shipped.name] == tables[second.name] and {"adsl", "adtte", "study_report"} <= tables[shipped.name]

            # The history is PostgreSQL's, not a SQLite file in DAGSTER_HOME.
            with postgres.connect() as connection, connection.cursor() as cursor:
                cursor.execute("SELECT pipeline_name, status FROM runs WHERE run_id = %s", (run["runId"],))
                assert cursor.fetchall() == [("followup_refresh", "SUCCESS")]
            assert not list(home.rglob("*.db"))

            # A backup: the dump restores the run table, the warehouse copy has the new cut.
            backup = subprocess.run(
                [sys.executable, "-m", "lms_assets.infra.deploy", "backup", str(tmp_path / "backups")],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert backup.returncode == 0, backup.stderr
            (dump,) = (tmp_path / "backups").glob("dagster-*.dump")
            (copy,) = (tmp_path / "backups").glob(f"warehouse-{shipped.name}-*.duckdb")
            assert len(list((tmp_path / "backups").glob(f"warehouse-{second.name}-*.duckdb"))) == 1
            listing = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True)
            assert "TABLE public runs " in listing.stdout
            with duckdb.connect(str(copy), read_only=True) as db:
                assert db.execute("SELECT count(*) FROM adtte WHERE DCUTDT = DATE '2022-03-31'").fetchone()[0] > 0

            # Restart the webserver: the launcher brings it back and the history is still there.
            (webserver_pid,) = started_pids(log_text(), "dagster-webserver")
            os.kill(webserver_pid, signal.SIGTERM)
            wait_for(lambda: len(started_pids(log_text(), "dagster-webserver")) == 2, EVENT_SECONDS, "webserver restarted")
            client.wait_until_up(timeout=STARTUP_SECONDS, alive=launcher.alive)
            after_restart = runs_tagged(client, "lms/trigger", "new-followup")
            assert sorted((r["runId"], r["status"]) for r in after_restart) == sorted((r["runId"], "SUCCESS") for r in sensor_runs)
            assert client.run_report(run["runId"]).materialized == report.materialized

            # The database goes away: the daemon logs its retries and keeps running, and carries on afterwards.
            (daemon_pid,) = started_pids(log_text(), "dagster-daemon")
            outage_from = len(log_text())
            postgres.stop()
            wait_for(lambda: daemon_errors(log_text()[outage_from:]), EVENT_SECONDS, "the daemon logging the outage")
            time.sleep(3)
            postgres.start()
            recovered_at = time.time()

            def heartbeat_after_outage() -> bool:
                try:
                    statuses = client.execute(HEARTBEATS_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
                except (GraphQLError, urllib.error.URLError):
                    return False  # the webserver may still be reconnecting
                return any((s["lastHeartbeatTime"] or 0) > recovered_at for s in statuses)

            wait_for(heartbeat_after_outage, EVENT_SECONDS, "a daemon heartbeat after the outage", poll=2)
            assert started_pids(log_text(), "dagster-daemon") == [daemon_pid]
            assert len(started_pids(log_text(), "dagster-webserver")) == 2  # neither exited during the outage
            assert os.path.exists(f"/proc/{daemon_pid}")
        except BaseException:
            print(log_text()[-20_000:])
            raise
