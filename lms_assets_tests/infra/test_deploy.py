"""The team launcher's bad-input messages, the instance configuration and the restart-with-backoff supervisor.

The connection failures against a live server (wrong password, unknown role or database) are in
test_deployment.py, which starts a real PostgreSQL.
"""

import logging
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from lms_assets.infra import deploy, studies
from lms_assets_tests.conftest import SHIPPED_DATA
from lms_assets_tests.graphql_client import free_port

GOOD_ENV = {
    "LMS_PG_HOST": "127.0.0.1",
    "LMS_PG_PORT": "5432",
    "LMS_PG_DB": "dagster",
    "LMS_PG_USER": "lms",
    "LMS_PG_PASSWORD": "not-a-real-password",
}


# The instance's three storages, each a pooled dagster-postgres storage (lms_assets/infra/pg_storage.py).
POOLED_STORAGES = ("run_storage", "event_log_storage", "schedule_storage")


def launcher(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lms_assets.infra.deploy", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_missing_variable_fails_with_one_line_naming_it_and_no_traceback(tmp_path):
    env = {**GOOD_ENV, "DAGSTER_HOME": str(tmp_path)}
    del env["LMS_PG_PASSWORD"]
    result = launcher("start", env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith("ERROR: LMS_PG_PASSWORD is not set (that role's password)")


def test_every_missing_variable_is_named():
    with pytest.raises(deploy.DeploymentError) as error:
        deploy.pg_settings({"LMS_PG_HOST": "db", "LMS_PG_PORT": " ", "LMS_PG_PASSWORD": "x"})
    assert str(error.value) == (
        "LMS_PG_PORT is not set (the PostgreSQL server's port); "
        "LMS_PG_DB is not set (the database that holds Dagster's run, event-log and schedule storage); "
        "LMS_PG_USER is not set (the PostgreSQL role Dagster logs in as)"
    )


@pytest.mark.parametrize("port", ["abc", "0", "70000", "54.3", "-1"])
def test_port_must_be_a_port_number(port):
    with pytest.raises(deploy.DeploymentError) as error:
        deploy.pg_settings({**GOOD_ENV, "LMS_PG_PORT": port})
    assert str(error.value) == f"LMS_PG_PORT must be a port number (1-65535), got '{port}'"


def test_good_settings_are_read_and_the_password_is_not_printed():
    settings = deploy.pg_settings({**GOOD_ENV, "LMS_PG_PORT": " 5433 "})
    assert (settings.host, settings.port, settings.db, settings.user) == ("127.0.0.1", 5433, "dagster", "lms")
    assert GOOD_ENV["LMS_PG_PASSWORD"] not in repr(settings)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "DAGSTER_HOME is not set (the folder that holds the instance's dagster.yaml)"),
        ("relative/home", "DAGSTER_HOME must be an absolute path, got 'relative/home'"),
    ],
)
def test_dagster_home_must_be_an_absolute_path(value, message):
    env = {} if value is None else {"DAGSTER_HOME": value}
    with pytest.raises(deploy.DeploymentError) as error:
        deploy.dagster_home(env)
    assert str(error.value) == message


@pytest.mark.slow
def test_unreachable_server_names_host_and_port_without_traceback(tmp_path):
    port = free_port()  # nothing listens there
    env = {**GOOD_ENV, "LMS_PG_PORT": str(port), "DAGSTER_HOME": str(tmp_path / "home")}
    result = launcher("check", env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"ERROR: cannot connect to PostgreSQL at 127.0.0.1:{port} as lms: Connection refused" in result.stderr
    assert result.stderr.rstrip().endswith("(check LMS_PG_HOST and LMS_PG_PORT, and that the server is running)")
    # Nothing is installed before the database answers.
    assert not (tmp_path / "home").exists()


def test_unknown_host_names_the_host_variable():
    settings = deploy.pg_settings({**GOOD_ENV, "LMS_PG_HOST": "no-such-host.invalid"})
    with pytest.raises(deploy.DeploymentError) as error:
        deploy.check_database(settings, timeout=2)
    assert str(error.value).startswith("cannot connect to PostgreSQL at no-such-host.invalid:5432 as lms: ")
    assert str(error.value).endswith("(check LMS_PG_HOST and LMS_PG_PORT, and that the server is running)")


@pytest.mark.parametrize(
    ("libpq_error", "hint"),
    [
        ('connection to server at "db" (10.0.0.5), port 5432 failed: FATAL:  role "lms" does not exist', "check LMS_PG_USER"),
        (
            'connection to server at "db" (10.0.0.5), port 5432 failed: FATAL:  no pg_hba.conf entry for host '
            '"10.0.0.9", user "lms", database "dagster", no encryption',
            "the server's pg_hba.conf does not admit this host, role and database",
        ),
        (
            'connection to server at "db" (10.0.0.5), port 5432 failed: timeout expired',
            "check LMS_PG_HOST and LMS_PG_PORT, and that the server is running",
        ),
    ],
)
def test_other_libpq_failures_point_at_the_setting_to_fix(libpq_error, hint):
    reason = deploy._libpq_reason(libpq_error)
    assert not reason.startswith(("connection to server", "FATAL"))
    assert deploy._hint(reason) == hint


@pytest.mark.slow
def test_nothing_set_names_every_variable_in_one_line(tmp_path):
    result = launcher("check", env={})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in ["DAGSTER_HOME", *deploy.PG_VARIABLES]:
        assert f"{name} is not set" in lines[0]


@pytest.mark.slow
def test_warehouse_backup_waits_for_a_writer_and_then_copies_every_table(tmp_path):
    import duckdb

    source, target = tmp_path / "lms.duckdb", tmp_path / "copy.duckdb"
    with duckdb.connect(str(source)) as db:
        db.execute("CREATE TABLE adsl AS SELECT range AS SUBJID FROM range(19)")
    writer = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(source)!r}); print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(deploy.DeploymentError) as error:
            deploy.copy_warehouse(source, target, wait_seconds=2)
        assert str(error.value).startswith(f"the warehouse {source} stayed in use for 2 s: ")
        assert not target.exists()
    finally:
        writer.communicate("", timeout=30)
    deploy.copy_warehouse(source, target, wait_seconds=0)
    with duckdb.connect(str(target), read_only=True) as db:
        assert db.execute("SELECT count(*), max(SUBJID) FROM adsl").fetchone() == (19, 18)


def test_instance_config_takes_every_connection_setting_from_the_environment():
    instance = yaml.safe_load(deploy.INSTANCE_CONFIG.read_text())
    for storage in POOLED_STORAGES:
        assert instance[storage]["module"] == "lms_assets.infra.pg_storage"
        db = instance[storage]["config"]["postgres_db"]
        assert {key: value for key, value in db.items() if key != "scheme"} == {
            "username": {"env": "LMS_PG_USER"},
            "password": {"env": "LMS_PG_PASSWORD"},
            "hostname": {"env": "LMS_PG_HOST"},
            "db_name": {"env": "LMS_PG_DB"},
            "port": {"env": "LMS_PG_PORT"},
        }
    assert "concurrency" not in instance
    assert instance["run_monitoring"]["enabled"] is True
    assert instance["telemetry"]["enabled"] is False


def test_instance_config_is_valid_for_dagster_and_builds_a_psycopg2_url(tmp_path, monkeypatch):
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef
    from dagster_postgres.utils import pg_url_from_config

    from lms_assets.infra import pg_storage

    for name, value in GOOD_ENV.items():
        monkeypatch.setenv(name, value)
    deploy.install_instance_config(tmp_path)
    config, _ = dagster_instance_config(str(tmp_path))  # raises on anything the instance schema rejects
    ref = InstanceRef.from_dir(str(tmp_path))
    for storage, data in zip(POOLED_STORAGES, (ref.run_storage_data, ref.event_storage_data, ref.schedule_storage_data)):
        cls = getattr(pg_storage, config[storage]["class"])
        processed = process_config(resolve_to_config_type(cls.config_type()), config[storage]["config"])
        assert processed.success, processed.errors
        # SQLAlchemy 2.1 would read a bare postgresql:// as psycopg 3, which dagster-postgres does not install.
        assert pg_url_from_config(processed.value) == "postgresql+psycopg2://lms:not-a-real-password@127.0.0.1:5432/dagster"
        # What the instance hands the run workers it launches: the pooled classes, not dagster-postgres's own.
        assert (data.module_name, data.class_name) == ("lms_assets.infra.pg_storage", cls.__name__)
    # The daemon dequeues every run, so the run queue applies to UI, sensor and schedule runs alike.
    assert type(ref.run_coordinator).__name__ == "QueuedRunCoordinator"


def test_instance_config_is_rewritten_only_when_it_differs(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="lms_assets.infra.deploy")
    target = deploy.install_instance_config(tmp_path)
    assert target.read_bytes() == deploy.INSTANCE_CONFIG.read_bytes()
    deploy.install_instance_config(tmp_path)
    assert sum("wrote deploy/dagster.yaml" in m for m in caplog.messages) == 1
    target.write_text("telemetry:\n  enabled: true\n")
    deploy.install_instance_config(tmp_path)
    assert target.read_bytes() == deploy.INSTANCE_CONFIG.read_bytes()
    assert sum("wrote deploy/dagster.yaml" in m for m in caplog.messages) == 2


def test_supervisor_restarts_an_exiting_process_with_backoff_and_logs_each_restart(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="lms_assets.infra.deploy")
    starts = tmp_path / "starts"
    service = deploy.Service("flaky", ["/bin/sh", "-c", f"printf x >> '{starts}'; exit 3"])
    stop = threading.Event()

    class StopAtTheThirdRestart(logging.Handler):
        # Stopped by what the supervisor says, not by a timer a busy machine could outrun.
        restarts = 0

        def emit(self, record: logging.LogRecord) -> None:
            self.restarts += record.getMessage().startswith("flaky (pid")
            if self.restarts == 3:
                stop.set()

    stopper = StopAtTheThirdRestart()
    logging.getLogger("lms_assets.infra.deploy").addHandler(stopper)
    try:
        deploy.supervise([service], stop, poll_seconds=0.1)
    finally:
        logging.getLogger("lms_assets.infra.deploy").removeHandler(stopper)
    # Started, then restarted after 1 s and 2 s of backoff; stopped while the third restart waits its 4 s.
    assert len(starts.read_text()) == 3
    restarts = [m for m in caplog.messages if m.startswith("flaky (pid")]
    assert [m.split("; ")[1] for m in restarts] == [
        "restarting in 1 s (attempt 1)",
        "restarting in 2 s (attempt 2)",
        "restarting in 4 s (attempt 3)",
    ]
    assert all("exited with code 3" in m for m in restarts)


# --- several studies on one server (lms_assets.infra.studies) ---------------------------------------------


def _study(folder, studyid: str):
    """A study folder holding only its study.toml, under ``studyid``: all the workspace reads."""
    folder.mkdir()
    text = (SHIPPED_DATA / "study.toml").read_text()
    (folder / "study.toml").write_text(re.sub(r'(?m)^studyid = ".*"$', f'studyid = "{studyid}"', text))
    return folder


def test_each_study_folder_is_a_location_with_its_own_warehouse_outputs_and_report(tmp_path):
    first, second = _study(tmp_path / "a", "ZOU-LMS-ANLOTINIB"), _study(tmp_path / "b", "Second_Study")
    env = {
        "LMS_STUDY_DIRS": f"{first}:{second}:",
        "LMS_DUCKDB_PATH": "/srv/warehouse/lms.duckdb",
        "LMS_OUTPUT_DIR": "/srv/outputs",
        "LMS_REPORT_URL": "https://host/report/",
    }
    found = studies.study_locations(env)
    assert [(s.name, s.study_dir, s.warehouse, s.outputs, s.report_url) for s in found] == [
        (
            "zou_lms_anlotinib",
            first,
            Path("/srv/warehouse/zou_lms_anlotinib/lms.duckdb"),
            Path("/srv/outputs/zou_lms_anlotinib"),
            "https://host/report/zou_lms_anlotinib",
        ),
        (
            "second_study",
            second,
            Path("/srv/warehouse/second_study/lms.duckdb"),
            Path("/srv/outputs/second_study"),
            "https://host/report/second_study",
        ),
    ]
    assert studies.study_locations({}) == []

    home = tmp_path / "home"
    home.mkdir()
    written = yaml.safe_load(studies.write_workspace(home, found, deploy.WORKSPACE, deploy.REPO).read_text())
    assert written == {
        "load_from": [
            {
                "python_module": {
                    "module_name": "lms_assets.infra.studies",
                    "attribute": f"study_{name}",
                    "location_name": name,
                    "working_directory": str(deploy.REPO),
                }
            }
            for name in ("zou_lms_anlotinib", "second_study")
        ]
    }
    # Without LMS_STUDY_DIRS the server loads the repository's one location, as before.
    assert studies.write_workspace(home, [], deploy.WORKSPACE, deploy.REPO).read_text() == deploy.WORKSPACE.read_text()


def test_two_folders_of_one_study_or_a_folder_without_a_study_are_refused_naming_the_folders(tmp_path):
    first, again = _study(tmp_path / "a", "S-1"), _study(tmp_path / "b", "s_1")
    with pytest.raises(studies.StudiesError) as error:
        studies.study_locations({"LMS_STUDY_DIRS": f"{first}:{again}"})
    assert str(error.value) == f"LMS_STUDY_DIRS: {first} and {again} are both study 's_1': each folder needs its own studyid"
    with pytest.raises(studies.StudiesError) as error:
        studies.study_locations({"LMS_STUDY_DIRS": str(tmp_path / "missing")})
    assert str(error.value).startswith(f"LMS_STUDY_DIRS: study folder {tmp_path / 'missing'} is not usable: ")


def test_a_study_location_puts_every_asset_and_check_under_its_name_and_its_jobs_select_the_same_tables(tmp_path, monkeypatch):
    """The attribute the workspace names builds that study's definitions: the default location's assets, checks and
    jobs, each key under the study's name (one asset namespace per Dagster instance)."""
    from lms_assets import definitions

    second = tmp_path / "second"
    shutil.copytree(SHIPPED_DATA, second, ignore=shutil.ignore_patterns("warehouse", "README.md"))
    (second / "study.toml").write_text(re.sub(r'(?m)^studyid = ".*"$', 'studyid = "SECOND-STUDY"', (second / "study.toml").read_text()))
    monkeypatch.setenv("LMS_STUDY_DIRS", str(second))
    monkeypatch.setenv("LMS_DUCKDB_PATH", str(tmp_path / "warehouse" / "lms.duckdb"))
    prefixed = studies.study_second_study.get_repository_def()
    plain = definitions.defs.get_repository_def()

    def names(keys) -> set[tuple[str, ...]]:
        return {tuple(key.path) for key in keys}

    assert names(prefixed.asset_graph.get_all_asset_keys()) == {("second_study", *key) for key in names(plain.asset_graph.get_all_asset_keys())}
    assert {(c.asset_key.path[0], c.asset_key.path[-1], c.name) for c in prefixed.asset_graph.asset_check_keys} == {
        ("second_study", c.asset_key.path[-1], c.name) for c in plain.asset_graph.asset_check_keys
    }
    for job in ("followup_refresh", "full_refresh"):
        selected = names(prefixed.get_job(job).asset_layer.selected_asset_keys)
        assert selected == {("second_study", *key) for key in names(plain.get_job(job).asset_layer.selected_asset_keys)}, job
