"""rating_values and the Processing Status: api-contract section 4, value by value."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from esg_assets.core.ratings.model import ProcessingStatus
from esg_assets.core.ratings.rating_values import failed_values, rating_values, round_score

pytestmark = pytest.mark.unit


def parse(text: str) -> dict:
    """As the ESG client parses a body: every number an exact Decimal."""
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def body(**overrides) -> dict:
    complete = parse(
        """{"account_id": "ACC-1", "analysis_date": "2026-11-21", "result_status": "Complete",
            "scores": {"overall": 71.25, "environmental": 68.4, "social": 74.1, "governance": 71.9},
            "primary_focus": {"pillar": "Social", "score": 74.1}}"""
    )
    for key, value in overrides.items():
        if key in complete["scores"]:
            complete["scores"][key] = value
        else:
            complete[key] = value
    return complete


def without(key: str, container: dict | None = None) -> dict:
    complete = body()
    del (complete if container is None else complete[container])[key]
    return complete


# --- rounding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "written"),
    [
        ("72.345", "72.35"),
        ("100", "100.00"),
        ("0.005", "0.01"),
        ("0.004999", "0.00"),
        ("72.344999999", "72.34"),
        ("99.995", "100.00"),
        ("0", "0.00"),
        ("-0", "0.00"),
        ("-0.0", "0.00"),
        ("1E+1", "10.00"),
        ("68.4", "68.40"),
        ("33.3333333333333333333333333333333333", "33.33"),
    ],
)
def test_scores_are_rounded_half_up_to_two_places(sent, written):
    values = rating_values(body(overall=parse(sent)))

    assert str(values.overall) == written
    assert values.problems == ()


def test_a_float_score_rounds_as_its_decimal_text_says():
    # Decimal(72.345) is 72.34499999...; the value must still round up, as the JSON text reads.
    assert rating_values(body(overall=72.345)).overall == Decimal("72.35")
    assert round_score(Decimal("2.675")) == Decimal("2.68")


# --- unusable values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (True, "overall: not a number"),
        (False, "overall: not a number"),
        ("72.5", "overall: not a number"),
        ([72.5], "overall: not a number"),
        ({"value": 72.5}, "overall: not a number"),
        (None, "overall: null"),
        (float("nan"), "overall: not finite"),
        (float("inf"), "overall: not finite"),
        (float("-inf"), "overall: not finite"),
        (Decimal("NaN"), "overall: not finite"),
        (Decimal("sNaN"), "overall: not finite"),
        (Decimal("Infinity"), "overall: not finite"),
        (Decimal("100.004"), "overall: 100.004 out of range"),
        (Decimal("-0.001"), "overall: -0.001 out of range"),
        (Decimal("101.2"), "overall: 101.2 out of range"),
        (Decimal("1E+400"), "overall: 1E+400 out of range"),
        (-5, "overall: -5 out of range"),
    ],
)
def test_an_unusable_score_is_missing_with_a_reason(value, problem):
    values = rating_values(body(overall=value))

    assert values.overall is None
    assert values.problems == (problem,)
    assert values.status is ProcessingStatus.PARTIAL


def test_json_constants_nan_and_infinity_from_the_wire_are_not_finite():
    wire = '{"scores": {"overall": NaN, "environmental": Infinity, "social": -Infinity}}'
    values = rating_values(parse(wire))

    assert values.problems[:4] == (
        "overall: not finite",
        "environmental: not finite",
        "social: not finite",
        "governance: missing",
    )


@pytest.mark.parametrize("name", ["overall", "environmental", "social", "governance"])
def test_each_score_is_judged_on_its_own(name):
    complete = body()
    complete["scores"][name] = Decimal("101.2")

    values = rating_values(complete)

    assert getattr(values, name) is None
    assert values.problems == (f"{name}: 101.2 out of range",)


def test_a_missing_score_is_reported_as_missing():
    values = rating_values(without("governance", container="scores"))
    assert values.governance is None and values.problems == ("governance: missing",)


def test_scores_that_are_not_an_object_make_every_score_missing():
    values = rating_values(body(scores=[71.25]))

    assert values.six_values[:4] == (None, None, None, None)
    assert values.problems[:4] == tuple(
        f"{name}: missing (no scores object)" for name in ("overall", "environmental", "social", "governance")
    )
    assert values.status is ProcessingStatus.PARTIAL  # primary focus and its score are still usable


NOT_A_PILLAR = "is not Environmental, Social or Governance"


@pytest.mark.parametrize(
    ("primary_focus", "problems"),
    [
        ({"pillar": "Economic", "score": 74.1}, (f"primary_focus: 'Economic' {NOT_A_PILLAR}",)),
        ({"pillar": "social", "score": 74.1}, (f"primary_focus: 'social' {NOT_A_PILLAR}",)),
        ({"pillar": " Social", "score": 74.1}, (f"primary_focus: ' Social' {NOT_A_PILLAR}",)),
        ({"pillar": 3, "score": 74.1}, ("primary_focus: not a string",)),
        ({"pillar": None, "score": 74.1}, ("primary_focus: null",)),
        ({"score": 74.1}, ("primary_focus: missing",)),
        ({"pillar": "Social", "score": True}, ("primary_focus_score: not a number",)),
        ({"pillar": "Social", "score": Decimal("100.5")}, ("primary_focus_score: 100.5 out of range",)),
        ({"pillar": "Social"}, ("primary_focus_score: missing",)),
        (None, ("primary_focus: null", "primary_focus_score: null")),
        ("Social", ("primary_focus: not an object", "primary_focus_score: missing")),
    ],
)
def test_primary_focus_values(primary_focus, problems):
    values = rating_values(body(primary_focus=primary_focus))

    assert values.problems == problems
    assert values.status is ProcessingStatus.PARTIAL


def test_a_missing_primary_focus_makes_both_of_its_values_missing():
    values = rating_values(without("primary_focus"))
    assert values.problems == ("primary_focus: missing", "primary_focus_score: missing")


def test_every_pillar_is_accepted():
    for pillar in ("Environmental", "Social", "Governance"):
        assert rating_values(body(primary_focus={"pillar": pillar, "score": 50})).primary_focus == pillar


@pytest.mark.parametrize(
    ("analysis_date", "problem"),
    [
        ("2026-02-30", "analysis_date: '2026-02-30' is not a valid date"),
        ("2026-13-01", "analysis_date: '2026-13-01' is not a valid date"),
        ("20261121", "analysis_date: '20261121' is not a YYYY-MM-DD date"),
        ("2026-W47-6", "analysis_date: '2026-W47-6' is not a YYYY-MM-DD date"),
        ("2026-11-21T00:00:00Z", "analysis_date: '2026-11-21T00:00:00Z' is not a YYYY-MM-DD date"),
        ("21/11/2026", "analysis_date: '21/11/2026' is not a YYYY-MM-DD date"),
        ("２０２６-11-21", "analysis_date: '２０２６-11-21' is not a YYYY-MM-DD date"),
        ("", "analysis_date: '' is not a YYYY-MM-DD date"),
        ("x" * 100, f"analysis_date: '{'x' * 40}...' is not a YYYY-MM-DD date"),
        (Decimal(20261121), "analysis_date: not a string"),
        (None, "analysis_date: null"),
    ],
)
def test_a_bad_analysis_date_is_missing_and_makes_the_row_partial(analysis_date, problem):
    values = rating_values(body(analysis_date=analysis_date))

    assert values.analysis_date is None
    assert values.problems == (problem,)
    assert values.status is ProcessingStatus.PARTIAL


def test_an_analysis_date_after_as_of_is_not_usable():
    assert rating_values(body(), as_of=date(2026, 11, 21)).analysis_date == date(2026, 11, 21)

    values = rating_values(body(), as_of=date(2026, 11, 20))

    assert values.analysis_date is None
    assert values.problems == ("analysis_date: 2026-11-21 is after as_of 2026-11-20",)


def test_a_missing_analysis_date():
    assert rating_values(without("analysis_date")).problems == ("analysis_date: missing",)


# --- Processing Status --------------------------------------------------------------------------------


def test_all_six_values_and_the_date_usable_is_successful():
    values = rating_values(body())

    assert values.status is ProcessingStatus.SUCCESSFUL
    assert values.six_values == (
        Decimal("71.25"),
        Decimal("68.40"),
        Decimal("74.10"),
        Decimal("71.90"),
        "Social",
        Decimal("74.10"),
    )
    assert values.analysis_date == date(2026, 11, 21) and values.problems == ()


def test_boundary_scores_are_usable():
    values = rating_values(body(overall=Decimal("0"), governance=Decimal("100")))
    assert values.status is ProcessingStatus.SUCCESSFUL


def test_all_six_values_usable_but_no_date_is_partial():
    assert rating_values(body(analysis_date="soon")).status is ProcessingStatus.PARTIAL


def test_one_usable_value_is_partial():
    values = rating_values(
        body(overall=None, environmental=None, social=None, governance=Decimal("55"), primary_focus=None)
    )
    assert values.status is ProcessingStatus.PARTIAL
    assert values.governance == Decimal("55.00")


def test_an_unrated_answer_with_no_usable_value_is_failed_even_with_a_date():
    unrated = body(
        overall=None,
        environmental=None,
        social=None,
        governance=None,
        primary_focus=None,
        result_status="Unrated",
    )

    values = rating_values(unrated)

    assert values.status is ProcessingStatus.FAILED
    assert values.analysis_date == date(2026, 11, 21)  # usable, but a Failed row writes it as N/A anyway


def test_an_empty_object_is_failed():
    values = rating_values({})
    assert values.status is ProcessingStatus.FAILED
    assert len(values.problems) == 7


def test_failed_values_carry_the_reason_and_nothing_else():
    values = failed_values("HTTP 404 unknown account")

    assert values.status is ProcessingStatus.FAILED
    assert values.six_values == (None,) * 6 and values.analysis_date is None
    assert values.problems == ("HTTP 404 unknown account",)
