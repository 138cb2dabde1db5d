"""Dagster resources: thin configurable wrappers around the clients, the warehouse and the report store."""
