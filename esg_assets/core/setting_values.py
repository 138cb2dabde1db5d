"""Checks of settings' values, with one message for every bad value: the variable, what it must be, the value.

Resources call them from pydantic ``before`` validators (``setting_check``), so a bad value fails when the
resource is built with it: at run launch for the Dagster side (when ``EnvVar``s are resolved), at start for a
command. A secret's value is never repeated in the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from dagster import EnvVar
from pydantic import field_validator

from esg_assets.core.settings import Setting

# An EnvVar not resolved yet (the resource as the code location builds it): checked once Dagster resolves it.
_UNRESOLVED = (EnvVar, type(EnvVar.int("ESG_UNUSED")))  # EnvVar.int() makes a separate (int) class
_HTTP_URL = re.compile(r"https?://[^\s/?#]+(/\S*)?", re.IGNORECASE)
# A DuckDB memory size: a number and a unit (https://duckdb.org/docs/configuration/overview).
# A whole number as people write one: ASCII digits, a sign at most (not Python's "1_0" or non-ASCII digits).
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
_MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


class BadSettingError(ValueError):
    """A setting has a value the job cannot use; the message names the variable and what it must be."""

    def __init__(self, setting: Setting, value: Any, expected: str):
        shown = "(not shown: a secret)" if setting.secret else repr(value)
        super().__init__(
            f"Setting {setting.name} must be {expected}, got {shown} (see README, 'Configuration')"
        )
        self.setting = setting


def whole_number(setting: Setting, value: Any, low: int = 1, high: int | None = None) -> int:
    """An integer in ``[low, high]``; "a positive whole number" when ``low`` is 1 and there is no ``high``."""
    text = str(value).strip()
    number = int(text) if _WHOLE_NUMBER.fullmatch(text) else None
    if number is None or number < low or (high is not None and number > high):
        expected = (
            "a positive whole number"
            if (low, high) == (1, None)
            else f"a whole number of {low} or more"
            if high is None
            else f"a whole number from {low} to {high}"
        )
        raise BadSettingError(setting, value, expected)
    return number


def fraction(setting: Setting, value: Any) -> float:
    """A number from 0 to 1 (0.05 is 5%)."""
    try:
        number = float(str(value).strip())
    except ValueError:
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise BadSettingError(setting, value, "a fraction between 0 and 1 (0.05 is 5%)")
    return number


def flag(setting: Setting, value: Any) -> bool:
    """``true`` or ``false``."""
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise BadSettingError(setting, value, "true or false")
    return text == "true"


def one_of(setting: Setting, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise BadSettingError(setting, value, f"one of {', '.join(choices)}")
    return value


def http_url(setting: Setting, value: Any, optional: bool = False) -> str:
    """An http(s) URL with a host (empty allowed when ``optional``: the feature is off)."""
    text = str(value).strip()
    if (optional and not text) or _HTTP_URL.fullmatch(text):
        return text
    raise BadSettingError(setting, value, "an http(s) URL")


def support_page(setting: Setting, value: Any) -> str:
    """The support page's address: an http(s) URL with a host, or the page shipped with the job."""
    text = str(value).strip()
    if text == setting.default or _HTTP_URL.fullmatch(text):
        return text
    raise BadSettingError(setting, value, f"an http(s) URL, or {setting.default}")


def memory_size(setting: Setting, value: Any) -> str:
    text = str(value).strip()
    if not _MEMORY_SIZE.fullmatch(text):
        raise BadSettingError(setting, value, "a DuckDB memory size such as 128MB or 1GB")
    return text


def setting_problem(error: Exception) -> str:
    """The message of the first ``BadSettingError`` inside a pydantic ``ValidationError`` (a resource built
    from a bad setting), else the error's own text: one line for a command's user."""
    for detail in getattr(error, "errors", lambda: [])():
        cause = detail.get("ctx", {}).get("error")
        if isinstance(cause, BadSettingError):
            return str(cause)
    return str(error)


def setting_check(field: str, setting: Setting, check: Callable[..., Any], **options: Any) -> Any:
    """A pydantic validator of ``field`` that runs ``check(setting, value, **options)`` on a resolved value.

    The value it returns replaces the field's (so text becomes the field's type); an unresolved ``EnvVar`` is
    left to Dagster, which resolves it at launch and builds the resource again, checking it then.
    """

    def validate(cls, value: Any) -> Any:
        if isinstance(value, _UNRESOLVED):
            return value
        checked = check(setting, value, **options)
        return value if isinstance(checked, (bool, float)) and isinstance(value, str) else checked

    validate.__name__ = f"_check_{field}"
    return field_validator(field, mode="before")(classmethod(validate))
