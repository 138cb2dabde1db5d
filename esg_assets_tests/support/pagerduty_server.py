"""A PagerDuty Events API v2 stand-in on loopback that validates events as PagerDuty documents them.

Hand-written on purpose, not scripted with pytest-httpserver: it is a model of the service, not a list of
replies. It checks every event against the Events API v2 contract (routing key, event action, dedup key,
payload fields and their limits) and answers 400 with PagerDuty's error list when one breaks it, keeps
incidents open by dedup key until a resolve closes them, and can fail the next requests with a chosen status.
The alert tests assert on that state (accepted events, open incidents), so the contract is checked for every
alert any test sends.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")


def validation_errors(event: Any) -> list[str]:
    """The errors PagerDuty would list for ``event`` (PagerDuty's Events API v2 reference)."""
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = []
    routing_key = event.get("routing_key")
    if not isinstance(routing_key, str) or len(routing_key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in EVENT_ACTIONS:
        errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup_key:
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        errors += _payload_errors(event.get("payload"))
    return errors


def _payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > 1024:
        errors.append("'payload.summary' is longer than 1024 characters")
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.append("'payload.source' is missing or blank")
    if payload.get("severity") not in SEVERITIES:
        errors.append("'payload.severity' is invalid (must be one of critical, error, warning, info)")
    timestamp = payload.get("timestamp")
    if timestamp is not None and not _is_iso8601(timestamp):
        errors.append("'payload.timestamp' is not a valid ISO 8601 timestamp")
    return errors


def _is_iso8601(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


@dataclass
class FakePagerDuty:
    """Accepted events, open incidents by dedup key, and scripted failures for the next requests."""

    accepted: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    open_incidents: dict[str, list[dict]] = field(default_factory=dict)  # dedup_key -> its trigger events
    requests_seen: int = 0
    _scripted: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, status: int, times: int) -> None:
        """The next ``times`` requests get ``status`` (429 or 5xx) without being looked at."""
        with self._lock:
            self._scripted += [status] * times

    def handle(self, body: bytes) -> tuple[int, dict]:
        with self._lock:
            self.requests_seen += 1
            if self._scripted:
                status = self._scripted.pop(0)
                return status, {"status": "error", "message": f"scripted {status}"}
            try:
                event = json.loads(body)
            except ValueError:
                return _invalid(["Event object is not valid JSON"])
            errors = validation_errors(event)
            if errors:
                self.rejected.append(event)
                return _invalid(errors)
            dedup_key = event.get("dedup_key") or uuid.uuid4().hex
            self.accepted.append(event)
            if event["event_action"] == "trigger":
                # A trigger with the key of an open incident adds to it instead of opening another.
                self.open_incidents.setdefault(dedup_key, []).append(event)
            elif event["event_action"] == "resolve":
                self.open_incidents.pop(dedup_key, None)
            return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}


def _invalid(errors: list[str]) -> tuple[int, dict]:
    return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}


class PagerDutyServer:
    """``FakePagerDuty`` served over HTTP on 127.0.0.1 (a free port) from a background thread."""

    def __init__(self) -> None:
        self.state = FakePagerDuty()
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/v2/enqueue":
                    status, answer = 404, {"status": "error", "message": "not found"}
                else:
                    status, answer = state.handle(body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for the serve loop to notice, 0.5 s by default.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def events_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v2/enqueue"

    def __enter__(self) -> PagerDutyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
