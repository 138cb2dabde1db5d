"""Which field names carry secrets or account names, and how their values are masked before they leave."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

# Matched anywhere in a field name, case-insensitively: "client_secret", "X-Authorization", "access_token".
# Deliberately broad: masking a harmless field costs a log reader a value, leaking a secret costs far more.
_SENSITIVE_NAME = re.compile(
    r"secret|passw(or)?d|token|authori[sz]ation|routing[_-]?key|api[_-]?key|private[_-]?key|credential"
    r"|cookie|account[_-]?name",
    re.IGNORECASE,
)

# The same words as `key=value`, `key: value` or `Bearer value` inside free text (a message, an exception).
_SENSITIVE_IN_TEXT = re.compile(
    r"(?P<name>\b\w*(?:secret|passw(?:or)?d|token|routing_key|api_key|account_name)\w*\b[\"']?\s*[=:]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&}]+)"
    r"|(?P<scheme>\b(?:Bearer|Basic|Token token=)\s*)(?P<credential>[^\s,;]+)",
    re.IGNORECASE,
)


def is_sensitive_name(name: str) -> bool:
    """True for a field whose value must never reach a log line, an alert or a metric."""
    return bool(_SENSITIVE_NAME.search(name))


def redact_value(name: str, value: Any) -> Any:
    """The value to show for field ``name``: masked when the name is sensitive, else its contents redacted."""
    if is_sensitive_name(name):
        return REDACTED
    if isinstance(value, Mapping):
        return {key: redact_value(str(key), item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(name, item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    """``text`` with the values of `password=...`, `token: ...`, `Bearer ...` and the like masked."""

    def mask(match: re.Match) -> str:
        if match.group("name") is not None:
            return match.group("name") + REDACTED
        return match.group("scheme") + REDACTED

    return _SENSITIVE_IN_TEXT.sub(mask, text)
