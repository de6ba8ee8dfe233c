"""The notice's sentences: one per field action (with its main settings), per legal basis, per entity."""

from typing import get_args

import pytest
from pydantic import TypeAdapter

from veil.pipelines.governance.wording import (
    ENTITY_WORDS,
    LEGAL_BASES,
    SENTENCES,
    field_noun,
    legal_basis_text,
    protection,
)
from veil.transforms.actions.generalize import VARIANTS
from veil.transforms.detect import Entity
from veil.transforms.policy import LegalBasis
from veil.transforms.registry import REGISTRY, FieldSpec

SPEC = TypeAdapter(FieldSpec)
NOUN = "your email address"

# (settings, phrases the sentence must hold): every action, every generalize variant, the main settings.
CASES = [
    ({"action": "keep"}, ["Your email address is used as it is."]),
    ({"action": "drop"}, ["Your email address is not used", "before the data reaches support"]),
    ({"action": "redact"}, ["blanked out", "nothing of it is used"]),
    ({"action": "replace", "value": "n/a"}, ["the same fixed value for everyone", "“n/a”"]),
    ({"action": "replace", "value": 0}, ["“0”"]),
    ({"action": "mask", "keep_last": 4}, ["Only the last 4 characters of your email address are shown", "hidden"]),
    ({"action": "mask", "keep_first": 1}, ["Only the first character of your email address is shown"]),
    ({"action": "mask", "keep_first": 2, "keep_last": 3}, ["the first 2 characters and the last 3 characters"]),
    ({"action": "mask", "char": "#"}, ["every character is replaced by “#”", "only the length shows"]),
    ({"action": "pseudonymize"}, ["replaced by a code that cannot be turned back into your email address", "support"]),
    (
        {"action": "tokenize", "method": "siv"},
        ["encrypted token", "Only the support team can turn it back, and every time that is logged"],
    ),
    (
        {"action": "tokenize", "method": "ff1", "alphabet": "digits", "keep_last": 4},
        ["same length and format", "except the last 4 characters", "only the support team can turn it back"],
    ),
    ({"action": "tokenize", "method": "ff1", "alphabet": "digits"}, ["same length and format;"]),
    ({"action": "encrypt"}, ["encrypted; only the support team can read it, and every reading is logged"]),
    ({"action": "encrypt", "per_subject": True}, ["a key of your own", "erasure", "every copy unreadable"]),
    (
        {"action": "generalize", "age_bins": [0, 18, 65], "at": "2026-01-01"},
        ["reduced to an age band (0-17, 18-64, 65+)", "1 January 2026"],
    ),
    ({"action": "generalize", "bins": [0, 100, 1000]}, ["reduced to a range (<0, 0-99, 100-999, 1000+)"]),
    ({"action": "generalize", "width": 10000}, ["rounded down to a multiple of 10,000"]),
    ({"action": "generalize", "width": 0.5}, ["rounded down to a multiple of 0.5"]),
    ({"action": "generalize", "date": "year"}, ["Only the year of your email address is kept."]),
    ({"action": "generalize", "date": "quarter"}, ["Only the quarter and year"]),
    ({"action": "generalize", "date": "month"}, ["Only the month and year", "the day and time are removed"]),
    ({"action": "generalize", "date": "week"}, ["Only the week"]),
    ({"action": "generalize", "prefix": 3}, ["Only the first 3 characters of your email address are kept."]),
    ({"action": "generalize", "prefix": 1}, ["Only the first character of your email address is kept."]),
    ({"action": "generalize", "map": {"a": "x", "b": "y"}, "other": "z"}, ["a broader category (one of 3)"]),
    ({"action": "generalize", "map": {"a": "x", "b": "x"}}, ["(one of 1)"]),
    ({"action": "generalize", "round": 2}, ["rounded to 2 decimal places"]),
    ({"action": "generalize", "round": 1}, ["rounded to 1 decimal place."]),
    ({"action": "generalize", "round": 0}, ["rounded to a whole number"]),
    ({"action": "generalize", "round": -3}, ["rounded to the nearest 1,000"]),
    ({"action": "date_shift", "max_days": 30}, ["secret number of days, up to 30 either way", "all of your dates"]),
    ({"action": "fake", "provider": "first_name"}, ["replaced by a made-up first name", "the same stand-in"]),
    (
        {"action": "scrub", "entities": ["email", "person"], "replace": "label"},
        ["kept as free text, but email addresses and names of people found in it are removed", "[EMAIL]"],
    ),
    ({"action": "scrub", "replace": "pseudonym"}, ["phone numbers", "IP addresses", "replaced by a code"]),
    ({"action": "scrub", "replace": "mask"}, ["masked character by character"]),
]


@pytest.mark.parametrize(("settings", "phrases"), CASES, ids=[str(sorted(c[0].items())) for c in CASES])
def test_each_action_has_a_sentence_with_its_main_settings(settings, phrases):
    sentence = protection(SPEC.validate_python(settings), NOUN, "support")
    for phrase in phrases:
        assert phrase in sentence
    assert sentence[0].isupper() and sentence.endswith(".")
    assert "{" not in sentence and "None" not in sentence


def test_every_action_and_every_generalization_is_covered():
    assert set(SENTENCES) == set(REGISTRY)
    assert {settings["action"] for settings, _ in CASES} == set(REGISTRY)
    variants = {
        name for settings, _ in CASES if settings["action"] == "generalize" for name in VARIANTS if name in settings
    }
    assert variants == set(VARIANTS)


def test_plural_nouns_agree():
    notes = "the notes of your support cases"
    assert protection(SPEC.validate_python({"action": "encrypt"}), notes, "support").startswith(
        "The notes of your support cases are encrypted; only the support team can read them,"
    )
    assert "found in them are removed" in protection(SPEC.validate_python({"action": "scrub"}), notes, "quality")
    assert protection(SPEC.validate_python({"action": "keep"}), "your address", "x") == "Your address is used as it is."


def test_field_nouns_come_from_the_description_else_the_name():
    assert field_noun("email", "the address we write to") == "the address we write to"
    assert field_noun("signup_ts") == "your signup time"
    assert field_noun("customer_id") == "your customer ID"
    assert field_noun("zip") == "your ZIP code"


def test_every_detector_entity_has_words():
    assert set(ENTITY_WORDS) == set(get_args(Entity))


def test_every_legal_basis_is_explained_with_its_gdpr_letter():
    assert list(LEGAL_BASES) == list(get_args(LegalBasis))
    assert [letter for letter, _, _ in LEGAL_BASES.values()] == list("abcdef")
    assert legal_basis_text("consent").startswith("Your consent (GDPR Art. 6(1)(a)).")
    assert "withdraw" in legal_basis_text("consent")
    assert "object" in legal_basis_text("legitimate_interests")
    assert legal_basis_text("contract").startswith("A contract with you (GDPR Art. 6(1)(b)).")
    assert legal_basis_text(None) == "No legal basis is recorded for this use."
