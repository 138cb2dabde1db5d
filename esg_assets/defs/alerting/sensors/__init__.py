"""The alerting sensors: failed, late, overdue and canceled runs, failure rates, a fetch projected late or
degraded, resolves and retries."""

from esg_assets.defs.alerting.sensors.alert_retry import esg_alert_retry
from esg_assets.defs.alerting.sensors.deadline import esg_deadline
from esg_assets.defs.alerting.sensors.degraded import esg_degraded_alert
from esg_assets.defs.alerting.sensors.failure_rate import esg_failure_rate_alert
from esg_assets.defs.alerting.sensors.not_started import esg_not_started_alert
from esg_assets.defs.alerting.sensors.projected_late import esg_projected_late_alert
from esg_assets.defs.alerting.sensors.reconciliation import esg_reconciliation_alert
from esg_assets.defs.alerting.sensors.resolve import esg_resolve_alerts
from esg_assets.defs.alerting.sensors.run_canceled import esg_run_canceled_alert
from esg_assets.defs.alerting.sensors.run_failure import esg_run_failure_alert

all_sensors = [
    esg_run_failure_alert,
    esg_run_canceled_alert,
    esg_not_started_alert,
    esg_deadline,
    esg_failure_rate_alert,
    esg_reconciliation_alert,
    esg_projected_late_alert,
    esg_degraded_alert,
    esg_resolve_alerts,
    esg_alert_retry,
]
