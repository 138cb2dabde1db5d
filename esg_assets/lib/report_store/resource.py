"""The published files as a Dagster resource: where they go, the keys that encrypt them, their audit log."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from esg_assets.core import settings
from esg_assets.lib.access.reader_keys import load_readers
from esg_assets.lib.audit.log import AuditLog
from esg_assets.lib.crypto.keyring import Keyring, key_file_keyring, kms_keyring
from esg_assets.lib.crypto.keys import load_key_ring
from esg_assets.lib.report_store.store import ReportStore, report_store_for
from esg_assets.lib.report_store.s3 import Publication, S3Options


class ReportStoreResource(ConfigurableResource):
    """Where the day's files go (``ESG_OUTPUT_URI``), what encrypts them, and where access to them is audited.

    Files are encrypted with AWS KMS envelope encryption when ``kms_key_id`` is set, else with the key file.
    Inside a run the resource knows the run's id and start time, so an S3 store refuses to let this run
    replace a file that a later run published.
    """

    output_uri: str
    encryption_key_file: str = ""
    kms_key_id: str = ""
    kms_endpoint_url: str = ""
    s3_endpoint_url: str = ""
    s3_sse: str = settings.S3_SSE.default
    s3_sse_kms_key_id: str = ""
    audit_log_dir: str = settings.AUDIT_LOG_DIR.default
    readers_file: str = ""

    _publication: Publication | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._s3_options()  # a bad SSE setting fails the step before anything is written
        self.audit_log().witnesses  # noqa: B018 (so does a bad ESG_AUDIT_SYSLOG or ESG_AUDIT_WITNESS_URI)
        self._publication = _publication_of(context)

    def store(self) -> ReportStore:
        return report_store_for(self.output_uri, self._s3_options(), self._publication)

    def keyring(self) -> Keyring:
        """KMS when ``kms_key_id`` is set (a key file then reads older files), else the key file; new files are
        also encrypted to each reader of ``readers_file``."""
        return _with_readers(self.service_keyring(), self.readers_file)

    def service_keyring(self) -> Keyring:
        """The service's own keys, without the readers': what reads and checks the files."""
        key_ring = load_key_ring(self.encryption_key_file) if self.encryption_key_file else None
        if self.kms_key_id:
            from esg_assets.lib.crypto.kms import KmsResource  # dagster_aws: seconds of import, only for KMS

            client = KmsResource(endpoint_url=self.kms_endpoint_url or None).get_client()
            key_ids = [key_id.strip() for key_id in self.kms_key_id.split(",") if key_id.strip()]
            return kms_keyring(client, key_ids, fallback=key_ring)
        if key_ring is None:
            raise settings.MissingSettingError(settings.ENCRYPTION_KEY_FILE.name)
        return key_file_keyring(key_ring)

    def audit_log(self) -> AuditLog:
        return AuditLog(self.audit_log_dir)

    def _s3_options(self) -> S3Options:
        return S3Options(self.s3_endpoint_url, self.s3_sse, self.s3_sse_kms_key_id)


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


def report_store_from_env() -> ReportStoreResource:
    """For the code location: ``EnvVar``s, resolved when a run launches."""
    return _report_store(lambda setting: setting.config())


def report_store_from_settings() -> ReportStoreResource:
    """For command line tools: the settings' values now (a missing required one raises naming it)."""
    return _report_store(lambda setting: setting.value())


def _report_store(value_of: Callable[[settings.Setting], Any]) -> ReportStoreResource:
    return ReportStoreResource(
        output_uri=value_of(settings.OUTPUT_URI),
        encryption_key_file=_key_file(value_of),
        kms_key_id=value_of(settings.KMS_KEY_ID),
        kms_endpoint_url=value_of(settings.KMS_ENDPOINT_URL),
        s3_endpoint_url=value_of(settings.S3_ENDPOINT_URL),
        s3_sse=value_of(settings.S3_SSE),
        s3_sse_kms_key_id=value_of(settings.S3_SSE_KMS_KEY_ID),
        audit_log_dir=value_of(settings.AUDIT_LOG_DIR),
        readers_file=value_of(settings.READERS_FILE),
    )


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


def _key_file(value_of: Callable[[settings.Setting], Any]) -> Any:
    # The key file is required unless KMS encrypts; with KMS it is optional (it still reads the files made
    # before the move). Deciding here keeps a missing key file a launch-time error naming the variable.
    key_file = settings.ENCRYPTION_KEY_FILE
    if os.environ.get(settings.KMS_KEY_ID.name) and not os.environ.get(key_file.name):
        return ""
    return value_of(key_file)
