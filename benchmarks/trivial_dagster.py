"""Dagster's own floor: one asset that does nothing, materialized by the same CLI and executor as the project."""

from dagster import Definitions, asset, in_process_executor


@asset(description="Returns 1. Timing this materialization measures Dagster's start-up, run and event-log cost alone.")
def trivial() -> int:
    return 1


defs = Definitions(assets=[trivial], executor=in_process_executor)
