"""Field actions as pure functions: each bound with `REGISTRY[name].bind(...)`, no Beam, no engine.

Crypto expectations are recomputed here from the documented derivation (HKDF-SHA256 without
salt over root key N = bytes([N]) * 32, info strings from each action module) with the
standard library and `cryptography`, not through veil's own key code.
"""

import base64
import hashlib
import hmac
import importlib
import json
import string
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from helpers import per_value_outcome
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from veil.errors import ActionError, ConfigError, ErrorCode, IntegrityError
from veil.keys.testing import fake_keyring
from veil.transforms.actions import base as action_base
from veil.transforms.actions import date_shift, encrypt, fake, pseudonymize, tokenize
from veil.transforms.actions.base import BindContext
from veil.transforms.policy import parse_policy
from veil.transforms.registry import REGISTRY, FieldSpec

PURPOSE = "analytics"
KEYRING = fake_keyring()
VECTORS = Path(__file__).parents[1] / "vectors"


# ---------------------------------------------------------------- helpers


def params(spec: dict[str, Any]):
    """The validated params model of a YAML-like action spec."""
    return REGISTRY[spec["action"]].params.model_validate(spec)


def bind(spec: dict[str, Any], *, purpose: str = PURPOSE, field: str = "f", keyring=None, version: int = 1):
    """The per-value function of one action, bound with the fake keyring."""
    action = REGISTRY[spec["action"]]
    return action.bind(params(spec), BindContext(purpose, field, keyring or KEYRING, version))


def root(version: int) -> bytes:
    """Root key N of `fake_keyring` (public, documented in veil.keys.testing)."""
    return bytes([version]) * 32


def hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA256 with no salt, written from the RFC with the standard library."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm, counter = okm + block, counter + 1
    return okm[:length]


def hmac_digest(info: str, message: str, version: int = 1) -> bytes:
    return hmac.new(hkdf(root(version), info.encode(), 32), message.encode("utf-8"), hashlib.sha256).digest()


def token_payload(text: str, version: int = 1) -> bytes:
    """The bytes of a `v<version>.<base64url>` token."""
    prefix = f"v{version}."
    assert text.startswith(prefix)
    body = text[len(prefix) :]
    assert "=" not in body
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def error_of(fn, *args) -> ActionError:
    with pytest.raises(ActionError) as caught:
        fn(*args)
    return caught.value


@pytest.mark.parametrize(
    "vector",
    [
        v
        for v in json.loads((VECTORS / "hkdf_sha256.json").read_text())["vectors"]
        if v["result"] == "valid" and not v["salt_hex"] and int(v["length"]) <= 255 * 32
    ],
    ids=lambda v: v["id"],
)
def test_the_independent_hkdf_helper_reproduces_the_empty_salt_vectors(vector):
    okm = hkdf(bytes.fromhex(vector["ikm_hex"]), bytes.fromhex(vector["info_hex"]), int(vector["length"]))
    assert okm.hex() == vector["okm_hex"]


# ---------------------------------------------------------------- registry


def test_registry_keys_equal_the_literal_tags_of_the_field_spec_union():
    union, *_ = get_args(FieldSpec)
    members = get_args(union)
    tags = set()
    for member in members:
        (tag,) = get_args(member.model_fields["action"].annotation)
        tags.add(tag)
    assert len(members) == len(tags) == 12
    assert set(REGISTRY) == tags
    assert {REGISTRY[get_args(m.model_fields["action"].annotation)[0]].params for m in members} == set(members)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_each_action_lives_in_the_module_of_its_name(name):
    module = importlib.import_module(f"veil.transforms.actions.{name}")
    action = REGISTRY[name]
    assert module.ACTION is action
    assert action.name == name
    assert action.params.__module__ == f"veil.transforms.actions.{name}"
    assert get_args(action.params.model_fields["action"].annotation) == (name,)


def test_the_registry_cannot_be_changed_at_runtime():
    with pytest.raises(TypeError):
        REGISTRY["evil"] = REGISTRY["keep"]  # type: ignore[index]


# ---------------------------------------------------------------- keep / drop / redact / replace


@pytest.mark.parametrize("value", ["text", 0, 3.5, True, date(2024, 1, 2), ["a", "b"], ""])
def test_keep_returns_the_value_itself(value):
    assert bind({"action": "keep"})(value) is value


def test_drop_has_no_function_and_no_output_type():
    action = REGISTRY["drop"]
    assert action.bind is None
    assert action.output_type(params({"action": "drop"}), pa.string()) is None


@pytest.mark.parametrize("value", ["secret", 42, 2.5, False, date(2024, 1, 2)])
def test_redact_nulls_every_value_and_keeps_the_type(value):
    assert bind({"action": "redact"})(value) is None
    assert REGISTRY["redact"].output_type(params({"action": "redact"}), pa.int32()) == pa.int32()


@pytest.mark.parametrize(
    ("constant", "arrow_type"), [("REDACTED", pa.string()), (0, pa.int64()), (1.5, pa.float64()), (True, pa.bool_())]
)
def test_replace_gives_its_constant_with_its_type(constant, arrow_type):
    fn = bind({"action": "replace", "value": constant})
    assert fn("anything") == constant and type(fn(7)) is type(constant)
    assert REGISTRY["replace"].output_type(params({"action": "replace", "value": constant}), pa.string()) == arrow_type


def test_replace_with_null_keeps_the_input_type():
    spec = {"action": "replace", "value": None}
    assert bind(spec)("x") is None
    assert REGISTRY["replace"].output_type(params(spec), pa.date32()) == pa.date32()


# ---------------------------------------------------------------- generalize: bins


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (-1, "<0"),
        (0, "0-17"),
        (17, "0-17"),
        (17.9, "0-17"),
        (18, "18-64"),
        (64, "18-64"),
        (65, "65+"),
        (1000, "65+"),
        (-0.5, "<0"),
    ],
)
def test_bins_with_integer_edges(value, label):
    assert bind({"action": "generalize", "bins": [0, 18, 65]})(value) == label


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (-0.1, "<0.0"),
        (0.0, "[0.0, 1.5)"),
        (1.49, "[0.0, 1.5)"),
        (1.5, "[1.5, 3.0)"),
        (2, "[1.5, 3.0)"),
        (3.0, "3.0+"),
        (99, "3.0+"),
    ],
)
def test_bins_with_float_edges(value, label):
    assert bind({"action": "generalize", "bins": [0.0, 1.5, 3.0]})(value) == label


def test_bins_with_mixed_edges_use_the_half_open_label_where_an_edge_is_a_float():
    fn = bind({"action": "generalize", "bins": [0, 10, 12.5, 20]})
    assert [fn(v) for v in (5, 10, 12.5, 19.99)] == ["0-9", "[10, 12.5)", "[12.5, 20)", "[12.5, 20)"]


def test_a_single_bin_edge_splits_below_and_above():
    fn = bind({"action": "generalize", "bins": [100]})
    assert (fn(99), fn(100)) == ("<100", "100+")


@pytest.mark.parametrize("value", [True, [1], date(2024, 1, 1)])
def test_bins_refuse_non_numbers(value):
    assert error_of(bind({"action": "generalize", "bins": [0, 10]}), value).code is ErrorCode.WRONG_TYPE


def test_number_generalizations_parse_text_as_a_csv_holds_it():
    bins = bind({"action": "generalize", "bins": [0, 10]})
    assert [bins(v) for v in ("12", " 5 ", "-1", "9.5", "1e1")] == ["10+", "0-9", "<0", "0-9", "10+"]
    width = bind({"action": "generalize", "width": 10})
    assert [width(v) for v in ("01234", "1234.5", "-1")] == [1230, 1230, -10]
    assert all(type(width(v)) is int for v in ("01234", "1234.5"))  # int64 bounds for an int width
    assert bind({"action": "generalize", "round": -2})("1234") == 1200


@pytest.mark.parametrize("text", ["twelve", "", "1,000", "nan", "inf", "0x10", "12abc"])
def test_number_generalizations_refuse_text_that_is_no_number_without_showing_it(text):
    for params in ({"bins": [0, 10]}, {"width": 10}, {"round": 1}):
        error = error_of(bind({"action": "generalize", **params}), text)
        assert error.code is ErrorCode.NOT_A_NUMBER
        assert text not in str(error) or not text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_bins_refuse_non_finite_numbers(value):
    assert error_of(bind({"action": "generalize", "bins": [0, 10]}), value).code is ErrorCode.NOT_FINITE


# ---------------------------------------------------------------- generalize: age_bins + at

AGE = {"action": "generalize", "age_bins": [0, 18, 25, 35, 50, 65], "at": "2026-01-01"}


@pytest.mark.parametrize(
    ("birth", "label"),
    [
        (date(2008, 1, 1), "18-24"),  # 18th birthday on the day of `at`
        (date(2008, 1, 2), "0-17"),  # one day short of 18
        (date(2007, 12, 31), "18-24"),
        (date(2001, 1, 1), "25-34"),
        (date(2001, 1, 2), "18-24"),
        (date(1961, 1, 1), "65+"),
        (date(1961, 1, 2), "50-64"),
        (date(2025, 12, 31), "0-17"),
        (date(2026, 1, 2), "<0"),  # born after `at`
        (datetime(1990, 6, 1, 23, 59), "35-49"),
        ("1990-06-01", "35-49"),
        ("2008-01-01T00:00:00", "18-24"),
    ],
)
def test_age_bins_count_completed_years_at_the_reference_date(birth, label):
    assert bind(AGE)(birth) == label


def test_age_bins_leap_day_birthday_is_completed_on_march_first_of_a_common_year():
    spec = {"action": "generalize", "age_bins": [0, 18], "at": "2026-02-28"}
    assert bind(spec)(date(2008, 2, 29)) == "0-17"
    assert bind({**spec, "at": "2026-03-01"})(date(2008, 2, 29)) == "18+"
    assert bind({**spec, "at": "2024-02-29"})(date(2006, 2, 28)) == "18+"


@pytest.mark.parametrize("value", [1990, 35.0, True])
def test_age_bins_refuse_numbers(value):
    assert error_of(bind(AGE), value).code is ErrorCode.WRONG_TYPE


@pytest.mark.parametrize("value", ["2024-02-30", "not a date", "", "1990/06/01", "2024-13-01"])
def test_age_bins_refuse_strings_that_are_not_dates(value):
    assert error_of(bind(AGE), value).code is ErrorCode.INVALID_DATE


# ---------------------------------------------------------------- generalize: width


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), (9, 0), (10, 10), (25, 20), (-1, -10), (-10, -10), (123456, 123450)]
)
def test_width_int_buckets_ints_to_their_lower_bound(value, expected):
    out = bind({"action": "generalize", "width": 10})(value)
    assert out == expected and type(out) is int


@pytest.mark.parametrize(("value", "expected"), [(0, 0.0), (2.4, 0.0), (2.5, 2.5), (6, 5.0), (7.49, 5.0), (-0.1, -2.5)])
def test_width_float_buckets_to_multiples_of_the_width(value, expected):
    assert bind({"action": "generalize", "width": 2.5})(value) == pytest.approx(expected)


def test_width_int_over_floats_gives_the_bucket_as_a_number():
    fn = bind({"action": "generalize", "width": 10000})
    assert fn(54321.99) == 50000 and fn(-0.01) == -10000
    assert type(fn(54321.99)) is float  # the bucket keeps the value's type


def test_width_over_decimals_buckets_their_value():
    assert bind({"action": "generalize", "width": 10})(Decimal("25.5")) == 20


def test_width_bucket_past_the_float_range_is_a_field_error_not_a_crash():
    error = error_of(bind({"action": "generalize", "width": 0.001}), 1e308)
    assert error.code is ErrorCode.NOT_FINITE


@pytest.mark.parametrize("value", [True, date(2024, 1, 1)])
def test_width_refuses_non_numbers(value):
    error = error_of(bind({"action": "generalize", "width": 10}), value)
    assert error.code is ErrorCode.WRONG_TYPE
    if value:
        assert str(value) not in str(error)


def test_width_output_type_follows_the_input_and_the_width():
    integer, floating = params({"action": "generalize", "width": 10}), params({"action": "generalize", "width": 0.5})
    out = REGISTRY["generalize"].output_type
    assert out(integer, pa.int32()) == pa.int64()  # widened: a bucket bound may not fit a narrow type
    assert out(integer, pa.float32()) == pa.float64()
    assert out(floating, pa.int64()) == pa.float64()


# ---------------------------------------------------------------- generalize: date

DAY = date(2024, 5, 17)  # a Friday


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("year", date(2024, 1, 1)),
        ("quarter", date(2024, 4, 1)),
        ("month", date(2024, 5, 1)),
        ("week", date(2024, 5, 13)),
    ],
)
@pytest.mark.parametrize(
    "value", [DAY, datetime(2024, 5, 17, 23, 59, 59), "2024-05-17", "2024-05-17T08:30:00", " 2024-05-17 "]
)
def test_date_periods_from_dates_datetimes_and_iso_strings(period, expected, value):
    out = bind({"action": "generalize", "date": period})(value)
    assert out == expected and type(out) is date


@pytest.mark.parametrize(
    ("value", "period", "expected"),
    [
        (date(2024, 3, 31), "quarter", date(2024, 1, 1)),
        (date(2024, 7, 1), "quarter", date(2024, 7, 1)),
        (date(2024, 12, 31), "quarter", date(2024, 10, 1)),
        (date(2025, 1, 1), "week", date(2024, 12, 30)),  # ISO week starting in the previous year
        (date(2024, 5, 13), "week", date(2024, 5, 13)),  # a Monday is its own week start
        (date(2024, 5, 19), "week", date(2024, 5, 13)),  # Sunday belongs to the week before
        (date(2024, 2, 29), "month", date(2024, 2, 1)),
    ],
)
def test_date_period_boundaries(value, period, expected):
    assert bind({"action": "generalize", "date": period})(value) == expected


@pytest.mark.parametrize("value", ["2024-02-30", "not a date", "", "   ", "2024-5-17", "17/05/2024"])
def test_date_refuses_invalid_dates(value):
    error = error_of(bind({"action": "generalize", "date": "month"}), value)
    assert error.code is ErrorCode.INVALID_DATE
    if value.strip():
        assert value not in str(error)


@pytest.mark.parametrize("value", [20240517, 2024.5, True])
def test_date_refuses_numbers(value):
    assert error_of(bind({"action": "generalize", "date": "year"}), value).code is ErrorCode.WRONG_TYPE


# ---------------------------------------------------------------- generalize: prefix / map / round


@pytest.mark.parametrize(
    ("value", "expected"),
    [("94110", "941"), (94110, "941"), ("ab", "ab"), ("", ""), ("Zürich", "Zür"), ("東京都港区", "東京都")],
)
def test_prefix_keeps_the_first_characters(value, expected):
    assert bind({"action": "generalize", "prefix": 3})(value) == expected


@pytest.mark.parametrize("value", [941.1, True, date(2024, 1, 1)])
def test_prefix_refuses_other_types(value):
    assert error_of(bind({"action": "generalize", "prefix": 3}), value).code is ErrorCode.WRONG_TYPE


MAP = {"action": "generalize", "map": {"M": "male", "F": "female", "7": "seven", 3: "three"}}


def test_map_relabels_and_falls_back_to_the_text_of_a_non_string():
    fn = bind(MAP)
    assert [fn("M"), fn("F"), fn(3), fn(7)] == ["male", "female", "three", "seven"]


@pytest.mark.parametrize("value", ["X", "m", "", 4, "3"])
def test_map_without_other_refuses_unmapped_values(value):
    assert error_of(bind(MAP), value).code is ErrorCode.UNMAPPED


def test_map_with_other_labels_every_unmapped_value():
    fn = bind({**MAP, "other": "other"})
    assert [fn("M"), fn("X"), fn(""), fn(4)] == ["male", "other", "other", "other"]


@pytest.mark.parametrize(
    ("digits", "value", "expected"),
    [
        (1, 1.26, 1.3),
        (0, 2.6, 3.0),
        (2, 3.14159, 3.14),
        (-1, 1234, 1230),
        (-2, 1234, 1200),
        (-3, 987654, 988000),
        (-1, 1234.5, 1230.0),
        (2, 7, 7),
    ],
)
def test_round_to_decimals_including_negative(digits, value, expected):
    out = bind({"action": "generalize", "round": digits})(value)
    assert out == pytest.approx(expected)
    assert type(out) is type(value)


@pytest.mark.parametrize("value, code", [("one", ErrorCode.NOT_A_NUMBER), (True, ErrorCode.WRONG_TYPE)])
def test_round_refuses_non_numbers(value, code):
    assert error_of(bind({"action": "generalize", "round": 1}), value).code is code


@pytest.mark.parametrize(
    "spec",
    [
        {},  # no variant
        {"width": 10, "prefix": 2},  # two variants
        {"bins": [0, 10, 10]},  # not strictly increasing
        {"bins": []},
        {"age_bins": [0, 18]},  # no `at`
        {"width": 10, "at": "2026-01-01"},  # `at` without age_bins
        {"width": 0},
        {"prefix": 0},
        {"date": "day"},
        {"width": 10, "other": "x"},  # `other` without map
        {"map": {}},
        {"width": float("inf")},  # YAML .inf
        {"bins": [0, float("nan")]},  # YAML .nan: not even comparable
        {"bins": [float("-inf"), 0]},
    ],
)
def test_invalid_generalize_params_are_rejected(spec):
    with pytest.raises(ValidationError):
        params({"action": "generalize", **spec})


# ---------------------------------------------------------------- mask


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ({"keep_last": 4}, "4111111111111111", "************1111"),
        ({"keep_first": 2, "keep_last": 2}, "abcdef", "ab**ef"),
        ({"keep_first": 1, "char": "#"}, "secret", "s#####"),
        ({}, "secret", "******"),
        ({"keep_last": 2}, 5551234, "*****34"),
        ({"keep_first": 2, "keep_last": 2}, "abcd", "****"),  # nothing would stay masked: mask it all
        ({"keep_first": 2, "keep_last": 2}, "abc", "***"),
        ({"keep_last": 10}, "abc", "***"),
        ({"keep_last": 2}, "", ""),
        ({"keep_first": 1, "keep_last": 1}, "Zoë Ünïcødé", "Z*********é"),
        ({"keep_last": 1}, "東京都港区", "****区"),
    ],
)
def test_mask(spec, value, expected):
    out = bind({"action": "mask", **spec})(value)
    assert out == expected
    assert len(out) == len(str(value))


@pytest.mark.parametrize("value", [3.14, True, date(2024, 1, 1), b"bytes"])
def test_mask_refuses_other_types(value):
    assert error_of(bind({"action": "mask", "keep_last": 2}), value).code is ErrorCode.WRONG_TYPE


@pytest.mark.parametrize("char", ["", "**"])
def test_mask_char_is_one_character(char):
    with pytest.raises(ValidationError):
        params({"action": "mask", "char": char})


# ---------------------------------------------------------------- pseudonymize


def expected_pseudonym(text: str, *, purpose=PURPOSE, domain="f", version=1) -> bytes:
    return hmac_digest(f"veil/v1/pseudonymize/{purpose}/{domain}", text, version)


@pytest.mark.parametrize(
    ("encoding", "encode", "size"),
    [
        ("hex", lambda d: d.hex(), 64),
        ("base32", lambda d: base64.b32encode(d).decode().rstrip("=").lower(), 52),
        ("base64url", lambda d: base64.urlsafe_b64encode(d).decode().rstrip("="), 43),
    ],
)
def test_pseudonymize_is_the_keyed_hmac_in_each_encoding(encoding, encode, size):
    fn = bind({"action": "pseudonymize", "encoding": encoding})
    out = fn("jane@example.org")
    assert out == encode(expected_pseudonym("jane@example.org"))
    assert len(out) == size and "=" not in out


@pytest.mark.parametrize(
    ("encoding", "length"), [("hex", 16), ("hex", 40), ("base32", 13), ("base64url", 11), ("hex", 64)]
)
def test_pseudonymize_length_is_a_prefix_of_the_full_encoding(encoding, length):
    full = bind({"action": "pseudonymize", "encoding": encoding})("jane@example.org")
    short = bind({"action": "pseudonymize", "encoding": encoding, "length": length})("jane@example.org")
    assert short == full[:length] and len(short) == length


@pytest.mark.parametrize(
    ("encoding", "length"),
    [("hex", 15), ("base32", 12), ("base64url", 10), ("hex", 1), ("hex", 65), ("base32", 53), ("base64url", 44)],
)
def test_pseudonymize_length_below_64_bits_or_past_the_digest_is_rejected(encoding, length):
    with pytest.raises(ValidationError, match="64 bits"):
        params({"action": "pseudonymize", "encoding": encoding, "length": length})


def test_pseudonymize_normalization_makes_equal_looking_inputs_equal():
    fn = bind({"action": "pseudonymize", "normalize": ["strip", "lower"]})
    assert fn(" A@x ") == fn("a@x") == fn("A@X") == expected_pseudonym("a@x").hex()
    plain = bind({"action": "pseudonymize"})
    assert plain(" A@x ") != plain("a@x")


def test_pseudonymize_an_int_equals_its_decimal_string():
    fn = bind({"action": "pseudonymize"})
    assert fn(12345) == fn("12345") == expected_pseudonym("12345").hex()
    assert fn(-7) == fn("-7")


def test_pseudonymize_domain_separates_and_defaults_to_the_field():
    value = "jane@example.org"
    email = bind({"action": "pseudonymize"}, field="email")(value)
    as_domain = bind({"action": "pseudonymize", "domain": "email"}, field="contact")(value)
    other_domain = bind({"action": "pseudonymize", "domain": "customer"}, field="email")(value)
    assert email == as_domain
    assert other_domain != email
    assert other_domain == expected_pseudonym(value, domain="customer").hex()


def test_pseudonymize_purpose_separates():
    spec = {"action": "pseudonymize", "domain": "customer"}
    a, b = bind(spec, purpose="analytics")("c-1"), bind(spec, purpose="marketing")("c-1")
    assert a != b
    assert b == expected_pseudonym("c-1", purpose="marketing", domain="customer").hex()


def test_pseudonymize_key_version_separates():
    ring = fake_keyring(versions=2)
    spec = {"action": "pseudonymize"}
    v1, v2 = bind(spec, keyring=ring, version=1)("c-1"), bind(spec, keyring=ring, version=2)("c-1")
    assert v1 != v2
    assert v1 == bind(spec, keyring=fake_keyring(1), version=1)("c-1")
    assert v2 == expected_pseudonym("c-1", version=2).hex()


def test_pseudonymize_empty_and_unicode_strings():
    fn = bind({"action": "pseudonymize"})
    assert fn("") == fn("") == expected_pseudonym("").hex()
    assert fn("Zoë") == expected_pseudonym("Zoë").hex() != fn("Zoe")


@pytest.mark.parametrize("value", [3.5, True, b"bytes", ["a"], date(2024, 1, 1)])
def test_pseudonymize_refuses_other_types(value):
    assert error_of(bind({"action": "pseudonymize"}), value).code is ErrorCode.WRONG_TYPE


def test_pseudonymize_key_info_is_the_documented_string():
    assert pseudonymize.key_info("analytics", "customer") == "veil/v1/pseudonymize/analytics/customer"


# ---------------------------------------------------------------- tokenize (siv)


def siv_decrypt(token: str, *, purpose=PURPOSE, domain="f", version=1) -> str:
    info = tokenize.key_info(purpose, domain)
    return (
        KEYRING.daead(info, version)
        .decrypt_deterministically(token_payload(token, version), info.encode())
        .decode("utf-8")
    )


@pytest.mark.parametrize("value", ["jane@example.org", "", "Zoë 東京 👍🏽"])
def test_tokenize_siv_is_deterministic_versioned_and_decrypts_back(value):
    fn = bind({"action": "tokenize", "method": "siv"})
    token = fn(value)
    assert token == fn(value) == bind({"action": "tokenize"})(value)
    assert token.startswith("v1.")
    assert siv_decrypt(token) == value


def test_tokenize_siv_is_aes_siv_under_the_derived_key_with_the_info_as_associated_data():
    info = tokenize.key_info(PURPOSE, "email")
    assert info == "veil/v1/tokenize-siv/analytics/email"
    expected = AESSIV(hkdf(root(1), info.encode(), 64)).encrypt(b"jane@example.org", [info.encode()])
    assert token_payload(bind({"action": "tokenize"}, field="email")("jane@example.org")) == expected


def test_tokenize_normalizes_before_encrypting():
    fn = bind({"action": "tokenize", "normalize": ["strip", "lower"]})
    assert fn(" Jane@Example.ORG ") == fn("jane@example.org")
    assert siv_decrypt(fn(" Jane@Example.ORG ")) == "jane@example.org"


def test_tokenize_domain_purpose_and_version_separate():
    value = "jane@example.org"
    base = bind({"action": "tokenize", "domain": "email"})(value)
    assert bind({"action": "tokenize", "domain": "contact"})(value) != base
    assert bind({"action": "tokenize", "domain": "email"}, purpose="marketing")(value) != base
    v2 = bind({"action": "tokenize", "domain": "email"}, keyring=fake_keyring(2), version=2)(value)
    assert v2.startswith("v2.")
    with pytest.raises(IntegrityError):
        siv_decrypt(base, domain="contact")


@pytest.mark.parametrize("value", [12345, 1.5, True, b"x"])
def test_tokenize_refuses_non_strings(value):
    error = error_of(bind({"action": "tokenize"}), value)
    assert error.code is ErrorCode.WRONG_TYPE
    assert str(value) not in str(error)


FF1_CARD = {"action": "tokenize", "method": "ff1", "alphabet": "digits", "keep_last": 4}


def _reverse(spec: dict[str, Any], *, purpose: str = PURPOSE, field: str = "f", version: int = 1):
    return REGISTRY["tokenize"].reverse(params(spec), BindContext(purpose, field, KEYRING, version))


def test_ff1_keeps_the_format_and_the_last_four_and_reverses():
    card = "4111-1111-1111-1234"
    token = bind(FF1_CARD)(card)
    assert token != card and len(token) == len(card)
    assert token[4] == token[9] == token[14] == "-" and token.endswith("-1234")
    assert token.replace("-", "").isdigit()
    assert bind(FF1_CARD)(card) == token  # deterministic
    assert _reverse(FF1_CARD)(token) == card
    assert bind(FF1_CARD, purpose="billing")(card) != token  # purposes are unlinkable


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ({"action": "tokenize", "method": "ff1"}, "12345"),  # 10**5 < one million
        ({"action": "tokenize", "method": "ff1", "alphabet": "alnum"}, "ab-c"),  # 62**3 < one million
        ({**FF1_CARD, "keep_first": 6}, "4111-1111-12"),  # what is left between the kept digits is short
    ],
)
def test_ff1_refuses_values_too_short_to_encrypt_safely(spec, value):
    with pytest.raises(ActionError) as raised:
        bind(spec)(value)
    assert raised.value.code is ErrorCode.TOO_SHORT and value not in str(raised.value)


def test_ff1_over_custom_and_named_alphabets_stays_in_the_alphabet():
    for alphabet in ("alnum", "lower", "ACGT"):
        spec = {"action": "tokenize", "method": "ff1", "alphabet": alphabet}
        chars = {"alnum": string.ascii_letters + string.digits, "lower": string.ascii_lowercase}.get(alphabet, alphabet)
        value = "".join(chars[i % len(chars)] for i in range(7, 19)) + " x!"
        token = bind(spec)(value)
        assert len(token) == len(value) and all((t in chars) == (v in chars) for t, v in zip(token, value)), (
            "characters outside the alphabet stay in place"
        )
        assert _reverse(spec)(token) == value


def test_ff1_settings_are_checked():
    with pytest.raises(ValidationError, match="for method: ff1"):
        params({"action": "tokenize", "keep_last": 4})
    with pytest.raises(ValidationError, match="distinct characters"):
        params({"action": "tokenize", "method": "ff1", "alphabet": "aab"})


# ---------------------------------------------------------------- encrypt


def test_encrypt_is_randomised_and_decrypts_back():
    fn = bind({"action": "encrypt"}, field="notes")
    one, two = fn("call me back"), fn("call me back")
    assert one != two
    assert one.startswith("v1.") and two.startswith("v1.")
    aead = KEYRING.aead(encrypt.key_info(PURPOSE), 1)
    for token in (one, two):
        assert aead.decrypt(token_payload(token), encrypt.associated_data(PURPOSE, "notes")) == b"call me back"


def test_encrypt_is_aes_gcm_under_the_derived_key_bound_to_purpose_and_field():
    sealed = token_payload(bind({"action": "encrypt"}, field="notes")("Zoë 👍🏽"))
    key = hkdf(root(1), b"veil/v1/encrypt/analytics", 32)
    plain = AESGCM(key).decrypt(sealed[:12], sealed[12:], b"veil/v1/encrypt/analytics/notes")
    assert plain.decode("utf-8") == "Zoë 👍🏽"
    assert len(sealed) == 12 + len(plain) + 16


def test_encrypt_binding_to_another_field_or_purpose_fails_integrity():
    sealed = token_payload(bind({"action": "encrypt"}, field="notes")("secret"))
    aead = KEYRING.aead(encrypt.key_info(PURPOSE), 1)
    with pytest.raises(IntegrityError):
        aead.decrypt(sealed, encrypt.associated_data(PURPOSE, "comments"))
    with pytest.raises(IntegrityError):
        aead.decrypt(sealed, encrypt.associated_data("marketing", "notes"))
    with pytest.raises(IntegrityError):
        KEYRING.aead(encrypt.key_info("marketing"), 1).decrypt(sealed, encrypt.associated_data(PURPOSE, "notes"))
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(IntegrityError):
        aead.decrypt(tampered, encrypt.associated_data(PURPOSE, "notes"))


def test_encrypt_empty_string_round_trips():
    sealed = token_payload(bind({"action": "encrypt"}, field="notes")(""))
    aead = KEYRING.aead(encrypt.key_info(PURPOSE), 1)
    assert aead.decrypt(sealed, encrypt.associated_data(PURPOSE, "notes")) == b""


@pytest.mark.parametrize("value", [42, 1.5, True, date(2024, 1, 1)])
def test_encrypt_refuses_non_strings(value):
    assert error_of(bind({"action": "encrypt"}), value).code is ErrorCode.WRONG_TYPE


# ---------------------------------------------------------------- date_shift


def expected_offset(subject: str, max_days: int, purpose: str = PURPOSE) -> int:
    digest = hmac_digest(f"veil/v1/date_shift/{purpose}", subject)
    return int.from_bytes(digest[:8], "big") % (2 * max_days + 1) - max_days


def test_date_shift_uses_one_offset_per_subject_across_fields():
    spec = {"action": "date_shift", "max_days": 30}
    birth, signup = bind(spec, field="birth_date"), bind(spec, field="signup_date")
    for subject in ("c-1", "c-2", "c-3", 12345):
        offset = expected_offset(str(subject), 30)
        assert (birth(date(1990, 6, 1), subject) - date(1990, 6, 1)).days == offset
        assert (signup(date(2024, 2, 28), subject) - date(2024, 2, 28)).days == offset
    assert birth(date(2000, 1, 1), 12345) == birth(date(2000, 1, 1), "12345")


def test_date_shift_offsets_stay_within_max_days_and_vary():
    fn = bind({"action": "date_shift", "max_days": 5})
    offsets = [(fn(date(2024, 1, 1), f"c-{i}") - date(2024, 1, 1)).days for i in range(300)]
    assert all(-5 <= d <= 5 for d in offsets)
    assert set(offsets) == set(range(-5, 6))  # 300 subjects reach all 11 offsets


def test_date_shift_keeps_the_form_of_its_input():
    fn = bind({"action": "date_shift", "max_days": 30})
    offset = expected_offset("c-1", 30)
    shifted = date(2024, 1, 10).toordinal() + offset
    assert fn("2024-01-10", "c-1") == date.fromordinal(shifted).isoformat()
    assert fn(" 2024-01-10 ", "c-1") == date.fromordinal(shifted).isoformat()
    out = fn("2024-01-10T08:30:00", "c-1")
    assert (
        out == datetime.combine(date.fromordinal(shifted), datetime.min.time()).replace(hour=8, minute=30).isoformat()
    )
    moved = fn(datetime(2024, 1, 10, 8, 30), "c-1")
    assert type(moved) is datetime and (moved - datetime(2024, 1, 10, 8, 30)).days == offset


def test_date_shift_purpose_separates():
    spec = {"action": "date_shift", "max_days": 3650}
    a = bind(spec, purpose="analytics")(date(2024, 1, 1), "c-1")
    b = bind(spec, purpose="marketing")(date(2024, 1, 1), "c-1")
    assert a != b
    assert (b - date(2024, 1, 1)).days == expected_offset("c-1", 3650, "marketing")


def test_date_shift_without_a_subject_is_a_no_subject_error():
    assert error_of(bind({"action": "date_shift", "max_days": 30}), date(2024, 1, 1), None).code is ErrorCode.NO_SUBJECT


@pytest.mark.parametrize("value", ["2024-02-30", "not a date", ""])
def test_date_shift_refuses_invalid_dates(value):
    assert error_of(bind({"action": "date_shift", "max_days": 30}), value, "c-1").code is ErrorCode.INVALID_DATE


def test_date_shift_past_the_calendar_is_a_field_error_not_a_crash():
    fn = bind({"action": "date_shift", "max_days": 36500})
    for subject in ("c-1", "c-2", "c-3", "c-4"):
        offset = expected_offset(subject, 36500)
        edge = date.max if offset > 0 else date.min
        assert error_of(fn, edge, subject).code is ErrorCode.INVALID_DATE


@pytest.mark.parametrize("value", [20240101, 1.5, True])
def test_date_shift_refuses_numbers(value):
    assert error_of(bind({"action": "date_shift", "max_days": 30}), value, "c-1").code is ErrorCode.WRONG_TYPE


@pytest.mark.parametrize("max_days", [0, -1, 36501])
def test_date_shift_max_days_is_bounded(max_days):
    with pytest.raises(ValidationError):
        params({"action": "date_shift", "max_days": max_days})


def test_date_shift_key_info():
    assert date_shift.key_info("analytics") == "veil/v1/date_shift/analytics"


# ---------------------------------------------------------------- fake


def test_fake_is_consistent_and_plausible():
    spec = {"action": "fake", "provider": "first_name"}
    fn, again = bind(spec), bind(spec)
    names = [fn(f"person-{i}") for i in range(40)]
    assert names == [again(f"person-{i}") for i in range(40)]
    assert all(isinstance(n, str) and n and n[0].isupper() and n.replace("-", "").isalpha() for n in names)
    assert len(set(names)) > 20


def test_fake_email_looks_like_an_email_and_depends_on_the_value():
    fn = bind({"action": "fake", "provider": "email"})
    out = fn("jane@example.org")
    assert "@" in out and out != "jane@example.org"
    assert fn("jane@example.org") == out
    assert len({fn(f"user{i}@example.org") for i in range(20)}) > 10


def test_fake_purpose_separates():
    spec = {"action": "fake", "provider": "last_name"}
    a, b = bind(spec, purpose="analytics"), bind(spec, purpose="marketing")
    assert [a(f"p{i}") for i in range(10)] != [b(f"p{i}") for i in range(10)]


def test_fake_seed_is_the_documented_keyed_hash():
    from faker import Faker

    info = fake.key_info(PURPOSE, "city")
    assert info == "veil/v1/fake/analytics/city"
    faker = Faker("en_US")
    faker.seed_instance(int.from_bytes(hmac_digest(info, "Springfield")[:8], "big"))
    assert bind({"action": "fake", "provider": "city"})("Springfield") == faker.city()


@pytest.mark.parametrize(
    "spec",
    [
        {"provider": "no_such_provider"},
        {"provider": "First-Name"},
        {"provider": "name", "locale": "xx_YY"},
        {"provider": "name", "locale": "EN"},
    ],
)
def test_fake_unknown_provider_or_locale_is_rejected_at_validation(spec):
    with pytest.raises(ValidationError):
        params({"action": "fake", **spec})


def test_fake_unknown_provider_is_a_config_error_in_a_policy():
    yaml = "version: 1\npurpose: analytics\nfields:\n  name: {action: fake, provider: no_such_provider}\n"
    with pytest.raises(ConfigError, match="no provider 'no_such_provider'"):
        parse_policy(yaml)


# ---------------------------------------------------------------- errors carry codes, never values

SECRET = "jane.doe+secret@example.org"


@pytest.mark.parametrize(
    ("spec", "value", "code"),
    [
        ({"action": "generalize", "width": 10}, SECRET, ErrorCode.NOT_A_NUMBER),
        ({"action": "generalize", "bins": [0, 10]}, SECRET, ErrorCode.NOT_A_NUMBER),
        ({"action": "generalize", "round": 0}, SECRET, ErrorCode.NOT_A_NUMBER),
        ({"action": "generalize", "date": "month"}, SECRET, ErrorCode.INVALID_DATE),
        ({"action": "generalize", **{k: v for k, v in AGE.items() if k != "action"}}, SECRET, ErrorCode.INVALID_DATE),
        ({"action": "generalize", **{k: v for k, v in AGE.items() if k != "action"}}, 19870605, ErrorCode.WRONG_TYPE),
        ({"action": "generalize", "map": {"a": "b"}}, SECRET, ErrorCode.UNMAPPED),
        ({"action": "generalize", "prefix": 2}, 31415.9265, ErrorCode.WRONG_TYPE),
        ({"action": "tokenize"}, 4111111111111111, ErrorCode.WRONG_TYPE),
        ({"action": "encrypt"}, 4111111111111111, ErrorCode.WRONG_TYPE),
        ({"action": "pseudonymize"}, 31415.9265, ErrorCode.WRONG_TYPE),
        ({"action": "mask"}, 31415.9265, ErrorCode.WRONG_TYPE),
    ],
)
def test_action_errors_carry_the_code_but_not_the_value(spec, value, code):
    error = error_of(bind(spec), value)
    assert error.code is code
    assert str(value) not in str(error) and repr(value) not in repr(error)
    assert str(value) not in repr(error.args)


# ---------------------------------------------------------------- settings refused up front


@pytest.mark.parametrize("provider", ["seed_instance", "profile", "no_such_provider"])
def test_fake_refuses_providers_that_do_not_make_text(provider):
    with pytest.raises(ValidationError, match=provider):
        params({"action": "fake", "provider": provider})


def test_replace_refuses_an_integer_beyond_64_bits():
    with pytest.raises(ValidationError, match="64 bits"):
        params({"action": "replace", "value": 2**70})
    assert params({"action": "replace", "value": 2**63 - 1}).value == 2**63 - 1


def test_dictionary_encoded_strings_count_as_strings():
    from veil.transforms.actions.base import kind_of

    assert kind_of(pa.dictionary(pa.int32(), pa.string())) == "string"


@given(
    st.lists(
        st.one_of(st.none(), st.integers(), st.text(alphabet="0123456789-x ", max_size=24)),
        max_size=30,
    )
)
@settings(max_examples=60, deadline=None)
def test_ff1_column_function_equals_the_per_value_function(values):
    assert_column_equals_per_value(FF1_CARD, values)


# ---------------------------------------------------------------- column functions equal the per-value functions


def column_and_value_functions(spec: dict[str, Any], field: str = "f"):
    action, context = REGISTRY[spec["action"]], BindContext(PURPOSE, field, KEYRING, 1)
    return action.bind_column(params(spec), context), action.bind(params(spec), context)


def assert_column_equals_per_value(spec: dict[str, Any], values: list) -> None:
    column, per_value = column_and_value_functions(spec)
    expected, failed, first = per_value_outcome(per_value, values)
    out, column_failed, error = column(values)
    assert out == expected and column_failed == failed
    assert (error.code if error else None) is first


WRONG_TYPES = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.binary(max_size=6), st.booleans(), st.just(date(2024, 1, 2))
)
TEXTS = st.text(max_size=20)  # any code point but surrogates: non-ASCII, astral, "\0", empty
MIXED = st.lists(st.one_of(TEXTS, WRONG_TYPES, st.none()), max_size=30)
ALL_TEXT = st.lists(TEXTS, max_size=30)

PSEUDONYMIZE_SPECS = [
    {"action": "pseudonymize"},
    {"action": "pseudonymize", "normalize": ["strip", "lower"]},
    {"action": "pseudonymize", "length": 21},
    {"action": "pseudonymize", "encoding": "base32", "length": 20},
    {"action": "pseudonymize", "encoding": "base64url"},
]
SIV_SPECS = [{"action": "tokenize"}, {"action": "tokenize", "normalize": ["strip", "upper"]}]


@pytest.mark.parametrize("spec", PSEUDONYMIZE_SPECS + SIV_SPECS, ids=lambda s: json.dumps(s))
@given(values=st.one_of(MIXED, ALL_TEXT))
@settings(max_examples=40, deadline=None)
def test_keyed_column_functions_equal_the_per_value_functions(spec, values):
    assert_column_equals_per_value(spec, values)


@given(st.lists(st.one_of(st.integers(), st.text(max_size=8), st.floats(allow_nan=False)), max_size=20))
@settings(max_examples=40, deadline=None)
def test_pseudonymize_column_takes_ints_as_their_text(values):
    assert_column_equals_per_value({"action": "pseudonymize"}, values)


def test_a_column_of_nothing_is_nothing():
    for spec in [*PSEUDONYMIZE_SPECS, *SIV_SPECS, FF1_CARD, {"action": "encrypt"}]:
        assert column_and_value_functions(spec)[0]([]) == ([], [], None)


# ff1: values that share a length and layout (8 or more) are cut as arrays, the others one by one.
FF1_SPECS = [
    FF1_CARD,
    {**FF1_CARD, "keep_first": 2, "keep_last": 0, "normalize": ["strip"]},
    {"action": "tokenize", "method": "ff1", "alphabet": "alnum", "keep_last": 2, "normalize": ["upper"]},
    {"action": "tokenize", "method": "ff1", "alphabet": "ab{}\0é😀", "keep_first": 1},  # braces, NUL, astral
]
LAYOUTS = ["dddd-dddd-dddd-dddd", "dddddddddddd", "dd{d}dd ddd\0dd", "ddd.dd😀dd-dddd", "ddddd", "d"]


@st.composite
def ff1_values(draw, characters: str) -> str:
    """A value of one of a few layouts with random alphabet characters, so layouts repeat."""
    layout = draw(st.sampled_from(LAYOUTS))
    return "".join(draw(st.sampled_from(characters)) if ch == "d" else ch for ch in layout)


@pytest.mark.parametrize("spec", FF1_SPECS, ids=lambda s: json.dumps(s, ensure_ascii=True))
@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_ff1_column_function_equals_the_per_value_function_in_every_layout(spec, data):
    characters = params(spec).characters
    shaped = ff1_values(characters + "0x ")
    free = st.text(alphabet=characters + "-x é\0{", max_size=24)
    values = data.draw(
        st.one_of(
            st.lists(shaped, min_size=8, max_size=60),
            st.lists(st.one_of(shaped, shaped, free, WRONG_TYPES, st.none()), max_size=60),
        )
    )
    assert_column_equals_per_value(spec, values)


@pytest.mark.parametrize("spec", FF1_SPECS, ids=lambda s: json.dumps(s, ensure_ascii=True))
@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_ff1_column_inverse_equals_detokenize(spec, data):
    characters = params(spec).characters
    values = data.draw(st.lists(ff1_values(characters), min_size=1, max_size=40))
    column, per_value = column_and_value_functions(spec)
    tokens = [t for t in column(values)[0] if t is not None]
    inverse = tokenize._ff1(params(spec), BindContext(PURPOSE, "f", KEYRING, 1), 1, decrypt=True)[1]
    assert inverse(tokens)[0] == [_reverse(spec)(t) for t in tokens]


@pytest.mark.parametrize("short", [["12-34"], ["12-34"] * 8], ids=["alone", "a layout of its own"])
def test_ff1_column_inverse_refuses_a_column_with_a_value_that_is_no_token(short):
    inverse = tokenize._ff1(params(FF1_CARD), BindContext(PURPOSE, "f", KEYRING, 1), 1, decrypt=True)[1]
    with pytest.raises(IntegrityError):
        inverse(["4111-1111-1111-1111"] * 8 + short)


def test_ff1_column_with_several_layouts_of_one_length():
    digits = iter(str(i * 7919 % 10) for i in range(10_000))
    layouts = ["dd{d}dd ddd\0dd", "ddd.dd😀dd-dddd", "ddddd", "dddd-dddd-dddd-dddd"]  # the first two: 14 long
    values: list = [layouts[i % 4] for i in range(40)] + ["ddddddd-dddddd", "ddddddd-dddddd"]
    values = ["".join(next(digits) if ch == "d" else ch for ch in v) for v in values] + [12, None]
    for order in (values, values[::-1], values[::3] + values[1::3] + values[2::3]):
        assert_column_equals_per_value(FF1_CARD, order)


def test_ff1_a_value_with_fewer_characters_than_kept_is_too_short():
    value = "4111-1111-11"  # 10 digits, 12 kept: nothing left to encrypt
    spec = {**FF1_CARD, "keep_last": 12}
    assert error_of(bind(spec), value).code is ErrorCode.TOO_SHORT
    assert_column_equals_per_value(spec, [value] * 9 + [value + "1111"])


@given(st.lists(st.one_of(TEXTS, WRONG_TYPES, st.none()), max_size=30))
@settings(max_examples=60, deadline=None)
def test_encrypt_column_decrypts_to_the_values_and_refuses_what_encrypt_refuses(values):
    spec = {"action": "encrypt"}
    column, per_value = column_and_value_functions(spec, field="notes")
    expected, failed, first = per_value_outcome(per_value, values)
    out, column_failed, error = column(values)
    assert column_failed == failed and (error.code if error else None) is first
    decrypt = REGISTRY["encrypt"].reverse(params(spec), BindContext(PURPOSE, "notes", KEYRING, 1))
    protected = [None if e is None else v for v, e in zip(values, expected)]
    assert [None if o is None else decrypt(o) for o in out] == protected
    tokens = [o for o in out if o is not None]
    assert len(set(tokens)) == len(tokens)  # a fresh nonce each
    assert all(t.startswith("v1.") and "=" not in t for t in tokens)


def test_encrypt_per_subject_has_no_column_function():
    spec = params({"action": "encrypt", "per_subject": True})
    assert REGISTRY["encrypt"].bind_column(spec, BindContext(PURPOSE, "f", KEYRING, 1)) is None


@given(st.lists(st.binary(max_size=40), max_size=20), st.integers(1, 99))
@settings(max_examples=50, deadline=None)
def test_token_texts_equal_token_text_per_payload(payloads, version):
    assert action_base.token_texts(version, payloads) == [action_base.token_text(version, p) for p in payloads]


def test_text_column_reports_the_first_failure_in_column_order():
    def texts_fn(texts):
        return (
            [None if t == "bad" else t for t in texts],
            [i for i, t in enumerate(texts) if t == "bad"],
            (ActionError(ErrorCode.TOO_SHORT) if "bad" in texts else None),
        )

    column = action_base.text_column(action_base.require_text, texts_fn)
    out, failed, error = column(["a", 1, "bad", None])
    assert (out, failed, error.code) == (["a", None, None, None], [1, 2], ErrorCode.WRONG_TYPE)
    out, failed, error = column(["bad", 1, "a"])
    assert (out, failed, error.code) == ([None, None, "a"], [0, 1], ErrorCode.TOO_SHORT)
    out, failed, error = column([2.5, "bad"])
    assert (failed, error.code) == ([0, 1], ErrorCode.WRONG_TYPE)
