"""What the sandbox serves: ``SandboxConfig``, read by the data and the server, so it imports neither."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SandboxConfig:
    """What the sandbox serves and which of the contract's limits and faults it enforces."""

    accounts: int = 1000
    seed: int = 1
    failure_rate: float = 0.0
    transient_error_rate: float = 0.0
    partial_rate: float = 0.0
    daily_change_rate: float = 0.05
    rate_limit: float | None = None  # ESG requests per second; None = unlimited
    max_in_flight: int | None = None  # ESG requests being processed at once; None = unlimited
    latency_ms: float = 0.0
    token_ttl: float = 3600.0
    client_id: str = "sandbox"
    client_secret: str = "sandbox"
    ams_noise: bool = True
    port: int = 0
    cursor_ttl: float = 600.0  # AMS cursors are short-lived (contract section 2)
    tls: bool = False  # serve HTTPS with a CA made at start (esg_assets/sandbox/tls.py)
    tls_dir: str | None = None  # where its PEM files go; None: a new temporary directory, removed at stop
    tls_expired: bool = False  # serve an expired certificate, to see clients refuse it
    # Share of active accounts listed with hostile input (names that are not valid text or too long, ids
    # that are numbers); above 0 also one expired cursor, one oversized and one trickled rating per run.
    hostile_rate: float = 0.0

    def __post_init__(self):
        for name in (
            "failure_rate",
            "transient_error_rate",
            "partial_rate",
            "daily_change_rate",
            "hostile_rate",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.rate_limit is not None and not self.rate_limit > 0:
            raise ValueError(f"rate_limit must be greater than 0 or None, got {self.rate_limit}")
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1 or None, got {self.max_in_flight}")
        for name in ("accounts", "latency_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("token_ttl", "cursor_ttl"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be greater than 0, got {getattr(self, name)}")
