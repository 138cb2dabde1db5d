"""The firm's HTTP interfaces as a Dagster resource: settings in, ready AMS and ESG clients out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext

from esg_assets.core import settings
from esg_assets.core.setting_values import BadSettingError, flag, http_url, setting_check, whole_number
from esg_assets.core.transport_security import require_secure_url
from esg_assets.lib.firm_api.ams import AmsClient
from esg_assets.lib.firm_api.esg import EsgClient
from esg_assets.lib.firm_api.http_session import build_session
from esg_assets.lib.firm_api.oauth import TokenProvider
from esg_assets.lib.firm_api.pacing import RequestGate
from esg_assets.lib.firm_api.rating_transport import RatingTransport


@dataclass(frozen=True)
class FirmApiClients:
    """The clients of one step, sharing one token and one connection pool."""

    ams: AmsClient
    esg: EsgClient
    workers: int


def workers_for(max_in_flight: int) -> int:
    """Fetch threads for ``max_in_flight`` requests: enough to fill every in-flight slot, plus a few that can
    wait out a retry's backoff without leaving a slot idle. Not more: past that, threads only contend for the
    GIL (measured: docs/performance.md, "Measurements behind code choices")."""
    return max_in_flight + 8


class FirmApiResource(ConfigurableResource):
    """Where the token, AMS and ESG endpoints are, the job's credentials, and the API's limits."""

    token_url: str
    client_id: str
    client_secret: str
    ams_base_url: str
    esg_base_url: str
    rate_limit_per_second: int
    max_in_flight: int
    http_timeout_seconds: int
    max_attempts: int
    ca_bundle: str = ""
    # "true" lets plain http reach other hosts than loopback (logged on every run); text, as Dagster has no
    # boolean EnvVar.
    allow_insecure_http: str = "false"

    _token_url = setting_check("token_url", settings.AUTH_TOKEN_URL, http_url)
    _ams_base_url = setting_check("ams_base_url", settings.AMS_BASE_URL, http_url)
    _esg_base_url = setting_check("esg_base_url", settings.API_BASE_URL, http_url)
    _rate = setting_check("rate_limit_per_second", settings.RATE_LIMIT_PER_SECOND, whole_number)
    _in_flight = setting_check("max_in_flight", settings.MAX_IN_FLIGHT, whole_number)
    _timeout = setting_check("http_timeout_seconds", settings.HTTP_TIMEOUT_SECONDS, whole_number)
    _attempts = setting_check("max_attempts", settings.MAX_ATTEMPTS, whole_number)
    _insecure = setting_check("allow_insecure_http", settings.ALLOW_INSECURE_HTTP, flag)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # The URLs' form is checked when the resource is built; whether plain http may go there, here, so the
        # warning of the opt-out lands in the run's own log, where whoever reads the run sees it.
        for setting, url in (
            (settings.AUTH_TOKEN_URL, self.token_url),
            (settings.AMS_BASE_URL, self.ams_base_url),
            (settings.API_BASE_URL, self.esg_base_url),
        ):
            warning = require_secure_url(setting.name, url, self.insecure_http_allowed)
            if warning and context.log:
                context.log.warning(warning)
        if self.ca_bundle and not Path(self.ca_bundle).is_file():
            raise BadSettingError(settings.CA_BUNDLE, self.ca_bundle, "a PEM file that exists")

    @property
    def insecure_http_allowed(self) -> bool:
        return flag(settings.ALLOW_INSECURE_HTTP, self.allow_insecure_http)

    @property
    def workers(self) -> int:
        return workers_for(self.max_in_flight)

    @contextmanager
    def open_clients(
        self, rate_per_second: float | None = None, max_in_flight: int | None = None
    ) -> Iterator[FirmApiClients]:
        """The step's clients, under the configured limits or the given share of them (a shard's)."""
        rate = self.rate_limit_per_second if rate_per_second is None else rate_per_second
        in_flight = self.max_in_flight if max_in_flight is None else max_in_flight
        workers = workers_for(in_flight)
        session = build_session(pool_size=workers, ca_bundle=self.ca_bundle or None)
        transport = RatingTransport(pool_size=workers, ca_bundle=self.ca_bundle or None)
        try:
            tokens = TokenProvider(
                session, self.token_url, self.client_id, self.client_secret, timeout=self.http_timeout_seconds
            )
            gate = RequestGate(rate_per_second=rate, max_in_flight=in_flight)
            yield FirmApiClients(
                ams=AmsClient(session, self.ams_base_url, tokens, timeout=self.http_timeout_seconds),
                esg=EsgClient(
                    transport,
                    self.esg_base_url,
                    tokens,
                    gate,
                    timeout=self.http_timeout_seconds,
                    max_attempts=self.max_attempts,
                ),
                workers=workers,
            )
        finally:
            transport.close()
            session.close()
