"""`veil lint`: each rule fires on a policy crafted to break it, and none on the example configs."""

import json
from datetime import date
from pathlib import Path

import pytest
import yaml
from helpers import cli

from veil.pipelines.governance.field_kinds import personal_data_kind
from veil.pipelines.governance.lint import RULES, lint_policy
from veil.transforms.detect.hints import looks_like_free_text
from veil.transforms.policy import load_policy, parse_policy

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TODAY = date(2026, 12, 15)
GOVERNED = {"owner": "team@example.com", "legal_basis": "contract", "retention": "90d", "reviewed": "2026-12-01"}
KEY = {"action": "pseudonymize", "domain": "customer"}
KEEP = {"action": "keep"}


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # table cells unwrapped


def policy(fields, **settings):
    doc = {"version": 1, "purpose": "support", "subject": "customer_id", "keyset": "k.json", **GOVERNED}
    doc = {key: value for key, value in {**doc, **settings}.items() if value is not None}
    return parse_policy(yaml.safe_dump({**doc, "fields": {"customer_id": KEY, **fields}}))


def rules(p, today=TODAY):
    return sorted(finding.rule for finding in lint_policy(p, today))


QI = {
    "zip": {"action": "generalize", "prefix": 3},
    "birth_date": {"action": "generalize", "date": "year"},
    "gender": {"action": "keep"},
}
CASES = {
    "personal-data-kept": policy({"email": {"action": "keep"}}),
    "free-text-kept": policy({"notes": {"action": "keep"}}),
    "reversible-without-audit-log": policy({"email": {"action": "tokenize"}}, keyset=None),
    "no-legal-basis": policy({}, legal_basis=None),
    "quasi-identifiers-without-k": policy(QI),
    "no-owner": policy({}, owner=None),
    "no-retention": policy({}, retention=None),
    "not-reviewed": policy({}, reviewed=None),
    "review-overdue": policy({}, reviewed="2025-12-01"),
}


def test_every_rule_has_a_crafted_case():
    assert sorted(CASES) == sorted(rule for rule, _severity in RULES)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_rule_fires_alone_on_its_crafted_policy(rule):
    assert rules(CASES[rule]) == [rule]
    finding = lint_policy(CASES[rule], TODAY)[0]
    assert finding.policy == "purpose support" and finding.message and finding.fix
    assert finding.severity == dict(RULES)[rule]


def test_the_crafted_base_is_clean():
    assert rules(policy({"email": {"action": "tokenize"}})) == []


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_no_rule_fires_on_the_example_configs(path):
    assert lint_policy(load_policy(path), TODAY) == []


def test_a_reason_acknowledges_a_field_rule():
    because = {"reason": "agents read it to the customer"}
    assert rules(policy({"email": {"action": "keep", **because}, "notes": {"action": "keep", **because}})) == []
    explained = {name: {**spec, **because} for name, spec in QI.items()}
    assert rules(policy(explained)) == []
    assert rules(policy({**explained, "gender": {"action": "keep"}})) == ["quasi-identifiers-without-k"]


def test_quasi_identifiers_need_two_and_no_k():
    assert rules(policy({"zip": QI["zip"]})) == []  # one coarse quasi-identifier alone
    k = {"k": 5, "quasi_identifiers": ["zip", "birth_date", "gender"]}
    assert rules(policy(QI, k_anonymity=k)) == []
    tokens = {name: {"action": "tokenize"} for name in QI}  # nothing of the value shows
    assert rules(policy(tokens)) == []


def test_an_audit_log_or_a_keyset_makes_it_reachable():
    assert rules(policy({"email": {"action": "tokenize"}}, keyset=None, audit_log="audit.jsonl")) == []
    assert rules(policy({"email": {"action": "pseudonymize"}}, keyset=None)) == []  # nothing to restore


def test_review_is_due_a_year_after():
    reviewed = policy({}, reviewed="2025-12-15")
    assert rules(reviewed, date(2026, 12, 15)) == []
    assert rules(reviewed, date(2026, 12, 16)) == ["review-overdue"]


@pytest.mark.parametrize(
    "name, kind",
    [
        ("email", "an email address"),
        ("customerEmail", "an email address"),
        ("E-Mail", "an email address"),
        ("mobile_phone", "a phone number"),
        ("first_name", "a person's name"),
        ("surname", "a person's name"),
        ("name", "a person's name"),
        ("date_of_birth", "a birth date"),
        ("DOB", "a birth date"),
        ("ssn", "a national identifier"),
        ("social_security_number", "a national identifier"),
        ("street_address", "a postal address"),
        ("ip", "an IP address"),
        ("client_ip_address", "an IP address"),
        ("credit_card_number", "a card number"),
        ("IBAN", "a bank account"),
        # the vocabulary is veil scan's name hints: other languages, and the English words lint knew
        ("Telefonnummer", "a phone number"),
        ("prénom", "a person's name"),
        ("Geburtsdatum", "a birth date"),
        ("codice_fiscale", "a national identifier"),
        ("passport_number", "a national identifier"),
        ("username", "a person's name"),
        ("cvv", "a card number"),
        ("swift_code", "a bank account"),
        ("msisdn", "a phone number"),
        ("zip", None),
        ("product_name", None),
        ("country", None),
        ("shipping_method", None),
    ],
)
def test_personal_data_names(name, kind):
    assert personal_data_kind(name) == kind


def test_free_text_names():
    assert all(looks_like_free_text(name) for name in ("notes", "agent_comment", "chatTranscript", "message_body"))
    assert not any(looks_like_free_text(name) for name in ("country", "income", "zip"))


def test_cli_exit_codes_and_json(tmp_path):
    clean = tmp_path / "clean.yaml"
    clean.write_text((CONFIGS / "support.yaml").read_text())
    warned = tmp_path / "warned.yaml"
    warned.write_text(
        yaml.safe_dump({"version": 1, "purpose": "ops", "legal_basis": "contract", "fields": {"country": KEEP}})
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"version": 1, "purpose": "ops", "fields": {"email": {"action": "keep"}}}))
    ok = cli("lint", clean, "--now", "2026-12-15")
    assert ok.code == 0 and "1 policy: 0 errors, 0 warnings" in ok.out
    warnings = cli("lint", warned, "--now", "2026-12-15")
    assert warnings.code == 0 and "1 policy: 0 errors, 3 warnings" in warnings.out
    assert all(rule in warnings.out for rule in ("no-owner", "no-retention", "not-reviewed"))
    result = cli("lint", clean, broken, "--json", "--now", "2026-12-15")
    assert result.code == 3
    doc = json.loads(result.out)
    found = {(f["policy"], f["rule"], f["severity"]) for f in doc["findings"]}
    assert (str(broken), "personal-data-kept", "error") in found
    assert not any(f["policy"] == str(clean) for f in doc["findings"])
    assert doc["errors"] == sum(f["severity"] == "error" for f in doc["findings"]) >= 2  # email, legal basis
    assert set(doc["findings"][0]) == {"policy", "rule", "severity", "where", "message", "fix"}
    assert cli("lint", tmp_path / "nope.yaml").code == 2
    bad_now = cli("lint", clean, "--now", "soon")
    assert bad_now.code == 2 and bad_now.err.startswith("error: --now 'soon'")
