"""Who hears of the day's trouble, and when the day counts as late: the alerting settings as one resource."""

from __future__ import annotations

from dagster import ConfigurableResource, DagsterInstance

from esg_assets.core import settings
from esg_assets.core.setting_values import fraction, http_url, setting_check, support_page, whole_number
from esg_assets.defs.alerting.alert_ledger import AlertLedger
from esg_assets.defs.alerting.channels.email import EmailAlerts
from esg_assets.defs.alerting.channels.pagerduty import PagerDutyAlerts
from esg_assets.defs.alerting.dispatch import AlertDispatcher
from esg_assets.defs.alerting.fetch_pace import PaceThresholds
from esg_assets.defs.alerting.job_day import JobWindow
from esg_assets.lib.pagerduty.events_api import PagerDutyResource
from esg_assets.lib.smtp.relay import SmtpRelayResource


class AlertingResource(ConfigurableResource):
    """PagerDuty and email (each off when its routing key or relay host is empty), the recipients, the UI's
    address for run links, the support page's, the day's start grace and deadline, and when a fetch's pace
    alerts.

    The shares are text because Dagster has no float ``EnvVar``; ``pace`` gives them as numbers."""

    pagerduty: PagerDutyResource
    smtp: SmtpRelayResource
    email_to_dev: str = ""
    email_to_business: str = ""
    dagster_base_url: str = settings.DAGSTER_BASE_URL.default  # type: ignore[assignment]
    support_url: str = settings.SUPPORT_URL.default  # type: ignore[assignment]
    start_grace_minutes: int = int(settings.START_GRACE_MINUTES.default)  # type: ignore[arg-type]
    deadline_hour: int = int(settings.DEADLINE_HOUR.default)  # type: ignore[arg-type]

    projection_warmup_seconds: int = int(settings.PROJECTION_WARMUP_SECONDS.default)  # type: ignore[arg-type]
    degraded_throughput_share: str = settings.DEGRADED_THROUGHPUT_SHARE.default  # type: ignore[assignment]
    degraded_throughput_seconds: int = int(settings.DEGRADED_THROUGHPUT_SECONDS.default)  # type: ignore[arg-type]
    degraded_throttled_share: str = settings.DEGRADED_THROTTLED_SHARE.default  # type: ignore[assignment]
    degraded_throttled_seconds: int = int(settings.DEGRADED_THROTTLED_SECONDS.default)  # type: ignore[arg-type]

    _base_url = setting_check("dagster_base_url", settings.DAGSTER_BASE_URL, http_url)
    _support_url = setting_check("support_url", settings.SUPPORT_URL, support_page)
    _grace = setting_check(
        "start_grace_minutes", settings.START_GRACE_MINUTES, whole_number, low=0, high=24 * 60
    )
    _deadline = setting_check("deadline_hour", settings.DEADLINE_HOUR, whole_number, low=0, high=23)
    _warmup = setting_check(
        "projection_warmup_seconds", settings.PROJECTION_WARMUP_SECONDS, whole_number, low=0, high=4 * 3600
    )
    _slow_share = setting_check("degraded_throughput_share", settings.DEGRADED_THROUGHPUT_SHARE, fraction)
    _slow_seconds = setting_check(
        "degraded_throughput_seconds", settings.DEGRADED_THROUGHPUT_SECONDS, whole_number, high=4 * 3600
    )
    _throttled_share = setting_check("degraded_throttled_share", settings.DEGRADED_THROTTLED_SHARE, fraction)
    _throttled_seconds = setting_check(
        "degraded_throttled_seconds", settings.DEGRADED_THROTTLED_SECONDS, whole_number, high=4 * 3600
    )

    def dispatcher(self) -> AlertDispatcher:
        pagerduty = (
            PagerDutyAlerts(self.pagerduty, support_url=self.support_url) if self.pagerduty.enabled else None
        )
        email = (
            EmailAlerts(self.smtp, self.email_to_dev, self.email_to_business, support_url=self.support_url)
            if self.smtp.enabled
            else None
        )
        return AlertDispatcher(pagerduty, email, self.dagster_base_url)

    def ledger(self, instance: DagsterInstance) -> AlertLedger:
        return AlertLedger(instance, self.dispatcher())

    @property
    def window(self) -> JobWindow:
        return JobWindow(self.start_grace_minutes, self.deadline_hour)

    @property
    def pace(self) -> PaceThresholds:
        return PaceThresholds(
            warmup_seconds=self.projection_warmup_seconds,
            throughput_share=fraction(settings.DEGRADED_THROUGHPUT_SHARE, self.degraded_throughput_share),
            throughput_seconds=self.degraded_throughput_seconds,
            throttled_share=fraction(settings.DEGRADED_THROTTLED_SHARE, self.degraded_throttled_share),
            throttled_seconds=self.degraded_throttled_seconds,
        )
