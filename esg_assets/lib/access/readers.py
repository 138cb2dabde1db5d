"""The allow-list of people who may decrypt the day's files (ESG_AUTHORIZED_READERS) and its decision."""

from __future__ import annotations

import re
from dataclasses import dataclass

from esg_assets.core.settings import AUTHORIZED_READERS
from esg_assets.lib.access.caller import Caller

_NAME = re.compile(
    r"[A-Za-z0-9._][A-Za-z0-9._@-]{0,63}"
)  # POSIX portable names, plus '@' for directory users
GROUP_PREFIX = "group:"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


@dataclass(frozen=True)
class AuthorizedReaders:
    """Who may read. Empty means nobody: access is granted by naming people, not by default."""

    users: frozenset[str]
    groups: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> "AuthorizedReaders":
        """``alice, bob, group:esg-readers``; raises ``ValueError`` naming the setting and the bad entry."""
        users, groups = set(), set()
        for entry in (part.strip() for part in text.split(",")):
            if not entry:
                continue
            name = entry.removeprefix(GROUP_PREFIX)
            if not _NAME.fullmatch(name):
                raise ValueError(f"{AUTHORIZED_READERS.name}: {entry!r} is not a user name or group:NAME")
            (groups if entry.startswith(GROUP_PREFIX) else users).add(name)
        return cls(frozenset(users), frozenset(groups))

    def decide(self, caller: Caller) -> Decision:
        if not self.users and not self.groups:
            return Decision(False, f"{AUTHORIZED_READERS.name} is empty, so nobody may read the files")
        if caller.user in self.users:
            return Decision(True, f"user {caller.user} is in {AUTHORIZED_READERS.name}")
        shared = sorted(caller.groups & self.groups)
        if shared:
            return Decision(True, f"group {shared[0]} is in {AUTHORIZED_READERS.name}")
        return Decision(
            False, f"user {caller.user} is not in {AUTHORIZED_READERS.name}, nor any of its groups"
        )
