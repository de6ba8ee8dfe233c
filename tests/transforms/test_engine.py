"""The engine end to end: policy YAML -> Plan -> BoundPlan over Arrow batches and dict rows.

Covers `on_error` (null, drop_record, fail), the consent gate, output schemas, batch/rows
agreement, null pass-through, per-batch memoization and the no-leak property.
"""

import re
from datetime import date, datetime

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from veil.errors import ActionError, ConfigError, DataRefusedError, ErrorCode
from veil.keys.testing import fake_keyring
from veil.transforms.actions import encrypt
from veil.transforms.actions.base import BindContext
from veil.transforms.columns import has_consent, map_column
from veil.transforms.engine import BoundPlan
from veil.transforms.plan import compile_plan
from veil.transforms.policy import parse_policy
from veil.transforms.registry import REGISTRY

KEYRING = fake_keyring()
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def bound(yaml: str, schema: pa.Schema | None = None) -> BoundPlan:
    return BoundPlan(compile_plan(parse_policy(yaml), schema), KEYRING)


def bind(spec: dict, field: str = "f"):
    action = REGISTRY[spec["action"]]
    return action.bind(action.params.model_validate(spec), BindContext("analytics", field, KEYRING, 1))


# ---------------------------------------------------------------- on_error

ON_ERROR = """
version: 1
purpose: analytics
subject: customer_id
fields:
  customer_id: {{action: pseudonymize, domain: customer, as: customer_key}}
  signup: {{action: generalize, date: month, on_error: {mode}}}
  income: {{action: generalize, width: 10000, on_error: {mode}}}
  country: {{action: keep}}
"""
ON_ERROR_SCHEMA = pa.schema(
    [("customer_id", pa.string()), ("signup", pa.string()), ("income", pa.int64()), ("country", pa.string())]
)
BAD_DATE = "1987-02-30"
ROWS = [
    {"customer_id": "c-1", "signup": "2024-05-17", "income": 52000, "country": "NL"},
    {"customer_id": "c-2", "signup": BAD_DATE, "income": 12000, "country": "DE"},
    {"customer_id": "c-3", "signup": None, "income": None, "country": "FR"},
]


def on_error_plan(mode: str) -> BoundPlan:
    return bound(ON_ERROR.format(mode=mode), ON_ERROR_SCHEMA)


def batch_of(rows, schema=ON_ERROR_SCHEMA) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(rows, schema=schema)


@pytest.mark.parametrize("mode", ["null", "'null'"])  # YAML null and the string "null" mean the same
def test_on_error_null_nulls_the_field_and_counts_it(mode):
    plan = on_error_plan(mode)
    out, counts, _ = plan.apply_batch(batch_of(ROWS))
    rows = out.to_pylist()
    assert [r["signup"] for r in rows] == [date(2024, 5, 1), None, None]
    assert [r["income"] for r in rows] == [50000, 10000, None]
    assert [r["country"] for r in rows] == ["NL", "DE", "FR"]
    assert counts == {"read": 3, "written": 3, "field_errors.signup": 1}


def test_on_error_null_with_wrong_types_in_dict_rows():
    rows = [dict(ROWS[0], income="lots"), dict(ROWS[0], income=3.5)]
    out, counts, _ = on_error_plan("null").apply_records(rows)
    assert [r["income"] for r in out] == [None, 0]
    assert counts == {"read": 2, "written": 2, "field_errors.income": 1}


def test_on_error_drop_record_removes_the_record_and_counts_it():
    plan = on_error_plan("drop_record")
    out, counts, _ = plan.apply_batch(batch_of(ROWS))
    assert out.schema == plan.plan.output_schema
    assert [r["country"] for r in out.to_pylist()] == ["NL", "FR"]
    assert counts == {"read": 3, "written": 2, "dropped.field_error": 1, "field_errors.signup": 1}


def test_on_error_drop_record_counts_a_record_once_and_each_field_error():
    rows = [dict(ROWS[1], income="lots"), ROWS[0], dict(ROWS[0], income="more")]
    out, counts, _ = on_error_plan("drop_record").apply_records(rows)
    assert out == [
        {"customer_key": out[0]["customer_key"], "signup": date(2024, 5, 1), "income": 50000, "country": "NL"}
    ]
    assert counts == {
        "read": 3,
        "written": 1,
        "dropped.field_error": 2,
        "field_errors.signup": 1,
        "field_errors.income": 2,
    }


def test_on_error_fail_raises_naming_the_field_but_not_the_value():
    plan = on_error_plan("fail")
    with pytest.raises(DataRefusedError) as caught:
        plan.apply_batch(batch_of(ROWS))
    message = str(caught.value)
    assert "'signup'" in message and "generalize" in message and ErrorCode.INVALID_DATE.value in message
    assert BAD_DATE not in message and "c-2" not in message


def test_on_error_fail_on_a_wrong_type_in_dict_rows():
    with pytest.raises(DataRefusedError, match="'income'") as caught:
        on_error_plan("fail").apply_records([ROWS[0], dict(ROWS[0], income="jane.doe@example.org")])
    assert "jane.doe@example.org" not in str(caught.value)


def test_on_error_fail_passes_clean_data():
    out, counts, _ = on_error_plan("fail").apply_records([ROWS[0], ROWS[2]])
    assert len(out) == 2 and counts == {"read": 2, "written": 2}


def test_a_missing_subject_is_a_field_error_of_per_subject_actions():
    yaml = """
version: 1
purpose: analytics
subject: customer_id
fields:
  visit: {action: date_shift, max_days: 10}
"""
    out, counts, _ = bound(yaml).apply_records(
        [{"customer_id": None, "visit": date(2024, 1, 1)}, {"customer_id": "c-1", "visit": date(2024, 1, 1)}]
    )
    assert out[0]["visit"] is None and abs((out[1]["visit"] - date(2024, 1, 1)).days) <= 10
    assert counts["field_errors.visit"] == 1


# ---------------------------------------------------------------- consent gate

CONSENT = """
version: 1
purpose: analytics
subject: customer_id
consent: {field: consents}
fields:
  customer_id: {action: keep}
  signup: {action: generalize, date: month, on_error: fail}
"""


@pytest.mark.parametrize(
    ("consents", "allowed"),
    [
        (["analytics", "marketing"], True),
        (("analytics",), True),
        ("analytics;marketing", True),
        ("marketing, analytics", True),
        ("support|analytics", True),
        (" analytics ", True),
        ("analytics", True),
        (["marketing"], False),
        ("marketing", False),
        ("analyticsx", False),
        ("", False),
        ([], False),
        (None, False),
        (1, False),
    ],
)
def test_has_consent(consents, allowed):
    assert has_consent(consents, "analytics") is allowed


def test_consent_gate_drops_and_counts_records_without_consent_before_field_actions():
    rows = [
        {"customer_id": "c-1", "consents": ["analytics", "marketing"], "signup": "2024-05-17"},
        {"customer_id": "c-2", "consents": "analytics;marketing", "signup": "2024-06-02"},
        {"customer_id": "c-3", "consents": None, "signup": BAD_DATE},
        {"customer_id": "c-4", "consents": "", "signup": BAD_DATE},
        {"customer_id": "c-5", "consents": [], "signup": BAD_DATE},
        {"customer_id": "c-6", "consents": ["marketing"], "signup": BAD_DATE},
        {"customer_id": "c-7", "signup": BAD_DATE},
    ]
    out, counts, _ = bound(CONSENT).apply_records(rows)  # on_error: fail, yet the gated bad dates never raise
    assert out == [
        {"customer_id": "c-1", "signup": date(2024, 5, 1)},
        {"customer_id": "c-2", "signup": date(2024, 6, 1)},
    ]
    assert counts == {"read": 7, "written": 2, "dropped.no_consent": 5}


@pytest.mark.parametrize("consent_type", [pa.list_(pa.string()), pa.string()])
def test_consent_gate_over_arrow_batches(consent_type):
    schema = pa.schema([("customer_id", pa.string()), ("consents", consent_type), ("signup", pa.string())])
    listed = consent_type != pa.string()
    consents = [
        ["analytics"] if listed else "analytics",
        None,
        [] if listed else "",
        ["support"] if listed else "support",
        ["marketing", "analytics"] if listed else "marketing|analytics",
    ]
    batch = pa.RecordBatch.from_pydict(
        {
            "customer_id": ["c-1", "c-2", "c-3", "c-4", "c-5"],
            "consents": consents,
            "signup": ["2024-01-09", BAD_DATE, BAD_DATE, BAD_DATE, "2024-03-31"],
        },
        schema=schema,
    )
    plan = bound(CONSENT, schema)
    out, counts, _ = plan.apply_batch(batch)
    assert out.schema == plan.plan.output_schema
    assert out.to_pylist() == [
        {"customer_id": "c-1", "signup": date(2024, 1, 1)},
        {"customer_id": "c-5", "signup": date(2024, 3, 1)},
    ]
    assert counts == {"read": 5, "written": 2, "dropped.no_consent": 3}


# ---------------------------------------------------------------- every action, batch vs rows, nulls

ALL = """
version: 1
purpose: analytics
subject: customer_id
fields:
  customer_id: {action: pseudonymize, domain: customer, as: customer_key}
  email:       {action: tokenize, normalize: [strip, lower]}
  phone:       {action: mask, keep_last: 2}
  birth_date:  {action: generalize, age_bins: [0, 18, 25, 35, 50, 65], at: 2026-01-01, as: age_band}
  zip:         {action: generalize, prefix: 3}
  income:      {action: generalize, width: 10000}
  signup:      {action: generalize, date: month}
  score:       {action: generalize, bins: [0, 50, 100]}
  gender:      {action: generalize, map: {M: male, F: female}, other: other}
  lat:         {action: generalize, round: 1}
  visit:       {action: date_shift, max_days: 30}
  notes:       {action: encrypt}
  first_name:  {action: fake, provider: first_name}
  country:     {action: keep}
  ssn:         {action: redact}
  comment:     {action: replace, value: "[removed]"}
  remark:      {action: scrub}
  internal:    {action: drop}
"""
ALL_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("birth_date", pa.date32()),
        ("zip", pa.string()),
        ("income", pa.int64()),
        ("signup", pa.string()),
        ("score", pa.float64()),
        ("gender", pa.string()),
        ("lat", pa.float64()),
        ("visit", pa.date32()),
        ("notes", pa.string()),
        ("first_name", pa.string()),
        ("country", pa.string()),
        ("ssn", pa.string()),
        ("comment", pa.string()),
        ("remark", pa.string()),
        ("internal", pa.string()),
    ]
)
ALL_OUTPUT_SCHEMA = pa.schema(
    [
        ("customer_key", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("age_band", pa.string()),
        ("zip", pa.string()),
        ("income", pa.int64()),
        ("signup", pa.date32()),
        ("score", pa.string()),
        ("gender", pa.string()),
        ("lat", pa.float64()),
        ("visit", pa.date32()),
        ("notes", pa.string()),
        ("first_name", pa.string()),
        ("country", pa.string()),
        ("ssn", pa.string()),
        ("comment", pa.string()),
        ("remark", pa.string()),
    ]
)
ALL_ROWS = [
    {
        "customer_id": "c-1",
        "email": " Jane@Example.org",
        "phone": "+31 6 1234 5678",
        "birth_date": date(1990, 6, 1),
        "zip": "94110",
        "income": 52300,
        "signup": "2024-05-17",
        "score": 72.5,
        "gender": "F",
        "lat": 52.3702,
        "visit": date(2024, 3, 1),
        "notes": "prefers email",
        "first_name": "Jane",
        "country": "NL",
        "ssn": "123-45-6789",
        "comment": "hello",
        "remark": "call +31 6 1234 5678 or jane@example.org",
        "internal": "x",
    },
    {
        "customer_id": "c-2",
        "email": "bob@example.org",
        "phone": "0612",
        "birth_date": date(2010, 1, 1),
        "zip": "10001",
        "income": 9999,
        "signup": "2023-12-31T23:00:00",
        "score": -1.0,
        "gender": "X",
        "lat": -0.05,
        "visit": date(2024, 2, 29),
        "notes": "",
        "first_name": "Bob",
        "country": "US",
        "ssn": "987-65-4321",
        "comment": "",
        "internal": "y",
    },
    {
        "customer_id": "c-1",
        "email": "jane@example.org",
        "phone": "12",
        "birth_date": date(1950, 1, 1),
        "zip": "9",
        "income": 150000,
        "signup": "2024-01-01",
        "score": 100.0,
        "gender": "M",
        "lat": 0.0,
        "visit": date(2024, 3, 2),
        "notes": "Zoë 👍🏽",
        "first_name": "Jane",
        "country": "NL",
        "ssn": None,
        "comment": None,
        "internal": None,
    },
]


def test_every_action_is_covered_by_the_all_actions_policy():
    assert {spec.action for spec in parse_policy(ALL).fields.values()} == set(REGISTRY)


def test_output_schema_is_the_plans_and_the_expected_one():
    plan = bound(ALL, ALL_SCHEMA)
    assert plan.plan.output_schema == ALL_OUTPUT_SCHEMA
    assert plan.plan.dropped == ("internal",)
    out, counts, _ = plan.apply_batch(pa.RecordBatch.from_pylist(ALL_ROWS, schema=ALL_SCHEMA))
    assert out.schema == plan.plan.output_schema
    assert counts == {"read": 3, "written": 3, "scrubbed.remark.email": 1, "scrubbed.remark.phone": 1}


def test_apply_batch_and_apply_records_give_the_same_rows():
    plan = bound(ALL, ALL_SCHEMA)
    batch = pa.RecordBatch.from_pylist(ALL_ROWS, schema=ALL_SCHEMA)
    from_batch, batch_counts, _ = plan.apply_batch(batch)
    from_rows, row_counts, _ = plan.apply_records(batch.to_pylist())
    batch_rows = from_batch.to_pylist()
    assert batch_counts == row_counts
    assert [list(r) for r in from_rows] == [ALL_OUTPUT_SCHEMA.names] * 3
    strip = [{k: v for k, v in r.items() if k != "notes"} for r in batch_rows]
    assert strip == [{k: v for k, v in r.items() if k != "notes"} for r in from_rows]
    aead = KEYRING.aead(encrypt.key_info("analytics"), 1)
    bound_to = encrypt.associated_data("analytics", "notes")
    for row_b, row_r, src in zip(batch_rows, from_rows, ALL_ROWS):
        for token in (row_b["notes"], row_r["notes"]):
            assert decrypt_token(aead, token, bound_to) == src["notes"]


def decrypt_token(aead, token: str, bound_to: bytes) -> str:
    import base64

    body = token.removeprefix("v1.")
    return aead.decrypt(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), bound_to).decode()


def test_all_actions_give_the_expected_plain_values():
    out, _, _ = bound(ALL, ALL_SCHEMA).apply_records(ALL_ROWS)
    first, second, third = out
    assert first["customer_key"] == third["customer_key"] != second["customer_key"]
    assert first["email"] == third["email"] and first["email"].startswith("v1.")
    assert [r["phone"] for r in out] == ["*************78", "**12", "**"]
    assert [r["age_band"] for r in out] == ["35-49", "0-17", "65+"]
    assert [r["zip"] for r in out] == ["941", "100", "9"]
    assert [r["income"] for r in out] == [50000, 0, 150000]
    assert [r["signup"] for r in out] == [date(2024, 5, 1), date(2023, 12, 1), date(2024, 1, 1)]
    assert [r["score"] for r in out] == ["50-99", "<0", "100+"]
    assert [r["gender"] for r in out] == ["female", "other", "male"]
    assert [r["lat"] for r in out] == [52.4, -0.1, 0.0]
    assert (first["visit"] - date(2024, 3, 1)) == (third["visit"] - date(2024, 3, 2))  # same subject
    assert first["first_name"] == third["first_name"]
    assert [r["country"] for r in out] == ["NL", "US", "NL"]
    assert [r["ssn"] for r in out] == [None, None, None]
    assert [r["comment"] for r in out] == ["[removed]", "[removed]", None]
    assert [r["remark"] for r in out] == ["call [PHONE] or [EMAIL]", None, None]
    assert all("internal" not in r for r in out)


def test_nulls_pass_through_as_nulls_for_every_action():
    nulls = {name: None for name in ALL_SCHEMA.names}
    plan = bound(ALL, ALL_SCHEMA)
    out, counts, _ = plan.apply_batch(pa.RecordBatch.from_pylist([nulls, ALL_ROWS[0]], schema=ALL_SCHEMA))
    assert out.to_pylist()[0] == {name: None for name in ALL_OUTPUT_SCHEMA.names}
    assert all(v is not None for k, v in out.to_pylist()[1].items() if k != "ssn")
    rows, row_counts, _ = plan.apply_records([nulls])
    assert rows == [{name: None for name in ALL_OUTPUT_SCHEMA.names}]
    assert counts == {"read": 2, "written": 2, "scrubbed.remark.email": 1, "scrubbed.remark.phone": 1}
    assert row_counts == {"read": 1, "written": 1}


def test_a_keyed_plan_needs_a_keyring():
    with pytest.raises(ConfigError, match="no keyring"):
        BoundPlan(compile_plan(parse_policy(ALL)), None)


def test_default_error_names_unlisted_fields_but_not_their_values():
    yaml = "version: 1\npurpose: analytics\ndefault: error\nfields:\n  country: {action: keep}\n"
    with pytest.raises(ConfigError, match="secret_field") as caught:
        bound(yaml).apply_records([{"country": "NL", "secret_field": "jane.doe@example.org"}])
    assert "jane.doe@example.org" not in str(caught.value)


# ---------------------------------------------------------------- memoization

PSEUDONYMIZE = bind({"action": "pseudonymize"})
MASK = bind({"action": "mask", "keep_first": 1})
MONTH = bind({"action": "generalize", "date": "month"})
FNS = [PSEUDONYMIZE, MASK, bind({"action": "tokenize"}), bind({"action": "fake", "provider": "city"})]


@FAST
@given(st.lists(st.text(alphabet="ab Zë", max_size=3), max_size=25))
def test_memoization_does_not_change_results(values):
    for fn in FNS:
        memo, plain = map_column(fn, values, None, memo=True), map_column(fn, values, None, memo=False)
        assert memo[0] == plain[0] == [fn(v) for v in values]
        assert memo[1] == plain[1] == []


@FAST
@given(st.lists(st.one_of(st.none(), st.sampled_from(["2024-05-17", "2024-02-30", "x", "2023-01-31"])), max_size=25))
def test_memoization_keeps_nulls_and_failures_in_place(values):
    memo, plain = map_column(MONTH, values, None, memo=True), map_column(MONTH, values, None, memo=False)
    assert memo[:2] == plain[:2]
    assert memo[1] == [i for i, v in enumerate(values) if v in ("2024-02-30", "x")]
    assert all(out is None for out, v in zip(memo[0], values) if v is None)


def test_memoization_tells_equal_values_of_different_types_apart():
    values = [1, True, 1.0, "1", 1]
    memo, failed, _ = map_column(PSEUDONYMIZE, values, None, memo=True)
    assert (memo, failed) == map_column(PSEUDONYMIZE, values, None, memo=False)[:2]
    assert memo[0] == memo[3] == memo[4] == PSEUDONYMIZE("1") and failed == [1, 2]
    width = bind({"action": "generalize", "width": 10})
    buckets = map_column(width, [5, 5.0, 5], None, memo=True)[0]
    assert [type(b) for b in buckets] == [int, float, int]


def test_memoization_computes_each_distinct_value_once():
    calls: list[str] = []

    def fn(value):
        calls.append(value)
        return value.upper()

    out, failed, error = map_column(fn, ["a", "b", "a", None, "a", "b"], None, memo=True)
    assert out == ["A", "B", "A", None, "A", "B"] and failed == [] and error is None
    assert calls == ["a", "b"]


# ---------------------------------------------------------------- no leak

NO_LEAK = """
version: 1
purpose: analytics
fields:
  amount: {{action: generalize, width: 10, on_error: {mode}}}
  signup: {{action: generalize, date: month, on_error: {mode}}}
"""
LEAK_PLANS = {mode: bound(NO_LEAK.format(mode=mode)) for mode in ("null", "fail")}
SENTINEL = "\x00sentinel\x00"


def failure_text(field: str, value) -> tuple[str, str, set[str]]:
    """(str of the ActionError, str of the DataRefusedError, counts keys under on_error: null)."""
    fn = MONTH if field == "signup" else bind({"action": "generalize", "width": 10})
    with pytest.raises(ActionError) as action_error:
        fn(value)
    with pytest.raises(DataRefusedError) as refused:
        LEAK_PLANS["fail"].apply_records([{field: value}])
    _, counts, _ = LEAK_PLANS["null"].apply_records([{field: value}])
    return str(action_error.value) + repr(action_error.value), str(refused.value), set(counts)


def is_iso_date(text: str) -> bool:
    try:
        datetime.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


@FAST
@given(st.text(min_size=1))
def test_no_leak_from_width_on_strings(value):
    assume(not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", value.strip()))  # a number: parsed
    baseline = failure_text("amount", SENTINEL)
    texts = failure_text("amount", value)
    assert texts == baseline  # nothing in the errors or the counts depends on the value
    assume(all(value not in text for text in (*baseline[:2], *baseline[2])))
    assert all(value not in text for text in (*texts[:2], *texts[2]))


@FAST
@given(st.text(min_size=1))
def test_no_leak_from_dates_on_non_dates(value):
    assume(not is_iso_date(value))
    baseline = failure_text("signup", SENTINEL)
    texts = failure_text("signup", value)
    assert texts == baseline
    assume(all(value not in text for text in (*baseline[:2], *baseline[2])))
    assert all(value not in text for text in (*texts[:2], *texts[2]))


# ---------------------------------------------------------------- dead letters, dict records


@pytest.mark.parametrize("mode", ["null", "drop_record"])
def test_each_failed_value_is_a_dead_letter_with_its_code_and_never_its_value(mode):
    rows = [ROWS[0], dict(ROWS[1], income="income-secret-5521"), ROWS[2], dict(ROWS[0], signup="2024-13-99")]
    batch_rows = [ROWS[0], ROWS[1], ROWS[2], dict(ROWS[0], signup="2024-13-99")]
    for applied, expected in (
        (on_error_plan(mode).apply_records(rows), [(1, "income", ErrorCode.NOT_A_NUMBER.value)]),
        (on_error_plan(mode).apply_batch(batch_of(batch_rows)), []),
    ):
        letters = sorted(applied.dead_letters, key=lambda d: (d.position, d.field))
        assert [(d.position, d.field, d.code) for d in letters] == sorted(
            expected + [(1, "signup", ErrorCode.INVALID_DATE.value), (3, "signup", ErrorCode.INVALID_DATE.value)]
        )
        assert all(d.action == "generalize" and d.on_error == mode and d.purpose == "analytics" for d in letters)
        assert all(d.subject_ref is None for d in letters)  # this keyring has no subject key to make references
        text = repr(applied.dead_letters)
        assert "income-secret" not in text and BAD_DATE not in text and "2024-13" not in text and "c-2" not in text


def test_dead_letter_positions_count_rows_removed_by_the_consent_gate():
    rows = [
        {"customer_id": "c-1", "consents": ["marketing"], "signup": BAD_DATE},
        {"customer_id": "c-2", "consents": ["analytics"], "signup": "2024-01-01"},
        {"customer_id": "c-3", "consents": ["analytics"], "signup": "x"},
    ]
    null_plan = bound(CONSENT.replace("on_error: fail", "on_error: null"))
    (letter,) = null_plan.apply_records(rows).dead_letters
    assert (letter.position, letter.field, letter.code) == (2, "signup", ErrorCode.INVALID_DATE.value)
    assert null_plan.apply_records(rows, positions=False).dead_letters[0].position is None


def test_dict_values_arrow_cannot_hold_are_field_errors_not_passed_through():
    class Opaque:
        pass

    yaml = "version: 1\npurpose: analytics\nfields:\n  note: {action: keep}\n  n: {action: generalize, width: 10}\n"
    rows = [{"note": "a", "n": 1}, {"note": Opaque(), "n": 2.5}, {"note": "lone \ud800", "n": "x"}]
    out, counts, letters = bound(yaml).apply_records(rows)
    assert out == [{"note": "a", "n": 0}, {"note": None, "n": 0.0}, {"note": None, "n": None}]
    assert counts == {"read": 3, "written": 3, "field_errors.note": 2, "field_errors.n": 1}
    assert sorted((d.position, d.field, d.code) for d in letters) == [
        (1, "note", ErrorCode.UNREADABLE.value),
        (2, "n", ErrorCode.NOT_A_NUMBER.value),  # text is parsed, and "x" is no number
        (2, "note", ErrorCode.UNREADABLE.value),
    ]


CARDS = bound(
    """
version: 1
purpose: analytics
fields:
  card: {action: tokenize, method: ff1, alphabet: digits, keep_last: 4}
""",
    pa.schema([("card", pa.string())]),
)
CARD_FN = bind({"action": "tokenize", "method": "ff1", "alphabet": "digits", "keep_last": 4}, field="card")


@FAST
@given(
    st.lists(
        st.lists(
            st.one_of(
                st.none(),
                st.sampled_from(["12", "4111-1111-1111-1111", "5500 0000 0000 0004"]),
                st.text("0123456789", min_size=10, max_size=12),
            ),
            max_size=30,
        ),
        min_size=1,
        max_size=40,
    )
)
def test_a_field_gives_the_per_value_results_whether_or_not_its_values_repeat(batches):
    """Each distinct value once (repeating values) or each value (distinct ones), as the field's
    recent batches suggest: the outputs, failures and counts are the per-value function's."""
    for values in batches:
        out, counts, letters = CARDS.apply_batch(pa.record_batch({"card": pa.array(values, pa.string())}))
        expected, failed = [], []
        for row, value in enumerate(values):
            try:
                expected.append(None if value is None else CARD_FN(value))
            except ActionError:
                expected.append(None)
                failed.append(row)
        assert out.column("card").to_pylist() == expected
        assert counts.get("field_errors.card", 0) == len(failed) == len(letters)
        assert [letter.position for letter in letters] == failed
