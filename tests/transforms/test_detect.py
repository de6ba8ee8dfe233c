"""Detectors: positives with exact spans, checksum failures, look-alikes (orders, amounts, timestamps)."""

import pytest

from veil.transforms.detect import ENTITIES, Span, find_entities, merge_spans
from veil.transforms.detect.card import find_cards
from veil.transforms.detect.date import find_birth_dates, find_dates
from veil.transforms.detect.email import find_emails
from veil.transforms.detect.iban import find_ibans
from veil.transforms.detect.ip import find_ips
from veil.transforms.detect.person import find_persons
from veil.transforms.detect.phone import find_phones
from veil.transforms.detect.ssn import find_ssns
from veil.transforms.detect.url import find_urls


def found(spans, text):
    return [text[s.start : s.end] for s in spans]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mail Jane.Doe+x@Example.co.uk now", ["Jane.Doe+x@Example.co.uk"]),
        ("a@b.io, c_d@e-f.com.", ["a@b.io", "c_d@e-f.com"]),
        ("user@localhost or @mention or a..b@x.com or ab.@x.com or x@y.c0m", []),
    ],
)
def test_email(text, expected):
    assert found(find_emails(text), text) == expected


def test_email_normalized_lower():
    assert find_emails(" A@B.COM ") == [Span(1, 8, "email", "a@b.com")]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("card 4111 1111 1111 1111 exp", ["4111 1111 1111 1111"]),
        ("4111-1111-1111-1111", ["4111-1111-1111-1111"]),
        ("amex 378282246310005.", ["378282246310005"]),
        ("mc 5555555555554444 and 2221000000000009", ["5555555555554444", "2221000000000009"]),
        ("bad luhn 4111 1111 1111 1112", []),
        ("unknown iin 9111111111111111 (luhn-valid)", []),
        ("mixed 4111-1111 1111-1111", []),
        ("order #4111111111111111", []),
        ("invoice no. 4111111111111111", []),
        ("ts 20240115103000 amount 1,234,567.00", []),
        ("call +4915123459005", []),  # a phone number, Luhn-valid by chance
        ("digest 9f4111111111111111ab0c", []),  # a digit run inside a hex pseudonym
        ("IBAN IT91 E034 4601 0175 7008 0712 601 rejected", []),  # inside an IBAN with a bad check
    ],
)
def test_card(text, expected):
    assert found(find_cards(text), text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("IBAN DE89 3704 0044 0532 0130 00 ok", ["DE89 3704 0044 0532 0130 00"]),
        ("GB82WEST12345698765432", ["GB82WEST12345698765432"]),
        (
            "NL91 ABNA 0417 1643 00, FR1420041010050500013M02606",
            ["NL91 ABNA 0417 1643 00", "FR1420041010050500013M02606"],
        ),
        ("DE89 3704 0044 0532 0130 00 1234", ["DE89 3704 0044 0532 0130 00"]),
        ("bad check DE88 3704 0044 0532 0130 00", []),
        ("wrong length DE89 3704 0044 0532 0130", []),
        ("SKU AB12 CDEF GHIJ KLMN", []),
    ],
)
def test_iban(text, expected):
    assert found(find_ibans(text), text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ssn 123-45-6789.", ["123-45-6789"]),
        ("123 45 6789", ["123 45 6789"]),
        ("SSN: 123456789", ["123456789"]),
        ("000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000", []),
        ("mixed 123-45 6789; order 123456789; phone 212-555-1234", []),
    ],
)
def test_ssn(text, expected):
    assert found(find_ssns(text), text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("from 192.168.1.20.", ["192.168.1.20"]),
        ("v6 2001:db8::ff00:42:8329 and fe80::1", ["2001:db8::ff00:42:8329", "fe80::1"]),
        ("::ffff:192.0.2.1", ["::ffff:192.0.2.1"]),
        ("256.1.1.1 1.2.3 01.2.3.4 version 1.2.3.4 at 10:30:00 ::1", []),
    ],
)
def test_ip(text, expected):
    assert found(find_ips(text), text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("see https://ex.com/a?b=c.", ["https://ex.com/a?b=c"]),
        ("(www.example.org/path)", ["www.example.org/path"]),
        ("http://en.wikipedia.org/wiki/Foo_(bar)!", ["http://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("example.com and mail@www.x.com", []),
    ],
)
def test_url(text, expected):
    assert found(find_urls(text), text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("(212) 555-1234", ["(212) 555-1234"]),
        ("ring +44 20 7946 0958 today", ["+44 20 7946 0958"]),
        ("+1-555-123-4567", ["+1-555-123-4567"]),
        ("Tel. 030 12345678 / 06 12 34 56 78", ["030 12345678", "06 12 34 56 78"]),
        ("0031 20 123 4567", ["0031 20 123 4567"]),
        ("2125551234", ["2125551234"]),
        ("order #2125551234, invoice no. 212-555-1234", []),
        ("at 2024-01-15 10:30:00 paid $1,234.56 or 1.234.567,00 EUR", []),
        ("ts 20240115103000; code 123456; 12:30:45 1234567", []),
        # inside account and card numbers that fail their checks: never read as a phone
        ("IBAN GB61 QNNG 4721 5698 5052 94 rejected", []),
        ("IBAN FR84 2229 1957 6542 5944 9800 084 rejected", []),
        ("card 3777 3811 9607 308 was declined", []),
    ],
)
def test_phone(text, expected):
    assert found(find_phones(text), text) == expected


def test_phone_regions_and_normalization():
    assert find_phones("06 12 34 56 78", ("US",)) == []
    assert [s.normalized for s in find_phones("06 12 34 56 78", ("FR",))] == ["+33612345678"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Spoke with Mary on the phone.", ["Mary"]),
        ("John Smith called; Mr Kowalski too.", ["John Smith", "Kowalski"]),
        ("Frau Müller und Jürgen Schmidt", ["Müller", "Jürgen Schmidt"]),
        ("May we ship in May? Will it arrive? Monday is fine.", []),
        ("Donna reported a crash. April asked for a refund.", ["Donna", "April"]),  # common words, then a verb
        ("Francisco again.", ["Francisco"]),  # a capitalised lorem word is a name, not a common word
        ("The Customer Service Team said Refund Approved.", []),
    ],
)
def test_person(text, expected):
    assert found(find_persons(text), text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("on 2024-01-15 and 15/01/2024", ["2024-01-15", "15/01/2024"]),
        ("3 March 1990, March 3rd, 1990 and 12.03.1990", ["12.03.1990", "3 March 1990", "March 3rd, 1990"]),
        ("2024-13-40 and 31/02/2020 and 1.2.3", []),
    ],
)
def test_dates(text, expected):
    assert sorted(found(find_dates(text), text)) == sorted(expected)


def test_dates_personal_only_after_a_birth_word():
    text = "Signed up 2021-05-04; born 1990-03-12; DOB: 12/03/1988; geboren am 4. Mai 1970"
    assert found(find_birth_dates(text), text) == ["1990-03-12", "12/03/1988", "4. Mai 1970"]
    assert [s.normalized for s in find_birth_dates(text)] == ["1990-03-12", "1988-03-12", "1970-05-04"]


def test_merge_longest_wins_then_priority():
    spans = [Span(0, 10, "phone", "p"), Span(0, 19, "card", "c"), Span(20, 25, "ip", "i"), Span(20, 25, "url", "u")]
    assert merge_spans(spans, ("card", "ip", "url", "phone")) == [spans[1], spans[2]]


def test_find_entities_exact_spans_and_no_phone_inside_other_entities():
    text = (
        "Card 4111 1111 1111 1111, SSN 123-45-6789, at 2024-01-15 10:30, from 10.0.0.12, mail a@b.de, +1 212 555 1234"
    )
    spans = find_entities(text, ENTITIES)
    assert [(text[s.start : s.end], s.entity) for s in spans] == [
        ("4111 1111 1111 1111", "card"),
        ("123-45-6789", "ssn"),
        ("10.0.0.12", "ip"),
        ("a@b.de", "email"),
        ("+1 212 555 1234", "phone"),
    ]
