"""The sandbox's synthetic accounts and ESG ratings, computed from hashes of a seed on demand (no I/O)."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Iterator, NamedTuple

from esg_assets.core.account_ids import MAX_ACCOUNT_ID_LENGTH
from esg_assets.sandbox.config import SandboxConfig

# Rating versions are looked for day by day back to this date and no further, so every rating is
# reproducible however far back the scan would go; an as_of before it is its own version.
RATING_EPOCH = date(2020, 1, 1)

PILLARS = ("Environmental", "Social", "Governance")

# --- Shape of the AMS listing -------------------------------------------------------------------------
# The listing is a sequence of blocks. Block b < base_blocks holds the active accounts
# b*BLOCK_ACCOUNTS+1 .. (b+1)*BLOCK_ACCOUNTS in id order, with noise rows slipped in between them.
# A duplicated account is listed again DUPLICATE_DELAY_BLOCKS blocks later (the last blocks hold only
# such repeats), so with more than about 1,100 accounts a repeat comes at least 1,000 rows after the first
# listing: on a later page for any allowed page size. In a smaller sandbox both can share a page.
BLOCK_ACCOUNTS = 100
DUPLICATE_DELAY_BLOCKS = 11
EXTRA_SLOTS_PER_BLOCK = 4  # inactive/closed accounts that can slip into one block
MALFORMED_SLOTS_PER_BLOCK = 2
_ROW_STRIDE = 1024  # > the most rows a block can hold; a listing position is block * stride + row

DUPLICATE_SHARE = 0.02  # share of active accounts listed twice
EXTRA_SLOT_SHARE = 0.25  # chance of each extra slot being used: about 1 inactive/closed row per block
MALFORMED_SLOT_SHARE = 0.15
EMPTY_PAGE_SHARE = 0.02  # pages that come back empty although the walk is not over

# What the second listing of a duplicated account says, and so which row a correct client keeps:
#   "update":  later updated_at, same name, active      -> the account stays active, same name
#   "rename":  later updated_at, new name, active       -> the account stays active under the new name
#   "closure": later updated_at, status closed          -> the account is NOT active
#   "stale":   EARLIER updated_at, old name, inactive   -> the first row wins: active, first name
DUPLICATE_KINDS = (("update", 0.35), ("rename", 0.25), ("closure", 0.20), ("stale", 0.20))

ABSENT = object()  # stands for a row without an account_id key at all
MALFORMED_ACCOUNT_IDS = (ABSENT, None, "", "bad id!", "A" * (MAX_ACCOUNT_ID_LENGTH + 1), 1234567)

# The first block always carries one of every kind of noise, so that even a ten-account sandbox
# exercises the client's de-duplication, status filter and id validation.
_FIRST_BLOCK_DUPLICATES = {2: "update", 3: "rename", 4: "closure", 5: "stale"}

_UPDATED_AT_ORIGIN = datetime(2023, 1, 1)  # naive, read as UTC: written with a "Z"
_UPDATED_AT_SPAN_SECONDS = 900 * 24 * 3600
_REPEAT_SHIFT_SECONDS = 30 * 24 * 3600
# Which of an account's sixteen hash words (SandboxData._account_words) drives what.
_WORD_UPDATED_AT, _WORD_DUPLICATE, _WORD_DUPLICATE_KIND, _WORD_REPEAT_SHIFT = range(4)
_WORD_RANGE = 2**32

# --- Ratings ----------------------------------------------------------------------------------------
UNRATED_SHARE_OF_PARTIAL = 0.2
# (status, error) of the accounts whose every rating request fails: some not worth retrying, some that
# look transient but never recover.
PERMANENT_FAILURES = ((404, "not_found"), (403, "not_entitled"), (500, "server_error"), (503, "unavailable"))

# (status, Retry-After, kind) of the one-off faults; "invalid_json" and "wrong_shape" are 200s whose
# body is not a rating, which the contract says to treat as transient.
TRANSIENT_RATING_FAULTS = (
    (500, None, "server_error"),
    (502, None, "bad_gateway"),
    (503, "0", "unavailable"),
    (503, "1", "unavailable"),
    (504, None, "gateway_timeout"),
    (429, "0", "rate_limited"),
    (429, "1", "rate_limited"),
    (200, None, "invalid_json"),
    (200, None, "wrong_shape"),
)
TRANSIENT_PAGE_FAULTS = (
    (500, None, "server_error"),
    (502, None, "bad_gateway"),
    (503, "1", "unavailable"),
    (504, None, "gateway_timeout"),
    (429, "1", "rate_limited"),
)


# --- Hostile input (hostile_rate) --------------------------------------------------------------------
# What the listing of a hostile account carries: a name with lone surrogates, one with control characters,
# an over-long name, all three, or its id sent as a JSON number (short, or longer than Python's 4,300-digit
# int limit). An account listed twice keeps a name damage, never a numeric id: its other row would decide.
HOSTILE_KINDS = ("surrogate", "control", "overlong", "everything", "numeric_id", "huge_numeric_id")
NUMERIC_ID_KINDS = frozenset({"numeric_id", "huge_numeric_id"})
# The first block always carries one of each, so that even a small sandbox exercises every rule.
_FIRST_BLOCK_HOSTILE = dict(zip(range(11, 11 + len(HOSTILE_KINDS)), HOSTILE_KINDS, strict=True))
_SURROGATE_PAIR = re.compile("([\ud800-\udbff])(?=[\udc00-\udfff])")
HUGE_ID_DIGITS = 5000
_LONE_SURROGATES = ("\udc80", "\ud800", "\udfff", "\ud83c")
_CONTROL_CHARACTERS = ("\x00", "\x01", "\x07", "\x1b", "\x7f", "\x85", "\x0b", "\x0c")
# Once per run: the first page of the first walk is this short and lists a row no later walk lists, and the
# cursor after it has expired, so a client that keeps what an aborted walk gave writes that row too.
HOSTILE_FIRST_PAGE_ROWS = 50
GHOST_ACCOUNT_ID = "ACC-GHOST"
OVERSIZED_PADDING = 1024 * 1024 + 1  # a rating body over 1 MiB
TRICKLE_SECONDS_PER_BYTE = 0.5  # a rating trickled at this pace takes minutes: longer than any timeout


@dataclass(frozen=True)
class NumericId:
    """An account id the AMS sends as a JSON number of these ``digits``: a malformed id (contract)."""

    digits: str


@dataclass(frozen=True)
class Fault:
    """An error response the sandbox serves instead of the real one."""

    status: int
    retry_after: str | None
    kind: str


@dataclass(frozen=True)
class AccountPage:
    """One AMS page: its rows and the listing position of the next page (None when the walk is over)."""

    rows: list[dict]
    next_position: int | None


class EncodedRating(NamedTuple):
    """A rating as served: the JSON body and its ETag."""

    body: bytes
    etag: str


# --- Account names ---------------------------------------------------------------------------------
_PLACES = (
    "Harbor",
    "Northwind",
    "Evergreen",
    "Blue Ridge",
    "Cedar Creek",
    "Silver Lake",
    "Granite Peak",
    "Riverside",
    "Oakmont",
    "Bayview",
    "Summit",
    "Meadowbrook",
    "Ironwood",
    "Lakeshore",
    "Westbrook",
    "Zürich",
    "Genève",
    "Malmö",
    "Kraków",
    "São Paulo",
    "Québec",
    "Ålesund",
    "Córdoba",
    "Düsseldorf",
    "Łódź",
    "Reykjavík",
    "İstanbul",
    "Nørrebro",
    "Ōsaka",
    "Thessaloníki",
)
_FAMILIES = (
    "O'Brien",
    "Müller",
    "García",
    "Nguyễn",
    "Kowalski",
    "Dubois",
    "Søndergaard",
    "Björk",
    "Okafor",
    "Ramírez",
    "Ivanova",
    "Hoffmann",
    "Papadopoulos",
    "Tanaka",
    "Chen",
    "Schäfer",
    "François",
    "D'Angelo",
    "van der Berg",
    "MacLeod",
)
_KINDS = (
    "Pension Trust",
    "Pension Fund",
    "Retirement Plan",
    "Endowment Fund",
    "Family Foundation",
    "Charitable Trust",
    "Growth Fund",
    "Income Fund",
    "Balanced Fund",
    "Sustainable Equity Fund",
    "Municipal Employees' Retirement System",
    "Teachers' Pension Plan",
    "Foundation",
    "Community Foundation",
    "Legacy Trust",
    "Irrevocable Trust",
    "Insurance Reserve Fund",
    "Sovereign Wealth Fund",
    "University Endowment",
    "Health System Pension Plan",
)
_SUFFIXES = (
    "",
    "",
    "",
    "",
    " LLC",
    " L.P.",
    ", Inc.",
    " plc",
    " S.A.",
    " GmbH",
    " SICAV",
    " AG",
    " II",
    " Ltd.",
)
_NON_LATIN_NAMES = (
    "Фонд «Северный ветер»",
    "東京年金基金",
    "صندوق التقاعد الخليجي",
    "Ταμείο Συντάξεων Αιγαίου",
    "서울 연기금 재단",
    "קרן הפנסיה של חיפה",
    "Quỹ Hưu trí Sài Gòn",
    "🌱 Green Future Fund",
    "Cafe\u0301 Workers' Benevolent Fund",  # a decomposed accent: e + combining acute
)
# Names that a spreadsheet would read as a formula or that a naive CSV writer would mangle.
_RISKY_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_RISKY_HEADS = {
    "=": ('=HYPERLINK("http://example.invalid","Pension")', "=SUM(A1:A9) ", "=1+1 "),
    "+": ("+1 ", "+44 "),
    "-": ("-Alpha ", "-2 "),
    "@": ("@Risk ", "@SUM(1) "),
    "\t": ("\t",),
    "\r": ("\r",),
}
MAX_NAME_LENGTH = 500

# Built once: json.dumps with options builds a new encoder on every call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
_DAYS_PER_DIGEST = 16
_SIXTEEN_WORDS = struct.Struct("<16I").unpack  # a 64-byte digest as sixteen 32-bit numbers


def _draws(seed_key: bytes, *parts: object) -> Iterator[int]:
    """An endless stream of 32-bit numbers from one hash: the randomness of one name or one rating."""
    material = seed_key + repr(parts).encode()
    block = 0
    while True:
        yield from _SIXTEEN_WORDS(hashlib.blake2b(material + b"#%d" % block, digest_size=64).digest())
        block += 1


def _pick(draws: Iterator[int], options):
    return options[next(draws) % len(options)]


class SandboxData:
    """The sandbox's accounts, AMS listing and ESG ratings, all pure functions of the config's seed.

    Nothing is stored per account: every row and rating is recomputed from a hash when asked for, so a
    sandbox of a million accounts costs no more memory than one of ten.

    The active accounts are ``ACC-0000001`` .. ``ACC-{N}`` (seven digits, more when N needs them). With
    ams_noise the listing also carries inactive/closed accounts numbered after N, rows with a malformed
    id, and second listings of about 2% of the active accounts (DUPLICATE_KINDS). The expected active set
    (``expected_active_accounts``) is the N active accounts minus those whose later row closes them
    (kind "closure"), each under the name of its latest row.
    """

    FIRST_PAGE = 0  # listing position of the first AMS page

    def __init__(self, config: SandboxConfig):
        self.accounts = config.accounts
        self.seed = config.seed
        self.failure_rate = config.failure_rate
        self.transient_error_rate = config.transient_error_rate
        self.partial_rate = config.partial_rate
        self.daily_change_rate = config.daily_change_rate
        self.ams_noise = config.ams_noise
        self.hostile_rate = config.hostile_rate
        self._seed_key = b"esg-sandbox|%d|" % config.seed
        self.base_blocks = -(-self.accounts // BLOCK_ACCOUNTS)
        self.listing_blocks = self.base_blocks + (DUPLICATE_DELAY_BLOCKS if self.ams_noise else 0)
        highest_number = self.accounts + self.base_blocks * EXTRA_SLOTS_PER_BLOCK
        self._id_width = max(7, len(str(highest_number)))
        # Memoised per instance: a walk asks for the block a page ended in again for the next page.
        self._block_rows = lru_cache(maxsize=64)(self._compute_block_rows)

    # --- hashing ------------------------------------------------------------------------------------
    def _unit(self, *parts: object) -> float:
        """A uniform number in [0, 1) that depends only on the seed and ``parts``."""
        material = self._seed_key + repr(parts).encode()  # repr of str/int/date tuples is stable
        return int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(), "little") / 2.0**64

    # --- account ids --------------------------------------------------------------------------------
    def account_id(self, number: int) -> str:
        return f"ACC-{number:0{self._id_width}d}"

    def account_number(self, account_id: str) -> int | None:
        """The number behind an id this sandbox issues, or None (its exact spelling is required)."""
        if not account_id.startswith("ACC-") or len(account_id) != 4 + self._id_width:
            return None
        digits = account_id[4:]
        if not digits.isdigit() or not digits.isascii():
            return None
        return int(digits)

    def _extra_number(self, block: int, slot: int) -> int:
        return self.accounts + 1 + block * EXTRA_SLOTS_PER_BLOCK + slot

    def _extra_status(self, block: int, slot: int) -> str | None:
        """The status of the inactive/closed account in this extra slot, or None when the slot is unused."""
        if not self.ams_noise or block >= self.base_blocks:
            return None
        if block == 0 and slot < 2:
            return ("inactive", "closed")[slot]
        if self._unit("extra", block, slot) >= EXTRA_SLOT_SHARE:
            return None
        return "inactive" if self._unit("extra-status", block, slot) < 0.5 else "closed"

    def is_known_account(self, account_id: str) -> bool:
        """Whether the ESG API knows the account: every account the AMS lists with a valid id."""
        number = self.account_number(account_id)
        if number is None or number < 1:
            return False
        if number <= self.accounts:
            return True
        block, slot = divmod(number - self.accounts - 1, EXTRA_SLOTS_PER_BLOCK)
        return self._extra_status(block, slot) is not None

    # --- one account's listing row ------------------------------------------------------------------
    def _account_words(self, number: int, variant: str = "") -> tuple[int, ...]:
        """Sixteen 32-bit numbers from one hash: all the randomness of one account's listing row.

        Words 0-3 drive updated_at and the repeat listing (_WORD_*), words 4 on drive the name.
        """
        material = self._seed_key + b"account|%d|%s" % (number, variant.encode())
        return _SIXTEEN_WORDS(hashlib.blake2b(material, digest_size=64).digest())

    def account_name(self, number: int, variant: str = "") -> str:
        """A realistic, sometimes hostile, account name; ``variant`` gives the same account another name."""
        return _account_name(iter(self._account_words(number, variant)[4:]))

    def duplicate_kind(self, number: int) -> str | None:
        """How an active account is listed a second time (see DUPLICATE_KINDS), or None."""
        return self._duplicate_kind(number, self._account_words(number))

    def _duplicate_kind(self, number: int, words: tuple[int, ...]) -> str | None:
        if not self.ams_noise:
            return None
        if number <= BLOCK_ACCOUNTS:
            return _FIRST_BLOCK_DUPLICATES.get(number)
        if words[_WORD_DUPLICATE] >= DUPLICATE_SHARE * _WORD_RANGE:
            return None
        choice = words[_WORD_DUPLICATE_KIND] / _WORD_RANGE
        for kind, share in DUPLICATE_KINDS:
            if choice < share:
                return kind
            choice -= share
        return DUPLICATE_KINDS[-1][0]

    # --- the AMS listing ----------------------------------------------------------------------------
    def _row(self, account_id, name: str, status: str, updated_at: datetime) -> dict:
        return {
            "account_id": account_id,
            "account_name": name,
            "status": status,
            "updated_at": updated_at.isoformat() + "Z",  # whole seconds, so no fraction to strip
        }

    def _account_row(self, number: int, status: str) -> dict:
        words = self._account_words(number)
        name = self._hostile_name(number, _account_name(iter(words[4:])))
        return self._row(self._listed_id(number), name, status, _updated_at(words))

    def _repeat_row(self, number: int, kind: str) -> dict:
        words = self._account_words(number)
        first_listed = _updated_at(words)
        # Strictly later (or earlier, for a stale repeat) by a minute to a month, never equal.
        shift = timedelta(seconds=60 + words[_WORD_REPEAT_SHIFT] * _REPEAT_SHIFT_SECONDS // _WORD_RANGE)
        if kind == "stale":
            old_name = self._hostile_name(number, self.account_name(number, "old"))
            return self._row(self.account_id(number), old_name, "inactive", first_listed - shift)
        status = "closed" if kind == "closure" else "active"
        return self._row(
            self.account_id(number), self._latest_name(number, kind, words), status, first_listed + shift
        )

    def _latest_name(self, number: int, kind: str | None, words: tuple[int, ...]) -> str:
        name = self.account_name(number, "renamed") if kind == "rename" else _account_name(iter(words[4:]))
        return self._hostile_name(number, name)

    # --- hostile input ------------------------------------------------------------------------------
    def hostile_kind(self, number: int) -> str | None:
        """How the listing of active account ``number`` breaks the contract (HOSTILE_KINDS), or None."""
        if self.hostile_rate <= 0 or not 1 <= number <= self.accounts:
            return None
        if number <= BLOCK_ACCOUNTS:
            return _FIRST_BLOCK_HOSTILE.get(number)
        if self._unit("hostile", number) >= self.hostile_rate:
            return None
        kind = HOSTILE_KINDS[int(self._unit("hostile-kind", number) * len(HOSTILE_KINDS))]
        if kind in NUMERIC_ID_KINDS and self.duplicate_kind(number) is not None:
            return "surrogate"
        return kind

    def _listed_id(self, number: int) -> str | NumericId:
        kind = self.hostile_kind(number)
        if kind == "numeric_id":
            return NumericId(str(number))
        if kind == "huge_numeric_id":
            return NumericId(str(number).ljust(HUGE_ID_DIGITS, "7"))
        return self.account_id(number)

    def _hostile_name(self, number: int, name: str) -> str:
        kind = self.hostile_kind(number)
        if kind is None or kind in NUMERIC_ID_KINDS:
            return name
        draws = _draws(self._seed_key, "hostile-name", number)
        if kind in ("overlong", "everything"):
            length = MAX_NAME_LENGTH + 1 + next(draws) % 1500
            name = ((name + " / ") * (length // (len(name) + 3) + 1))[:length]
        if kind in ("surrogate", "everything"):
            for _ in range(1 + next(draws) % 2):
                name = _insert(name, _pick(draws, _LONE_SURROGATES), draws)
        if kind in ("control", "everything"):
            for _ in range(1 + next(draws) % 3):
                name = _insert(name, _pick(draws, _CONTROL_CHARACTERS), draws)
        # A high surrogate just before a low one would be read back as one valid character, not two lone ones.
        return _SURROGATE_PAIR.sub("\\1\u00b7", name)

    def ghost_row(self) -> dict:
        """The row only the first, aborted walk lists (hostile mode): no complete walk has it."""
        return self._row(GHOST_ACCOUNT_ID, "Listed by an aborted walk only", "active", _UPDATED_AT_ORIGIN)

    def hostile_fault_accounts(self) -> dict[str, str]:
        """{account id: "oversized" | "trickled"}: whose first rating request gets that fault (hostile mode).

        Seeded picks among the accounts a correct client asks for, whose real rating is served after.
        """
        if self.hostile_rate <= 0 or self.accounts == 0:
            return {}
        picked: dict[str, str] = {}
        for fault in ("oversized", "trickled"):
            start = int(self._unit("hostile-fault", fault) * self.accounts)
            for offset in range(self.accounts):
                number = 1 + (start + offset) % self.accounts
                account_id = self.account_id(number)
                if (
                    account_id not in picked
                    and self.hostile_kind(number) not in NUMERIC_ID_KINDS
                    and self.duplicate_kind(number) != "closure"
                    and self.permanent_failure(account_id) is None
                ):
                    picked[account_id] = fault
                    break
        return picked

    def decoy_rating(self, account_id: str, as_of: date, padding: int = 0) -> bytes:
        """A rating of the account that is not its real one (every score 0), with ``padding`` bytes more:
        what an oversized or trickled body says, so a client that took it writes a wrong row."""
        body = {
            "account_id": account_id,
            "analysis_date": as_of.isoformat(),
            "result_status": "Complete",
            "scores": {"overall": 0, "environmental": 0, "social": 0, "governance": 0},
            "primary_focus": {"pillar": "Governance", "score": 0},
            "coverage": {"covered_weight_pct": 0, "holdings_total": 1, "holdings_rated": 0},
        }
        if padding:
            body["coverage"]["padding"] = "x" * padding
        return _COMPACT_JSON.encode(body).encode()

    def _compute_block_rows(self, block: int) -> tuple[dict, ...]:
        rows: list[dict] = []
        if block < self.base_blocks:
            first = block * BLOCK_ACCOUNTS + 1
            for number in range(first, min(first + BLOCK_ACCOUNTS, self.accounts + 1)):
                rows.append(self._account_row(number, "active"))
        if self.ams_noise:
            noise: list[dict] = []
            for slot in range(EXTRA_SLOTS_PER_BLOCK):
                status = self._extra_status(block, slot)
                if status is not None:
                    noise.append(self._account_row(self._extra_number(block, slot), status))
            for slot, bad_id in self._malformed_ids(block):
                row = self._row(
                    bad_id,
                    self.account_name(block, f"malformed-{slot}"),
                    "active",
                    _UPDATED_AT_ORIGIN + timedelta(days=block % 700),
                )
                if bad_id is ABSENT:
                    del row["account_id"]
                noise.append(row)
            source = block - DUPLICATE_DELAY_BLOCKS
            if 0 <= source < self.base_blocks:
                first = source * BLOCK_ACCOUNTS + 1
                for number in range(first, min(first + BLOCK_ACCOUNTS, self.accounts + 1)):
                    kind = self.duplicate_kind(number)
                    if kind is not None:
                        noise.append(self._repeat_row(number, kind))
            # Scatter the noise among the regular rows at seeded places.
            for index, row in enumerate(noise):
                at = int(self._unit("noise-at", block, index) * (len(rows) + 1))
                rows.insert(at, row)
        return tuple(rows)

    def _malformed_ids(self, block: int) -> Iterator[tuple[int, object]]:
        if block == 0:
            yield from enumerate(MALFORMED_ACCOUNT_IDS)
            return
        if block >= self.base_blocks:
            return
        for slot in range(MALFORMED_SLOTS_PER_BLOCK):
            if self._unit("malformed", block, slot) < MALFORMED_SLOT_SHARE:
                choice = self._unit("malformed-id", block, slot)
                yield slot, MALFORMED_ACCOUNT_IDS[int(choice * len(MALFORMED_ACCOUNT_IDS))]

    def account_page(self, position: int, limit: int) -> AccountPage:
        """Up to ``limit`` rows of the listing from ``position`` (FIRST_PAGE or a previous next_position).

        A position is (block * stride + row) * 2 + flag; the flag marks a page start whose seeded empty
        page was already served, so an empty page never repeats forever.
        """
        where, empty_served = divmod(position, 2)
        block, row = divmod(where, _ROW_STRIDE)
        if (
            self.ams_noise
            and where > 0
            and not empty_served
            and self._unit("empty-page", where) < EMPTY_PAGE_SHARE
            and block < self.listing_blocks
        ):
            return AccountPage([], where * 2 + 1)
        rows: list[dict] = []
        while block < self.listing_blocks and len(rows) < limit:
            block_rows = self._block_rows(block)
            taken = block_rows[row : row + limit - len(rows)]
            rows.extend(taken)
            row += len(taken)
            if row >= len(block_rows):
                block, row = block + 1, 0
        if block >= self.listing_blocks:
            return AccountPage(rows, None)
        return AccountPage(rows, (block * _ROW_STRIDE + row) * 2)

    def account_rows(self) -> Iterator[dict]:
        """Every row of a full AMS walk, noise included, in listing order."""
        for block in range(self.listing_blocks):
            yield from self._block_rows(block)

    def expected_active_accounts(self) -> Iterator[tuple[str, str]]:
        """(account_id, account_name) of the accounts a correct client keeps, sorted by id; the name as its
        latest row lists it (with hostile_rate, before the contract's text rules repair it). An account
        listed with a numeric id is not kept.

        Computed from the rules directly rather than by walking the listing, so tests can check one
        against the other.
        """
        for number in range(1, self.accounts + 1):
            words = self._account_words(number)
            kind = self._duplicate_kind(number, words)
            if kind == "closure" or self.hostile_kind(number) in NUMERIC_ID_KINDS:
                continue
            yield self.account_id(number), self._latest_name(number, kind, words)

    # --- ESG ratings --------------------------------------------------------------------------------
    def permanent_failure(self, account_id: str) -> Fault | None:
        """The error every rating request for this account gets (failure_rate of accounts), or None."""
        if self.failure_rate <= 0 or self._unit("failure", account_id) >= self.failure_rate:
            return None
        choice = self._unit("failure-kind", account_id)
        status, kind = PERMANENT_FAILURES[int(choice * len(PERMANENT_FAILURES))]
        return Fault(status, None, kind)

    def transient_fault(self, account_id: str, as_of: date) -> Fault | None:
        """The fault the FIRST request for (account, as_of) gets (transient_error_rate of pairs), or None."""
        if self.transient_error_rate <= 0:
            return None
        if self._unit("transient", account_id, as_of) >= self.transient_error_rate:
            return None
        faults = TRANSIENT_RATING_FAULTS
        return Fault(*faults[int(self._unit("transient-kind", account_id, as_of) * len(faults))])

    def page_fault(self, position: int) -> Fault | None:
        """The fault the first request for an AMS page gets (transient_error_rate of pages), or None."""
        if self.transient_error_rate <= 0 or self._unit("page-fault", position) >= self.transient_error_rate:
            return None
        faults = TRANSIENT_PAGE_FAULTS
        return Fault(*faults[int(self._unit("page-fault-kind", position) * len(faults))])

    def rating_version_date(self, account_id: str, as_of: date) -> date:
        """The latest day <= as_of on which the account's rating changed (RATING_EPOCH at the earliest).

        A day is a change day when its per-(seed, account, day) hash falls under daily_change_rate. One
        64-byte digest holds the 32-bit hashes of 16 consecutive days, so the scan back costs one digest
        per 16 days rather than one per day.
        """
        if as_of <= RATING_EPOCH:
            return as_of
        rate = self.daily_change_rate
        if rate >= 1:
            return as_of
        if rate <= 0:
            return RATING_EPOCH
        prefix = self._seed_key + b"change|" + account_id.encode() + b"|"
        threshold = rate * 4294967296.0
        epoch = RATING_EPOCH.toordinal()
        day = as_of.toordinal()
        while day > epoch:
            chunk, index = divmod(day, _DAYS_PER_DIGEST)
            day_hashes = _SIXTEEN_WORDS(hashlib.blake2b(prefix + b"%d" % chunk, digest_size=64).digest())
            for index in range(index, -1, -1):
                if day_hashes[index] < threshold:
                    return max(date.fromordinal(chunk * _DAYS_PER_DIGEST + index), RATING_EPOCH)
            day = chunk * _DAYS_PER_DIGEST - 1
        return RATING_EPOCH

    def _is_partial(self, account_id: str) -> bool:
        return self.partial_rate > 0 and self._unit("partial", account_id) < self.partial_rate

    def rating(self, account_id: str, as_of: date) -> dict | None:
        """The rating body for the account on as_of, or None for an unknown account (404).

        This is the content only: the server serves permanent_failure / transient_fault instead when
        they apply.
        """
        if not self.is_known_account(account_id):
            return None
        version = self.rating_version_date(account_id, as_of)
        draws = _draws(self._seed_key, "rating", account_id, version.toordinal())
        partial = self._is_partial(account_id)
        if partial and self._unit("unrated", account_id) < UNRATED_SHARE_OF_PARTIAL:
            return {
                "account_id": account_id,
                "analysis_date": version.isoformat(),
                "result_status": "Unrated",
                "scores": {"overall": None, "environmental": None, "social": None, "governance": None},
                "primary_focus": None,
                "coverage": {
                    "covered_weight_pct": 0,
                    "holdings_total": 1 + next(draws) % 60,
                    "holdings_rated": 0,
                },
            }
        # Pillars cluster around 60 like real ratings; values are in ten-thousandths of a point.
        pillars = [_clustered(draws) for _ in PILLARS]
        overall = min(1_000_000, max(0, sum(pillars) // 3 + (next(draws) % 60_001) - 30_000))
        environmental, social, governance = (_styled_score(value, draws) for value in pillars)
        scores = {
            "overall": _styled_score(overall, draws),
            "environmental": environmental,
            "social": social,
            "governance": governance,
        }
        holdings_total = 5 + next(draws) % 400
        covered = 800 + next(draws) % 201 if not partial else 200 + next(draws) % 600
        body = {
            "account_id": account_id,
            "analysis_date": version.isoformat(),
            "result_status": "Complete",
            "scores": scores,
            "primary_focus": None,
            "coverage": {
                "covered_weight_pct": covered / 10,
                "holdings_total": holdings_total,
                "holdings_rated": max(1, holdings_total * covered // 1000),
            },
        }
        if partial:
            body["result_status"] = "Partial"
            gap = next(draws) % 3
            if gap == 0:  # some scores could not be computed
                keys = list(scores)
                for _ in range(1 + next(draws) % 3):
                    scores[keys[next(draws) % 4]] = None
            elif gap == 2:  # the analysis date is missing: absent or null
                if next(draws) % 2:
                    del body["analysis_date"]
                else:
                    body["analysis_date"] = None
            # gap == 1 (and sometimes the others) leaves primary_focus null
            if gap == 1 or next(draws) % 4 == 0:
                return body
        body["primary_focus"] = _primary_focus(scores)
        return body

    def encoded_rating(self, account_id: str, as_of: date) -> EncodedRating | None:
        """The rating as the server sends it: compact JSON and an ETag that is a hash of it."""
        body = self.rating(account_id, as_of)
        if body is None:
            return None
        encoded = _COMPACT_JSON.encode(body).encode()
        return EncodedRating(encoded, '"%s"' % hashlib.blake2b(encoded, digest_size=12).hexdigest())

    def etag(self, account_id: str, as_of: date) -> str | None:
        """The ETag served for the rating (quoted), or None for an unknown account."""
        encoded = self.encoded_rating(account_id, as_of)
        return None if encoded is None else encoded.etag


def _account_name(draws: Iterator[int]) -> str:
    """A realistic, sometimes hostile, account name made from an account's draws."""
    place, family, kind, suffix = (
        _pick(draws, _PLACES),
        _pick(draws, _FAMILIES),
        _pick(draws, _KINDS),
        _pick(draws, _SUFFIXES),
    )
    style = next(draws) % 100
    if style < 30:
        name = f"{place} {kind}{suffix}"
    elif style < 50:
        name = f"{family} {kind}{suffix}"
    elif style < 58:
        name = f"{family}, {_pick(draws, _FAMILIES)} & Co. {kind}"
    elif style < 64:
        name = f'The "{place}" {kind}{suffix}'
    elif style < 70:
        name = _pick(draws, _NON_LATIN_NAMES)
    elif style < 74:
        name = f"{place} {kind}" + _pick(draws, ("\nAttn: Treasury", "\r\nc/o Trustees", "\n"))
    elif style < 82:
        prefix = _pick(draws, _RISKY_PREFIXES)
        name = _pick(draws, _RISKY_HEADS[prefix]) + f"{place} {kind}"
    elif style < 84:
        # Long names near the contract's 500-character ceiling.
        unit = f"{family} {place} {kind}, "
        name = (unit * (MAX_NAME_LENGTH // len(unit) + 1))[: MAX_NAME_LENGTH - next(draws) % 40].rstrip()
    elif style < 86:
        name = f"  {place} {kind}  "  # surrounding spaces typed by a person
    else:
        name = f"{place} {family} {kind}{suffix}"
    return name[:MAX_NAME_LENGTH]


def _insert(name: str, piece: str, draws: Iterator[int]) -> str:
    at = next(draws) % (len(name) + 1)
    return name[:at] + piece + name[at:]


def encode_account_page(rows: list[dict], next_cursor: str | None) -> bytes:
    """An AMS page as the server sends it. A numeric id is written as the bare number (``json`` cannot write
    one past 4,300 digits), and a lone surrogate as a JSON escape (``\\udc80``): UTF-8 cannot hold one."""
    data = ", ".join(_encode_row(row) for row in rows)
    text = (
        f'{{"data": [{data}], "next_cursor": {json.dumps(next_cursor)}, '
        f'"has_more": {"true" if next_cursor is not None else "false"}}}'
    )
    return text.encode("utf-8", "backslashreplace")


def _encode_row(row: dict) -> str:
    account_id = row.get("account_id")
    if not isinstance(account_id, NumericId):
        return json.dumps(row, ensure_ascii=False)
    rest = json.dumps({k: v for k, v in row.items() if k != "account_id"}, ensure_ascii=False)
    return f'{{"account_id": {account_id.digits}, {rest[1:]}'


def _updated_at(words: tuple[int, ...]) -> datetime:
    offset = words[_WORD_UPDATED_AT] * _UPDATED_AT_SPAN_SECONDS // _WORD_RANGE
    return _UPDATED_AT_ORIGIN + timedelta(seconds=offset)


def _clustered(draws: Iterator[int]) -> int:
    """A score in ten-thousandths of a point, bunched around 60 (mean of three uniforms over 15..100)."""
    spread = (next(draws) % 850_001 + next(draws) % 850_001 + next(draws) % 850_001) // 3
    return 150_000 + spread


def _styled_score(value: int, draws: Iterator[int]) -> int | float:
    """A score (ten-thousandths of a point) written the many ways the API writes numbers.

    Exact halves at the third decimal (72.345) exercise half-up rounding; the values are built from their
    decimal text so the JSON carries exactly those digits.
    """
    style = next(draws) % 100
    if style < 30:
        return float(f"{value // 10_000}.{value // 100 % 100:02d}")
    if style < 55:
        half = min(value // 100 * 100 + 50, 999_950)
        return float(f"{half // 10_000}.{half // 10 % 1000:03d}")
    if style < 65:
        return float(f"{value // 10_000}.{value % 10_000:04d}")
    if style < 85:
        return value // 10_000
    if style < 95:
        return float(f"{value // 10_000}.{value // 1000 % 10}")
    return _pick(draws, (0, 100, 100.0, 99.995, 0.005, 0.0))


def _primary_focus(scores: dict) -> dict | None:
    """The pillar with the highest score (the first of equals), over the pillars that have one."""
    best = None
    for pillar in PILLARS:
        score = scores[pillar.lower()]
        if score is not None and (best is None or score > best[1]):
            best = (pillar, score)
    return None if best is None else {"pillar": best[0], "score": best[1]}
