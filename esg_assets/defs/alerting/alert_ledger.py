"""The alert ledger: what was sent, per day, kind and action, so each alert goes out once and none is lost.

Kept in the Dagster instance as observations of the asset key ``esg_alert_ledger``, one partition per day,
through Dagster's public event API (``report_runless_asset_event`` / ``fetch_observations``): the newest
observation of a day, kind and action is its state, and every change stays in the event log. No asset of the
code location has that key: nothing materializes the ledger, and the daily graph stays the five assets. Not
sensor cursors: several sensors share the ledger (the deadline and canceled-run sensors may both report one
termination; the resolve sensor closes what the others opened; the retry sensor delivers what another left
pending), `esg-report healthcheck` uses it from outside the daemon, and Dagster owns the cursor of a run
status sensor. Not the warehouse: a sensor must not wait for the run that holds DuckDB's single writer lock.
An entry is written as *pending* before delivery (an outbox): a tick that dies between the two, or delivers on
no channel, leaves it for ``esg_alert_retry``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone

from dagster import AssetObservation, AssetRecordsFilter, DagsterInstance

from esg_assets.core.keys import ALERT_LEDGER
from esg_assets.defs.alerting.alert import Alert
from esg_assets.defs.alerting.alert_kinds import ALERT_KINDS
from esg_assets.defs.alerting.dispatch import AlertDispatcher, AlertNotDelivered

logger = logging.getLogger(__name__)

KEY_PREFIX = "esg_assets/alerts"
# The days the retry and resolve sensors look back over: an alert older than that is left to people.
LOOKBACK_DAYS = 7
PENDING = "pending"
SENT = "sent"
ACTIONS = ("trigger", "resolve")


@dataclass(frozen=True)
class LedgerEntry:
    """One alert (a trigger or a resolve) of one day and kind, and whether it has been delivered."""

    state: str  # PENDING or SENT
    alert: Alert
    attempts: int
    last_error: str = ""

    @property
    def sent(self) -> bool:
        return self.state == SENT


class AlertLedger:
    """Sends alerts via ``dispatcher`` at most once per day, kind and action, as ``instance`` remembers."""

    def __init__(self, instance: DagsterInstance, dispatcher: AlertDispatcher):
        self._instance = instance
        self._dispatcher = dispatcher

    def send_once(self, alert: Alert) -> bool:
        """Delivers ``alert`` unless the day's alert of its kind and action was already sent.

        True when delivered now, False when it had been sent before. Raises ``AlertNotDelivered`` when no
        channel took it: the entry stays pending, so the next tick (or ``esg_alert_retry``) tries again.
        """
        key = ledger_key(alert.partition, _kind_of(alert), alert.action)
        entry = self._read([key]).get(key)
        if entry is not None and entry.sent:
            return False
        if entry is None:
            entry = LedgerEntry(PENDING, alert, attempts=0)
            self._write(key, entry)
        return self._deliver(key, entry)

    def retry_pending(self, days: Iterable[date]) -> int:
        """Delivers every pending alert of ``days``; returns how many went out.

        Raises ``AlertNotDelivered`` (the first failure) after trying them all, so one stuck alert does not
        hold back the others.
        """
        delivered, failures = 0, []
        for key, entry in self._read(_keys_of(days)).items():
            if entry.sent:
                continue
            try:
                delivered += self._deliver(key, entry)
            except AlertNotDelivered as failure:
                failures.append(failure)
        if failures:
            raise failures[0]
        return delivered

    def open_triggers(self, days: Iterable[date]) -> list[Alert]:
        """Triggers sent and not yet resolved, for ``days``."""
        entries = self._read(_keys_of(days))
        return [
            entry.alert
            for key, entry in entries.items()
            if key.endswith("/trigger")
            and entry.sent
            and not _sent(entries.get(key.removesuffix("/trigger") + "/resolve"))
        ]

    def entry(self, partition: str, kind: str, action: str = "trigger") -> LedgerEntry | None:
        key = ledger_key(partition, kind, action)
        return self._read([key]).get(key)

    def _deliver(self, key: str, entry: LedgerEntry) -> bool:
        try:
            self._dispatcher.deliver(entry.alert)
        except AlertNotDelivered as failure:
            self._write(key, LedgerEntry(PENDING, entry.alert, entry.attempts + 1, str(failure)))
            logger.error(
                "alert %s not delivered on any channel; it stays pending and is retried next tick",
                entry.alert.dedup_key,
                extra={"event": "alert_pending", "dedup_key": entry.alert.dedup_key, "reason": str(failure)},
            )
            raise
        self._write(key, LedgerEntry(SENT, entry.alert, entry.attempts + 1))
        logger.info(
            "alert %s %s sent",
            entry.alert.dedup_key,
            entry.alert.action,
            extra={
                "event": "alert_sent",
                "dedup_key": entry.alert.dedup_key,
                "partition": entry.alert.partition,
            },
        )
        return True

    def _read(self, keys: Iterable[str]) -> dict[str, LedgerEntry]:
        """The newest entry of each of ``keys`` that has one."""
        wanted = set(keys)
        days = sorted({_day_of(key) for key in wanted})
        found: dict[str, LedgerEntry] = {}
        cursor = None
        while True:
            result = self._instance.fetch_observations(
                AssetRecordsFilter(asset_key=ALERT_LEDGER, asset_partitions=days), limit=_PAGE, cursor=cursor
            )
            for record in result.records:  # newest first
                metadata = record.asset_observation.metadata if record.asset_observation else {}
                key = _text(metadata.get(_KEY))
                if key in wanted and key not in found:
                    found[key] = _entry_from_json(_text(metadata.get(_ENTRY)))
            if not result.has_more:
                return found
            cursor = result.cursor

    def _write(self, key: str, entry: LedgerEntry) -> None:
        self._instance.report_runless_asset_event(
            AssetObservation(
                asset_key=ALERT_LEDGER,
                partition=_day_of(key),
                description=f"{entry.alert.dedup_key} {entry.alert.action}: {entry.state}",
                metadata={_KEY: key, _ENTRY: _entry_to_json(entry)},
            )
        )


_PAGE = 500
_KEY = "ledger_key"
_ENTRY = "entry"


def ledger_key(partition: str, kind: str, action: str) -> str:
    return f"{KEY_PREFIX}/{partition}/{kind}/{action}"


def _day_of(key: str) -> str:
    return key.removeprefix(f"{KEY_PREFIX}/").split("/", 1)[0]


def _text(value) -> str:
    return str(getattr(value, "value", value) or "")


def _keys_of(days: Iterable[date]) -> list[str]:
    return [
        ledger_key(day.isoformat(), kind, action)
        for day in days
        for kind in ALERT_KINDS
        for action in ACTIONS
    ]


def _kind_of(alert: Alert) -> str:
    return alert.resolves if alert.action == "resolve" else alert.kind  # type: ignore[return-value]


def _sent(entry: LedgerEntry | None) -> bool:
    return entry is not None and entry.sent


def _entry_to_json(entry: LedgerEntry) -> str:
    alert = entry.alert
    return json.dumps(
        {
            "state": entry.state,
            "attempts": entry.attempts,
            "last_error": entry.last_error,
            "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "alert": {
                "kind": alert.kind,
                "partition": alert.partition,
                "severity": alert.severity,
                "summary": alert.summary,
                "details": dict(alert.details),
                "run_id": alert.run_id,
                "audience": alert.audience,
                "action": alert.action,
                "runbook_step": alert.runbook_step,
                "resolves": alert.resolves,
                "detected_at": alert.detected_at.isoformat(),
            },
        }
    )


def _entry_from_json(text: str) -> LedgerEntry:
    raw = json.loads(text)
    fields = dict(raw["alert"])
    fields["detected_at"] = datetime.fromisoformat(fields["detected_at"])
    return LedgerEntry(raw["state"], Alert(**fields), raw["attempts"], raw.get("last_error", ""))
