"""`make run` (``lms_assets.infra.launcher`` around `dagster dev`) stops every process it started within 10 s of
SIGTERM and exits 0, starts without deprecation or misleading warnings and, into a file, without colour codes,
and serves the outputs folder read-only beside the UI; `make install` installs only when the package changed.

Runs `make run` on free ports, a fresh private instance and a private study copy,
waits until the webserver answers and the daemon and a code server are up, asks the report server for files,
sends SIGTERM as `make` passes it on, and then looks for any survivor among the launcher's descendants and in
their process groups.
"""

import http.client
import io
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from lms_assets.infra import launcher as launcher_module
from lms_assets_tests.dagster_process import REPO, ManagedProcess
from lms_assets_tests.graphql_client import DagsterGraphQL, free_port

HOST = "127.0.0.1"
START_TIMEOUT = 180
STOP_WITHIN = 10.0
LOG = REPO / "test-artifacts" / "make_run" / "launcher.log"
# What `dagster dev` must not print at start-up: setuptools' license deprecations, Dagster's "dagster.yaml
# ... will not be used" for a template in the working directory, and any other Python warning.
WARNING_LINE = re.compile(r"deprecat|will not be used|\w+Warning\b", re.IGNORECASE)


def _descendants(root: psutil.Process) -> list[psutil.Process]:
    try:
        return root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _roles(processes: list[psutil.Process]) -> set[str]:
    """Which Dagster services are among ``processes``, from their command lines."""
    roles = set()
    for process in processes:
        try:
            line = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if "dagster_webserver" in line or "dagster-webserver" in line:
            roles.add("webserver")
        if "dagster._daemon" in line or "dagster-daemon" in line:
            roles.add("daemon")
        if " grpc" in line or "code-server" in line:
            roles.add("code server")
    return roles


def _wait_for_services(root: psutil.Process, launcher: ManagedProcess) -> list[psutil.Process]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and launcher.alive():
        tree = _descendants(root)
        if {"webserver", "daemon", "code server"} <= _roles(tree):
            return tree
        time.sleep(1.0)
    raise AssertionError(f"services not all up: {sorted(_roles(_descendants(root)))}\n{launcher.log_tail()}")


def _request(port: int, method: str, path: str) -> tuple[int, bytes]:
    """Status and body of one request to the report server, the path sent exactly as given."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _check_the_report_server(port: int, outputs: Path) -> None:
    """The outputs folder, created by the first run, is served: its files, not its folders, nothing outside it."""
    (outputs / "charts").mkdir(parents=True, exist_ok=True)
    (outputs / "charts" / "placed-by-the-test.txt").write_text("placed by the test")
    (outputs.parent / "beside-outputs.txt").write_text("outside")
    assert _request(port, "GET", "/charts/placed-by-the-test.txt") == (200, b"placed by the test")
    assert _request(port, "GET", "/")[0] == 404
    assert _request(port, "GET", "/charts/")[0] == 404
    assert _request(port, "GET", "/../beside-outputs.txt")[0] == 404
    assert _request(port, "POST", "/charts/placed-by-the-test.txt")[0] == 405


def _environment(process: psutil.Process) -> dict[str, str]:
    try:
        return process.environ()
    except psutil.Error:
        return {}


@pytest.mark.slow
def test_make_run_stops_all_its_processes_within_10_s_of_sigterm(study_dir: Path, tmp_path: Path):
    LOG.unlink(missing_ok=True)
    port = free_port(HOST)
    report_port = free_port(HOST)
    # Not there at the start, as on a fresh checkout: the report server must start anyway.
    outputs = tmp_path / "outputs"
    env = {
        **os.environ,
        "LMS_DATA_DIR": str(study_dir),
        "LMS_DUCKDB_PATH": str(tmp_path / "warehouse" / "lms.duckdb"),
        "LMS_OUTPUT_DIR": str(outputs),
    }
    env.pop("LMS_REPORT_URL", None)
    # `make run` as README gives it, on free ports and a fresh private instance (make creates it); its output goes
    # to a file, not a terminal. Its recipe execs the launcher, so make's one child is the launcher.
    make = ManagedProcess(["make", "run", f"PORT={port}", f"REPORT_PORT={report_port}", f"DAGSTER_HOME={tmp_path / 'dagster_home'}"], env, LOG)
    try:
        DagsterGraphQL(f"http://{HOST}:{port}").wait_until_up(START_TIMEOUT, alive=make.alive)
        root = next(p for p in psutil.Process(make.pid).children() if " -m lms_assets.infra.launcher " in _cmdline(p))
        _wait_for_services(root, make)
        _check_the_report_server(report_port, outputs)
        # `dagster dev` and what it starts (the code servers that load the definitions) know where the report is.
        dagster_dev = next(p for p in root.children() if "dev" in _cmdline(p))
        assert _environment(dagster_dev).get("LMS_REPORT_URL") == f"http://{HOST}:{report_port}"
        tree = [root, *_descendants(root)]
        groups = {os.getpgid(p.pid) for p in tree if p.is_running()}

        # As Ctrl-C does: the signal reaches make and the launcher (one process group).
        os.killpg(make.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(tree, timeout=STOP_WITHIN)
        in_groups = [p for p in psutil.process_iter() if _pgid(p) in groups and _running(p)]
        assert not alive and not in_groups, (
            f"alive {STOP_WITHIN:.0f} s after SIGTERM: {[(p.pid, _cmdline(p)) for p in [*alive, *in_groups]]}\n{make.log_tail()}"
        )
        # A stop asked for is a normal stop: the launcher exits 0, so `make` reports no error ("Error" in its output).
        assert make.process.wait(timeout=STOP_WITHIN) in (0, -signal.SIGTERM)
        assert "Error" not in make.log_tail(), make.log_tail()
        with pytest.raises(ConnectionRefusedError):
            _request(report_port, "GET", "/charts/placed-by-the-test.txt")
    finally:
        make.stop(grace=1.0)

    # Start-up is what comes before the webserver says it serves (a run the sensor starts logs on after it).
    log = LOG.read_text(errors="replace")
    startup = log[: log.index("Serving dagster-webserver")]
    warnings = [line for line in startup.splitlines() if WARNING_LINE.search(line)]
    assert not warnings, "\n".join(warnings)
    assert "\x1b[" not in log, "colour codes in output that is not a terminal"


class _ClosedPipe(io.BytesIO):
    def write(self, data) -> int:
        raise BrokenPipeError(32, "Broken pipe")


class _Source(io.BytesIO):
    """Remembers how much was left unread when it was closed."""

    unread = -1

    def close(self) -> None:
        if not self.closed:
            self.unread = len(self.getbuffer()) - self.tell()
        super().close()


def test_the_copy_of_dagster_output_drops_colour_codes_and_drains_a_closed_reader():
    coloured = b"\x1b[32m2026-12-07 14:30:03 +0000\x1b[0m - dagster - \x1b[34mINFO\x1b[0m - Launching Dagster services...\n"
    target = io.BytesIO()
    launcher_module._copy_without_colour(io.BytesIO(coloured * 2), target)
    assert target.getvalue() == b"2026-12-07 14:30:03 +0000 - dagster - INFO - Launching Dagster services...\n" * 2
    # Once the terminal or pipe the launcher writes to is gone, Dagster's output is still read, so it never blocks.
    source = _Source(coloured * 3)
    launcher_module._copy_without_colour(source, _ClosedPipe())
    assert source.unread == 0


def test_make_install_runs_pip_only_when_the_package_definition_changed(tmp_path: Path):
    """`make run`, `make test` and `make lint` depend on `install`: it is a stamp newer than pyproject.toml and
    constraints.txt, so a start does not reinstall (and print pip's output) every time. Checked with `make -n`,
    which prints the commands make would run, on a copy of the three files and a stand-in virtualenv."""
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        (tmp_path / name).write_bytes((REPO / name).read_bytes())
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()
    (tmp_path / ".venv" / ".installed").touch()

    def age(name: str, seconds_ago: int) -> None:
        then = time.time() - seconds_ago
        os.utime(tmp_path / name, (then, then))

    def planned() -> str:
        return subprocess.run(["make", "-n", "install"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout

    for name in (".venv/bin/python", "pyproject.toml", "constraints.txt"):
        age(name, 60)
    age(".venv/.installed", 30)
    assert "pip install" not in planned()
    for changed in ("pyproject.toml", "constraints.txt"):
        age(changed, 10)
        assert "pip install" in planned(), f"{changed} changed"
        age(changed, 60)


def _pgid(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except (ProcessLookupError, PermissionError):
        return None


def _running(process: psutil.Process) -> bool:
    """Alive and not a zombie (an exited child its parent has not reaped yet holds no resources)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return "?"
