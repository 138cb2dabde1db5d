"""The person behind a command: OS user, groups and host, as the audit trail records them."""

from __future__ import annotations

import grp
import os
import pwd
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Caller:
    """Who acts: ``user`` is the person, ``os_user`` the process's account (the same without sudo)."""

    user: str
    groups: frozenset[str]
    host: str
    os_user: str


@dataclass(frozen=True)
class SudoUser:
    """Who sudo says started this process (its ``SUDO_USER``; empty without sudo), read by the entry point."""

    name: str = ""

    def caller(self, service_directory: str | os.PathLike[str] | None = None) -> Caller:
        return current_caller(service_directory, self.name)


def current_caller(service_directory: str | os.PathLike[str] | None = None, sudo_user: str = "") -> Caller:
    """The caller of this process, from ``pwd``, ``grp`` and ``os.getgroups()``.

    Readers reach the service account's key file and audit log through a sudo rule, so the process runs as
    that account and the person is ``sudo_user``, the one sudo names in ``SUDO_USER``. It is believed only
    when the process runs as the owner of ``service_directory`` (the audit log's): anyone else could set it
    by hand, but then runs as themselves and is judged as themselves.
    """
    uid = os.getuid()
    os_user = _user_name(uid)
    host = socket.gethostname()
    if sudo_user and sudo_user != os_user and _owned_by(service_directory, uid):
        try:
            entry = pwd.getpwnam(sudo_user)
        except KeyError:
            pass  # sudo names a user this host no longer knows: judge the account itself
        else:
            groups = _group_names(os.getgrouplist(sudo_user, entry.pw_gid))
            return Caller(sudo_user, groups, host, os_user)
    return Caller(os_user, _group_names({*os.getgroups(), os.getgid()}), host, os_user)


def _owned_by(directory: str | os.PathLike[str] | None, uid: int) -> bool:
    if directory is None:
        return False
    try:
        return Path(directory).stat().st_uid == uid
    except OSError:
        return False


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"  # a container's user without a passwd entry: still identified


def _group_names(gids) -> frozenset[str]:
    names = set()
    for gid in gids:
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            names.add(f"gid:{gid}")
    return frozenset(names)
