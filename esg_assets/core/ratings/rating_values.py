"""From an ESG rating body to the six values and the analysis date of a report row (api-contract sec. 4)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal

from esg_assets.core.iso_dates import ISO_DATE
from esg_assets.core.ratings.model import RatingValues

PILLARS = frozenset({"Environmental", "Social", "Governance"})
SCORE_NAMES = ("overall", "environmental", "social", "governance")  # keys of "scores" and RatingValues fields
LOWEST_SCORE = Decimal(0)
HIGHEST_SCORE = Decimal(100)

_TWO_PLACES = Decimal("0.01")
# A fixed context: the thread's current decimal context could have been changed by anyone.
_DECIMAL_CONTEXT = Context(prec=28, rounding=ROUND_HALF_UP)
_MAX_QUOTED = 40  # longest text quoted back in a problem, so a huge bad value cannot flood the log


def rating_values(body: Mapping, *, as_of: date | None = None) -> RatingValues:
    """The usable values of a rating body; each unusable one is ``None`` with a reason in ``problems``.

    ``as_of``, when given, also makes an analysis date after it unusable (the contract says the
    analysis date is on or before ``as_of``).
    """
    problems: list[str] = []

    scores = body.get("scores")
    if not isinstance(scores, Mapping):
        problems.extend(f"{name}: missing (no scores object)" for name in SCORE_NAMES)
        overall = environmental = social = governance = None
    else:
        overall, environmental, social, governance = (
            _score(scores, name, name, problems) for name in SCORE_NAMES
        )

    primary_focus, primary_focus_score = _primary_focus(body, problems)
    analysis_date = _analysis_date(body, as_of, problems)

    return RatingValues(
        overall=overall,
        environmental=environmental,
        social=social,
        governance=governance,
        primary_focus=primary_focus,
        primary_focus_score=primary_focus_score,
        analysis_date=analysis_date,
        problems=tuple(problems),
    )


def failed_values(reason: str) -> RatingValues:
    """The values of a row for which no rating was obtained: all ``None``, so the row is ``Failed``."""
    return RatingValues(
        overall=None,
        environmental=None,
        social=None,
        governance=None,
        primary_focus=None,
        primary_focus_score=None,
        analysis_date=None,
        problems=(reason,),
    )


def round_score(value: Decimal) -> Decimal:
    """``value`` rounded half-up to two places (``72.345`` -> ``72.35``), never ``-0.00``."""
    rounded = value.quantize(_TWO_PLACES, context=_DECIMAL_CONTEXT)
    return rounded.copy_abs() if rounded.is_zero() else rounded


def _score(container: Mapping, key: str, name: str, problems: list[str]) -> Decimal | None:
    if key not in container:
        problems.append(f"{name}: missing")
        return None
    raw = container[key]
    if raw is None:
        problems.append(f"{name}: null")
        return None
    number = _as_decimal(raw)
    if number is None:
        problems.append(f"{name}: not a number")
        return None
    if not number.is_finite():
        problems.append(f"{name}: not finite")
        return None
    # The range applies to the value as sent: 100.004 is out of range even though it rounds to 100.00.
    if not LOWEST_SCORE <= number <= HIGHEST_SCORE:
        problems.append(f"{name}: {_short(str(number))} out of range")
        return None
    return round_score(number)


def _as_decimal(value: object) -> Decimal | None:
    """``value`` as an exact decimal if it is a JSON number; ``bool`` is an ``int`` in Python, not here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # Through repr: Decimal(72.345) is 72.34499999..., which would round down; repr gives the
        # shortest decimal that is this float, i.e. what the JSON text said.
        return Decimal(repr(value))
    return None


def _primary_focus(body: Mapping, problems: list[str]) -> tuple[str | None, Decimal | None]:
    if "primary_focus" not in body:
        problems.extend(("primary_focus: missing", "primary_focus_score: missing"))
        return None, None
    focus = body["primary_focus"]
    if focus is None:  # the contract allows it: the analysis found no primary focus
        problems.extend(("primary_focus: null", "primary_focus_score: null"))
        return None, None
    if not isinstance(focus, Mapping):
        problems.extend(("primary_focus: not an object", "primary_focus_score: missing"))
        return None, None

    pillar = focus.get("pillar")
    if "pillar" not in focus:
        problems.append("primary_focus: missing")
        pillar = None
    elif pillar is None:
        problems.append("primary_focus: null")
    elif not isinstance(pillar, str):
        problems.append("primary_focus: not a string")
        pillar = None
    elif pillar not in PILLARS:
        problems.append(f"primary_focus: {_short(pillar)!r} is not Environmental, Social or Governance")
        pillar = None
    return pillar, _score(focus, "score", "primary_focus_score", problems)


def _analysis_date(body: Mapping, as_of: date | None, problems: list[str]) -> date | None:
    if "analysis_date" not in body:
        problems.append("analysis_date: missing")
        return None
    raw = body["analysis_date"]
    if raw is None:
        problems.append("analysis_date: null")
        return None
    if not isinstance(raw, str):
        problems.append("analysis_date: not a string")
        return None
    # date.fromisoformat alone would also take "20261121" and "2026-W47-6"; the contract says YYYY-MM-DD.
    if not ISO_DATE.fullmatch(raw):
        problems.append(f"analysis_date: {_short(raw)!r} is not a YYYY-MM-DD date")
        return None
    try:
        parsed = date.fromisoformat(raw)
    except ValueError:
        problems.append(f"analysis_date: {_short(raw)!r} is not a valid date")
        return None
    if as_of is not None and parsed > as_of:
        problems.append(f"analysis_date: {parsed.isoformat()} is after as_of {as_of.isoformat()}")
        return None
    return parsed


def _short(text: str) -> str:
    return text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + "..."
