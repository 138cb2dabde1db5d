"""Every setting of the job in one place: its environment variable, default and meaning.

A catalog only: the environment is read by ``esg_assets/config`` (the definitions and command-line layer),
which hands the values to the resources.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """One environment variable of the job."""

    name: str
    description: str
    default: str | None = None  # None: required
    secret: bool = False

    @property
    def required(self) -> bool:
        return self.default is None

    @property
    def site(self) -> bool:
        """Taken from the host's site configuration alone when there is one (``SITE_SETTINGS``)."""
        return self.name in SITE_SETTINGS


class MissingSettingError(RuntimeError):
    """A required environment variable is not set."""

    def __init__(self, name: str):
        super().__init__(f"Required setting {name} is not set (see README, 'Configuration').")
        self.name = name


AUTH_TOKEN_URL = Setting("ESG_AUTH_TOKEN_URL", "OAuth2 token endpoint (client credentials grant).")
CLIENT_ID = Setting("ESG_CLIENT_ID", "OAuth2 client id of the job.")
CLIENT_SECRET = Setting("ESG_CLIENT_SECRET", "OAuth2 client secret of the job.", secret=True)
AMS_BASE_URL = Setting(
    "ESG_AMS_BASE_URL", "Base URL of the Account Management System (`/v1/accounts` is appended)."
)
API_BASE_URL = Setting("ESG_API_BASE_URL", "Base URL of the ESG Portfolio Analysis API.")
OUTPUT_URI = Setting(
    "ESG_OUTPUT_URI",
    "Where the day's files are published (`file:///abs/dir`, a path, `s3://bucket/prefix`).",
    "./var/reports",
)
WAREHOUSE_PATH = Setting("ESG_WAREHOUSE_PATH", "DuckDB warehouse file.", "./var/warehouse.duckdb")
WAREHOUSE_MEMORY_LIMIT = Setting(
    "ESG_WAREHOUSE_MEMORY_LIMIT",
    "Memory DuckDB may use (e.g. `128MB`, `1GB`); beyond it DuckDB spills joins and sorts to disk. DuckDB "
    "1.4's grouped aggregates stay in memory, about 100 bytes an account: 128MB is enough to 1,000,000 "
    "accounts, add 128MB for each further million.",
    "128MB",
)
ENCRYPTION_KEY_FILE = Setting(
    "ESG_ENCRYPTION_KEY_FILE", "Key file made by `esg-report keygen` (mode 0600).", secret=False
)
RATE_LIMIT_PER_SECOND = Setting(
    "ESG_RATE_LIMIT_PER_SECOND", "ESG API requests per second the firm's contract allows.", "50"
)
MAX_IN_FLIGHT = Setting("ESG_MAX_IN_FLIGHT", "ESG API requests in flight at once.", "16")
HTTP_TIMEOUT_SECONDS = Setting(
    "ESG_HTTP_TIMEOUT_SECONDS",
    "Timeout of one HTTP request, in seconds: its whole response, from sending it to the body's last byte.",
    "30",
)
MAX_ATTEMPTS = Setting("ESG_MAX_ATTEMPTS", "Attempts per account before it is marked Failed.", "3")
CA_BUNDLE = Setting("ESG_CA_BUNDLE", "CA bundle (PEM) for a private CA; empty uses the system store.", "")
MAX_FAILURE_RATE = Setting(
    "ESG_MAX_FAILURE_RATE",
    "Share of Failed accounts above which the failure_rate check fails and pages.",
    "0.05",
)
RECONCILIATION_SAMPLE = Setting(
    "ESG_RECONCILIATION_SAMPLE", "Accounts fetched again to reconcile the published file with the API.", "20"
)
SHARDS = Setting(
    "ESG_SHARDS",
    "Shards the day's accounts are fetched in, one step each (1 to 64): each takes its share of "
    "ESG_RATE_LIMIT_PER_SECOND and ESG_MAX_IN_FLIGHT, and above 1 each runs in its own process "
    "(docs/scaling.md).",
    "1",
)

ALL_SETTINGS: tuple[Setting, ...] = (
    AUTH_TOKEN_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    AMS_BASE_URL,
    API_BASE_URL,
    OUTPUT_URI,
    WAREHOUSE_PATH,
    WAREHOUSE_MEMORY_LIMIT,
    ENCRYPTION_KEY_FILE,
    RATE_LIMIT_PER_SECOND,
    MAX_IN_FLIGHT,
    HTTP_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    CA_BUNDLE,
    MAX_FAILURE_RATE,
    RECONCILIATION_SAMPLE,
    SHARDS,
)

# Alert delivery, structured logs and metrics (esg_assets/defs/alerting, esg_assets/lib/smtp, lib/pagerduty,
# lib/logs, lib/pushgateway).
# Every one is optional: an empty routing key or SMTP host switches that alert channel off.
PAGERDUTY_ROUTING_KEY = Setting(
    "ESG_PAGERDUTY_ROUTING_KEY",
    "Integration key (32 characters) of the PagerDuty service; empty: no PagerDuty alerts.",
    "",
    secret=True,
)
PAGERDUTY_EVENTS_URL = Setting(
    "ESG_PAGERDUTY_EVENTS_URL",
    "PagerDuty Events API v2 endpoint (the firm's proxy, if it has one).",
    "https://events.pagerduty.com/v2/enqueue",
)
SMTP_HOST = Setting("ESG_SMTP_HOST", "SMTP relay of alert emails; empty: no email alerts.", "")
SMTP_PORT = Setting("ESG_SMTP_PORT", "Port of the SMTP relay (587 STARTTLS, 465 SSL).", "587")
SMTP_USER = Setting("ESG_SMTP_USER", "User the job logs in to the SMTP relay as; empty: no login.", "")
SMTP_PASSWORD = Setting("ESG_SMTP_PASSWORD", "Password of ESG_SMTP_USER.", "", secret=True)
SMTP_SECURITY = Setting(
    "ESG_SMTP_SECURITY", "`starttls`, `ssl` (implicit TLS) or `none` (loopback relays only).", "starttls"
)
SMTP_CA_FILE = Setting(
    "ESG_SMTP_CA_FILE", "CA bundle (PEM) that signs the SMTP relay's certificate; empty: system store.", ""
)
ALERT_EMAIL_FROM = Setting(
    "ESG_ALERT_EMAIL_FROM", "Sender address of alert emails (required with ESG_SMTP_HOST).", ""
)
ALERT_EMAIL_TO_DEV = Setting(
    "ESG_ALERT_EMAIL_TO_DEV",
    "Comma-separated addresses that get every alert (required with ESG_SMTP_HOST).",
    "",
)
ALERT_EMAIL_TO_BUSINESS = Setting(
    "ESG_ALERT_EMAIL_TO_BUSINESS",
    "Comma-separated addresses that also get the alerts meant for the business.",
    "",
)
DAGSTER_BASE_URL = Setting(
    "ESG_DAGSTER_BASE_URL", "Dagster UI base URL, for links to runs in alerts.", "http://127.0.0.1:3000"
)
SUPPORT_URL = Setting(
    "ESG_SUPPORT_URL",
    "Where the firm publishes its support page (how to raise a question or an incident, docs/support.md), "
    "linked from every alert and the daily summary: an http(s) URL, or the shipped page's path.",
    "docs/support.md",
)
LOG_DIR = Setting("ESG_LOG_DIR", "Directory of the JSON-lines log `esg-job.jsonl`.", "./var/log")
PUSHGATEWAY_URL = Setting("ESG_PUSHGATEWAY_URL", "Prometheus Pushgateway of run metrics; empty: none.", "")

ALL_SETTINGS += (
    PAGERDUTY_ROUTING_KEY,
    PAGERDUTY_EVENTS_URL,
    SMTP_HOST,
    SMTP_PORT,
    SMTP_USER,
    SMTP_PASSWORD,
    SMTP_SECURITY,
    SMTP_CA_FILE,
    ALERT_EMAIL_FROM,
    ALERT_EMAIL_TO_DEV,
    ALERT_EMAIL_TO_BUSINESS,
    DAGSTER_BASE_URL,
    SUPPORT_URL,
    LOG_DIR,
    PUSHGATEWAY_URL,
)

# When the day's run is late, overdue or the scheduler itself is down
# (esg_assets/defs/alerting, esg-report healthcheck).
START_GRACE_MINUTES = Setting(
    "ESG_START_GRACE_MINUTES",
    "Minutes after 05:00 Central without a run of the day before the not_started alert.",
    "15",
)
DEADLINE_HOUR = Setting(
    "ESG_DEADLINE_HOUR",
    "Hour (Central, 0-23) at which a run of the day still going is terminated and the file is due.",
    "9",
)
DAEMON_HEARTBEAT_MAX_AGE_SECONDS = Setting(
    "ESG_DAEMON_HEARTBEAT_MAX_AGE_SECONDS",
    "Heartbeat age (seconds) of any dagster-daemon above which `esg-report healthcheck` calls it down.",
    "300",
)

ALL_SETTINGS += (START_GRACE_MINUTES, DEADLINE_HOUR, DAEMON_HEARTBEAT_MAX_AGE_SECONDS)

# Warnings before the limits, from the progress esg_ratings reports every 10 seconds
# (esg_assets/defs/alerting/fetch_pace.py, sensors/projected_late.py and sensors/degraded.py).
PROJECTION_WARMUP_SECONDS = Setting(
    "ESG_PROJECTION_WARMUP_SECONDS",
    "Seconds esg_ratings fetches before its end is projected (projected_late): its first seconds are not "
    "its pace.",
    "60",
)
DEGRADED_THROUGHPUT_SHARE = Setting(
    "ESG_DEGRADED_THROUGHPUT_SHARE",
    "Share of ESG_RATE_LIMIT_PER_SECOND below which the accounts fetched a second, averaged over "
    "ESG_DEGRADED_THROUGHPUT_SECONDS, raise degraded (0.5 is half the rate).",
    "0.5",
)
DEGRADED_THROUGHPUT_SECONDS = Setting(
    "ESG_DEGRADED_THROUGHPUT_SECONDS",
    "Seconds over which throughput is averaged, for degraded and for the current pace projected_late "
    "projects from.",
    "600",
)
DEGRADED_THROTTLED_SHARE = Setting(
    "ESG_DEGRADED_THROTTLED_SHARE",
    "Share of the ESG API requests answered 429 over ESG_DEGRADED_THROTTLED_SECONDS above which degraded "
    "is raised (0.05 is 5%).",
    "0.05",
)
DEGRADED_THROTTLED_SECONDS = Setting(
    "ESG_DEGRADED_THROTTLED_SECONDS", "Seconds over which the share of 429s is measured, for degraded.", "300"
)

ALL_SETTINGS += (
    PROJECTION_WARMUP_SECONDS,
    DEGRADED_THROUGHPUT_SHARE,
    DEGRADED_THROUGHPUT_SECONDS,
    DEGRADED_THROTTLED_SHARE,
    DEGRADED_THROTTLED_SECONDS,
)

# The daily summary by email (esg_assets/defs/summary/summary_email.py), sent over the job's SMTP relay
# (ESG_SMTP_*, esg_assets/lib/smtp), from ESG_ALERT_EMAIL_FROM.
SUMMARY_EMAIL_TO = Setting(
    "ESG_SUMMARY_EMAIL_TO",
    "Comma-separated addresses that get the daily summary (account ids and aggregates only); "
    "empty: not sent.",
    "",
)

ALL_SETTINGS += (SUMMARY_EMAIL_TO,)

# Secure delivery: key source, S3 output, transport security, access control, audit trail and retention
# (esg_assets/lib/crypto, lib/report_store, lib/audit, lib/access, defs/retention; docs/compliance.md).
KMS_KEY_ID = Setting(
    "ESG_KMS_KEY_ID",
    "AWS KMS key(s) for envelope encryption, comma-separated (id, ARN or alias): the first wraps each new "
    "file's data key, all unwrap; empty: the key file ESG_ENCRYPTION_KEY_FILE encrypts.",
    "",
)
KMS_ENDPOINT_URL = Setting("ESG_KMS_ENDPOINT_URL", "AWS KMS endpoint (a VPC endpoint); empty: AWS's own.", "")
S3_ENDPOINT_URL = Setting("ESG_S3_ENDPOINT_URL", "S3 endpoint for s3:// output; empty: AWS's own.", "")
S3_SSE = Setting(
    "ESG_S3_SSE",
    "Server-side encryption of s3:// output on top of the file's own: `aws:kms` or `AES256`.",
    "aws:kms",
)
S3_SSE_KMS_KEY_ID = Setting(
    "ESG_S3_SSE_KMS_KEY_ID", "KMS key of SSE-KMS; empty: the bucket's default (aws/s3).", ""
)
ALLOW_INSECURE_HTTP = Setting(
    "ESG_ALLOW_INSECURE_HTTP",
    "`true` allows plain http:// to non-loopback hosts (a warning on every run); never in production.",
    "false",
)
AUTHORIZED_READERS = Setting(
    "ESG_AUTHORIZED_READERS",
    "Who may run `esg-report decrypt` and `esg-report subject`: comma-separated OS users and `group:NAME`; "
    "empty: nobody.",
    "",
)
READERS_FILE = Setting(
    "ESG_READERS_FILE",
    "The readers' own RSA public keys (`esg-report readers add`), owned by root or the service account, not "
    "writable by others: every new file is also encrypted to each; empty: to the service's key only.",
    "",
)
AUDIT_LOG_DIR = Setting(
    "ESG_AUDIT_LOG_DIR",
    "Directory of the hash-chained audit log of publications, reads and deletions.",
    "./var/audit",
)
RETENTION_DAYS = Setting(
    "ESG_RETENTION_DAYS",
    "Days the files, warehouse rows and run logs of a day are kept (2555: seven years).",
    "2555",
)
RETENTION_MIN_DAYS = Setting(
    "ESG_RETENTION_MIN_DAYS",
    "Floor of the retention period: a real retention run refuses a shorter one (2555: seven years). Read "
    "from the code location's environment, never from run config; lower it on test instances only.",
    "2555",
)

ALL_SETTINGS += (
    KMS_KEY_ID,
    KMS_ENDPOINT_URL,
    S3_ENDPOINT_URL,
    S3_SSE,
    S3_SSE_KMS_KEY_ID,
    ALLOW_INSECURE_HTTP,
    AUTHORIZED_READERS,
    READERS_FILE,
    AUDIT_LOG_DIR,
    RETENTION_DAYS,
    RETENTION_MIN_DAYS,
)

# Witnesses of the audit log outside the service account's control (esg_assets/lib/audit/witness.py;
# docs/compliance.md, "The audit trail"). Empty switches one off; production sets them.
AUDIT_SYSLOG = Setting(
    "ESG_AUDIT_SYSLOG",
    "Syslog that also gets every audit record (tag `esg-audit`): `host:port` over TCP, or a unix datagram "
    "socket such as `/dev/log`; empty: none (production must set it).",
    "",
)
AUDIT_SYSLOG_COPY = Setting(
    "ESG_AUDIT_SYSLOG_COPY",
    "File the syslog daemon writes the `esg-audit` records into (root-owned, not writable by the service "
    "account), compared by `esg-report audit verify`; empty: not compared.",
    "",
)
AUDIT_WITNESS_URI = Setting(
    "ESG_AUDIT_WITNESS_URI",
    "`s3://bucket/prefix` in a bucket with S3 Object Lock: every audit record is also written there, locked "
    "in compliance mode; empty: none (production on S3 must set it).",
    "",
)
AUDIT_WITNESS_RETENTION_DAYS = Setting(
    "ESG_AUDIT_WITNESS_RETENTION_DAYS",
    "Days each witness object stays locked; empty: ESG_RETENTION_DAYS (seven years).",
    "",
)

ALL_SETTINGS += (AUDIT_SYSLOG, AUDIT_SYSLOG_COPY, AUDIT_WITNESS_URI, AUDIT_WITNESS_RETENTION_DAYS)

# Who may read, where reads are audited, which keys and files: taken from the host's root-owned site
# configuration (/etc/esg/esg.env) when it exists, never from the caller's environment.
SITE_SETTINGS = frozenset(
    setting.name
    for setting in (
        OUTPUT_URI, WAREHOUSE_PATH, ENCRYPTION_KEY_FILE, KMS_KEY_ID, KMS_ENDPOINT_URL, S3_ENDPOINT_URL,
        S3_SSE, S3_SSE_KMS_KEY_ID, AUTHORIZED_READERS, READERS_FILE, AUDIT_LOG_DIR, RETENTION_DAYS,
        RETENTION_MIN_DAYS, AUDIT_SYSLOG, AUDIT_SYSLOG_COPY, AUDIT_WITNESS_URI, AUDIT_WITNESS_RETENTION_DAYS,
    )
)  # fmt: skip
