"""The example policies in configs/ load, compile against the demo table and match the schema."""

import json
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from veil.errors import ConfigError
from veil.pipelines.synthetic import CUSTOMER_SCHEMA
from veil.transforms.plan import compile_plan
from veil.transforms.policy import load_policy, policy_json_schema

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
POLICIES = sorted(CONFIGS.glob("*.yaml"))
SCHEMA_FILE = CONFIGS / "policy.schema.json"
REGENERATE = (
    '.venv/bin/veil schema > configs/policy.schema.json  (or: .venv/bin/python -c "import json; '
    "from veil.transforms.policy import policy_json_schema; open('configs/policy.schema.json', 'w')"
    ".write(json.dumps(policy_json_schema(), indent=2) + '\\n')\")"
)

# The synthetic customer table every example policy is a view of.
CUSTOMERS = CUSTOMER_SCHEMA


def test_the_five_examples_are_there():
    assert [p.stem for p in POLICIES] == ["analytics", "marketing", "quality", "statistics", "support"]


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_example_loads(path):
    policy = load_policy(path)
    assert policy.purpose == path.stem
    assert policy.version == 1
    assert policy.description and "\n" not in policy.description
    # quality reads scrubbed notes under the support contract, statistics releases DP tables under
    # Art. 89 (their comments say so)
    if path.stem not in ("quality", "statistics"):
        assert policy.consent is not None and policy.consent.field == "consents"
    assert Path(policy.keyset) == CONFIGS / ".veil" / "keyset.json"  # relative to the file
    first_line = path.read_text().splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=policy.schema.json"


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_example_compiles_against_the_customer_table(path):
    plan = compile_plan(load_policy(path), CUSTOMERS)
    assert len(plan.output_schema) == len(plan.ops) > 0
    # minimization: no example needs the street, and the consent list is read, never output
    assert {"street", "consents"} <= set(plan.dropped)
    assert set(plan.dropped) | {op.source for op in plan.ops} == set(CUSTOMERS.names)


def test_analytics_output_schema():
    plan = compile_plan(load_policy(CONFIGS / "analytics.yaml"), CUSTOMERS)
    assert plan.output_schema == pa.schema(
        [
            ("customer_key", pa.string()),
            ("age_band", pa.string()),
            ("zip3", pa.string()),
            ("gender", pa.string()),
            ("country", pa.string()),
            ("income_band", pa.int64()),
            ("signup_month", pa.date32()),
        ]
    )


def test_marketing_output_schema():
    plan = compile_plan(load_policy(CONFIGS / "marketing.yaml"), CUSTOMERS)
    assert plan.output_schema == pa.schema(
        [
            ("customer_key", pa.string()),
            ("email_token", pa.string()),
            ("first_name", pa.string()),
            ("city", pa.string()),
            ("country", pa.string()),
            ("birth_year", pa.date32()),
            ("phone", pa.string()),
        ]
    )


def test_statistics_releases_only_aggregates_of_what_it_reads():
    policy = load_policy(CONFIGS / "statistics.yaml")
    spec = policy.aggregates
    assert spec is not None and spec.epsilon > 0 and 0 < spec.delta < 1e-3
    assert policy.legal_basis == "legitimate_interests" and policy.owner and policy.retention and policy.reviewed
    plan = compile_plan(policy, CUSTOMERS)
    # every field it reads feeds a table: the privacy unit is a pseudonym, nothing else is an identifier
    assert set(plan.output_schema.names) == set(spec.fields) == {"customer_key", "country", "age_band", "income"}
    assert plan.output_schema.field(spec.privacy_unit).type == pa.string()
    assert {op.output: op.action for op in plan.ops}["customer_key"] == "pseudonymize"
    assert [t.public_groups is None for t in spec.tables] == [False, True]  # one public, one selected privately


def test_support_names_every_column():
    policy = load_policy(CONFIGS / "support.yaml")
    assert policy.default == "error"
    named = set(policy.fields) | {policy.subject, policy.consent.field}
    assert named == set(CUSTOMERS.names)
    plan = compile_plan(policy, CUSTOMERS)
    assert dict(zip(plan.output_schema.names, plan.output_schema.types)) == {
        "customer_token": pa.string(),
        "first_name": pa.string(),
        "last_name": pa.string(),
        "email_token": pa.string(),
        "phone": pa.string(),
        "notes": pa.string(),
        "card_number": pa.string(),
        "signup_ts": pa.timestamp("us", tz="UTC"),
    }
    # a new column in the table must fail the support policy, not slip through
    with pytest.raises(ConfigError, match="ssn"):
        compile_plan(policy, CUSTOMERS.append(pa.field("ssn", pa.string())))


def test_schema_file_is_current():
    expected = json.dumps(policy_json_schema(), indent=2) + "\n"
    actual = SCHEMA_FILE.read_text() if SCHEMA_FILE.exists() else ""
    assert actual == expected, f"configs/policy.schema.json is stale; regenerate it with: {REGENERATE}"


def _schema_problems(document: dict, schema: dict) -> list[str]:
    """A tiny check of a policy document against the policy JSON Schema (no jsonschema dependency)."""
    problems = [f"missing required key {key}" for key in schema["required"] if key not in document]
    problems += [f"unknown key {key}" for key in document if key not in schema["properties"]]
    union = schema["properties"]["fields"]["additionalProperties"]
    mapping = union["discriminator"]["mapping"]
    for name, spec in document.get("fields", {}).items():
        action = spec.get("action")
        if action not in mapping:
            problems.append(f"fields.{name}: action {action!r} not in the schema")
            continue
        definition = schema["$defs"][mapping[action].rsplit("/", 1)[-1]]
        problems += [f"fields.{name}: missing {key}" for key in definition["required"] if key not in spec]
        problems += [f"fields.{name}: unknown key {key}" for key in spec if key not in definition["properties"]]
    return problems


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_schema_accepts_example(path):
    schema = json.loads(SCHEMA_FILE.read_text())
    assert _schema_problems(yaml.safe_load(path.read_text()), schema) == []


def test_schema_check_can_fail():
    schema = json.loads(SCHEMA_FILE.read_text())
    bad = {"version": 1, "fields": {"email": {"action": "hash"}, "phone": {"action": "mask", "keep_lst": 2}}}
    assert _schema_problems(bad, schema) == [
        "missing required key purpose",
        "fields.email: action 'hash' not in the schema",
        "fields.phone: unknown key keep_lst",
    ]


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_example_carries_governance(path):
    policy = load_policy(path)
    assert policy.owner and policy.legal_basis and policy.retention and policy.reviewed and policy.recipients
