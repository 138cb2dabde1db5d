"""One alert about one day's run: what happened, the numbers, the run, and the first step of the runbook."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType

from esg_assets.core.iso_dates import is_iso_date
from esg_assets.core.redaction import is_sensitive_name

SEVERITIES = ("critical", "error", "warning", "info")
AUDIENCES = ("dev", "business_and_dev")
ACTIONS = ("trigger", "resolve")
RESOLVED = "resolved"

_KIND = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True, kw_only=True)
class Alert:
    """An alert about the run of one partition (day).

    A resolve is ``kind="resolved", action="resolve", resolves=<the kind it closes>``; its ``dedup_key`` is
    the one of the trigger it closes, so PagerDuty closes that incident.
    """

    kind: str  # "run_failure", "not_started", "deadline", "failure_rate", ... or "resolved"
    partition: str  # YYYY-MM-DD
    severity: str  # one of SEVERITIES
    summary: str  # one line
    details: Mapping[str, int | float | str] = field(default_factory=dict)  # numbers; never names or secrets
    run_id: str | None = None
    audience: str = "dev"  # "business_and_dev" also emails the business recipients
    action: str = "trigger"
    runbook_step: str = ""  # the first step of the runbook for this kind; required for a trigger
    resolves: str | None = None  # for a resolve: the kind it closes
    detected_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def __post_init__(self) -> None:
        _check(_KIND.fullmatch(self.kind), f"kind {self.kind!r} must be lower_snake_case")
        _check(is_iso_date(self.partition), f"partition {self.partition!r} must be a date YYYY-MM-DD")
        _check(self.severity in SEVERITIES, f"severity {self.severity!r} must be one of {SEVERITIES}")
        _check(self.audience in AUDIENCES, f"audience {self.audience!r} must be one of {AUDIENCES}")
        _check(self.action in ACTIONS, f"action {self.action!r} must be one of {ACTIONS}")
        _check(bool(self.summary.strip()) and "\n" not in self.summary, "summary must be one non-empty line")
        _check(self.detected_at.tzinfo is not None, "detected_at must be timezone-aware")
        if self.action == "resolve":
            _check(self.kind == RESOLVED, 'a resolve has kind "resolved"')
            _check(_KIND.fullmatch(self.resolves or ""), "a resolve names the kind it closes")
        else:
            _check(self.kind != RESOLVED and self.resolves is None, 'kind "resolved" needs action "resolve"')
            _check(bool(self.runbook_step.strip()), "a trigger carries the first step of its runbook")
        for name, value in self.details.items():
            # Alerts leave the firm (PagerDuty, mailboxes): refuse a field that names a secret or an account.
            _check(not is_sensitive_name(name), f"details field {name!r} may hold a secret or a name")
            _check(isinstance(value, (int, float, str)), f"details field {name!r} must be a number or text")
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    @property
    def dedup_key(self) -> str:
        """``esg-<partition>-<kind>``; a resolve uses the kind it resolves, so it closes that alert."""
        return f"esg-{self.partition}-{self.resolves if self.action == 'resolve' else self.kind}"

    @property
    def headline(self) -> str:
        """The summary with the day in front: what an on-call engineer reads first."""
        return f"ESG ratings {self.partition}: {self.summary}"

    def run_url(self, base_url: str) -> str | None:
        """Link to the run in the Dagster UI, or None when there is no run (e.g. it never started)."""
        if not self.run_id:
            return None
        return f"{base_url.rstrip('/')}/runs/{self.run_id}"


def _check(condition: object, message: str) -> None:
    if not condition:
        raise ValueError(f"invalid alert: {message}")
