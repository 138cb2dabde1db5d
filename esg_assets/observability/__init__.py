"""Structured JSON logs and Prometheus metrics of the daily run, with secrets and account names kept out."""
