"""Layer 2, ADaM: one module per dataset (ADSL, ADRS, ADTR, ADTTE, ADAE) and their variable-level metadata (``variables``), one ``derive_*`` per dataset, variable or flag.

Pure (no Dagster). May import: ``records``, Polars.
"""

from lms_assets.adam import adae, adrs, adsl, adtr, adtte, common, cuts

__all__ = ["adae", "adrs", "adsl", "adtr", "adtte", "common", "cuts"]
