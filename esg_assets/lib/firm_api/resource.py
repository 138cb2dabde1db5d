"""The firm's HTTP interfaces as a Dagster resource: settings in, ready AMS and ESG clients out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext

from esg_assets.lib.firm_api.ams import AmsClient
from esg_assets.lib.firm_api.esg import EsgClient
from esg_assets.lib.firm_api.http_session import build_session
from esg_assets.lib.firm_api.rating_transport import RatingTransport
from esg_assets.lib.firm_api.oauth import TokenProvider
from esg_assets.lib.firm_api.pacing import RequestGate
from esg_assets.lib.firm_api.transport_security import parse_allow_insecure, require_secure_url


@dataclass(frozen=True)
class FirmApiClients:
    """The clients of one step, sharing one token and one connection pool."""

    ams: AmsClient
    esg: EsgClient
    workers: int


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
    allow_insecure_http: str = "false"  # "true" lets plain http reach other hosts than loopback (logged)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Checked when a run starts (EnvVars are resolved then), so a bad value fails at launch, by name.
        for setting, value in (
            ("ESG_RATE_LIMIT_PER_SECOND", self.rate_limit_per_second),
            ("ESG_MAX_IN_FLIGHT", self.max_in_flight),
            ("ESG_HTTP_TIMEOUT_SECONDS", self.http_timeout_seconds),
            ("ESG_MAX_ATTEMPTS", self.max_attempts),
        ):
            if value <= 0:
                raise ValueError(f"Setting {setting} must be a positive whole number, got {value}")
        allow_insecure = parse_allow_insecure(self.allow_insecure_http)
        for setting, url in (
            ("ESG_AUTH_TOKEN_URL", self.token_url),
            ("ESG_AMS_BASE_URL", self.ams_base_url),
            ("ESG_API_BASE_URL", self.esg_base_url),
        ):
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"Setting {setting} must be an http(s) URL, got {url!r}")
            warning = require_secure_url(setting, url, allow_insecure)
            if warning and context.log:  # in the run's own log too, where whoever reads the run sees it
                context.log.warning(warning)
        if self.ca_bundle and not Path(self.ca_bundle).is_file():
            raise ValueError(f"Setting ESG_CA_BUNDLE names {self.ca_bundle!r}, which is not a file")

    @property
    def workers(self) -> int:
        # Enough threads to fill every in-flight slot, plus a few that can wait out a retry's backoff
        # without leaving a slot idle. Not more: past that, threads only contend for the GIL (measured:
        # docs/performance.md, "Measurements behind code choices").
        return self.max_in_flight + 8

    @contextmanager
    def open_clients(self) -> Iterator[FirmApiClients]:
        session = build_session(pool_size=self.workers, ca_bundle=self.ca_bundle or None)
        transport = RatingTransport(pool_size=self.workers, ca_bundle=self.ca_bundle or None)
        try:
            tokens = TokenProvider(
                session, self.token_url, self.client_id, self.client_secret, timeout=self.http_timeout_seconds
            )
            gate = RequestGate(rate_per_second=self.rate_limit_per_second, max_in_flight=self.max_in_flight)
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
                workers=self.workers,
            )
        finally:
            transport.close()
            session.close()
