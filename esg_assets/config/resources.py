"""The resource set of the job, read from the environment (see esg_assets/core/settings.py)."""

from __future__ import annotations

from esg_assets.core import settings
from esg_assets.defs.quality.resource import DataQualityResource
from esg_assets.lib.firm_api.resource import FirmApiResource
from esg_assets.lib.report_store.resource import report_store_from_env
from esg_assets.lib.warehouse.resource import WarehouseResource
from esg_assets.defs.retention.resource import RetentionResource


def resources_from_env() -> dict:
    """Required settings stay ``EnvVar``s, so a missing one fails the run at launch naming the variable."""
    report_store = report_store_from_env()
    return {
        "firm_api": FirmApiResource(
            token_url=settings.AUTH_TOKEN_URL.config(),
            client_id=settings.CLIENT_ID.config(),
            client_secret=settings.CLIENT_SECRET.config(),
            ams_base_url=settings.AMS_BASE_URL.config(),
            esg_base_url=settings.API_BASE_URL.config(),
            rate_limit_per_second=settings.RATE_LIMIT_PER_SECOND.int_config(),
            max_in_flight=settings.MAX_IN_FLIGHT.int_config(),
            http_timeout_seconds=settings.HTTP_TIMEOUT_SECONDS.int_config(),
            max_attempts=settings.MAX_ATTEMPTS.int_config(),
            ca_bundle=settings.CA_BUNDLE.config(),
            allow_insecure_http=settings.ALLOW_INSECURE_HTTP.config(),
        ),
        "data_quality": DataQualityResource(
            max_failure_rate=settings.MAX_FAILURE_RATE.config(),
            reconciliation_sample=settings.RECONCILIATION_SAMPLE.int_config(),
        ),
        "warehouse": WarehouseResource(
            path=settings.WAREHOUSE_PATH.config(),
            memory_limit=settings.WAREHOUSE_MEMORY_LIMIT.config(),
            report_store=report_store,  # whose service keys wrap the warehouse key
        ),
        "report_store": report_store,
        "retention": RetentionResource(retention_days=settings.RETENTION_DAYS.int_config()),
    }
