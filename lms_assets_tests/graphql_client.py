"""A small client for the Dagster webserver's GraphQL API, for end-to-end tests against a live deployment.

Standard library only, so any test can drive a webserver it started: find a free port, wait until the
server answers, launch a job by name and wait for that run (by id) to finish.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

TERMINAL_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
# What a busy or still-starting server may answer with; polling tries again until its deadline.
TRANSIENT_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError)

RUN_STATUS_QUERY = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId jobName status }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

# What moves while runs are in flight: every unfinished run's status and step states. A run waiting for the
# warehouse's lock shows no change of its own while another run writes, so all of them count.
PROGRESS_QUERY = """
query Progress {
  runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED, CANCELING]}) {
    __typename
    ... on Runs { results { runId status stepStats { stepKey status } } }
    ... on PythonError { message }
  }
}
"""

RUNS_OF_JOB_QUERY = """
query RunsOfJob($job: String!) {
  runsOrError(filter: {pipelineName: $job}) {
    __typename
    ... on Runs { results { runId status } }
    ... on PythonError { message }
  }
}
"""

RUN_DETAILS_QUERY = """
query RunDetails($runId: ID!, $cursor: String) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      runId
      jobName
      status
      stepStats { stepKey status }
      assetMaterializations { assetKey { path } }
      eventConnection(afterCursor: $cursor) {
        cursor
        hasMore
        events {
          __typename
          ... on ExecutionStepFailureEvent { stepKey error { message } }
          ... on RunFailureEvent { message }
          ... on AssetCheckEvaluationEvent { evaluation { checkName success severity assetKey { path } } }
        }
      }
    }
  }
}
"""

LATEST_MATERIALIZATION_QUERY = """
query Latest($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    __typename
    ... on Asset {
      assetMaterializations(limit: 1) {
        runId
        metadataEntries {
          label
          ... on PathMetadataEntry { path }
          ... on UrlMetadataEntry { url }
          ... on TextMetadataEntry { text }
          ... on MarkdownMetadataEntry { mdStr }
          ... on IntMetadataEntry { intValue }
          ... on FloatMetadataEntry { floatValue }
        }
      }
    }
  }
}
"""

ASSET_KEYS_QUERY = """
query AssetKeys { assetNodes { assetKey { path } } }
"""

_METADATA_VALUE_FIELDS = ("path", "url", "text", "mdStr", "intValue", "floatValue")


class GraphQLError(RuntimeError):
    """The server answered with GraphQL errors, or a mutation returned an error type."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class CheckEvaluation:
    asset: str
    check_name: str
    passed: bool
    severity: str


@dataclass
class RunReport:
    """What a finished run did: its status, the assets it materialized, its checks and its failures."""

    run_id: str
    job_name: str
    status: str
    step_statuses: dict[str, str]
    materialized: set[str]
    checks: list[CheckEvaluation] = field(default_factory=list)
    step_failures: dict[str, str] = field(default_factory=dict)
    run_failure: str | None = None

    def failed_checks(self, severity: str = "ERROR") -> list[CheckEvaluation]:
        return [c for c in self.checks if not c.passed and c.severity == severity]

    def describe(self) -> str:
        lines = [f"run {self.run_id} of {self.job_name}: {self.status}"]
        lines += [f"  step {key} failed: {message}" for key, message in self.step_failures.items()]
        lines += [f"  check {c.asset}.{c.check_name} failed ({c.severity})" for c in self.failed_checks("ERROR")]
        if self.run_failure:
            lines.append(f"  run failure: {self.run_failure}")
        return "\n".join(lines)


class DagsterGraphQL:
    """GraphQL calls against one Dagster webserver (``http://host:port``)."""

    def __init__(self, base_url: str, request_timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.request_timeout = request_timeout

    def execute(self, query: str, variables: dict | None = None) -> dict:
        """The ``data`` of one GraphQL request; GraphQL errors raise ``GraphQLError``."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.base_url}/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
            payload = json.loads(response.read())
        if payload.get("errors"):
            raise GraphQLError(json.dumps(payload["errors"], indent=2))
        return payload["data"]

    def wait_until_up(self, timeout: float, alive=lambda: True) -> str:
        """Poll ``{ version }`` until the server answers; returns the Dagster version.

        ``alive`` is asked between attempts, so a server that died while starting fails fast.
        """
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError(f"the server at {self.base_url} exited before answering GraphQL ({last_error})")
            try:
                return self.execute("{ version }")["version"]
            except TRANSIENT_ERRORS as err:
                last_error = err
                time.sleep(0.5)
        raise TimeoutError(f"no GraphQL answer from {self.base_url} within {timeout:.0f} s (last error: {last_error})")

    def asset_keys(self) -> set[str]:
        """Every asset the deployment defines, as ``a/b`` key strings."""
        return {"/".join(n["assetKey"]["path"]) for n in self.execute(ASSET_KEYS_QUERY)["assetNodes"]}

    def latest_materialization_metadata(self, asset: str) -> dict[str, object]:
        """Label → value of the simple metadata entries (path, url, text, markdown, numbers) of the asset's latest materialization."""
        result = self.execute(LATEST_MATERIALIZATION_QUERY, {"key": {"path": asset.split("/")}})["assetOrError"]
        if result["__typename"] != "Asset" or not result["assetMaterializations"]:
            raise GraphQLError(f"{asset} has no materialization: {result}")
        entries = result["assetMaterializations"][0]["metadataEntries"]
        return {e["label"]: next(e[f] for f in _METADATA_VALUE_FIELDS if f in e) for e in entries if any(f in e for f in _METADATA_VALUE_FIELDS)}

    def run_status(self, run_id: str) -> str:
        result = self.execute(RUN_STATUS_QUERY, {"runId": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise GraphQLError(f"run {run_id}: {result}")
        return result["status"]

    def progress(self) -> tuple:
        """A value that changes whenever an unfinished run starts, ends or moves a step along."""
        result = self.execute(PROGRESS_QUERY)["runsOrError"]
        if result["__typename"] != "Runs":
            raise GraphQLError(f"cannot list runs: {result}")
        return tuple(sorted((r["runId"], r["status"], tuple(sorted((s["stepKey"], s["status"]) for s in r["stepStats"]))) for r in result["results"]))

    def wait_for_run(self, run_id: str, timeout: float, poll: float = 1.0) -> RunReport:
        """Poll until the run reaches a terminal status, then return what it did.

        The deadline is tied to progress, not to the wall clock: it fails only when for ``timeout`` seconds no
        unfinished run of the instance changed status or moved a step along (see ``progress``). A busy machine
        makes every step slower, so a fixed limit on the whole run is what it can exceed; one step taking
        ``timeout`` seconds is a hang. A poll the busy server does not answer in time is retried.
        """
        self._wait(lambda: self.run_status(run_id) in TERMINAL_STATUSES, timeout, poll, f"run {run_id}")
        return self.run_report(run_id)

    def wait_until_idle(self, timeout: float, poll: float = 1.0) -> None:
        """Poll until no run is queued or in progress, with ``wait_for_run``'s deadline: the UI shows a check's
        latest execution, so a run started beside the test's (the sensor's first build) must finish before the
        UI is compared with the test's run."""
        self._wait(lambda: not self.progress(), timeout, poll, "the instance's runs")

    def wait_for_job_run(self, job_name: str, timeout: float, poll: float = 1.0) -> str:
        """Poll until a run of ``job_name`` (one a sensor launches, say) has finished, with ``wait_for_run``'s
        deadline; returns that run's id."""
        found: list[str] = []

        def finished() -> bool:
            result = self.execute(RUNS_OF_JOB_QUERY, {"job": job_name})["runsOrError"]
            if result["__typename"] != "Runs":
                raise GraphQLError(f"cannot list runs of {job_name}: {result}")
            found[:] = [r["runId"] for r in result["results"] if r["status"] in TERMINAL_STATUSES]
            return bool(found)

        self._wait(finished, timeout, poll, f"a run of {job_name}")
        return found[0]

    def _wait(self, done, timeout: float, poll: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        state, seen = "not yet known", None
        while time.monotonic() < deadline:
            try:
                if done():
                    return
                now = self.progress()
                state = f"{len(now)} unfinished"
                if now != seen:
                    seen, deadline = now, time.monotonic() + timeout
            except TRANSIENT_ERRORS:
                state = "not answering"
            time.sleep(poll)
        raise TimeoutError(f"{what}: still {state}, and no run moved a step for {timeout:.0f} s")

    def run_report(self, run_id: str) -> RunReport:
        """Status, step statuses, materialized assets, check evaluations and failure messages of a run."""
        cursor, run, events = None, None, []
        while True:
            run = self.execute(RUN_DETAILS_QUERY, {"runId": run_id, "cursor": cursor})["runOrError"]
            if run["__typename"] != "Run":
                raise GraphQLError(f"run {run_id}: {run}")
            connection = run["eventConnection"]
            events += connection["events"]
            cursor = connection["cursor"]
            if not connection["hasMore"]:
                break
        report = RunReport(
            run_id=run["runId"],
            job_name=run["jobName"],
            status=run["status"],
            step_statuses={s["stepKey"]: s["status"] for s in run["stepStats"]},
            materialized={"/".join(m["assetKey"]["path"]) for m in run["assetMaterializations"]},
        )
        for event in events:
            kind = event["__typename"]
            if kind == "ExecutionStepFailureEvent":
                report.step_failures[event["stepKey"]] = (event.get("error") or {}).get("message", "")
            elif kind == "RunFailureEvent":
                report.run_failure = event["message"]
            elif kind == "AssetCheckEvaluationEvent":
                evaluation = event["evaluation"]
                report.checks.append(
                    CheckEvaluation(
                        asset="/".join(evaluation["assetKey"]["path"]),
                        check_name=evaluation["checkName"],
                        passed=evaluation["success"],
                        severity=evaluation["severity"],
                    )
                )
        return report
