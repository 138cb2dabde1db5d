"""The host's access settings from a root-owned file, so a caller cannot configure who may read away.

On a production host ``/etc/esg/esg.env`` (root-owned, the file systemd gives the services) decides who may
read, where reads are audited, and which keys and files are used: the settings marked ``site`` in
``settings.py`` are then read from it alone, whatever the caller's environment says. ``ESG_SITE_CONFIG`` names
another file only where ``/etc/esg/esg.env`` does not exist (a test, a second install), and that file must
pass the same checks. Without either, the environment is used (development, ``make run``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dotenv import dotenv_values

SITE_CONFIG = Path("/etc/esg/esg.env")
SITE_CONFIG_VARIABLE = "ESG_SITE_CONFIG"


class SiteConfigError(RuntimeError):
    """The site configuration cannot be trusted or read; the message names the file and the problem."""


def site_values() -> dict[str, str] | None:
    """The settings of the site file in force, or None when there is none (the environment is used)."""
    if SITE_CONFIG.exists():
        return _read(SITE_CONFIG)
    named = os.environ.get(SITE_CONFIG_VARIABLE, "")
    return _read(Path(named)) if named else None


def _read(path: Path) -> dict[str, str]:
    path = Path(os.path.abspath(path))
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError as error:
        raise SiteConfigError(f"site configuration {path}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SiteConfigError(f"site configuration {path} is not a regular file")
    _check_owner(path, info, "site configuration")
    for folder in path.parents:
        _check_owner(folder, os.stat(folder), "the folder of the site configuration")
    try:
        values = dotenv_values(path, interpolate=False)
    except (OSError, UnicodeDecodeError) as error:
        raise SiteConfigError(f"site configuration {path} cannot be read: {error}") from None
    return {name: value for name, value in values.items() if value is not None}


def _check_owner(path: Path, info: os.stat_result, what: str) -> None:
    if info.st_uid != 0:
        raise SiteConfigError(f"{what} {path} is owned by uid {info.st_uid}, not root: refusing it")
    sticky = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
    if info.st_mode & 0o022 and not sticky:
        raise SiteConfigError(
            f"{what} {path} can be changed by group or others (mode {stat.S_IMODE(info.st_mode):04o}): "
            "refusing it"
        )
