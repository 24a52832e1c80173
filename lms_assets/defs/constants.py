"""Group names, kinds and owners shared by the domain modules, and the one factory that applies them."""

import functools
from collections.abc import Callable, Set
from typing import Any

from dagster import asset

INGEST = "ingest"
COHORT = "cohort"
BASELINE = "baseline"
RESPONSE = "response"
SURVIVAL = "survival"
TOXICITY = "toxicity"
CHARTS = "charts"
AUDIT = "audit"
REPORT = "report"

OWNERS = ["team:study-biostatistics"]


def asset_defaults(*, group: str, kinds: Set[str], **defaults: Any) -> Callable[..., Any]:
    """``@asset`` with one domain's arguments set: its group and kinds, ``OWNERS`` and any ``defaults`` (a chart's
    ``io_manager_key``).

    Each domain module makes its decorator once (``cohort_asset = asset_defaults(group=COHORT, kinds=...)``) and
    declares every asset with it, and its published-value owners with ``gated_summary(cohort_asset, ...)``. An
    argument given at the asset overrides the domain's (``kinds=`` for an asset using fewer libraries).
    """
    return functools.partial(asset, group_name=group, kinds=set(kinds), owners=OWNERS, **defaults)
