"""A Markdown page's commands (the runbook's), read from its fenced code blocks with the line marking each.

A block's marker is the last non-blank line above its opening fence:
``Tested by `esg_assets_tests/<path>.py`.`` (a test runs every command of it) or
``Checked by hand on YYYY-MM-DD (where): <what was checked>.`` (it needs a production host). Tests read
the commands from the page itself, so the page and its tests cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from esg_assets_tests.support.paths import REPO_ROOT

_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<language>\S*)\s*$")
_TESTED = re.compile(r"^Tested by `(?P<test>esg_assets_tests/[\w/]+\.py)`")
_BY_HAND = re.compile(r"^Checked by hand on (?P<day>\d{4}-\d{2}-\d{2})\b.*: \S")
# Inline code that starts with one of these is a command a reader may run (`dagster.yaml` is not).
PROGRAMS = frozenset(
    {"jq", "esg-report", "dagster", "dagster-daemon", "systemctl", "journalctl", "ss", "lsof", "grep"}
)
_INLINE_CODE = re.compile(r"(?<!`)`(?P<code>[^`\n]+)`(?!`)")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: where it starts (1-based line of its fence), its marker line, its text."""

    page: str
    line: int
    language: str
    marker: str
    text: str

    @property
    def tested_by(self) -> str | None:
        """The test file that runs it, or None."""
        found = _TESTED.match(self.marker)
        return found["test"] if found else None

    @property
    def checked_by_hand(self) -> bool:
        return bool(_BY_HAND.match(self.marker))

    @property
    def commands(self) -> list[str]:
        """Its commands, one per entry: comment lines dropped, lines ending in a backslash joined."""
        commands: list[str] = []
        pending = ""
        for raw in self.text.splitlines():
            line = raw.strip()
            if not pending and (not line or line.startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1].rstrip() + " "
                continue
            commands.append(pending + line)
            pending = ""
        return commands

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def code_blocks(page: str) -> list[CodeBlock]:
    """Every fenced block of ``page`` (a path from the repository root, e.g. ``docs/runbook.md``)."""
    lines = (REPO_ROOT / page).read_text().splitlines()
    blocks: list[CodeBlock] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent = len(opening["indent"])
        end = index + 1
        while end < len(lines) and not re.match(r"^\s*```\s*$", lines[end]):
            end += 1
        body = "\n".join(line[indent:] for line in lines[index + 1 : end])
        blocks.append(CodeBlock(page, index + 1, opening["language"], _marker_above(lines, index), body))
        index = end + 1
    return blocks


def inline_commands(page: str) -> list[tuple[int, str]]:
    """(line, code) of every inline code span of ``page`` outside its fenced blocks that is a command."""
    found: list[tuple[int, str]] = []
    inside_block = False
    for number, line in enumerate((REPO_ROOT / page).read_text().splitlines(), start=1):
        if _FENCE.match(line) or re.match(r"^\s*```\s*$", line):
            inside_block = not inside_block
            continue
        if inside_block:
            continue
        for span in _INLINE_CODE.finditer(line):
            code = span["code"].strip()
            if code.split()[0] in PROGRAMS:
                found.append((number, code))
    return found


def blocks_tested_by(page: str, test_file: str) -> list[CodeBlock]:
    """The blocks of ``page`` whose marker names ``test_file`` (its path from the repository root)."""
    return [block for block in code_blocks(page) if block.tested_by == test_file]


def _marker_above(lines: list[str], fence: int) -> str:
    above = fence - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    return lines[above].strip() if above >= 0 else ""


def path_of_test(module_file: str) -> str:
    """``__file__`` of a test module as the path a marker names it by."""
    return Path(module_file).resolve().relative_to(REPO_ROOT).as_posix()
