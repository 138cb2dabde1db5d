"""The ratings CSV: RFC 4180 bytes, N/A and two-decimal rules, formula neutralising, strict parsing."""

import io
from datetime import date, datetime
from decimal import Decimal

import pytest

from esg_assets.core.ratings.model import ProcessingStatus
from esg_assets.core.ratings.ratings_csv import (
    HEADER,
    RatingsCsvError,
    RatingsRow,
    neutralise_formula,
    parse_ratings_csv,
    read_ratings_csv,
    write_ratings_csv,
)

pytestmark = pytest.mark.unit

HEADER_LINE = (
    b"Account ID,Account Name,Overall ESG Score,Environmental Score,Social Score,Governance Score,"
    b"Primary ESG Focus,Primary Focus Score,Analysis Date,Processing Status\r\n"
)
D = Decimal


def row(account_id="A-1", name="Acme", status="Successful", **overrides) -> RatingsRow:
    values = RatingsRow(
        account_id,
        name,
        D("71.25"),
        D("80.00"),
        D("65.50"),
        D("68.25"),
        "Environmental",
        D("80.00"),
        date(2026, 11, 24),
        status,
    )
    return values._replace(**overrides)


def write(rows) -> bytes:
    sink = io.BytesIO()
    write_ratings_csv(rows, sink)
    return sink.getvalue()


def data_line(rows) -> bytes:
    output = write(rows)
    assert output.startswith(HEADER_LINE)
    return output[len(HEADER_LINE) :]


def test_header_only_for_no_rows():
    sink = io.BytesIO()
    assert write_ratings_csv([], sink) == 0
    assert sink.getvalue() == HEADER_LINE
    assert ",".join(HEADER).encode() + b"\r\n" == HEADER_LINE


def test_a_successful_row():
    assert (
        data_line([row()])
        == b"A-1,Acme,71.25,80.00,65.50,68.25,Environmental,80.00,2026-11-24,Successful\r\n"
    )


def test_utf8_without_bom_and_crlf_only():
    output = write([row(name="Société Générale 😀"), row("A-2", name="Müller")])
    assert not output.startswith(b"\xef\xbb\xbf")
    assert "Société Générale 😀".encode() in output
    assert output.count(b"\r\n") == 3 and output.count(b"\n") == 3


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("Acme, Inc.", b'"Acme, Inc."'),
        ('The "Best" Co', b'"The ""Best"" Co"'),
        ('"', b'""""'),
        ("Line\rBreak", b'"Line\rBreak"'),
        ("Line\nBreak", b'"Line\nBreak"'),
        ("Line\r\nBreak", b'"Line\r\nBreak"'),
        ("  padded  ", b"  padded  "),
        ("   ", b"   "),
        ("", b""),
        ("Zürich Ünïcödé", "Zürich Ünïcödé".encode()),
        ("Emoji 🌱 Ltd", "Emoji 🌱 Ltd".encode()),
        ("semi;colon", b"semi;colon"),
        ("'already quoted", b"'already quoted"),
        ("tab\tinside", b"tab\tinside"),
    ],
)
def test_fields_are_quoted_only_when_needed(name, field):
    assert (
        data_line([row(name=name)])
        == b"A-1," + field + b",71.25,80.00,65.50,68.25,Environmental,80.00,2026-11-24,Successful\r\n"
    )


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_prefixes_are_neutralised(prefix):
    name = prefix + "SUM(A1:A9)"
    assert neutralise_formula(name) == "'" + name
    line = data_line([row(name=name)])
    expected = "'" + name
    quoted = f'"{expected}"' if "\r" in expected else expected
    assert line.startswith(f"A-1,{quoted},".encode())


@pytest.mark.parametrize("name", ["Acme", "", " =not first", "'=already", "1+1", "a-b"])
def test_other_names_are_left_alone(name):
    assert neutralise_formula(name) == name


def test_none_values_are_na():
    partial = row(
        status="Partial",
        overall=None,
        social=None,
        primary_focus=None,
        primary_focus_score=None,
        analysis_date=None,
    )
    assert data_line([partial]) == b"A-1,Acme,N/A,80.00,N/A,68.25,N/A,N/A,N/A,Partial\r\n"


def test_a_missing_name_is_na():
    assert data_line([row(name=None)]).startswith(b"A-1,N/A,")


@pytest.mark.parametrize("status", ["Failed", ProcessingStatus.FAILED])
def test_failed_rows_are_na_whatever_the_input(status):
    assert data_line([row(status=status)]) == b"A-1,Acme,N/A,N/A,N/A,N/A,N/A,N/A,N/A,Failed\r\n"


def test_status_enum_is_written_as_its_value():
    assert data_line([row(status=ProcessingStatus.PARTIAL)]).endswith(b",Partial\r\n")


@pytest.mark.parametrize(
    ("score", "text"),
    [
        (D("100"), b"100.00"),
        (D("0"), b"0.00"),
        (D("-0"), b"0.00"),
        (D("7.5"), b"7.50"),
        (D("1E+1"), b"10.00"),
        (D("12.345"), b"12.35"),  # half-up, like the model's rounding
        (D("12.344"), b"12.34"),
        (D("99.999"), b"100.00"),
        (D("0.005"), b"0.01"),
        (D("33.30"), b"33.30"),
    ],
)
def test_scores_have_exactly_two_decimals(score, text):
    assert data_line([row(overall=score)]).startswith(b"A-1,Acme," + text + b",")


@pytest.mark.parametrize("bad", [71.25, 71, "71.25"])
def test_scores_must_be_decimals(bad):
    with pytest.raises(TypeError, match="Overall ESG Score must be a Decimal"):
        write([row(overall=bad)])


def test_the_pillar_and_the_name_must_be_text():
    with pytest.raises(TypeError, match="Primary ESG Focus must be text"):
        write([row(primary_focus=1)])
    with pytest.raises(TypeError, match="Account Name must be text"):
        write([row(name=42)])


@pytest.mark.parametrize("bad", [D("NaN"), D("Infinity")])
def test_scores_must_be_finite(bad):
    with pytest.raises(ValueError, match="Overall ESG Score"):
        write([row(overall=bad)])


def test_dates_are_iso_and_datetimes_are_refused():
    assert b",0999-01-02,Successful" in data_line([row(analysis_date=date(999, 1, 2))])
    for bad in (datetime(2026, 11, 24, 12, 0), "2026-11-24"):
        with pytest.raises(TypeError, match="Analysis Date must be a date"):
            write([row(analysis_date=bad)])


@pytest.mark.parametrize(
    ("bad_row", "problem"),
    [
        (row(status="Done"), "processing status 'Done'"),
        (row(account_id=""), "account id"),
        (row()[:9], "10 values"),
    ],
)
def test_invalid_rows_are_refused(bad_row, problem):
    with pytest.raises(ValueError, match=problem):
        write([bad_row])


def test_rows_keep_their_order_and_are_counted():
    rows = [row("C"), row("A"), row("B")]
    sink = io.BytesIO()
    assert write_ratings_csv(iter(rows), sink) == 3
    assert [line.split(b",")[0] for line in sink.getvalue().split(b"\r\n")[1:-1]] == [b"C", b"A", b"B"]


def test_large_outputs_are_written_in_bounded_pieces():
    writes = []

    class Sink:
        def write(self, data):
            writes.append(len(data))

    count = write_ratings_csv((row(f"A-{n:06d}") for n in range(5_000)), Sink())
    assert count == 5_000
    assert len(writes) > 3 and max(writes) < 100 * 1024


TRICKY_NAMES = [
    "Acme, Inc.",
    'The "Best" Co',
    "Line\r\nBreak",
    "Lone\rCR",
    "Lone\nLF",
    "  spaces  ",
    "",
    "   ",
    "Zürich 😀",
    "=1+1",
    "@SUM",
    "-5",
    "+5",
    "\tTab",
    "\rCR first",
    "N/A Corp",
]


def test_round_trip_through_the_strict_parser():
    rows = [row(f"A-{n:02d}", name=name) for n, name in enumerate(TRICKY_NAMES)]
    rows += [
        row("B-1", status="Failed"),
        row("B-2", status="Partial", overall=None, analysis_date=None),
        row("B-3", name=None),
    ]
    output = write(rows)
    parsed = list(read_ratings_csv(io.BytesIO(output)))
    # Names come back neutralised, and the Failed row comes back N/A (None) throughout.
    expected = [r._replace(account_name=r.account_name and neutralise_formula(r.account_name)) for r in rows]
    expected[-3] = expected[-3]._replace(**dict.fromkeys(RatingsRow._fields[2:9]))
    assert parsed == expected
    records = list(parse_ratings_csv(io.StringIO(output.decode(), newline="")))
    assert [record["Account Name"] for record in records[: len(TRICKY_NAMES)]] == [
        neutralise_formula(name) for name in TRICKY_NAMES
    ]
    assert records[-3]["Overall ESG Score"] == "N/A"


def test_parser_leaves_a_binary_stream_open():
    stream = io.BytesIO(write([row()]))
    assert len(list(parse_ratings_csv(stream))) == 1
    assert not stream.closed


GOOD = "A-1,Acme,71.25,80.00,65.50,68.25,Environmental,80.00,2026-11-24,Successful\r\n"
HEADER_TEXT = HEADER_LINE.decode()


def parse_error(text: str | bytes) -> str:
    stream = io.BytesIO(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(RatingsCsvError) as caught:
        list(parse_ratings_csv(stream))
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: the file is empty"),
        ("\ufeff" + HEADER_TEXT + GOOD, "line 1: the file starts with a byte order mark"),
        (HEADER_TEXT.replace("Social Score", "Social"), "line 1: the header is"),
        (HEADER_TEXT + GOOD.replace("\r\n", "\n"), "line 2, column 'Processing Status': a bare CR or LF"),
        (HEADER_TEXT + GOOD[:-2], "line 2, column 'Processing Status': the record ends with no line break"),
        (
            HEADER_TEXT + GOOD + GOOD.replace("Acme", "Ac\rme"),
            "line 3, column 'Account Name': a bare CR or LF",
        ),
        (HEADER_TEXT + GOOD.replace("Acme", 'Ac"me'), "line 2, column 'Account Name': a double quote inside"),
        (
            HEADER_TEXT + GOOD.replace("Acme", '"Ac,"me"'),
            "line 2, column 'Account Name': 'm' after the closing",
        ),
        (HEADER_TEXT + GOOD.replace("Acme", '"Acme"'), "line 2, column 'Account Name': quoted without"),
        (
            HEADER_TEXT + GOOD.replace("Acme", '"Ac,me'),
            "line 2, column 'Account Name': a quoted field is never",
        ),
        (
            HEADER_TEXT + GOOD.replace("Acme", 'Ac"me') + GOOD,
            "line 2, column 'Account Name': a double quote inside",
        ),
        (HEADER_TEXT + GOOD.replace(",Acme", ""), "line 2: 9 fields; expected 10"),
        (HEADER_TEXT + GOOD.replace("A-1", ""), "line 2, column 'Account ID': empty account id"),
        (
            HEADER_TEXT + GOOD.replace("Acme", "=cmd"),
            "line 2, column 'Account Name': the name starts with a formula",
        ),
        (
            HEADER_TEXT + GOOD.replace("71.25", "71.2"),
            "line 2, column 'Overall ESG Score': '71.2' is not a score",
        ),
        (HEADER_TEXT + GOOD.replace("65.50", "65.5e0"), "line 2, column 'Social Score'"),
        (HEADER_TEXT + GOOD.replace(",80.00,2026", ",NA,2026"), "line 2, column 'Primary Focus Score'"),
        (
            HEADER_TEXT + GOOD.replace("2026-11-24", "2026-02-30"),
            "line 2, column 'Analysis Date': '2026-02-30'",
        ),
        (HEADER_TEXT + GOOD.replace("2026-11-24", "20261124"), "line 2, column 'Analysis Date'"),
        (HEADER_TEXT + GOOD.replace("Environmental", ""), "line 2, column 'Primary ESG Focus': empty"),
        (
            HEADER_TEXT + GOOD.replace("Successful", "OK"),
            "line 2, column 'Processing Status': 'OK' is not one of",
        ),
        (
            HEADER_TEXT + GOOD.replace("Successful", "Failed"),
            "line 2, column 'Overall ESG Score': '71.25' for a Failed",
        ),
    ],
)
def test_parser_names_the_line_and_column_of_each_problem(text, message):
    assert parse_error(text).startswith(message)


def test_parser_counts_lines_inside_quoted_fields():
    multi_line = GOOD.replace("Acme", '"Ac\r\nme"')
    assert parse_error(HEADER_TEXT + multi_line + GOOD.replace("71.25", "x")).startswith(
        "line 4, column 'Overall ESG Score'"
    )


def test_parser_rejects_invalid_utf8():
    assert "not valid UTF-8" in parse_error(HEADER_LINE + GOOD.encode().replace(b"Acme", b"Ac\xffme"))
