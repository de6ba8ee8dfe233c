"""compile_plan: output types per action, dropped fields, and every policy/input mismatch."""

import pyarrow as pa
import pytest

from veil.errors import ConfigError
from veil.transforms.plan import ColumnOp, compile_plan
from veil.transforms.policy import Policy

SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("birth_date", pa.date32()),
        ("zip", pa.string()),
        ("income", pa.int64()),
        ("score", pa.float64()),
        ("signup_ts", pa.timestamp("us", tz="UTC")),
        ("consents", pa.list_(pa.string())),
        ("notes", pa.string()),
    ]
)


def policy(fields: dict, **top) -> Policy:
    return Policy.model_validate({"version": 1, "purpose": "analytics", "fields": fields, **top})


def types_of(plan) -> dict[str, pa.DataType]:
    return dict(zip(plan.output_schema.names, plan.output_schema.types))


def test_output_types_per_action():
    plan = compile_plan(
        policy(
            {
                "customer_id": {"action": "pseudonymize", "as": "customer_key"},
                "income": {"action": "generalize", "width": 10000, "as": "income_band"},
                "signup_ts": {"action": "generalize", "date": "month", "as": "signup_month"},
                "birth_date": {"action": "generalize", "age_bins": [0, 18, 65], "at": "2026-01-01", "as": "age_band"},
                "zip": {"action": "keep"},
                "consents": {"action": "keep"},
                "notes": {"action": "replace", "value": 7},
                "phone": {"action": "mask", "keep_last": 2},
                "email": {"action": "tokenize", "as": "email_token"},
                "score": {"action": "redact"},
            }
        ),
        SCHEMA,
    )
    assert types_of(plan) == {
        "customer_key": pa.string(),
        "income_band": pa.int64(),
        "signup_month": pa.date32(),
        "age_band": pa.string(),
        "zip": pa.string(),
        "consents": pa.list_(pa.string()),
        "notes": pa.int64(),
        "phone": pa.string(),
        "email_token": pa.string(),
        "score": pa.float64(),
    }


@pytest.mark.parametrize(
    "source, spec, expected",
    [
        ("signup_ts", {"action": "keep"}, pa.timestamp("us", tz="UTC")),
        ("birth_date", {"action": "keep"}, pa.date32()),
        ("income", {"action": "keep"}, pa.int64()),
        ("income", {"action": "generalize", "width": 2.5}, pa.float64()),
        ("score", {"action": "generalize", "width": 10}, pa.float64()),
        ("birth_date", {"action": "generalize", "date": "year"}, pa.date32()),
        ("income", {"action": "generalize", "bins": [0, 1000]}, pa.string()),
        ("zip", {"action": "generalize", "prefix": 3}, pa.string()),
        ("notes", {"action": "replace", "value": "n/a"}, pa.string()),
        ("notes", {"action": "replace", "value": None}, pa.string()),
        ("income", {"action": "replace", "value": 1.5}, pa.float64()),
        ("income", {"action": "pseudonymize"}, pa.string()),
        ("notes", {"action": "encrypt"}, pa.string()),
    ],
)
def test_output_type(source, spec, expected):
    plan = compile_plan(policy({source: spec}), SCHEMA)
    assert plan.output_schema == pa.schema([(source, expected)])


def test_date_shift_keeps_the_type_and_reads_the_subject():
    plan = compile_plan(
        policy(
            {"signup_ts": {"action": "date_shift", "max_days": 30}},
            subject="customer_id",
            consent={"field": "consents"},
        ),
        SCHEMA,
    )
    assert types_of(plan) == {"signup_ts": pa.timestamp("us", tz="UTC")}
    assert plan.gate_fields == ("consents", "customer_id")
    assert plan.keyed


def test_ops_follow_policy_order_and_renames():
    plan = compile_plan(
        policy({"zip": {"action": "keep", "as": "zip_code"}, "customer_id": {"action": "keep"}}), SCHEMA
    )
    assert [(op.source, op.output, op.action) for op in plan.ops] == [
        ("zip", "zip_code", "keep"),
        ("customer_id", "customer_id", "keep"),
    ]
    assert isinstance(plan.ops[0], ColumnOp) and plan.ops[0].output_type == pa.string()
    assert not plan.keyed


def test_drop_and_unlisted_fields_are_absent_and_listed_as_dropped():
    plan = compile_plan(
        policy({"customer_id": {"action": "pseudonymize"}, "email": {"action": "drop"}, "zip": {"action": "keep"}}),
        SCHEMA,
    )
    assert plan.output_schema.names == ["customer_id", "zip"]
    assert plan.dropped == ("email", "phone", "birth_date", "income", "score", "signup_ts", "consents", "notes")


def test_a_policy_field_missing_from_the_input():
    with pytest.raises(ConfigError) as info:
        compile_plan(
            policy({"customer_id": {"action": "keep"}, "ssn": {"action": "drop"}, "loyalty_tier": {"action": "keep"}}),
            SCHEMA,
        )
    message = str(info.value)
    assert "field 'ssn' is not in the input" in message
    assert "field 'loyalty_tier' is not in the input" in message
    assert message.startswith("policy 'analytics': ")


@pytest.mark.parametrize(
    "source, spec, words",
    [
        (
            "birth_date",
            {"action": "generalize", "width": 10},
            ["'birth_date'", "date32", "generalize width", "float or integer or string"],
        ),
        ("income", {"action": "tokenize"}, ["'income'", "int64", "tokenize", "takes string"]),
        ("consents", {"action": "mask"}, ["'consents'", "list<item: string>", "mask"]),
        ("income", {"action": "generalize", "date": "month"}, ["'income'", "int64", "generalize date"]),
        ("birth_date", {"action": "encrypt"}, ["'birth_date'", "date32", "encrypt"]),
    ],
)
def test_type_mismatch_names_field_type_and_action(source, spec, words):
    with pytest.raises(ConfigError) as info:
        compile_plan(policy({source: spec}), SCHEMA)
    for word in words:
        assert word in str(info.value)


def test_default_error_names_every_unlisted_field():
    with pytest.raises(ConfigError) as info:
        compile_plan(policy({"customer_id": {"action": "keep"}, "email": {"action": "drop"}}, default="error"), SCHEMA)
    message = str(info.value)
    assert (
        "input fields phone, birth_date, zip, income, score, signup_ts, consents, notes "
        "(add each to fields, with action: drop if unneeded)"
    ) in message
    assert "email" not in message and "customer_id" not in message


def test_default_error_one_unlisted_field():
    fields = {name: {"action": "drop"} for name in SCHEMA.names if name != "notes"}
    fields["zip"] = {"action": "keep"}
    with pytest.raises(ConfigError, match=r"does not name input field notes \(add"):
        compile_plan(policy(fields, default="error"), SCHEMA)


def test_subject_and_consent_count_as_named_under_default_error():
    fields = {name: {"action": "drop"} for name in SCHEMA.names if name not in ("customer_id", "consents")}
    fields["zip"] = {"action": "keep"}
    named = dict(subject="customer_id", consent={"field": "consents"}, default="error")
    plan = compile_plan(policy(fields, **named), SCHEMA)
    assert plan.output_schema.names == ["zip"]
    assert "customer_id" in plan.dropped and "consents" in plan.dropped
    # without them, both are reported
    with pytest.raises(ConfigError, match=r"input fields customer_id, consents \("):
        compile_plan(policy(fields, default="error"), SCHEMA)


@pytest.mark.parametrize(
    "top, expected",
    [
        ({"subject": "client_id"}, "subject field 'client_id' is not in the input"),
        ({"consent": {"field": "opt_ins"}}, "consent field 'opt_ins' is not in the input"),
    ],
)
def test_subject_or_consent_missing_from_the_input(top, expected):
    with pytest.raises(ConfigError, match=expected):
        compile_plan(policy({"zip": {"action": "keep"}}, **top), SCHEMA)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        compile_plan(
            policy(
                {"zip": {"action": "tokenize"}, "income": {"action": "tokenize"}, "ssn": {"action": "keep"}},
                subject="client_id",
            ),
            SCHEMA,
        )
    message = str(info.value)
    assert "'income'" in message and "'ssn'" in message and "'client_id'" in message
    assert "'zip'" not in message  # a string column tokenizes fine


def test_errors_name_the_policy_file(tmp_path):
    from veil.transforms.policy import load_policy

    path = tmp_path / "p.yaml"
    path.write_text("version: 1\npurpose: analytics\nfields:\n  ssn: {action: keep}\n")
    with pytest.raises(ConfigError, match=f"^policy {path}: field 'ssn' is not in the input"):
        compile_plan(load_policy(path), SCHEMA)


def test_compile_without_a_schema():
    plan = compile_plan(
        policy(
            {
                "customer_id": {"action": "pseudonymize", "as": "customer_key"},
                "email": {"action": "drop"},
                "ssn": {"action": "generalize", "width": 10},
            },
            subject="client_id",
            default="error",
        )
    )
    assert plan.output_schema is None
    assert plan.input_schema is None
    assert plan.dropped == ()
    assert [(op.source, op.output, op.output_type) for op in plan.ops] == [
        ("customer_id", "customer_key", None),
        ("ssn", "ssn", None),
    ]
    assert plan.keyed


def test_a_null_typed_column_is_accepted_by_any_action():
    schema = pa.schema([("email", pa.null())])
    plan = compile_plan(policy({"email": {"action": "tokenize"}}), schema)
    assert plan.output_schema == pa.schema([("email", pa.string())])
