"""scrub: nothing detected remains; labels, pseudonyms and masks as specified; counts per field and entity."""

import re
from collections import Counter

import pyarrow as pa
import pytest
from pydantic import ValidationError

from veil.keys.testing import fake_keyring
from veil.transforms.actions.base import BindContext
from veil.transforms.actions.scrub import ScrubParams, key_info
from veil.transforms.detect import ENTITIES, find_entities
from veil.transforms.engine import BoundPlan
from veil.transforms.plan import compile_plan
from veil.transforms.policy import parse_policy
from veil.transforms.registry import REGISTRY

KEYRING = fake_keyring()
ACTION = REGISTRY["scrub"]
NOTE = (
    "Jane Miller (jane.miller@example.com, +44 20 7946 0958) paid with 4111 1111 1111 1111 "
    "from IBAN DE89 3704 0044 0532 0130 00; SSN 123-45-6789; ip 192.168.10.7; see https://ex.com/t/1"
)
ALL = list(ENTITIES)


def scrubber(spec: dict, purpose: str = "support", tally: Counter | None = None):
    params = ScrubParams.model_validate({"action": "scrub", **spec})
    return ACTION.bind(params, BindContext(purpose, "notes", KEYRING, 1, tally=tally))


def test_label_replaces_every_entity_and_nothing_detected_remains():
    out = scrubber({"entities": ALL})(NOTE)
    assert out == ("[PERSON] ([EMAIL], [PHONE]) paid with [CARD] from IBAN [IBAN]; SSN [SSN]; ip [IP]; see [URL]")
    assert find_entities(out, ENTITIES) == []


def test_default_entities_leave_names_and_urls():
    out = scrubber({})(NOTE)
    assert out.startswith("Jane Miller ([EMAIL], [PHONE])") and out.endswith("see https://ex.com/t/1")


def test_pseudonyms_are_keyed_per_purpose_and_equal_for_equal_normalized_spans():
    scrub = scrubber({"replace": "pseudonym"})
    first, second = scrub("mail Jane@Example.com"), scrub("mail  jane@example.com ")
    pseudonym = re.fullmatch(r"mail \[EMAIL:([0-9a-f]{8})\]", first)
    assert pseudonym and second == "mail  " + first[5:] + " "
    expected = KEYRING.prf(key_info("support"), 1).compute(b"email:jane@example.com")[:4].hex()
    assert pseudonym.group(1) == expected
    other = scrubber({"replace": "pseudonym"}, purpose="analytics")("mail Jane@Example.com")
    assert other != first and re.fullmatch(r"mail \[EMAIL:[0-9a-f]{8}\]", other)
    phones = scrub("+1 212 555 1234 or (212) 555-1234")  # one E.164 number written twice
    assert len(set(re.findall(r"\[PHONE:[0-9a-f]{8}\]", phones))) == 1


def test_mask_keeps_length_and_punctuation():
    out = scrubber({"replace": "mask", "char": "#"})("card 4111-1111-1111-1111, mail a.b@c.io")
    assert out == "card ####-####-####-####, mail #.#@#.##"


def test_arrow_kernel_equals_per_value_and_counts_each_row():
    spec = {"entities": ALL, "replace": "pseudonym"}
    texts = [NOTE, None, "nothing here", NOTE, "call 030 12345678", "", "Ünïcode ✓ a@b.de"]
    per_value_tally: Counter = Counter()
    scrub = scrubber(spec, tally=per_value_tally)
    expected = [None if t is None else scrub(t) for t in texts]
    tally: Counter = Counter()
    params = ScrubParams.model_validate({"action": "scrub", **spec})
    kernel = ACTION.bind_arrow(params, BindContext("support", "notes", KEYRING, 1, tally=tally), pa.string())
    out, failed, error = kernel(pa.array(texts, pa.string()))
    assert out.to_pylist() == expected and failed == [] and error is None
    assert tally == per_value_tally
    assert (
        tally["scrubbed.notes.email"] == 3 and tally["scrubbed.notes.phone"] == 3 and tally["scrubbed.notes.card"] == 2
    )


def test_engine_counts_scrubbed_spans_per_field_and_entity():
    policy = parse_policy(
        "version: 1\npurpose: support\nfields:\n  notes: {action: scrub}\n  other: {action: scrub, entities: [ip]}\n"
    )
    plan = compile_plan(policy, pa.schema([("notes", pa.string()), ("other", pa.string())]))
    batch = pa.record_batch({"notes": [NOTE, "a@b.de and c@d.fr", None], "other": ["10.0.0.1 a@b.de", None, "x"]})
    out, counts, _ = BoundPlan(plan, KEYRING).apply_batch(batch)
    assert out.column("other").to_pylist() == ["[IP] a@b.de", None, "x"]
    scrubbed = {k: v for k, v in counts.items() if k.startswith("scrubbed.")}
    assert scrubbed == {
        "scrubbed.notes.email": 3,
        "scrubbed.notes.phone": 1,
        "scrubbed.notes.card": 1,
        "scrubbed.notes.iban": 1,
        "scrubbed.notes.ssn": 1,
        "scrubbed.notes.ip": 1,
        "scrubbed.other.ip": 1,
    }


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"regions": ["XX"]}, "unknown phone region"),
        ({"entities": ["passport"]}, "entities"),
        ({"entities": []}, "at least 1"),
    ],
)
def test_bad_params_are_refused_when_the_policy_loads(spec, message):
    with pytest.raises(ValidationError, match=message):
        ScrubParams.model_validate({"action": "scrub", **spec})
