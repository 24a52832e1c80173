"""Group names, kinds and owners shared by the domain modules."""

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
# Assets that write the DuckDB warehouse share one pool so concurrent runs queue rather than fail on DuckDB's file lock.
DUCKDB_POOL = "duckdb"
