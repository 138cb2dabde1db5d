"""The job's resources, built from the settings: the one place where settings become resource fields.

``dagster_resources()`` is the code location's set (``EnvVar``s, resolved when a run launches or a sensor
ticks); the command line builds the same resources with ``now`` (esg_assets/cli/common.py).
"""

from __future__ import annotations

from dagster import ResourceDefinition
from dagster_aws.s3 import S3Resource

from esg_assets.config.environment import SettingReader, for_dagster, int_reader, is_set, now, variable
from esg_assets.config.site_config import SiteConfigError
from esg_assets.core import settings as s
from esg_assets.defs.alerting.resource import AlertingResource
from esg_assets.defs.daily_ratings.day_run_lock import DayRunLockResource
from esg_assets.defs.daily_ratings.ratings_shards import RatingsShardsResource
from esg_assets.defs.quality.resource import DataQualityResource
from esg_assets.defs.retention.resource import RetentionFloor, RetentionResource
from esg_assets.defs.summary.summary_email import SummaryEmailResource
from esg_assets.lib.access.caller import SudoUser
from esg_assets.lib.audit.resource import AuditTrailResource
from esg_assets.lib.crypto.kms import KmsResource
from esg_assets.lib.firm_api.resource import FirmApiResource
from esg_assets.lib.logs.run_logging import JobLogsResource
from esg_assets.lib.pagerduty.events_api import PagerDutyResource
from esg_assets.lib.pushgateway.metrics import PushgatewayResource
from esg_assets.lib.report_store.resource import ReportStoreResource
from esg_assets.lib.smtp.relay import SmtpRelayResource
from esg_assets.lib.warehouse.resource import WarehouseResource


def dagster_resources() -> dict:
    """Every resource of the code location, by the key assets, checks, jobs and sensors take it by."""
    read = for_dagster
    s3, kms = s3_client(read), kms_client(read)
    audit = audit_trail(read)
    report_store = report_store_from(read, s3=s3, kms=kms, audit=audit)
    smtp, pagerduty = smtp_relay(read), pagerduty_events(read)
    return {
        "firm_api": firm_api(read),
        "data_quality": data_quality(read),
        "s3": s3,
        "kms": kms,
        "audit": audit,
        "report_store": report_store,
        "warehouse": warehouse(read, report_store),
        "day_run_lock": day_run_lock(read),
        "ratings_shards": RatingsShardsResource(shards=int_reader(read)(s.SHARDS)),
        "retention": RetentionResource(retention_days=int_reader(read)(s.RETENTION_DAYS)),
        # Not a configurable resource: a run's config (the Launchpad) must not be able to lower the floor.
        "retention_floor": ResourceDefinition.hardcoded_resource(
            retention_floor(), "ESG_RETENTION_MIN_DAYS, the floor of the retention period"
        ),
        "smtp": smtp,
        "summary_email": summary_email(read, smtp),
        "pagerduty": pagerduty,
        "alerting": alerting(read, pagerduty, smtp),
        "pushgateway": pushgateway(read),
        "job_logs": job_logs(read),
        # Who sudo says started this process: the person the audit log records when someone runs a day by hand
        # through the service account's sudo rule; empty for the daemon's runs.
        "sudo_user": ResourceDefinition.hardcoded_resource(SudoUser(variable("SUDO_USER")), "SUDO_USER"),
    }


def firm_api(read: SettingReader) -> FirmApiResource:
    integer = int_reader(read)
    return FirmApiResource(
        token_url=read(s.AUTH_TOKEN_URL),
        client_id=read(s.CLIENT_ID),
        client_secret=read(s.CLIENT_SECRET),
        ams_base_url=read(s.AMS_BASE_URL),
        esg_base_url=read(s.API_BASE_URL),
        rate_limit_per_second=integer(s.RATE_LIMIT_PER_SECOND),
        max_in_flight=integer(s.MAX_IN_FLIGHT),
        http_timeout_seconds=integer(s.HTTP_TIMEOUT_SECONDS),
        max_attempts=integer(s.MAX_ATTEMPTS),
        ca_bundle=read(s.CA_BUNDLE),
        allow_insecure_http=read(s.ALLOW_INSECURE_HTTP),
    )


def data_quality(read: SettingReader) -> DataQualityResource:
    return DataQualityResource(
        max_failure_rate=read(s.MAX_FAILURE_RATE),
        reconciliation_sample=int_reader(read)(s.RECONCILIATION_SAMPLE),
    )


def s3_client(read: SettingReader) -> S3Resource:
    return S3Resource(endpoint_url=read(s.S3_ENDPOINT_URL) or None)


def kms_client(read: SettingReader) -> KmsResource:
    return KmsResource(endpoint_url=read(s.KMS_ENDPOINT_URL) or None)


def audit_trail(read: SettingReader) -> AuditTrailResource:
    return AuditTrailResource(
        log_dir=read(s.AUDIT_LOG_DIR),
        syslog=read(s.AUDIT_SYSLOG),
        syslog_copy=read(s.AUDIT_SYSLOG_COPY),
        witness_uri=read(s.AUDIT_WITNESS_URI),
        witness_retention_days=read(s.AUDIT_WITNESS_RETENTION_DAYS),
        retention_days=read(s.RETENTION_DAYS),
        s3_endpoint_url=read(s.S3_ENDPOINT_URL),
    )


def report_store_from(
    read: SettingReader,
    s3: S3Resource | None = None,
    kms: KmsResource | None = None,
    audit: AuditTrailResource | None = None,
    encryption_key_file: str | None = None,
) -> ReportStoreResource:
    """``encryption_key_file=""`` for a store that only lists or reads what exists, without any key."""
    return ReportStoreResource(
        output_uri=read(s.OUTPUT_URI),
        encryption_key_file=_key_file(read) if encryption_key_file is None else encryption_key_file,
        kms_key_id=read(s.KMS_KEY_ID),
        kms=kms or kms_client(read),
        s3=s3 or s3_client(read),
        s3_sse=read(s.S3_SSE),
        s3_sse_kms_key_id=read(s.S3_SSE_KMS_KEY_ID),
        audit=audit or audit_trail(read),
        readers_file=read(s.READERS_FILE),
    )


def warehouse(read: SettingReader, report_store: ReportStoreResource) -> WarehouseResource:
    return WarehouseResource(
        path=read(s.WAREHOUSE_PATH),
        memory_limit=read(s.WAREHOUSE_MEMORY_LIMIT),
        report_store=report_store,  # whose service keys wrap the warehouse key
    )


def day_run_lock(read: SettingReader) -> DayRunLockResource:
    return DayRunLockResource(warehouse_path=read(s.WAREHOUSE_PATH))


def smtp_relay(read: SettingReader) -> SmtpRelayResource:
    return SmtpRelayResource(
        host=read(s.SMTP_HOST),
        port=int_reader(read)(s.SMTP_PORT),
        user=read(s.SMTP_USER),
        password=read(s.SMTP_PASSWORD),
        security=read(s.SMTP_SECURITY),
        ca_file=read(s.SMTP_CA_FILE),
        sender=read(s.ALERT_EMAIL_FROM),
    )


def summary_email(read: SettingReader, smtp: SmtpRelayResource | None = None) -> SummaryEmailResource:
    return SummaryEmailResource(
        smtp=smtp or smtp_relay(read), to=read(s.SUMMARY_EMAIL_TO), support_url=read(s.SUPPORT_URL)
    )


def pagerduty_events(read: SettingReader) -> PagerDutyResource:
    return PagerDutyResource(
        routing_key=read(s.PAGERDUTY_ROUTING_KEY),
        events_url=read(s.PAGERDUTY_EVENTS_URL),
        allow_insecure_http=read(s.ALLOW_INSECURE_HTTP),
    )


def alerting(
    read: SettingReader, pagerduty: PagerDutyResource | None = None, smtp: SmtpRelayResource | None = None
) -> AlertingResource:
    integer = int_reader(read)
    return AlertingResource(
        pagerduty=pagerduty or pagerduty_events(read),
        smtp=smtp or smtp_relay(read),
        email_to_dev=read(s.ALERT_EMAIL_TO_DEV),
        email_to_business=read(s.ALERT_EMAIL_TO_BUSINESS),
        dagster_base_url=read(s.DAGSTER_BASE_URL),
        support_url=read(s.SUPPORT_URL),
        start_grace_minutes=integer(s.START_GRACE_MINUTES),
        deadline_hour=integer(s.DEADLINE_HOUR),
        projection_warmup_seconds=integer(s.PROJECTION_WARMUP_SECONDS),
        degraded_throughput_share=read(s.DEGRADED_THROUGHPUT_SHARE),
        degraded_throughput_seconds=integer(s.DEGRADED_THROUGHPUT_SECONDS),
        degraded_throttled_share=read(s.DEGRADED_THROTTLED_SHARE),
        degraded_throttled_seconds=integer(s.DEGRADED_THROTTLED_SECONDS),
    )


def pushgateway(read: SettingReader) -> PushgatewayResource:
    return PushgatewayResource(url=read(s.PUSHGATEWAY_URL), allow_insecure_http=read(s.ALLOW_INSECURE_HTTP))


def retention_floor() -> RetentionFloor:
    """The floor as the host sets it now.

    A site file that cannot be trusted fails the retention run (which then deletes nothing), not the code
    location and its alerting sensors.
    """
    try:
        return RetentionFloor(now(s.RETENTION_MIN_DAYS))
    except SiteConfigError as error:
        return RetentionFloor(problem=str(error))


def job_logs(read: SettingReader) -> JobLogsResource:
    return JobLogsResource(log_dir=read(s.LOG_DIR))


def _key_file(read: SettingReader) -> str:
    # The key file is required unless KMS encrypts; with KMS it is optional (it still reads the files made
    # before the move). Deciding here keeps a missing key file a launch-time error naming the variable.
    if is_set(s.KMS_KEY_ID, read) and not is_set(s.ENCRYPTION_KEY_FILE, read):
        return ""
    return read(s.ENCRYPTION_KEY_FILE)
