"""The one place the job reads its settings: the environment, or the host's site file for access settings.

Two readings of the same catalog (``esg_assets/core/settings.py``): ``for_dagster`` gives a resource field an
``EnvVar`` (Dagster resolves it when a run launches or a sensor ticks, and fails naming the variable when a
required one is missing; a secret never appears in the UI), ``now`` gives a command its value at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dagster import EnvVar

from esg_assets.config.site_config import site_values
from esg_assets.core.settings import MissingSettingError, Setting

# How a resource builder gets a setting: ``for_dagster`` or ``now``.
SettingReader = Callable[[Setting], Any]


def is_set(setting: Setting, read: SettingReader) -> bool:
    """Whether the variable has a non-empty value where ``read`` reads it: the process environment for
    Dagster's ``EnvVar``s, the site file (for its settings) or the environment for ``now``."""
    if read in (for_dagster, for_dagster_int):
        return bool(os.environ.get(setting.name))
    return bool(_raw(setting))


def now(setting: Setting) -> str:
    """The value for a command outside Dagster; raises naming the variable when a required one is missing.

    A setting of ``SITE_SETTINGS`` comes from the host's site configuration when there is one, and the
    caller's environment is then ignored (esg_assets/config/site_config.py).
    """
    raw = _raw(setting)
    if not raw:
        if setting.default is None:
            raise MissingSettingError(setting.name)
        return setting.default
    return raw


def for_dagster(setting: Setting) -> Any:
    """An ``EnvVar`` when the variable is set or required, else the default.

    A required variable is always an ``EnvVar``, so Dagster fails the run at launch naming it. The resource
    field's type decides the flavour: an int field needs ``EnvVar.int`` (``for_dagster_int``).
    """
    if setting.required or os.environ.get(setting.name):
        return EnvVar(setting.name)
    return setting.default


def for_dagster_int(setting: Setting) -> Any:
    if setting.required or os.environ.get(setting.name):
        return EnvVar.int(setting.name)
    return int(setting.default)  # type: ignore[arg-type]


def int_reader(read: SettingReader) -> SettingReader:
    """An int field's reader: ``for_dagster_int`` for ``for_dagster``; ``now`` gives text the check parses."""
    return for_dagster_int if read is for_dagster else read


def variable(name: str) -> str:
    """A process variable that is not a job setting (``DAGSTER_HOME``, ``SUDO_USER``); empty if unset."""
    return os.environ.get(name, "")


def _raw(setting: Setting) -> str | None:
    site = site_values() if setting.site else None
    return site.get(setting.name) if site is not None else os.environ.get(setting.name)
