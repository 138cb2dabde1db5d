"""An independent oracle for the ratings file: the bytes api-contract section 4 and the file rules prescribe.

Written apart from the production code on purpose (its own quoting, rounding and status rules), so the
end-to-end tests compare the job's output against a second reading of the rules, not against itself.
"""

import json
import re
import unicodedata
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

HEADER = (
    "Account ID,Account Name,Overall ESG Score,Environmental Score,Social Score,Governance Score,"
    "Primary ESG Focus,Primary Focus Score,Analysis Date,Processing Status"
)
_PILLARS = {"Environmental", "Social", "Governance"}


def _score(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return None
    number = Decimal(value)
    if not number.is_finite() or not (0 <= number <= 100):
        return None
    return str(number.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _analysis_date(value, as_of: date) -> str | None:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return None
    return value if parsed <= as_of else None


def _field(text: str) -> str:
    if any(character in text for character in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def name_text(name: str) -> str:
    """The text rule for names: U+FFFD for each lone surrogate and each control character (Unicode category
    Cc) but tab, LF and CR; then the first 500 characters."""
    kept = []
    for character in name:
        surrogate = 0xD800 <= ord(character) <= 0xDFFF
        control = unicodedata.category(character) == "Cc" and character not in "\t\n\r"
        kept.append("\ufffd" if surrogate or control else character)
    return "".join(kept)[:500]


def _name(name: str) -> str:
    name = name_text(name)
    return "'" + name if name[:1] in ("=", "+", "-", "@", "\t", "\r") else name


def expected_row(account_id: str, account_name: str, served_json: bytes | None, as_of: date) -> str:
    """One CSV line (without its CRLF); ``served_json`` is None when no rating could be obtained."""
    values: list[str | None] = [None] * 6
    analysis = None
    if served_json is not None:
        body = json.loads(served_json, parse_float=Decimal, parse_int=Decimal)
        scores = body.get("scores") or {}
        focus = body.get("primary_focus")
        values = [_score(scores.get(key)) for key in ("overall", "environmental", "social", "governance")]
        pillar = focus.get("pillar") if isinstance(focus, dict) else None
        values.append(pillar if isinstance(pillar, str) and pillar in _PILLARS else None)
        values.append(_score(focus.get("score")) if isinstance(focus, dict) else None)
        analysis = _analysis_date(body.get("analysis_date"), as_of)
    if all(v is not None for v in values) and analysis is not None:
        status = "Successful"
    elif any(v is not None for v in values):
        status = "Partial"
    else:
        status, values, analysis = "Failed", [None] * 6, None
    cells = [account_id, _name(account_name), *(v or "N/A" for v in values), analysis or "N/A", status]
    return ",".join(_field(cell) for cell in cells)


def expected_file(rows: list[tuple[str, str, bytes | None]], as_of: date) -> bytes:
    lines = [HEADER] + [expected_row(i, n, body, as_of) for i, n, body in sorted(rows, key=lambda r: r[0])]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def sandbox_expected_file(data, as_of: date) -> bytes:
    """What a correct job writes for a sandbox: its active accounts (names as listed, the text rule applied
    here), and the rating each one serves once its one-off faults are past."""
    rows = []
    for account_id, account_name in data.expected_active_accounts():
        served = None if data.permanent_failure(account_id) else data.encoded_rating(account_id, as_of).body
        rows.append((account_id, account_name, served))
    return expected_file(rows, as_of)
