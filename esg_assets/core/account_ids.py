"""Account ids per the AMS contract (api-contract.md section 2): 1 to 64 letters, digits, '-', '_', '.'."""

from __future__ import annotations

import re

# ASCII only: ids are machine identifiers, and a Unicode "letter" (or a trailing newline, which `$` would
# let through) is more likely corruption than a real id.
ACCOUNT_ID_CHARACTERS = "A-Za-z0-9._-"  # the inside of a regex character class: an id is a run of these
MAX_ACCOUNT_ID_LENGTH = 64
ACCOUNT_ID = re.compile(rf"[{ACCOUNT_ID_CHARACTERS}]{{1,{MAX_ACCOUNT_ID_LENGTH}}}")  # use with fullmatch
