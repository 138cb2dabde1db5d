"""The audit trail as a resource: the local hash-chained log and the witnesses every record also goes to."""

from __future__ import annotations

from dagster import ConfigurableResource

from esg_assets.core import settings
from esg_assets.core.setting_values import whole_number
from esg_assets.lib.audit.log import AuditLog
from esg_assets.lib.audit.witness import AuditWitness, S3Witness, SyslogCopy, SyslogWitness, WitnessCopy


class AuditTrailResource(ConfigurableResource):
    """Where the log is (ESG_AUDIT_LOG_DIR) and its witnesses: syslog (ESG_AUDIT_SYSLOG), the file rsyslog
    writes (ESG_AUDIT_SYSLOG_COPY), S3 under Object Lock (ESG_AUDIT_WITNESS_URI, locked for
    ESG_AUDIT_WITNESS_RETENTION_DAYS, else ESG_RETENTION_DAYS). Empty switches a witness off."""

    log_dir: str = settings.AUDIT_LOG_DIR.default  # type: ignore[assignment]
    syslog: str = ""
    syslog_copy: str = ""
    witness_uri: str = ""
    witness_retention_days: str = ""  # text: empty means ESG_RETENTION_DAYS
    retention_days: str = settings.RETENTION_DAYS.default  # type: ignore[assignment]
    s3_endpoint_url: str = ""

    def log(self) -> AuditLog:
        """The log; its witnesses are built at its first append, so a misconfigured one refuses then, naming
        the setting, before anything is written (reading and verifying the log need none)."""
        return AuditLog(self.log_dir, witnesses=self.witnesses)

    def witnesses(self) -> tuple[AuditWitness, ...]:
        """The witnesses, in the order records go to them; ``ValueError`` names a bad setting."""
        witnesses: list[AuditWitness] = []
        if self.syslog.strip():
            witnesses.append(SyslogWitness(self.syslog.strip()))
        s3 = self._s3_witness()
        if s3 is not None:
            witnesses.append(s3)
        return tuple(witnesses)

    def copies(self) -> tuple[WitnessCopy, ...]:
        """What ``esg-report audit verify`` compares the local log to: the syslog copy and the S3 witness."""
        copies: list[WitnessCopy] = []
        if self.syslog_copy.strip():
            copies.append(SyslogCopy(self.syslog_copy.strip()))
        s3 = self._s3_witness()
        if s3 is not None:
            copies.append(s3)
        return tuple(copies)

    def _s3_witness(self) -> S3Witness | None:
        uri = self.witness_uri.strip()
        if not uri:
            return None
        if self.witness_retention_days.strip():
            days = whole_number(settings.AUDIT_WITNESS_RETENTION_DAYS, self.witness_retention_days)
        else:
            days = whole_number(settings.RETENTION_DAYS, self.retention_days)
        return S3Witness(uri, days, endpoint_url=self.s3_endpoint_url)
