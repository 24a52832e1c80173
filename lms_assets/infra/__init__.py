"""What runs the platform rather than the study: `make run`'s launcher, the report server, the team deployment, its
PostgreSQL storage and the instance's one-time set-up. Public Dagster APIs only; nothing in the domain layers imports it."""
