"""Starting and stopping real Dagster processes (``dagster dev``, ``dagster-webserver``, ``dagster-daemon``) in tests.

Each process runs in its own session (so in its own process group) with its output in a log file.
Stopping asks the process to shut down (SIGTERM: Dagster then stops its own children), waits, and
then kills whatever is left of the group, so nothing outlives the test, also when the test fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def venv_bin(program: str) -> str:
    """A console script of the environment running the tests (works from any virtualenv)."""
    return str(Path(sys.executable).parent / program)


def instance_home(folder: Path) -> Path:
    """A fresh ``DAGSTER_HOME`` holding ``deploy/local/dagster.yaml`` (pools, telemetry off), its storage created.

    The storage is created here, once, as ``make instance`` does before any run: processes started together on
    an empty ``DAGSTER_HOME`` (two CLI runs; the webserver, daemon and a run of ``dagster dev``) would each try
    to create Dagster's SQLite schema, and one could fail with "table runs already exists".
    """
    from dagster import DagsterInstance

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "deploy" / "local" / "dagster.yaml", folder / "dagster.yaml")
    with DagsterInstance.from_config(str(folder)):
        pass
    return folder


class ManagedProcess:
    """A child process in its own process group, with stdout and stderr in ``log_path``."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path = REPO):
        self.args = list(args)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 (open for the process's lifetime, closed in stop())
        self.process = subprocess.Popen(
            self.args,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the process's output, for a failure message."""
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return text[-chars:]

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM the process, wait up to ``grace`` seconds, then SIGKILL everything left in its group."""
        try:
            if self.alive():
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
            # Children (code server, run workers) share the group and may outlive the parent.
            _kill_group(self.pid)
            self.process.wait(timeout=10)
        finally:
            self._log.close()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def running(args: Sequence[str], env: Mapping[str, str], log_path: Path, grace: float = 30.0) -> Iterator[ManagedProcess]:
    """Run a process for the duration of a ``with`` block and stop it (and its group) however the block ends."""
    managed = ManagedProcess(args, env, log_path)
    try:
        yield managed
    finally:
        managed.stop(grace)


def dagster_dev_args(module: str, host: str, port: int) -> list[str]:
    """``dagster dev`` serving one module's definitions on ``host:port`` (webserver, daemon and code server)."""
    return [venv_bin("dagster"), "dev", "-m", module, "-h", host, "-p", str(port)]
