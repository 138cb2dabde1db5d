"""The reader's side of a published day, as `esg-report decrypt` sees it: who the caller is, which names mark
plaintext, and what the audit log recorded. The fixtures that publish such a day and run the command
in-process (``decryptable_day``, ``decrypt``) are in the root conftest.py."""

import json
import os
import pwd
from pathlib import Path

ME = pwd.getpwuid(os.getuid()).pw_name
ROWS = 3000  # about 250 KB of CSV: three 64 KiB frames and a partial one, so frames can be cut and re-ordered
MARKER = "Plaintext-Marker"  # in every account name the tests write: found anywhere, plaintext leaked


def audit(env: dict) -> list[dict]:
    """The records of the audit log in ``env``'s ESG_AUDIT_LOG_DIR, oldest first."""
    return [
        json.loads(line) for line in Path(env["ESG_AUDIT_LOG_DIR"], "audit.jsonl").read_text().splitlines()
    ]
