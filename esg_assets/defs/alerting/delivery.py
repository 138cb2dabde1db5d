"""What a channel reports back about one alert: delivered, or the reason it was not."""

from __future__ import annotations

from dataclasses import dataclass


class AlertChannelError(RuntimeError):
    """A channel could not deliver an alert; the message says why and never carries a secret."""

    def __init__(self, channel: str, reason: str, attempts: int = 1):
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason
        self.attempts = attempts


@dataclass(frozen=True)
class DeliveryResult:
    """What one channel did with one alert."""

    channel: str  # "pagerduty" | "email"
    delivered: bool
    detail: str  # e.g. "202 accepted" or the reason it failed
    attempts: int = 1
