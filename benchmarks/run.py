"""Benchmark of the whole asset graph, from the shipped 19 patients to a million synthetic ones.

    .venv/bin/python benchmarks/run.py                                  # shipped, 10 000, 100 000, 1 000 000
    .venv/bin/python benchmarks/run.py --sizes shipped,10000 --seed 7   # a quicker subset

For each study it times, each in a fresh process with a fresh Dagster instance and warehouse:

* ``graph``   the full graph through the path users run: ``dagster asset materialize -m lms_assets.definitions
              --select '*'`` with the executor the project ships;
* ``trivial`` a one-asset Dagster materialization by the same CLI (``benchmarks/trivial_dagster.py``): Dagster's floor;
* ``bare``    ``benchmarks/bare.py``: the same tables from the same pure functions with Polars and DuckDB, no Dagster:
              the compute floor;
* ``ui``      (shipped study) the full graph launched through GraphQL on a running ``dagster dev``, as the UI's
              **Materialize all** does, three times in a row: launch to run end, time in the queue, process start.

Wall time is measured around the process; peak memory is the largest sum of resident set sizes over the
process and all its descendants, sampled every 10 ms with psutil (``tree RSS``). The kernel's own
``ru_maxrss`` from ``wait4`` (the largest single process in the tree, not a sum) is recorded beside it.
Per-step times come from the STEP_SUCCESS events in the run's event log. Results go under
``--workdir`` (default ``benchmarks/results/``, where the result files are tracked); a synthetic study is
generated once per size, seed and cuts into its git-ignored ``studies/`` folder and reused.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
DEFAULT_SIZES = "shipped,10000,100000,1000000"
SAMPLE_SECONDS = 0.01

# Targets of issue 32 (benchmark targets, not unit tests); benchmarks/README.md says how each is read.
SHIPPED_MAX_RATIO_TO_TRIVIAL = 2.0
UI_MAX_SECONDS = 15.0
UI_MAX_QUEUE_SECONDS = 2.0
UI_LAUNCHES = 3
HUNDRED_THOUSAND_MAX_SECONDS = 10.0
MILLION_MAX_SECONDS = 30.0
MILLION_MAX_BYTES = 4 * 1024**3
MILLION_MAX_RATIO_TO_BARE = 2.0
SHIPPED_MAX_EVENT_LOG_BYTES = 1_000_000


@dataclass
class Measurement:
    """One process run: how long, how much memory, whether it worked, and the run's own step times."""

    wall_s: float
    cpu_s: float
    tree_rss_bytes: int
    largest_process_rss_bytes: int
    returncode: int
    log: str
    run_s: float | None = None
    events: dict[str, int] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    step_peak_rss_bytes: dict[str, int] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    step_event_bytes: dict[str, int] = field(default_factory=dict)
    chart_file_bytes: dict[str, int] = field(default_factory=dict)
    event_log_bytes: int | None = None
    samples: list[tuple[float, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _tree_rss(root: psutil.Process) -> int:
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def measure(command: list[str], env: dict[str, str], log: Path) -> Measurement:
    """Run ``command`` to completion, sampling the RSS of its whole process tree."""
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        samples = []
        while True:
            # wait4 reaps the child and reports its ru_maxrss (largest process in its tree, KiB on Linux).
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            try:
                samples.append((time.time(), _tree_rss(root)))
            except psutil.NoSuchProcess:
                pass
            time.sleep(SAMPLE_SECONDS)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measurement(
        wall_s=wall,
        # User + system CPU of the process and the descendants it waited for: steadier than wall time on a busy machine.
        cpu_s=usage.ru_utime + usage.ru_stime,
        tree_rss_bytes=max([rss for _, rss in samples] + [usage.ru_maxrss * 1024]),
        largest_process_rss_bytes=usage.ru_maxrss * 1024,
        returncode=proc.returncode,
        log=str(log),
        samples=samples,
    )


def _environment(scratch: Path, study: Path | None) -> dict[str, str]:
    """A fresh Dagster instance (deploy/local/dagster.yaml), warehouse and outputs folder under ``scratch``."""
    home = scratch / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LMS_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home), LMS_DUCKDB_PATH=str(scratch / "warehouse" / "lms.duckdb"), LMS_OUTPUT_DIR=str(scratch / "outputs"))
    if study is not None:
        env["LMS_DATA_DIR"] = str(study)
    # The project's package from this checkout, installed or not.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return env


def read_run_events(home: Path, result: Measurement) -> dict[str, tuple[float, float]]:
    """From the run's event log: its duration, each step's duration and event-log bytes; returns each step's (start, end)."""
    from dagster import DagsterEventType, DagsterInstance, serialize_value

    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(limit=1)
        if not runs:
            return {}
        logs = instance.all_logs(runs[0].run_id)
    windows, started, start, end = {}, {}, None, None
    result.event_log_bytes = 0
    for entry in logs:
        size = len(serialize_value(entry))
        result.event_log_bytes += size
        if entry.step_key:
            # What the step leaves in the event log (metadata, previews, chart links): must stay bounded as N grows.
            result.step_event_bytes[entry.step_key] = result.step_event_bytes.get(entry.step_key, 0) + size
        event = entry.dagster_event
        if event is None:
            continue
        # Events of the run by type: each is one write to the event log (the largest per-run cost on SQLite).
        result.events[event.event_type.value] = result.events.get(event.event_type.value, 0) + 1
        if event.event_type == DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            windows[event.step_key] = (started.get(event.step_key, entry.timestamp), entry.timestamp)
            if event.event_type == DagsterEventType.STEP_SUCCESS:
                result.steps[event.step_key] = event.event_specific_data.duration_ms / 1000
        elif event.event_type == DagsterEventType.RUN_START:
            start = entry.timestamp
        elif event.event_type in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
            end = entry.timestamp
    result.run_s = end - start if start is not None and end is not None else None
    return windows


def _with_run_events(result: Measurement, home: Path) -> Measurement:
    """Adds the run's own duration, per-step seconds and event-log bytes, and the peak tree RSS sampled while each step ran."""
    windows = read_run_events(home, result)
    for step, (begin, finish) in windows.items():
        inside = [rss for t, rss in result.samples if begin <= t <= finish]
        if inside:
            result.step_peak_rss_bytes[step] = max(inside)
    return result


def dagster_cli(target: list[str], select: str = "*") -> list[str]:
    return [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", *target, "--select", select]


def run_graph(study: Path, scratch: Path, select: str = "*") -> Measurement:
    """The full graph (or the CLI selection ``select``), as a user materializes it."""
    env = _environment(scratch, study)
    result = measure(dagster_cli(["-m", "lms_assets.definitions"], select), env, scratch / "graph.log")
    result.chart_file_bytes = {p.name: p.stat().st_size for p in sorted(Path(env["LMS_OUTPUT_DIR"]).glob("**/*.html"))}
    return _with_run_events(result, Path(env["DAGSTER_HOME"]))


def run_trivial(scratch: Path) -> Measurement:
    """Dagster's floor: one asset that returns 1, same CLI, same executor."""
    env = _environment(scratch, None)
    result = measure(dagster_cli(["-f", str(BENCHMARKS / "trivial_dagster.py")]), env, scratch / "trivial.log")
    return _with_run_events(result, Path(env["DAGSTER_HOME"]))


def run_bare(study: Path, scratch: Path) -> Measurement:
    """The compute floor: the same tables from the same pure functions, without Dagster."""
    env = _environment(scratch, study)
    command = [sys.executable, str(BENCHMARKS / "bare.py"), "--data", str(study), "--duckdb", env["LMS_DUCKDB_PATH"]]
    result = measure(command, env, scratch / "bare.log")
    if result.ok:
        # bare.py ends with one JSON line: seconds per phase (read_csv, compute, charts, store) and per table.
        report = json.loads(Path(result.log).read_text().strip().splitlines()[-1])
        result.steps = report.pop("steps")
        result.phases = report
    return result


ACTIVE_RUN_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def _repository(client, deadline: float) -> dict:
    """The code location's repository and asset keys, once the code server has loaded the definitions."""
    while time.monotonic() < deadline:
        found = client.execute(ALL_ASSETS)
        nodes = found["repositoriesOrError"].get("nodes") or []
        if nodes and found["assetNodes"]:
            return {"location": nodes[0]["location"]["name"], "name": nodes[0]["name"], "assets": [n["assetKey"] for n in found["assetNodes"]]}
        time.sleep(1.0)
    raise TimeoutError("dagster dev: the code location never loaded")


def _ui_ready(client, instance, repository: dict, deadline: float) -> None:
    """Wait until the daemon has ticked the sensors once and no run is active (twice in a row, a second apart).

    On a fresh instance the follow-up sensor's first tick builds everything (README "Set up"); the launches
    measured here must not queue behind that build, so they start once it is over.
    """
    from dagster import DagsterRunStatus, RunsFilter

    active = RunsFilter(statuses=[DagsterRunStatus[s] for s in ACTIVE_RUN_STATUSES])
    selector = {"repositoryLocationName": repository["location"], "repositoryName": repository["name"]}
    quiet = 0
    while time.monotonic() < deadline:
        sensors = client.execute(SENSOR_TICKS_QUERY, {"selector": selector})["sensorsOrError"].get("results", [])
        ticked = sensors and all(any(t["status"] in ("SUCCESS", "SKIPPED", "FAILURE") for t in s["sensorState"]["ticks"]) for s in sensors)
        quiet = quiet + 1 if ticked and not instance.get_runs(filters=active) else 0
        if quiet == 2:
            return
        time.sleep(1.0)
    raise TimeoutError("dagster dev: the sensors never ticked, or the run the first tick launched never ended")


SENSOR_TICKS_QUERY = """
query SensorTicks($selector: RepositorySelector!) {
  sensorsOrError(repositorySelector: $selector) {
    ... on Sensors { results { name sensorState { ticks(limit: 1) { status } } } }
  }
}
"""

LAUNCH_ALL = """
mutation LaunchAll($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""

ALL_ASSETS = """
query AllAssets {
  repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } }
  assetNodes { assetKey { path } }
}
"""


def _run_phases(instance, run_id: str) -> dict[str, float]:
    """Timestamps of the run's queue and lifecycle events (enqueued, starting, start, end).

    Dagster 1.13 writes no dequeue event: the daemon's launch writes RUN_STARTING, so that ends the queue.
    """
    from dagster import DagsterEventType

    names = {
        DagsterEventType.RUN_ENQUEUED: "enqueued",
        DagsterEventType.RUN_STARTING: "starting",
        DagsterEventType.RUN_START: "start",
        DagsterEventType.RUN_SUCCESS: "end",
        DagsterEventType.RUN_FAILURE: "end",
    }
    return {
        names[e.dagster_event.event_type]: e.timestamp for e in instance.all_logs(run_id) if e.dagster_event and e.dagster_event.event_type in names
    }


def run_ui(study: Path, scratch: Path, launches: int = UI_LAUNCHES) -> dict:
    """The full graph launched as the UI's Materialize all does: GraphQL ``launchRun`` of every asset on ``dagster dev``.

    One ``dagster dev`` (webserver, daemon, code server) on a fresh instance; ``launches`` runs one after the
    other. Each is timed from just before the mutation to its RUN_SUCCESS event; its creation (the mutation writing
    the run and its planned events) is launch to RUN_ENQUEUED, its queue time RUN_ENQUEUED to RUN_STARTING (the
    daemon's launch), its process start RUN_STARTING to RUN_START.
    """
    sys.path.insert(0, str(REPO))
    from dagster import DagsterInstance, DagsterRunStatus

    from lms_assets_tests.dagster_process import running
    from lms_assets_tests.graphql_client import DagsterGraphQL, free_port

    env = _environment(scratch, study)
    port = free_port()
    command = [str(Path(sys.executable).with_name("dagster")), "dev", "-h", "127.0.0.1", "-p", str(port)]
    runs = []
    with contextlib.ExitStack() as stack, running(command, env, scratch / "dagster-dev.log") as server:
        client = DagsterGraphQL(f"http://127.0.0.1:{port}")
        client.wait_until_up(timeout=300, alive=server.alive)
        # Opened once dagster dev has created the instance's storage (two processes creating it would race).
        instance = stack.enter_context(DagsterInstance.from_config(env["DAGSTER_HOME"]))
        repository = _repository(client, time.monotonic() + 300)
        _ui_ready(client, instance, repository, time.monotonic() + 900)
        params = {
            "selector": {
                "repositoryLocationName": repository["location"],
                "repositoryName": repository["name"],
                "jobName": "__ASSET_JOB",
                "assetSelection": repository["assets"],
            },
            "mode": "default",
        }
        for _ in range(launches):
            launched_at = time.time()
            result = client.execute(LAUNCH_ALL, {"params": params})["launchRun"]
            if result["__typename"] != "LaunchRunSuccess":
                raise RuntimeError(f"launching the full graph failed: {result}")
            run_id = result["run"]["runId"]
            while instance.get_run_by_id(run_id).status not in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
                time.sleep(0.2)
            phases = {"launched": launched_at, **_run_phases(instance, run_id)}

            def span(first: str, last: str, phases: dict = phases) -> float | None:
                return phases[last] - phases[first] if first in phases and last in phases else None

            runs.append(
                {
                    "run_id": run_id,
                    "status": instance.get_run_by_id(run_id).status.value,
                    "launch_to_end_s": span("launched", "end"),
                    "create_s": span("launched", "enqueued"),
                    "queue_s": span("enqueued", "starting"),
                    "process_start_s": span("starting", "start"),
                    "in_run_s": span("start", "end"),
                    "loadavg_after": os.getloadavg(),
                }
            )
            print(
                "   ui run   "
                + "  ".join(f"{k} {_s(runs[-1][k])}" for k in ("launch_to_end_s", "create_s", "queue_s", "process_start_s", "in_run_s"))
                + f"  {runs[-1]['status']}",
                flush=True,
            )
    ended = [r["launch_to_end_s"] for r in runs if r["launch_to_end_s"] is not None]
    return {"runs": runs, "median_s": statistics.median(ended) if ended else None, "log": str(scratch / "dagster-dev.log")}


def _s(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f}"


def ui_table(ui: dict) -> str:
    """Each launch of the full graph on dagster dev: launch to end, time in the queue, process start, in the run."""
    lines = [
        "| launch | status | launch → end s | run created s | queue s | process start s | in run s | load after |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for i, r in enumerate(ui["runs"], 1):
        load = "/".join(f"{x:.1f}" for x in r["loadavg_after"])
        lines.append(
            f"| {i} | {r['status']} | {_s(r['launch_to_end_s'])} | {_s(r.get('create_s'))} | {_s(r['queue_s'])} | {_s(r['process_start_s'])} | {_s(r['in_run_s'])} | {load} |"
        )
    lines.append(f"| median | | {_s(ui['median_s'])} | | | | | |")
    return "\n".join(lines)


def ui_targets(ui: dict) -> list[str]:
    if any(r["status"] != "SUCCESS" for r in ui["runs"]):
        return [f"ui: a launched run FAILED; see {ui['log']}"]
    return [
        _verdict(f"shipped, UI Materialize all: launch → end, median of {len(ui['runs'])}", ui["median_s"], UI_MAX_SECONDS, "s"),
        _verdict("shipped, UI: a launched run leaves the queue (slowest launch)", max(r["queue_s"] for r in ui["runs"]), UI_MAX_QUEUE_SECONDS, "s"),
    ]


def study_folder(size: str, seed: int, cuts: int, workdir: Path) -> tuple[Path, int, float | None]:
    """The study to measure, its patient count, and the seconds it took to generate (None when reused or shipped)."""
    if size == "shipped":
        data = REPO / "data"
        return data, sum(1 for _ in (data / "patients.csv").open()) - 1, None
    patients = int(size)
    folder = workdir / "studies" / f"synthetic_n{patients}_seed{seed}_cuts{cuts}"
    if (folder / "provenance.csv").exists():
        return folder, patients, None
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lms_assets.synthetic", "--patients", str(patients), "--seed", str(seed), "--cuts", str(cuts), "--out", str(folder)],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return folder, patients, time.perf_counter() - start


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.0f}"


def _ratio(a: Measurement, b: Measurement) -> str:
    """Wall-time ratio, then CPU-time ratio (the steadier one when other work shares the machine)."""
    return f"{a.wall_s / b.wall_s:.2f}× ({a.cpu_s / b.cpu_s:.2f}× CPU)" if a.ok and b.ok else "n/a"


def selection(row: dict) -> str | None:
    """The graph run's ``--select`` when it was not the whole graph (rows of older runs have none)."""
    chosen = row.get("select", "*")
    return None if chosen == "*" else chosen


def targets(row: dict) -> list[str]:
    """Which of issue 32's targets this study's values meet or miss, and by how much."""
    graph, trivial, bare = (Measurement(**row[k]) for k in ("graph", "trivial", "bare"))
    verdicts = []
    if not graph.ok:
        return [f"{row['study']}: the full graph FAILED (exit {graph.returncode}); see {graph.log}"]
    if selection(row):
        return [f"{row['study']}: not judged, the graph run was the selection {row['select']!r}; the targets are for the whole graph"]
    if row["study"] == "shipped":
        verdicts.append(_verdict("shipped: graph ≤ 2 × trivial", graph.wall_s, SHIPPED_MAX_RATIO_TO_TRIVIAL * trivial.wall_s, "s"))
        verdicts.append(_verdict("shipped: graph CPU ≤ 2 × trivial CPU", graph.cpu_s, SHIPPED_MAX_RATIO_TO_TRIVIAL * trivial.cpu_s, "CPU s"))
        if graph.event_log_bytes is not None:
            verdicts.append(_verdict("shipped: event log ≤ 1 MB", graph.event_log_bytes / 1e6, SHIPPED_MAX_EVENT_LOG_BYTES / 1e6, "MB"))
    if 100_000 <= row["patients"] < 1_000_000:
        verdicts.append(_verdict(f"{row['study']}: graph ≤ 10 s", graph.wall_s, HUNDRED_THOUSAND_MAX_SECONDS, "s"))
    if row["patients"] >= 1_000_000:
        verdicts.append(_verdict(f"{row['study']}: graph ≤ 30 s", graph.wall_s, MILLION_MAX_SECONDS, "s"))
        verdicts.append(_verdict(f"{row['study']}: graph CPU ≤ 30 s", graph.cpu_s, MILLION_MAX_SECONDS, "CPU s"))
        verdicts.append(_verdict(f"{row['study']}: peak tree RSS ≤ 4 GiB", graph.tree_rss_bytes / 1024**3, MILLION_MAX_BYTES / 1024**3, "GiB"))
        verdicts.append(_verdict(f"{row['study']}: graph ≤ 2 × bare", graph.wall_s, MILLION_MAX_RATIO_TO_BARE * bare.wall_s, "s"))
        verdicts.append(_verdict(f"{row['study']}: graph CPU ≤ 2 × bare CPU", graph.cpu_s, MILLION_MAX_RATIO_TO_BARE * bare.cpu_s, "CPU s"))
    return verdicts


def _verdict(name: str, value: float, limit: float, unit: str) -> str:
    if value <= limit:
        return f"MET    {name}: {value:.2f} {unit} (limit {limit:.2f} {unit})"
    return f"MISSED {name}: {value:.2f} {unit} (limit {limit:.2f} {unit}, over by {value - limit:.2f} {unit}, {value / limit:.2f}×)"


def summary_table(rows: list[dict]) -> str:
    """One line per study: wall time and peak memory of graph and baselines, and the ratios."""
    lines = [
        "| study | patients | graph s | graph CPU s | graph in-run s | graph peak MiB | trivial s | trivial CPU s | trivial peak MiB "
        "| bare s | bare CPU s | bare peak MiB | graph/trivial | graph/bare |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        g, t, b = (Measurement(**row[k]) for k in ("graph", "trivial", "bare"))
        run_s = f"{g.run_s:.2f}" if g.run_s is not None else "n/a"
        status = "" if g.ok else " (FAILED)"
        selected = f" (--select {selection(row)})" if selection(row) else ""
        lines.append(
            f"| {row['study']}{selected}{status} | {row['patients']:,} | {g.wall_s:.2f} | {g.cpu_s:.1f} | {run_s} | {_mb(g.tree_rss_bytes)} | "
            f"{t.wall_s:.2f} | {t.cpu_s:.1f} | {_mb(t.tree_rss_bytes)} | {b.wall_s:.2f} | {b.cpu_s:.1f} | {_mb(b.tree_rss_bytes)} | "
            f"{_ratio(g, t)} | {_ratio(g, b)} |"
        )
    return "\n".join(lines)


def steps_table(rows: list[dict]) -> str:
    """Per step of the full graph and study: seconds, peak tree RSS (MiB), event-log KiB; slowest first at the largest study."""
    names = sorted(
        {s for row in rows for s in (*row["graph"]["steps"], *row["graph"]["step_event_bytes"])},
        key=lambda s: -rows[-1]["graph"]["steps"].get(s, 0.0),
    )
    header = "| step | " + " | ".join(f"{row['study']} s | MiB | log KiB" for row in rows) + " |"
    lines = [header, "|---|" + "---:|---:|---:|" * len(rows)]
    for name in names:
        cells = []
        for row in rows:
            graph = row["graph"]
            seconds, peaks, logged = graph["steps"], graph["step_peak_rss_bytes"], graph["step_event_bytes"]
            cells.append(f"{seconds[name]:.3f}" if name in seconds else "–")
            cells.append(_mb(peaks[name]) if name in peaks else "–")
            cells.append(f"{logged[name] / 1024:,.0f}" if name in logged else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def events_table(rows: list[dict]) -> str:
    """How many events each study's full-graph run wrote, by type (most first at the first study)."""
    kinds = sorted({k for row in rows for k in row["graph"].get("events", {})}, key=lambda k: -rows[0]["graph"].get("events", {}).get(k, 0))
    lines = ["| event | " + " | ".join(row["study"] for row in rows) + " |", "|---|" + "---:|" * len(rows)]
    lines.append("| **all** | " + " | ".join(f"{sum(row['graph'].get('events', {}).values()):,}" for row in rows) + " |")
    for kind in kinds:
        lines.append(f"| {kind} | " + " | ".join(f"{row['graph'].get('events', {}).get(kind, 0):,}" for row in rows) + " |")
    return "\n".join(lines)


def payload_table(rows: list[dict]) -> str:
    """Sizes that must stay bounded as the study grows: event-log bytes of the whole run and each chart's HTML file."""
    charts = sorted({c for row in rows for c in row["graph"]["chart_file_bytes"]})
    lines = ["| study | event log KiB | " + " | ".join(f"{c} KiB" for c in charts) + " |", "|---|---:|" + "---:|" * len(charts)]
    for row in rows:
        graph = row["graph"]
        sizes = [f"{graph['chart_file_bytes'][c] / 1024:,.0f}" if c in graph["chart_file_bytes"] else "–" for c in charts]
        lines.append(f"| {row['study']} | {sum(graph['step_event_bytes'].values()) / 1024:,.0f} | " + " | ".join(sizes) + " |")
    return "\n".join(lines)


def bare_table(rows: list[dict]) -> str:
    """Where the bare script's time goes: reading CSV, computing tables, rendering charts, storing in DuckDB."""
    lines = ["| study | total s | read CSV s | compute s | charts s | store in DuckDB s |", "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        phases = row["bare"]["phases"]
        cells = [f"{phases.get(k, 0.0):.2f}" if phases else "n/a" for k in ("total_s", "read_csv_s", "compute_s", "charts_s", "store_s")]
        lines.append(f"| {row['study']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """The machine the values came from: CPU model, cores, memory, Python and key library versions."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    from importlib.metadata import version

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("dagster", "polars", "duckdb", "numpy")},
    }


def report(rows: list[dict], ui: dict | None = None) -> str:
    """Every table of the benchmark, as markdown."""
    verdicts = [v for row in rows for v in targets(row)] + (ui_targets(ui) if ui else [])
    return "\n\n".join(
        [
            summary_table(rows),
            *(["Shipped study launched through GraphQL on dagster dev, as the UI's Materialize all:", ui_table(ui)] if ui else []),
            "Where the bare script's time goes:",
            bare_table(rows),
            "Per step of the full graph: seconds (STEP_SUCCESS duration, which includes loading inputs from and storing "
            "outputs in DuckDB), the peak tree RSS sampled while the step ran, and what the step left in the event log:",
            steps_table(rows),
            "Events the full graph's run wrote to the event log:",
            events_table(rows),
            "Payload sizes (bounded as N grows?):",
            payload_table(rows),
            "Targets:\n" + "\n".join(f"- {v}" for v in verdicts),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated: 'shipped' and/or patient counts (default {DEFAULT_SIZES})")
    parser.add_argument("--seed", type=int, default=8, help="seed of the synthetic studies")
    parser.add_argument("--cuts", type=int, default=3, help="data cuts of the synthetic studies")
    parser.add_argument("--workdir", type=Path, default=BENCHMARKS / "results", help="where studies, scratch and results go")
    parser.add_argument("--report", type=Path, default=None, help="print the tables of an earlier run's JSON instead of measuring")
    parser.add_argument(
        "--select",
        default="*",
        help="the graph run's `dagster asset materialize --select` (default '*', the whole graph; a smaller one only checks the benchmark runs)",
    )
    parser.add_argument("--no-ui", dest="ui", action="store_false", help="skip the UI launches on dagster dev (shipped study)")
    parser.add_argument("--only-ui", action="store_true", help="only the UI launches on dagster dev (shipped study), no CLI runs")
    args = parser.parse_args(argv)

    if args.report:
        saved = json.loads(args.report.read_text())
        print(report(saved["rows"], saved.get("ui")))
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    rows = []
    for size in [] if args.only_ui else [s.strip() for s in args.sizes.split(",") if s.strip()]:
        study, patients, generated_s = study_folder(size, args.seed, args.cuts, args.workdir)
        label = "shipped" if size == "shipped" else f"synthetic {patients:,}"
        print(f"== {label}: {study}" + (f" (generated in {generated_s:.1f} s)" if generated_s else ""), flush=True)
        row: dict = {
            "study": label,
            "select": args.select,
            "patients": patients,
            "folder": str(study),
            "generated_s": generated_s,
            "loadavg_before": os.getloadavg(),
        }
        for name, run in (
            ("graph", lambda s, study=study: run_graph(study, s, args.select)),
            ("trivial", run_trivial),
            ("bare", lambda s, study=study: run_bare(study, s)),
        ):
            scratch = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=args.workdir))
            result = run(scratch)
            if result.ok:
                shutil.rmtree(scratch / "warehouse", ignore_errors=True)
            print(
                f"   {name:8s} {result.wall_s:7.2f} s  CPU {result.cpu_s:7.1f} s  {_mb(result.tree_rss_bytes):>7s} MiB  exit {result.returncode}",
                flush=True,
            )
            row[name] = asdict(result) | {"samples": []}  # the RSS timeline is summarised per step, not kept
        rows.append(row)
    ui = None
    if args.only_ui or (args.ui and "shipped" in args.sizes.split(",")):
        load = os.getloadavg()
        print(f"== shipped, through the UI's GraphQL on dagster dev (load average before {load})", flush=True)
        scratch = Path(tempfile.mkdtemp(prefix="ui-", dir=args.workdir))
        ui = run_ui(REPO / "data", scratch) | {"loadavg_before": load}

    text = report(rows, ui)
    print("\n" + text)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (args.workdir / f"benchmark-{stamp}.md").write_text(text + "\n")
    (args.workdir / f"benchmark-{stamp}.json").write_text(
        json.dumps({"started": started.isoformat(), "machine": machine(), "seed": args.seed, "cuts": args.cuts, "rows": rows, "ui": ui}, indent=2)
    )
    print(f"\nResults written to {args.workdir / f'benchmark-{stamp}'}.{{md,json}}")
    ui_ok = ui is None or all(r["status"] == "SUCCESS" for r in ui["runs"])
    return 0 if ui_ok and all(row["graph"]["returncode"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
