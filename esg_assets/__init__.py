"""The firm-wide ESG ratings batch job: a Dagster code location and the tools around it."""
