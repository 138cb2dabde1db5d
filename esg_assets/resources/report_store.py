"""The published files as a Dagster resource: the output location and the key that encrypts them."""

from __future__ import annotations

from dagster import ConfigurableResource

from esg_assets.crypto.keys import KeyRing, load_key_ring
from esg_assets.storage.report_store import ReportStore, report_store_for


class ReportStoreResource(ConfigurableResource):
    """Where the day's files go (``ESG_OUTPUT_URI``) and the key file that encrypts them."""

    output_uri: str
    encryption_key_file: str

    def store(self) -> ReportStore:
        return report_store_for(self.output_uri)

    def key_ring(self) -> KeyRing:
        return load_key_ring(self.encryption_key_file)
