"""The text rule for account names (docs/api-contract.md, "Account names"): invalid characters become U+FFFD,
the name is cut to 500 characters; the formula rule is applied later, when the row is written."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ACCOUNT_NAME_LENGTH = 500
REPLACEMENT_CHARACTER = "\ufffd"

# Not text: lone surrogates (which no UTF-8 can hold, so DuckDB and the file would refuse them) and the
# control characters (C0, DEL, C1) other than tab, line feed and carriage return, which names may hold.
_INVALID_CHARACTER = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class RepairedName:
    """A name fit for the warehouse and the file, and why it was changed (None when it was not)."""

    text: str
    reason: str | None = None


def repair_account_name(name: str) -> RepairedName:
    """``name`` with each invalid character replaced by U+FFFD, then cut to its first 500 characters.

    The reason says what was found and done without quoting the name: it is logged, the name is personal data.
    """
    found: list[str] = []
    done: list[str] = []
    surrogates = len(_SURROGATE.findall(name))
    invalid = len(_INVALID_CHARACTER.findall(name))
    if surrogates:
        found.append(f"{surrogates} lone surrogate(s)")
    if invalid - surrogates:
        found.append(f"{invalid - surrogates} control character(s)")
    if invalid:
        name = _INVALID_CHARACTER.sub(REPLACEMENT_CHARACTER, name)
        done.append("each invalid character written as U+FFFD")
    if len(name) > MAX_ACCOUNT_NAME_LENGTH:
        found.append(f"{len(name)} characters (at most {MAX_ACCOUNT_NAME_LENGTH})")
        name = name[:MAX_ACCOUNT_NAME_LENGTH]
        done.append(f"cut to its first {MAX_ACCOUNT_NAME_LENGTH} characters")
    if not found:
        return RepairedName(name)
    return RepairedName(
        name, f"account_name breaks the text rules ({', '.join(found)}); kept, {' and '.join(done)}"
    )
