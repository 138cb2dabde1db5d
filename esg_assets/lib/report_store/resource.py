"""The published files as a Dagster resource: where they go, the keys that encrypt them, their audit log."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import ConfigurableResource, InitResourceContext
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from esg_assets.core import settings
from esg_assets.core.setting_values import one_of, setting_check
from esg_assets.lib.access.reader_keys import load_readers
from esg_assets.lib.audit.log import AuditLog
from esg_assets.lib.audit.resource import AuditTrailResource
from esg_assets.lib.crypto.keyring import Keyring, key_file_keyring, kms_keyring
from esg_assets.lib.crypto.keys import load_key_ring
from esg_assets.lib.crypto.kms import KmsResource
from esg_assets.lib.report_store.s3 import SSE_MODES, Publication, S3Options
from esg_assets.lib.report_store.store import ReportStore, report_store_for


class ReportStoreResource(ConfigurableResource):
    """Where the day's files go (``ESG_OUTPUT_URI``), what encrypts them, and where access to them is audited.

    Files are encrypted with AWS KMS envelope encryption when ``kms_key_id`` is set (through ``kms``), else
    with the key file. Inside a run the resource knows the run's id and start time, so an S3 store refuses to
    let this run replace a file that a later run published.
    """

    output_uri: str
    encryption_key_file: str = ""
    kms_key_id: str = ""
    kms: KmsResource | None = None  # None: AWS's endpoint and credential chain
    s3: S3Resource | None = None  # None: AWS's endpoint and credential chain
    s3_sse: str = settings.S3_SSE.default  # type: ignore[assignment]
    s3_sse_kms_key_id: str = ""
    audit: AuditTrailResource | None = None  # None: ./var/audit, no witnesses
    readers_file: str = ""

    _sse = setting_check("s3_sse", settings.S3_SSE, one_of, choices=SSE_MODES)

    _publication: Publication | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._s3_options()  # a bad SSE setting fails the step before anything is written
        self._audit().witnesses()  # so does a bad ESG_AUDIT_SYSLOG or ESG_AUDIT_WITNESS_URI
        self._publication = _publication_of(context)

    def store(self) -> ReportStore:
        s3_client = self.s3.get_client if self.s3 is not None else None
        return report_store_for(self.output_uri, self._s3_options(), self._publication, s3_client)

    def keyring(self) -> Keyring:
        """KMS when ``kms_key_id`` is set (a key file then reads older files), else the key file; new files
        are also encrypted to each reader of ``readers_file``."""
        return _with_readers(self.service_keyring(), self.readers_file)

    def service_keyring(self) -> Keyring:
        """The service's own keys, without the readers': what reads and checks the files."""
        key_ring = load_key_ring(self.encryption_key_file) if self.encryption_key_file else None
        if self.kms_key_id:
            key_ids = [key_id.strip() for key_id in self.kms_key_id.split(",") if key_id.strip()]
            kms = self.kms if self.kms is not None else KmsResource()
            return kms_keyring(kms.get_client(), key_ids, fallback=key_ring)
        if key_ring is None:
            raise settings.MissingSettingError(settings.ENCRYPTION_KEY_FILE.name)
        return key_file_keyring(key_ring)

    def audit_log(self) -> AuditLog:
        return self._audit().log()

    def _audit(self) -> AuditTrailResource:
        return self.audit if self.audit is not None else AuditTrailResource()

    def _s3_options(self) -> S3Options:
        endpoint = (self.s3.endpoint_url if self.s3 is not None else None) or ""
        return S3Options(endpoint, self.s3_sse, self.s3_sse_kms_key_id)


def _publication_of(context: InitResourceContext) -> Publication | None:
    """The run this resource serves and when it started (its creation time until it has started)."""
    if context.run is None or context.instance is None:
        return None
    run_id = context.run.run_id
    record = context.instance.get_run_record_by_id(run_id)
    if record is None:
        return Publication(run_id, datetime.now(UTC))
    if record.start_time is not None:
        return Publication(run_id, datetime.fromtimestamp(record.start_time, UTC))
    return Publication(run_id, record.create_timestamp.astimezone(UTC))


def _with_readers(keyring: Keyring, readers_file: str) -> Keyring:
    if not readers_file:
        return keyring
    readers = load_readers(readers_file)
    names = ", ".join(reader.name for reader in readers) or "nobody"
    return keyring.also_for(
        [reader.master_key() for reader in readers],
        [f"{reader.name} sha256:{reader.fingerprint}" for reader in readers],
        f"readers {names} ({readers_file})",
    )
