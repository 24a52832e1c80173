"""The Dagster definitions of lms-assets for one study: the code location of `make run`, `make materialize` and the
single-study team server (``python_module: lms_assets.definitions``).

The one place that reads the environment: ``LMS_DATA_DIR``, ``LMS_DUCKDB_PATH``, ``LMS_OUTPUT_DIR`` and
``LMS_REPORT_URL`` (defaults in ``defs/resources.py``, ``LOCATIONS`` and ``REPORT_URL``) are read once, when the code location loads, and handed to the resources
(``defs/location.py`` builds the definitions; ``infra/studies.py`` is the team server's several-study counterpart).
Not Dagster's ``EnvVar``: it resolves at run launch and carries no default, while the registry that declares the
published-value checks is read here, at load, and must come from the same study folder the assets read.
"""

import os
from pathlib import Path

from dagster import Definitions

from lms_assets.defs.location import study_defs
from lms_assets.defs.resources import REPORT_URL, locations


def build_defs(
    study_dir: Path | str | None = None, warehouse: Path | str | None = None, outputs: Path | str | None = None, report_url: str | None = None
) -> Definitions:
    """Definitions reading the study folder ``study_dir``, storing tables in the DuckDB file ``warehouse`` and writing
    charts and the report under ``outputs``, which ``report_url`` serves; each one not given is taken from the
    environment (or its default)."""
    from_env = locations(os.environ)
    return study_defs(
        study_dir=Path(study_dir) if study_dir is not None else from_env["study_dir"],
        warehouse=Path(warehouse) if warehouse is not None else from_env["warehouse"],
        outputs=Path(outputs) if outputs is not None else from_env["outputs"],
        report_url=report_url or os.environ.get(*REPORT_URL),
    )


defs = build_defs()
