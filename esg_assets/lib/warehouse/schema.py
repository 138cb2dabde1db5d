"""The DDL of the warehouse tables; applied (idempotently) on every writing connection."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS account_snapshots (
    partition_date DATE NOT NULL,
    account_id VARCHAR NOT NULL,
    account_name VARCHAR NOT NULL,
    updated_at TIMESTAMPTZ,
    loaded_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS esg_ratings (
    partition_date DATE NOT NULL,
    account_id VARCHAR NOT NULL,
    overall DECIMAL(5, 2),
    environmental DECIMAL(5, 2),
    social DECIMAL(5, 2),
    governance DECIMAL(5, 2),
    primary_focus VARCHAR,
    primary_focus_score DECIMAL(5, 2),
    analysis_date DATE,
    processing_status VARCHAR NOT NULL,
    error_reason VARCHAR,
    attempts INTEGER NOT NULL,
    http_status INTEGER,
    etag VARCHAR,
    not_modified BOOLEAN NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL,
    run_id VARCHAR NOT NULL
);
-- The latest rating held per account with its ETag, for conditional requests (If-None-Match): one row per
-- account, replaced as results are written, so planning a run joins N rows however long the history is.
-- partition_date is the day the rating was fetched for (retention removes ratings older than its window).
CREATE TABLE IF NOT EXISTS held_ratings (
    account_id VARCHAR NOT NULL,
    partition_date DATE NOT NULL,
    etag VARCHAR NOT NULL,
    overall DECIMAL(5, 2),
    environmental DECIMAL(5, 2),
    social DECIMAL(5, 2),
    governance DECIMAL(5, 2),
    primary_focus VARCHAR,
    primary_focus_score DECIMAL(5, 2),
    analysis_date DATE,
    fetched_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ratings_fetch_runs (
    partition_date DATE NOT NULL,
    run_id VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    accounts_total BIGINT NOT NULL,
    accounts_fetched BIGINT NOT NULL,
    accounts_resumed BIGINT NOT NULL,
    api_requests BIGINT NOT NULL,
    retries BIGINT NOT NULL,
    throttled BIGINT NOT NULL,
    not_modified BIGINT NOT NULL,
    requests_per_second DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS run_history (
    partition_date DATE NOT NULL,
    run_id VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    duration_seconds DOUBLE NOT NULL,
    accounts BIGINT NOT NULL,
    successful BIGINT NOT NULL,
    partial BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    api_requests BIGINT NOT NULL,
    retries BIGINT NOT NULL,
    throttled BIGINT NOT NULL,
    not_modified BIGINT NOT NULL,
    throughput_per_second DOUBLE NOT NULL
);
-- Columns added after a table first shipped: a warehouse made before them gains them (empty for its old rows)
-- on its next writing connection, like the tables above.
-- Why a held rating's values were not usable ("; "-joined), so a 304 that reuses it keeps the full reason.
ALTER TABLE held_ratings ADD COLUMN IF NOT EXISTS problems VARCHAR;
-- The run worker's resource use (defs/run_metrics/resource_figures.py); NULL in rows recorded before them.
ALTER TABLE run_history ADD COLUMN IF NOT EXISTS cpu_seconds DOUBLE;
ALTER TABLE run_history ADD COLUMN IF NOT EXISTS peak_rss_bytes BIGINT;
ALTER TABLE run_history ADD COLUMN IF NOT EXISTS warehouse_size_bytes BIGINT;
ALTER TABLE run_history ADD COLUMN IF NOT EXISTS spill_bytes BIGINT;
"""
