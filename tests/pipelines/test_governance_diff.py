"""`veil diff`: a table of (old, new) policy changes, each with the verdict it must get; exit codes, JSON."""

import json

import pytest
import yaml
from helpers import cli

from veil.pipelines.governance.diff import LESS, MORE, SAME, diff_policies
from veil.pipelines.governance.exposure import TIERS, tier_of
from veil.transforms.policy import parse_policy
from veil.transforms.registry import REGISTRY

KEY = {"action": "pseudonymize", "domain": "customer", "as": "customer_key"}


def policy(value=None, *, fields=None, **settings):
    """A policy with `customer_id` pseudonymized and input field `value` as given (None: not named)."""
    named = {"customer_id": KEY, **({"value": value} if value is not None else {}), **(fields or {})}
    doc = {"version": 1, "purpose": "analytics", "subject": "customer_id", "keyset": "k.json", "fields": named}
    return parse_policy(yaml.safe_dump({**doc, **settings}), "test.yaml")


def gen(**settings):
    return {"action": "generalize", **settings}


def ages(edges, at="2026-01-01"):
    return gen(age_bins=edges, at=at)


KEEP, DROP = {"action": "keep"}, {"action": "drop"}
SIV = {"action": "tokenize", "method": "siv"}
FF1 = {"action": "tokenize", "method": "ff1", "alphabet": "digits"}
ENCRYPT = {"action": "encrypt"}
MAP2 = {"a": "x", "b": "x", "c": "z"}

# (old action of `value`, new action, verdict); None: the policy does not name the field
FIELD_CASES = {
    # drop (or not named) -> anything
    "drop -> keep": (DROP, KEEP, MORE),
    "not named -> mask": (None, {"action": "mask", "keep_last": 2}, MORE),
    "not named -> redact": (None, {"action": "redact"}, MORE),
    "keep -> drop": (KEEP, DROP, LESS),
    "keep -> not named": (KEEP, None, LESS),
    "drop -> not named": (DROP, None, SAME),
    # one-way -> reversible, and up the order
    "pseudonymize -> siv": ({"action": "pseudonymize"}, SIV, MORE),
    "generalize -> encrypt": (gen(prefix=3), ENCRYPT, MORE),
    "scrub -> encrypt": ({"action": "scrub"}, ENCRYPT, MORE),
    "encrypt -> siv": (ENCRYPT, SIV, MORE),
    "siv -> ff1": (SIV, FF1, MORE),
    "ff1 -> keep": (FF1, KEEP, MORE),
    "siv -> pseudonymize": (SIV, {"action": "pseudonymize"}, LESS),
    "replace -> pseudonymize": ({"action": "replace", "value": "x"}, {"action": "pseudonymize"}, MORE),
    # one step, two actions
    "redact -> replace": ({"action": "redact"}, {"action": "replace", "value": "x"}, SAME),
    "pseudonymize -> fake": ({"action": "pseudonymize"}, {"action": "fake", "provider": "first_name"}, SAME),
    "generalize -> mask": (gen(prefix=3), {"action": "mask", "keep_first": 3}, MORE),
    # generalize finer or coarser
    "prefix 3 -> 4": (gen(prefix=3), gen(prefix=4), MORE),
    "prefix 4 -> 3": (gen(prefix=4), gen(prefix=3), LESS),
    "width 10000 -> 5000": (gen(width=10000), gen(width=5000), MORE),
    "width 5000 -> 10000": (gen(width=5000), gen(width=10000), LESS),
    "round 1 -> 2": (gen(round=1), gen(round=2), MORE),
    "date year -> month": (gen(date="year"), gen(date="month"), MORE),
    "date week -> quarter": (gen(date="week"), gen(date="quarter"), LESS),
    "bins split": (gen(bins=[0, 10, 20]), gen(bins=[0, 10, 15, 20]), MORE),
    "fewer bins": (gen(bins=[0, 10, 20]), gen(bins=[0, 20]), LESS),
    "bin edges moved": (gen(bins=[0, 10, 20]), gen(bins=[0, 15]), MORE),
    "age_bins finer": (ages([0, 18, 65]), ages([0, 18, 35, 65]), MORE),
    "age_bins coarser": (ages([0, 18, 65]), ages([0, 65]), LESS),
    "age_bins on another day": (ages([0, 18]), ages([0, 18], at="2027-01-01"), SAME),
    "map splits a group": (gen(map=MAP2, other="o"), gen(map={**MAP2, "b": "y"}, other="o"), MORE),
    "map merges groups": (gen(map=MAP2, other="o"), gen(map={**MAP2, "c": "x"}, other="o"), LESS),
    "map relabelled": (gen(map=MAP2, other="o"), gen(map={"a": "X", "b": "X", "c": "Z"}, other="O"), SAME),
    "prefix -> width": (gen(prefix=3), gen(width=10), MORE),
    # mask, ff1, date_shift, scrub settings
    "mask keeps more": ({"action": "mask", "keep_last": 2}, {"action": "mask", "keep_last": 4}, MORE),
    "mask keeps fewer": ({"action": "mask", "keep_first": 2}, {"action": "mask", "keep_first": 1}, LESS),
    "mask moves what it keeps": ({"action": "mask", "keep_first": 2}, {"action": "mask", "keep_last": 1}, MORE),
    "mask char": ({"action": "mask", "keep_last": 2}, {"action": "mask", "keep_last": 2, "char": "#"}, SAME),
    "ff1 keeps the last 4": (FF1, {**FF1, "keep_last": 4}, MORE),
    "ff1 smaller alphabet": ({**FF1, "alphabet": "alnum"}, FF1, MORE),
    "ff1 larger alphabet": (FF1, {**FF1, "alphabet": "alnum"}, LESS),
    "date_shift less noise": ({"action": "date_shift", "max_days": 30}, {"action": "date_shift", "max_days": 10}, MORE),
    "date_shift more noise": ({"action": "date_shift", "max_days": 10}, {"action": "date_shift", "max_days": 30}, LESS),
    "scrub label -> pseudonym": ({"action": "scrub"}, {"action": "scrub", "replace": "pseudonym"}, MORE),
    "scrub looks for less": ({"action": "scrub"}, {"action": "scrub", "entities": ["email"]}, MORE),
    "scrub looks for more": ({"action": "scrub", "entities": ["email"]}, {"action": "scrub"}, LESS),
    # no exposure change
    "unchanged": (gen(prefix=3), gen(prefix=3), SAME),
    "renamed": (gen(prefix=3), gen(prefix=3, **{"as": "value3"}), SAME),
    "notes only": (KEEP, {**KEEP, "reason": "needed", "description": "a value"}, SAME),
    "on_error": (SIV, {**SIV, "on_error": "drop_record"}, SAME),
    "pseudonym length": ({"action": "pseudonymize"}, {"action": "pseudonymize", "length": 32}, SAME),
}


@pytest.mark.parametrize("old, new, verdict", FIELD_CASES.values(), ids=FIELD_CASES.keys())
def test_field_verdicts(old, new, verdict):
    entry = diff_policies(policy(old), policy(new)).fields["value"]
    assert entry.verdict == verdict, entry.reason
    assert entry.reason
    assert diff_policies(policy(old), policy(new)).fields["customer_id"].verdict == SAME


def test_per_subject_encryption_dropped_is_more_exposed():
    keys = {"subject_keys": "subject-keys/"}
    per_subject = policy({"action": "encrypt", "per_subject": True}, **keys)
    shared = policy(ENCRYPT, **keys)
    assert diff_policies(per_subject, shared).fields["value"].verdict == MORE
    assert diff_policies(shared, per_subject).fields["value"].verdict == LESS


def test_a_shared_pseudonymize_domain_is_more_exposed():
    own = policy({"action": "pseudonymize", "domain": "referrer"})
    shared = policy({"action": "pseudonymize", "domain": "customer"})
    entry = diff_policies(own, shared).fields["value"]
    assert entry.verdict == MORE and "customer_id" in entry.reason and "joined" in entry.reason
    assert diff_policies(shared, own).fields["value"].verdict == LESS
    # a tokenize domain is another key: sharing the name links nothing
    token = policy({"action": "tokenize", "domain": "customer"})
    assert diff_policies(own, token).fields["value"].reason.count("joined") == 0


K = {"k": 5, "quasi_identifiers": ["zip3", "age_band"]}
QI_FIELDS = {
    "zip": gen(prefix=3, **{"as": "zip3"}),
    "birth_date": gen(age_bins=[0, 18, 65], at="2026-01-01", **{"as": "age_band"}),
}


def test_a_quasi_identifier_added_without_k_is_more_exposed():
    old = policy(fields=QI_FIELDS, k_anonymity=K)
    new = policy(fields={**QI_FIELDS, "gender": KEEP}, k_anonymity=K)
    entry = diff_policies(old, new).fields["gender"]
    assert entry.verdict == MORE and "quasi-identifier" in entry.reason
    # the same action, but no longer counted by k: more exposed though the action did not change
    renamed = {**QI_FIELDS, "zip": gen(prefix=3, **{"as": "zip_prefix"})}
    uncovered = policy(fields=renamed, k_anonymity={"k": 5, "quasi_identifiers": ["age_band"]})
    entry = diff_policies(old, uncovered).fields["zip"]
    assert entry.verdict == MORE and "no longer covered by k_anonymity" in entry.reason
    assert diff_policies(uncovered, old).fields["zip"].verdict == LESS


def _setting(old, new, name):
    return dict(diff_policies(old, new).policy)[name]


CONSENT = {"consent": {"field": "consents"}}
POLICY_CASES = {
    "k lowered": ({"k_anonymity": K}, {"k_anonymity": {**K, "k": 3}}, "k_anonymity.k", MORE),
    "k raised": ({"k_anonymity": K}, {"k_anonymity": {**K, "k": 10}}, "k_anonymity.k", LESS),
    "k removed": ({"k_anonymity": K}, {}, "k_anonymity.k", MORE),
    "k added": ({}, {"k_anonymity": K}, "k_anonymity.k", LESS),
    "quasi-identifier removed from k": (
        {"k_anonymity": K},
        {"k_anonymity": {**K, "quasi_identifiers": ["age_band"]}},
        "k_anonymity.quasi_identifiers",
        MORE,
    ),
    "k met another way": ({"k_anonymity": K}, {"k_anonymity": {**K, "on_violation": "fail"}}, "k_anonymity", SAME),
    "l lowered": (
        {"k_anonymity": K, "l_diversity": {"l": 3, "sensitive": ["customer_key"]}},
        {"k_anonymity": K, "l_diversity": {"l": 2, "sensitive": ["customer_key"]}},
        "l_diversity.l",
        MORE,
    ),
    "consent gate removed": (CONSENT, {}, "consent", MORE),
    "consent gate added": ({}, CONSENT, "consent", LESS),
    "consent from a table": (CONSENT, {"consent": {"table": "consents/"}}, "consent", SAME),
    "erasure removed": ({"erasure": {"table": "erasures/"}}, {}, "erasure", MORE),
    "retention lengthened": ({"retention": "90d"}, {"retention": "1y"}, "retention", MORE),
    "retention shortened": ({"retention": "6m"}, {"retention": "90d"}, "retention", LESS),
    "retention removed": ({"retention": "6m"}, {}, "retention", MORE),
    "retention 12w -> 84d": ({"retention": "12w"}, {"retention": "84d"}, "retention", SAME),
    "recipients added": ({"recipients": ["bi"]}, {"recipients": ["bi", "ad network"]}, "recipients", MORE),
    "default error -> drop": ({"default": "error"}, {"default": "drop"}, "default", SAME),
}


@pytest.mark.parametrize("old, new, setting, verdict", POLICY_CASES.values(), ids=POLICY_CASES.keys())
def test_policy_verdicts(old, new, setting, verdict):
    before, after = policy(fields=QI_FIELDS, **old), policy(fields=QI_FIELDS, **new)
    entry = _setting(before, after, setting)
    assert entry.verdict == verdict, entry.reason
    assert diff_policies(before, after).more_exposed == (verdict == MORE)


def test_an_unchanged_policy_lists_no_settings():
    same = policy(fields=QI_FIELDS, k_anonymity=K, retention="90d")
    result = diff_policies(same, same)
    assert result.policy == [] and not result.more_exposed
    assert {entry.verdict for entry in result.fields.values()} == {SAME}


def test_every_action_has_a_step_in_the_order():
    assert [tier.rank for tier in TIERS] == list(range(len(TIERS)))
    samples = {
        "replace": {"value": "x"},
        "generalize": {"prefix": 1},
        "date_shift": {"max_days": 1},
        "fake": {"provider": "first_name"},
    }
    for name, action in REGISTRY.items():
        spec = action.params.model_validate({"action": name, **samples.get(name, {})})
        assert tier_of(spec) in TIERS


def write(path, spec=None, **settings):
    doc = {"version": 1, "purpose": "analytics", "keyset": "k.json", "fields": {"value": spec or KEEP}}
    path.write_text(yaml.safe_dump({**doc, **settings}))
    return path


def test_exit_codes(tmp_path):
    old = write(tmp_path / "old.yaml", gen(prefix=3), default="error")
    finer = write(tmp_path / "finer.yaml", gen(prefix=4), default="error")
    drop_default = write(tmp_path / "drop.yaml", gen(prefix=3), default="drop")
    coarser = write(tmp_path / "coarser.yaml", gen(prefix=2))
    assert cli("diff", old, finer).code == 3
    same = cli("diff", old, drop_default)
    assert same.code == 0 and "nothing is more exposed" in same.out
    assert cli("diff", old, coarser).code == 0
    (tmp_path / "bad.yaml").write_text("version: 1\npurpose: analytics\nfields: {value: {action: hash}}\n")
    bad = cli("diff", old, tmp_path / "bad.yaml")
    assert bad.code == 2
    assert bad.err.startswith("error: policy ") and "unknown action 'hash'" in bad.err
    assert len(bad.err.strip().splitlines()) == 1


def test_json_shape(tmp_path):
    old = write(tmp_path / "old.yaml", gen(width=10000), retention="90d")
    new = write(tmp_path / "new.yaml", gen(width=5000), retention="1y")
    result = cli("diff", old, new, "--json")
    assert result.code == 3
    doc = json.loads(result.out)
    assert set(doc) == {"fields", "policy", "more_exposed"} and doc["more_exposed"] is True
    assert doc["fields"]["value"] == {
        "old": {"action": "generalize", "width": 10000},
        "new": {"action": "generalize", "width": 5000},
        "verdict": "more exposed",
        "reason": "width 10000 -> 5000: finer, values the old policy grouped are told apart",
    }
    assert doc["policy"] == [
        {
            "setting": "retention",
            "old": "90d",
            "new": "1y",
            "verdict": "more exposed",
            "reason": "retention lengthened: 90 days -> 1 year",
        }
    ]
