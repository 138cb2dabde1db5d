"""The firm's HTTP interfaces as a Dagster resource: settings in, ready AMS and ESG clients out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dagster import ConfigurableResource
from pydantic import Field

from esg_assets.clients.ams import AmsClient
from esg_assets.clients.esg import EsgClient
from esg_assets.clients.http_session import build_session
from esg_assets.clients.oauth import TokenProvider
from esg_assets.clients.pacing import RequestGate


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
    rate_limit_per_second: int = Field(gt=0)
    max_in_flight: int = Field(gt=0)
    http_timeout_seconds: int = Field(gt=0)
    max_attempts: int = Field(gt=0)
    ca_bundle: str = ""

    @property
    def workers(self) -> int:
        # Threads beyond the in-flight limit wait out retry backoffs without idling a request slot.
        return min(2 * self.max_in_flight + 4, 512)

    @contextmanager
    def open_clients(self) -> Iterator[FirmApiClients]:
        session = build_session(pool_size=self.workers, ca_bundle=self.ca_bundle or None)
        try:
            tokens = TokenProvider(
                session, self.token_url, self.client_id, self.client_secret, timeout=self.http_timeout_seconds
            )
            gate = RequestGate(rate_per_second=self.rate_limit_per_second, max_in_flight=self.max_in_flight)
            yield FirmApiClients(
                ams=AmsClient(session, self.ams_base_url, tokens, timeout=self.http_timeout_seconds),
                esg=EsgClient(
                    session,
                    self.esg_base_url,
                    tokens,
                    gate,
                    timeout=self.http_timeout_seconds,
                    max_attempts=self.max_attempts,
                ),
                workers=self.workers,
            )
        finally:
            session.close()
