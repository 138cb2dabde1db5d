"""The text rule for account names: what becomes U+FFFD, where the cut falls, the formula rule after it."""

import pytest

from esg_assets.core.ratings.account_names import MAX_ACCOUNT_NAME_LENGTH, repair_account_name
from esg_assets.core.ratings.ratings_csv import neutralise_formula

pytestmark = pytest.mark.unit

R = "\ufffd"


@pytest.mark.parametrize(
    "name",
    [
        "Harbor Pension Trust",
        "東京年金基金",
        "🌱 Green Future Fund",  # an astral character: a surrogate *pair* in JSON, valid text
        "Cafe\u0301 Workers",
        "Line one\nLine two\r\n\tTabbed",  # tab, line feed and carriage return are allowed
        "x" * MAX_ACCOUNT_NAME_LENGTH,
        "",
    ],
)
def test_a_valid_name_is_kept_as_it_is(name):
    repaired = repair_account_name(name)
    assert repaired.text == name and repaired.reason is None


@pytest.mark.parametrize(
    ("name", "expected", "found"),
    [
        ("Bad\udc80Name", f"Bad{R}Name", "1 lone surrogate(s)"),
        ("\ud800\udc80\udfff", f"{R}{R}{R}", "3 lone surrogate(s)"),  # low before high: no pair
        ("tail\ud83c", f"tail{R}", "1 lone surrogate(s)"),  # a high surrogate with nothing after it
        ("nul\x00here", f"nul{R}here", "1 control character(s)"),
        ("bell\x07esc\x1bdel\x7f", f"bell{R}esc{R}del{R}", "3 control character(s)"),
        ("c1\x85\x9f", f"c1{R}{R}", "2 control character(s)"),
        ("vt\x0bff\x0c", f"vt{R}ff{R}", "2 control character(s)"),
    ],
)
def test_each_invalid_character_becomes_one_replacement_character(name, expected, found):
    repaired = repair_account_name(name)
    assert repaired.text == expected
    assert found in repaired.reason and "U+FFFD" in repaired.reason


def test_an_over_long_name_is_cut_to_its_first_500_characters():
    name = "Ab" * 400
    repaired = repair_account_name(name)
    assert repaired.text == name[:500]
    assert "800 characters (at most 500)" in repaired.reason and "cut to its first 500" in repaired.reason


def test_characters_are_replaced_before_the_cut_so_the_cut_counts_replacements():
    # 499 letters, then a lone surrogate, then more: the replacement is character 500 and is kept.
    repaired = repair_account_name("a" * 499 + "\udc80" + "b" * 10)
    assert repaired.text == "a" * 499 + R
    assert len(repaired.text) == 500


def test_a_repaired_name_is_valid_utf_8():
    repaired = repair_account_name("\udc80\x00" + "é" * 600)
    repaired.text.encode("utf-8")  # raises on a lone surrogate


def test_the_reason_never_quotes_the_name():
    repaired = repair_account_name("Secret Holder Trust\x00" + "z" * 600)
    assert "Secret" not in repaired.reason and "zzz" not in repaired.reason


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("=SUM(A1)\x00", f"'=SUM(A1){R}"),  # still a formula after the repair: neutralised
        ("\x00=SUM(A1)", f"{R}=SUM(A1)"),  # the replacement character is not a formula character
        ("\t\x7fTabbed", f"'\t{R}Tabbed"),
        ("-" + "9" * 600, "'-" + "9" * 499),  # cut to 500, then the quote: 501 characters in the file
    ],
)
def test_the_formula_rule_applies_to_the_repaired_name(name, written):
    assert neutralise_formula(repair_account_name(name).text) == written
