"""Policy YAML loading: errors name the file, the field path and the line, and never a value."""

import hashlib
import re
import time
from pathlib import Path
from textwrap import dedent

import pytest
import yaml
from pydantic import ValidationError

from veil import _fs
from veil.errors import ConfigError
from veil.transforms.policy import KEYSET_ENV, Policy, load_policy, parse_policy, resolve_keyset
from veil.transforms.registry import REGISTRY

HEAD = "version: 1\npurpose: analytics\nsubject: customer_id\nfields:\n  customer_id: {action: keep}\n"
PERSONAL = "jane@x.org"


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dedent(text))
    return path


def load_error(tmp_path: Path, text: str) -> tuple[str, Path, str]:
    """The ConfigError message of loading `text` from a file, the file, and the dedented text."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    return str(info.value), path, path.read_text()


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of `text` containing `needle`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def assert_located(message: str, path: Path, where: str, line: int) -> None:
    assert str(path) in message, message
    assert f"{where} (line {line})" in message, message


# --- errors: where they are and what they say ---------------------------------------------


def test_unknown_action_lists_the_allowed_ones(tmp_path):
    message, path, text = load_error(tmp_path, HEAD + "  email: {action: hash}\n")
    assert_located(message, path, "fields.email", line_of(text, "email:"))
    assert "unknown action 'hash'" in message
    for name in REGISTRY:
        assert name in message


def test_missing_action(tmp_path):
    message, path, text = load_error(tmp_path, HEAD + "  email: {as: email_token}\n")
    assert_located(message, path, "fields.email", line_of(text, "email:"))
    assert "missing 'action'" in message


def test_unknown_top_level_key(tmp_path):
    message, path, text = load_error(tmp_path, HEAD + "retain_for: 30d\n")
    assert_located(message, path, "retain_for", line_of(text, "retain_for"))
    assert "unknown key" in message


def test_unknown_key_inside_a_field_action(tmp_path):
    message, path, text = load_error(tmp_path, HEAD + "  phone:\n    action: mask\n    keep_lst: 2\n")
    assert_located(message, path, "fields.phone.keep_lst", line_of(text, "keep_lst"))
    assert "unknown key" in message


def test_missing_required_key_names_its_path(tmp_path):
    message, path, text = load_error(tmp_path, HEAD + "  signup_ts:\n    action: date_shift\n")
    # the key is absent, so the line is the field's own
    assert_located(message, path, "fields.signup_ts.max_days", line_of(text, "signup_ts:"))
    assert "required key is missing" in message


@pytest.mark.parametrize("variants, got", [("    prefix: 3\n    width: 10\n", "(got width, prefix)"), ("", "")])
def test_generalize_takes_exactly_one_variant(tmp_path, variants, got):
    message, path, text = load_error(tmp_path, HEAD + "  zip:\n    action: generalize\n" + variants)
    assert_located(message, path, "fields.zip", line_of(text, "zip:"))
    assert "generalize takes exactly one of bins, age_bins, width, date, prefix, map, round" in message
    assert got in message
    if not got:
        assert "(got" not in message


def test_age_bins_need_at(tmp_path):
    message, path, text = load_error(
        tmp_path, HEAD + "  birth_date:\n    action: generalize\n    age_bins: [0, 18, 65]\n"
    )
    assert_located(message, path, "fields.birth_date", line_of(text, "birth_date:"))
    assert "age_bins and at go together" in message


def test_pseudonymize_length_too_short(tmp_path):
    message, path, text = load_error(tmp_path, HEAD.replace("{action: keep}", "{action: pseudonymize, length: 8}"))
    assert_located(message, path, "fields.customer_id", line_of(text, "customer_id: {"))
    assert "between 16 (64 bits) and 64 characters" in message


@pytest.mark.parametrize("purpose", ["Analytics", "2fa", "ads-team", "''"])
def test_bad_purpose_name(tmp_path, purpose):
    message, path, text = load_error(tmp_path, HEAD.replace("purpose: analytics", f"purpose: {purpose}"))
    assert_located(message, path, "purpose", line_of(text, "purpose:"))


def test_yaml_syntax_error_names_the_line(tmp_path):
    message, path, text = load_error(tmp_path, HEAD + "  email: {action: keep\n  phone: [\n")
    assert str(path) in message
    assert re.search(r": line 7: ", message), message


@pytest.mark.parametrize("text", ["- version: 1\n- purpose: analytics\n", "just words\n", "", "# nothing\n"])
def test_document_must_be_a_mapping(tmp_path, text):
    message, path, _ = load_error(tmp_path, text)
    assert message == f"policy {path}: must be a YAML mapping with version, purpose and fields"


def test_missing_policy_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=re.escape(f"policy {path} not found")):
        load_policy(path)


def test_policy_folder_is_not_a_file(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_policy(tmp_path)


def test_only_the_first_problem_is_detailed_and_the_rest_counted(tmp_path):
    message, path, text = load_error(tmp_path, HEAD + "  a: {action: hash}\n  b: {action: hash}\n  c: {action: hash}\n")
    assert_located(message, path, "fields.a", line_of(text, "a: {"))
    assert message.endswith("(and 2 more problems)")


# --- what valid policies mean ----------------------------------------------------------------


def test_on_error_null_in_yaml_means_null_the_field(tmp_path):
    policy = load_policy(
        write(
            tmp_path,
            HEAD + "  email: {action: mask, on_error: null}\n"
            "  phone: {action: mask, on_error: drop_record}\n"
            "  zip: {action: mask}\n",
        )
    )
    assert policy.fields["email"].on_error == "null"
    assert policy.fields["phone"].on_error == "drop_record"
    assert policy.fields["zip"].on_error == "null"


def test_as_renames_the_output(tmp_path):
    policy = load_policy(write(tmp_path, HEAD + "  email: {action: keep, as: contact}\n"))
    assert policy.fields["email"].as_ == "contact"
    assert policy.output_name("email") == "contact"
    assert policy.output_name("customer_id") == "customer_id"


def test_two_fields_writing_one_output(tmp_path):
    message, path, text = load_error(
        tmp_path, HEAD + "  email: {action: keep, as: contact}\n  phone:\n    action: mask\n    as: contact\n"
    )
    assert_located(message, path, "fields.phone.as", line_of(text, "    as: contact"))
    assert "fields 'email' and 'phone' both write output 'contact'" in message


def test_a_rename_onto_another_fields_name(tmp_path):
    message, path, text = load_error(tmp_path, HEAD + "  email: {action: keep, as: phone}\n  phone: {action: mask}\n")
    assert_located(message, path, "fields.phone", line_of(text, "phone: {"))
    assert "both write output 'phone'" in message


def test_dropped_fields_write_no_output(tmp_path):
    policy = load_policy(
        write(tmp_path, HEAD + "  email: {action: keep, as: contact}\n  phone: {action: drop, as: contact}\n")
    )
    assert set(policy.fields) == {"customer_id", "email", "phone"}


def test_date_shift_needs_the_policy_subject(tmp_path):
    text = HEAD.replace("subject: customer_id\n", "") + "  signup_ts:\n    action: date_shift\n    max_days: 30\n"
    message, path, text = load_error(tmp_path, text)
    assert_located(message, path, "fields.signup_ts.action", line_of(text, "action: date_shift"))
    assert "needs the policy's 'subject'" in message


def test_policy_built_in_code_reports_the_field_too():
    with pytest.raises(ValidationError) as info:
        Policy(version=1, purpose="support", fields={"d": {"action": "date_shift", "max_days": 3}})
    assert [e["loc"] for e in info.value.errors()] == [("fields", "d", "action")]


def test_parse_policy_names_its_source():
    with pytest.raises(ConfigError, match=r"^policy inline\.yaml: fields\.email \(line 5\): unknown action"):
        parse_policy("version: 1\npurpose: a\nfields:\n  id: {action: keep}\n  email: {action: nope}\n", "inline.yaml")


# --- aliases must not hang or crash the loader --------------------------------------------------


def test_recursive_alias_is_a_config_error(tmp_path):
    message, path, text = load_error(tmp_path, HEAD + "loop: &loop [*loop]\n")
    assert_located(message, path, "loop", line_of(text, "loop:"))


def test_nested_aliases_do_not_explode(tmp_path):
    text = HEAD + "l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n"
    # 10**6 paths if every alias were walked again (seconds); each node is walked once (ms)
    text += "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 6))
    started = time.monotonic()
    message, path, text = load_error(tmp_path, text)
    assert time.monotonic() - started < 1
    assert_located(message, path, "l0", line_of(text, "l0:"))


def test_an_alias_reused_under_fields_is_fine(tmp_path):
    policy = load_policy(write(tmp_path, HEAD + "  city: &keep {action: keep}\n  country: *keep\n"))
    assert policy.fields["country"].action == "keep"


# --- keyset ----------------------------------------------------------------------------------


def test_relative_keyset_resolves_against_the_policy_folder(tmp_path, monkeypatch):
    folder = tmp_path / "policies"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    policy = load_policy(write(folder, HEAD + "keyset: .veil/keyset.json\n"))
    assert Path(policy.keyset) == folder / ".veil" / "keyset.json"
    # also for a policy path that is itself relative
    policy = load_policy("policies/policy.yaml")
    assert Path(policy.keyset) == Path("policies/.veil/keyset.json")


@pytest.mark.parametrize("keyset", ["/etc/veil/keyset.json", "gs://bucket/keyset.json"])
def test_absolute_and_remote_keysets_are_kept(tmp_path, keyset):
    assert load_policy(write(tmp_path, HEAD + f"keyset: {keyset}\n")).keyset == keyset


def test_relative_keyset_of_a_remote_policy_stays_remote(monkeypatch):
    text = HEAD + "keyset: .veil/keyset.json\n"
    monkeypatch.setattr(_fs, "read_bytes", lambda path: text.encode())
    policy = load_policy("gs://bucket/policies/analytics.yaml")
    assert policy.keyset == "gs://bucket/policies/.veil/keyset.json"
    assert policy.source == "gs://bucket/policies/analytics.yaml"


def test_parse_policy_leaves_the_keyset_as_written():
    assert parse_policy(HEAD + "keyset: .veil/keyset.json\n").keyset == ".veil/keyset.json"


def test_resolve_keyset_precedence(tmp_path, monkeypatch):
    policy = load_policy(write(tmp_path, HEAD + "keyset: /from/policy.json\n"))
    monkeypatch.delenv(KEYSET_ENV, raising=False)
    assert resolve_keyset(policy) == "/from/policy.json"
    monkeypatch.setenv(KEYSET_ENV, "/from/env.json")
    assert resolve_keyset(policy) == "/from/env.json"
    assert resolve_keyset(policy, "/from/flag.json") == "/from/flag.json"


def test_no_keyset_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv(KEYSET_ENV, raising=False)
    path = write(tmp_path, HEAD)
    policy = load_policy(path)
    with pytest.raises(ConfigError) as info:
        resolve_keyset(policy)
    message = str(info.value)
    assert str(path) in message and "keyset" in message and KEYSET_ENV in message and "--keyset" in message
    monkeypatch.setenv(KEYSET_ENV, "/from/env.json")
    assert resolve_keyset(policy) == "/from/env.json"


# --- provenance --------------------------------------------------------------------------------


def test_sha256_is_of_the_file_bytes(tmp_path):
    path = write(tmp_path, HEAD + "# a comment changes the hash, not the meaning\n")
    policy = load_policy(path)
    assert policy.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert policy.source == str(path)
    assert policy.sha256 != load_policy(write(tmp_path, HEAD, "other.yaml")).sha256


def test_sha256_of_a_policy_built_in_code_is_stable():
    first = parse_policy(HEAD)
    assert first._sha256 is None
    assert first.sha256 == parse_policy(HEAD).sha256
    assert len(first.sha256) == 64


# --- no personal value in any message --------------------------------------------------------------


@pytest.mark.parametrize(
    "field_text",
    [
        # a typo next to a value: the unknown key is reported, the value is not
        pytest.param("  email:\n    action: replace\n    value: jane@x.org\n    keep_lst: 2\n", id="typo-by-value"),
        pytest.param("  email:\n    action: mask\n    value: jane@x.org\n", id="value-on-mask"),
        pytest.param("  email:\n    action: replace\n    value: {v: jane@x.org}\n", id="value-not-scalar"),
        pytest.param("  email:\n    action: mask\n    char: jane@x.org\n", id="char"),
        pytest.param("  email:\n    action: keep\n    on_error: jane@x.org\n", id="on_error"),
        pytest.param("  email:\n    action: keep\n    as: jane@x.org\n", id="as"),
        pytest.param("  email:\n    action: pseudonymize\n    domain: jane@x.org\n", id="domain"),
        pytest.param("  email:\n    action: fake\n    provider: jane@x.org\n", id="provider"),
        pytest.param("  email:\n    action: generalize\n    age_bins: [0, 18]\n    at: jane@x.org\n", id="at"),
        pytest.param("  email: jane@x.org\n", id="spec-is-text"),
        pytest.param("  email: [jane@x.org]\n", id="spec-is-list"),
    ],
)
def test_messages_never_echo_a_value(tmp_path, field_text):
    message, path, _ = load_error(tmp_path, HEAD + field_text)
    assert str(path) in message and "fields.email" in message
    assert PERSONAL not in message
    # the wrapped pydantic error (kept as __context__) hides its input too
    with pytest.raises(ValidationError) as info:
        Policy.model_validate(yaml.safe_load(HEAD + field_text))
    assert PERSONAL not in str(info.value)
    assert PERSONAL not in repr(info.value)


@pytest.mark.parametrize(
    "top", ["subject: jane@x.org", "consent: {field: jane@x.org}", "description: [jane@x.org]", "purpose2: jane@x.org"]
)
def test_top_level_messages_never_echo_a_value(tmp_path, top):
    message, _, _ = load_error(tmp_path, HEAD + top + "\n")
    assert PERSONAL not in message


def test_a_policy_that_drops_every_field_is_refused():
    with pytest.raises(ConfigError, match=r"fields.*every field is dropped"):
        parse_policy("version: 1\npurpose: analytics\nfields:\n  email: {action: drop}\n", "p.yaml")


DERIVED = """
version: 1
purpose: support
subject: customer_id
consent: {field: consents}
subject_keys: keys/
fields:
  customer_id: {action: pseudonymize, as: customer_key}
  email: {action: tokenize, as: email_token}
  card: {action: tokenize, method: ff1, keep_last: 4}
  notes: {action: encrypt, per_subject: true}
  note_copy: {action: encrypt}
  phone: {action: mask, keep_last: 2}
  secret: {action: drop}
"""


def test_derived_facts_come_from_the_registry_once():
    policy = parse_policy(DERIVED)
    assert policy.outputs == {
        "customer_key": "customer_id",
        "email_token": "email",
        "card": "card",
        "notes": "notes",
        "note_copy": "note_copy",
        "phone": "phone",
    }
    assert policy.mentioned_fields == {*policy.fields, "consents"}
    assert policy.keyed_outputs == ("customer_key", "email_token", "card", "notes", "note_copy")
    assert policy.reversible_outputs == ("email_token", "card", "notes", "note_copy")
    assert policy.per_subject_outputs == ("notes",)
    assert policy.unversioned_outputs == ("card",)


def test_the_ff1_key_version_rule():
    policy = parse_policy(DERIVED)
    assert policy.recorded_key_version(["email_token"], {}, None) is None  # siv tokens carry their version
    assert policy.recorded_key_version(["card"], {}, 3) == 3  # a pin wins
    assert policy.recorded_key_version(["card"], {"card": {"key_version": 2}}, None) == 2
    with pytest.raises(ConfigError, match="card.*--key-version"):
        policy.recorded_key_version(["card", "email_token"], {}, None)


# ---------------------------------------------------------------- governance metadata


GOVERNED = HEAD + dedent(
    """\
    owner: data-platform@example.com
    legal_basis: contract
    retention: 6m
    reviewed: 2026-11-30
    recipients: [BI dashboards, an auditor]
    """
)


def test_governance_metadata_loads():
    policy = parse_policy(GOVERNED)
    assert policy.owner == "data-platform@example.com" and policy.legal_basis == "contract"
    assert policy.retention == "6m" and policy.reviewed.isoformat() == "2026-11-30"
    assert policy.recipients == ("BI dashboards", "an auditor")


def test_governance_metadata_is_optional():
    policy = parse_policy(HEAD)
    assert (policy.owner, policy.legal_basis, policy.retention, policy.reviewed, policy.recipients) == (
        None,
        None,
        None,
        None,
        (),
    )


@pytest.mark.parametrize("retention", ["90d", "12w", "6m", "2y", "1d", "9999y"])
def test_retention_takes_a_count_and_a_unit(retention):
    assert parse_policy(HEAD + f"retention: {retention}\n").retention == retention


@pytest.mark.parametrize("retention", ["90", "6 months", "0d", "-1y", "1.5y", "6M", "10000d", "d"])
def test_a_bad_retention_names_the_key_and_the_line(tmp_path, retention):
    message, path, text = load_error(tmp_path, HEAD + f"retention: '{retention}'\n")
    assert f"policy {path}: retention (line {line_of(text, 'retention')}): retention is a number and a unit" in message


def test_an_unknown_legal_basis_lists_the_six(tmp_path):
    message, _, _ = load_error(tmp_path, HEAD + "legal_basis: because\n")
    assert "legal_basis" in message
    for basis in ("consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests"):
        assert basis in message


def test_a_bad_review_date(tmp_path):
    message, path, text = load_error(tmp_path, HEAD + "reviewed: last tuesday\n")
    assert f"reviewed (line {line_of(text, 'reviewed')})" in message and "date" in message


def test_legal_basis_consent_needs_a_consent_gate(tmp_path):
    message, path, text = load_error(tmp_path, HEAD + "legal_basis: consent\n")
    assert f"policy {path}: legal_basis (line {line_of(text, 'legal_basis')}): legal_basis: consent needs" in message
    gated = parse_policy(HEAD + "legal_basis: consent\nconsent: {field: consents}\n")
    assert gated.legal_basis == "consent"


def test_a_field_may_carry_a_description_and_a_reason(tmp_path):
    policy = parse_policy(
        HEAD + "  first_name: {action: keep, description: your first name, reason: agents greet you by name}\n"
    )
    spec = policy.fields["first_name"]
    assert (spec.description, spec.reason) == ("your first name", "agents greet you by name")
    message, _, _ = load_error(tmp_path, HEAD + "  first_name: {action: keep, reason: ''}\n")
    assert "fields.first_name.reason" in message


@pytest.mark.parametrize(
    "text, says",
    [
        (HEAD + "reviewed: 2026-32-01\n", "a value cannot be read (month must be in 1..12)"),  # found by fuzzing
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
)
def test_yaml_that_parses_but_cannot_be_built_is_a_config_error(text, says):
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "p.yaml")
    assert str(info.value) == f"policy p.yaml: {says}" or str(info.value).startswith(f"policy p.yaml: {says}")
