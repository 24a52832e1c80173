"""Layer 2, ADaM: one module per dataset (ADSL, ADRS, ADTTE, ADAE), one ``derive_*`` per dataset, variable or flag.

Pure (no Dagster). May import: ``records``, Polars.
"""

from lms_assets.adam import adae, adrs, adsl, adtte, common, cuts

__all__ = ["adae", "adrs", "adsl", "adtte", "common", "cuts"]
