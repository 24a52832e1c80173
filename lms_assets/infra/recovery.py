"""The Dagster instance's housekeeping: create its storage once, before any run.

Two first runs on a fresh DAGSTER_HOME (two headless runs started together; the webserver, daemon and first run
of `make run`) otherwise each create Dagster's SQLite schema, and one fails with "table runs already exists".

    .venv/bin/python -m lms_assets.infra.recovery            # create the instance's storage (`make instance`)
"""

from __future__ import annotations

import argparse
import os
import sys

from dagster import AssetKey, DagsterInstance


def prepare_instance(instance: DagsterInstance) -> None:
    """Create the instance's storage (runs, event log index, schedules) by reading each once."""
    instance.get_runs(limit=1)
    instance.get_latest_materialization_event(AssetKey("adsl"))
    instance.all_instigator_state()


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m lms_assets.infra.recovery", description=__doc__.split("\n\n")[0]).parse_args(argv)
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set: there is no persistent instance to prepare", file=sys.stderr)
        return 2
    with DagsterInstance.get() as instance:
        prepare_instance(instance)
    return 0


if __name__ == "__main__":
    sys.exit(main())
