"""`make run`: `dagster dev` that is gone, with every process it started, within seconds of Ctrl-C or SIGTERM.

`dagster dev` alone can take minutes to stop: on an interrupt it asks the webserver and then the daemon to shut
down and waits up to 60 s for each in turn (``_SUBPROCESS_WAIT_TIMEOUT`` in ``dagster/_cli/dev.py``), while
they wait for their code servers, sensor ticks and run monitoring to wind down; code servers left behind
exit only when their heartbeat times out. On a busy machine that is tens of seconds.

This launcher starts `dagster dev` in a process group of its own (its webserver, daemon, code servers and run
workers inherit it), passes an interrupt on to the whole group as the terminal would, gives it
``GRACE_SECONDS`` to stop cleanly and then kills whatever is left of the group. A run killed that way leaves
each table it was writing as its old or its new complete version (docs/operations.md). A stop asked for (Ctrl-C,
SIGTERM) exits 0; if `dagster dev` ends by itself, the launcher exits with its code.

With ``--report-port PORT`` the launcher also serves the outputs folder (``LMS_OUTPUT_DIR``) read-only on the
webserver's host and that port (``lms_assets.infra.report_server``, in a thread: it binds before Dagster starts, so a
port in use stops the launcher at once), and gives `dagster dev` ``LMS_REPORT_URL`` (``http://HOST:PORT``, unless
already set) so the definitions can link to the files. Every other argument goes to `dagster dev`:

    .venv/bin/python -m lms_assets.infra.launcher --report-port 3001 -h 127.0.0.1 -p 3000

When the launcher's output is not a terminal (a log file, CI), Dagster's ANSI colour codes are removed from it.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

from lms_assets.infra.report_server import ReportServer

# Ctrl-C or SIGTERM to all gone within 10 s: 8 s of grace leaves the kill and the reaping time to spare.
GRACE_SECONDS = 8.0
POLL_SECONDS = 0.1


# `dagster dev` warns on every start that it "is superseded ... Use 'dg dev' instead": dg is a separate CLI this
# project does not install or need, so the advice only misleads. Matched by its text (a category filter would
# import Dagster in every Python process at start-up).
QUIET_WARNINGS = "ignore:Function `dev_command` is superseded"


# Dagster's "colored" log format (``coloredlogs.ColoredFormatter``, which ``dagster dev`` sets up for itself, its
# webserver and its daemon) writes colour codes whether or not the output is a terminal, and neither Dagster nor
# coloredlogs reads a switch to turn them off (NO_COLOR included); the other formats are JSON or colour too.
ANSI_ESCAPE = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]")
# The copies of the output drain within moments of the group's end; a process outside the group that kept the pipe
# open must not hold the launcher.
DRAIN_SECONDS = 1.0
# `dagster dev`'s own default for -h.
DEFAULT_HOST = "127.0.0.1"
# LOCATIONS["outputs"] of lms_assets.defs.resources, which the launcher does not import: it would load Dagster, Polars
# and DuckDB (130 MB) into a process that only waits for signals (lms_assets_tests/infra/test_report_server.py compares them).
OUTPUTS_VARIABLE, OUTPUTS_DEFAULT = "LMS_OUTPUT_DIR", "outputs"


def dagster_dev_env(environ: dict[str, str], report_url: str | None = None) -> dict[str, str]:
    """``environ`` with the superseded-command warning silenced (other warning filters kept) and, unless it
    already names one, ``report_url`` as ``LMS_REPORT_URL``."""
    filters = [f for f in environ.get("PYTHONWARNINGS", "").split(",") if f]
    env = {**environ, "PYTHONWARNINGS": ",".join([*filters, QUIET_WARNINGS])}
    if report_url is not None:
        env.setdefault("LMS_REPORT_URL", report_url)
    return env


def outputs_folder(environ: dict[str, str]) -> Path:
    """The outputs folder the definitions write to, as ``lms_assets.defs.resources.locations`` reads it."""
    return Path(environ.get(OUTPUTS_VARIABLE) or OUTPUTS_DEFAULT)


def split_args(args: list[str]) -> tuple[int | None, str, list[str]]:
    """The launcher's ``--report-port`` (None without it), the host `dagster dev` will serve on, and the
    arguments for `dagster dev`: all of ``args`` but ``--report-port``."""
    own = argparse.ArgumentParser(prog="python -m lms_assets.infra.launcher", add_help=False, allow_abbrev=False)
    own.add_argument("--report-port", type=int)
    known, rest = own.parse_known_args(args)
    # -h is `dagster dev`'s host, not help: read here, and left in place for `dagster dev`.
    dev = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    dev.add_argument("-h", "--host", "--dagit-host", default=DEFAULT_HOST)
    return known.report_port, dev.parse_known_args(rest)[0].host, rest


def dagster_dev_command(args: list[str]) -> list[str]:
    """`dagster dev` of the environment running the launcher, with ``args``."""
    return [str(Path(sys.executable).parent / "dagster"), "dev", *args]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # A member we may not signal is still a member.
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def stop_group(process: subprocess.Popen, grace: float = GRACE_SECONDS) -> None:
    """Interrupt ``process``'s group (SIGINT, as Ctrl-C in a terminal), wait up to ``grace`` seconds for the
    whole group to exit, then SIGKILL what is left."""
    pgid = process.pid
    _signal_group(pgid, signal.SIGINT)
    deadline = time.monotonic() + grace
    # Reaping the leader matters: an unreaped (zombie) leader would keep the group "alive" to killpg.
    while time.monotonic() < deadline and (process.poll() is None or _group_alive(pgid)):
        time.sleep(POLL_SECONDS)
    if process.poll() is None or _group_alive(pgid):
        print(f"lms_assets.infra.launcher: Dagster did not stop within {grace:.0f} s; killing its processes", file=sys.stderr, flush=True)
        _signal_group(pgid, signal.SIGKILL)
    process.wait()


def _copy_without_colour(source: BinaryIO, target: BinaryIO) -> None:
    """Copy ``source`` to ``target`` line by line, without ANSI escape sequences, until ``source`` ends. Once
    ``target`` is gone (a reader that closed its end) the rest is read and dropped: a child must never block
    writing to a full pipe."""
    writable = True
    with source:
        for line in source:
            if not writable:
                continue
            try:
                target.write(ANSI_ESCAPE.sub(b"", line))
                target.flush()
            except OSError:
                writable = False


def _uncoloured_copies(process: subprocess.Popen) -> list[threading.Thread]:
    """Threads copying ``process``'s piped streams to the launcher's own."""
    pairs = [(process.stdout, sys.stdout.buffer), (process.stderr, sys.stderr.buffer)]
    threads = [threading.Thread(target=_copy_without_colour, args=pair, daemon=True) for pair in pairs if pair[0] is not None]
    for thread in threads:
        thread.start()
    return threads


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _reset_signals(blocked: set[signal.Signals]) -> None:
    """In the child before exec: the held signals unblocked, and SIGINT not ignored. A shell starts background
    jobs with SIGINT ignored, and Python then installs no KeyboardInterrupt handler, so `dagster dev` would
    never see the interrupt it shuts down on."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    report_port, host, dev_args = split_args(sys.argv[1:] if argv is None else argv)
    # Signals are held from before the start (none is lost or kills the launcher half-way) and taken with
    # sigwaitinfo: no polling while Dagster runs. SIGCHLD says `dagster dev` ended by itself. Threads started from
    # here on inherit the mask, so the signals reach sigwaitinfo alone.
    waited = STOP_SIGNALS | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    report = None
    if report_port is not None:
        outputs = outputs_folder(dict(os.environ))
        try:
            report = ReportServer(host, report_port, outputs)
        except OSError as error:
            print(f"lms_assets.infra.launcher: cannot serve {outputs} on {host}:{report_port}: {error.strerror}", file=sys.stderr, flush=True)
            return 1
        threading.Thread(target=report.serve_forever, name="report-server", daemon=True).start()
        print(f"lms_assets.infra.launcher: serving {outputs.resolve()} read-only on {report.url}", flush=True)
    # Its own session: a terminal's Ctrl-C reaches only the launcher, which then stops the group in order. A stream
    # that is not a terminal gets Dagster's output through a copy that drops the colour codes.
    process = subprocess.Popen(
        dagster_dev_command(dev_args),
        env=dagster_dev_env(dict(os.environ), report.url if report is not None else None),
        start_new_session=True,
        preexec_fn=lambda: _reset_signals(waited),
        stdout=None if sys.stdout.isatty() else subprocess.PIPE,
        stderr=None if sys.stderr.isatty() else subprocess.PIPE,
    )
    copies = _uncoloured_copies(process)
    received = None
    while received is None and process.poll() is None:
        info = signal.sigwaitinfo(waited)
        received = info.si_signo if info.si_signo in STOP_SIGNALS else None
    # Also when `dagster dev` exited by itself: nothing it started may stay behind.
    stop_group(process)
    if report is not None:
        report.shutdown()
        report.server_close()
    for copy in copies:
        copy.join(DRAIN_SECONDS)
    if received is not None:
        return 0
    # A negative code is the signal that killed it; the shell's convention is 128 + that signal.
    return process.returncode if process.returncode >= 0 else 128 - process.returncode


if __name__ == "__main__":
    sys.exit(main())
