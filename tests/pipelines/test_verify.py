"""Verification of every output: `veil run --verify`, `veil verify`, and the counts they record.

Small inputs (40 rows); every count is checked against a plain-Python recount of the documented
rules, and no message or manifest entry may hold a raw value.
"""

import base64
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import cli, count_in_text

from veil.keys import init_keyset
from veil.transforms.detect import DEFAULT_ENTITIES, find_entities

ROWS = 40
CARD = "4111 1111 1111 1111"  # Luhn-valid, a Visa test number
NAMES = ["Angela", "Debra", "Ryan", "Mary", "Kenneth"]
LAST = ["Lindqvist", "Okonkwo", "Baker", "Szymborska"]  # outside the detectors' name lists; Baker too short
HEAD = """version: 1
purpose: {purpose}
subject: customer_id
keyset: keyset.json
default: drop
fields:
  customer_id: {{action: pseudonymize, as: customer_key}}
"""


def _note(i: int) -> str:
    if i % 4 == 0:
        return f"Paid with card {CARD} on the phone."
    if i % 4 == 1:
        return f"Wrote to user{i}@example.com about the refund."
    if i % 8 == 2:  # what no detector finds: a customer id and a last name (of other rows too)
        return f"Case of C{(i + 1):05d} ({LAST[i // 8 % len(LAST)]}) reopened."
    return "Asked about delivery times."


def _table() -> pa.Table:
    return pa.table(
        {
            "customer_id": [f"C{i:05d}" for i in range(ROWS)],
            "email": [f"user{i}@example.com" for i in range(ROWS)],
            "first_name": [NAMES[i % len(NAMES)] for i in range(ROWS)],
            "last_name": [LAST[i % len(LAST)] for i in range(ROWS)],
            "zip": [f"{10000 + i * 7}" for i in range(ROWS)],
            "country": ["Germany" if i % 3 else "Austria" for i in range(ROWS)],
            "notes": [_note(i) if i % 10 != 9 else None for i in range(ROWS)],
            "comment": ["see user3@example.com" if i == 5 else "fine" for i in range(ROWS)],
            "summary": [f"Asked about delivery to {'Germany' if i % 3 else 'Austria'}." for i in range(ROWS)],
        }
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
        mp.delenv("VEIL_KEYSET", raising=False)
        init_keyset(str(root / "keyset.json"))
        pq.write_table(_table(), root / "in.parquet")
        yield root


def policy(world: Path, name: str, fields: str) -> Path:
    path = world / f"{name}.yaml"
    path.write_text(HEAD.format(purpose=name) + fields)
    return path


def run(world: Path, policy_path: Path, out: Path, *extra):
    return cli("run", policy_path, "--input", world / "in.parquet", "--output", out, *extra)


def manifest(out: Path) -> dict:
    return json.loads((out / "_manifest.json").read_text())


def raw_texts(world: Path) -> set[str]:
    table = pq.read_table(world / "in.parquet")
    return {v for name in table.column_names for v in table.column(name).to_pylist() if v and len(v) >= 4}


def assert_no_value(text: str, world: Path) -> None:
    leaked = [v for v in raw_texts(world) if v in text]
    assert not leaked, f"raw values in text: {len(leaked)}"


def recount_patterns(out: Path, field: str, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """The pattern check the plain way: the default detectors over every output cell."""
    counts: dict[str, int] = {}
    for text in pq.read_table(out).column(field).to_pylist():
        for span in find_entities(text or "", tuple(e for e in DEFAULT_ENTITIES if e not in skip)):
            counts[span.entity] = counts.get(span.entity, 0) + 1
    return counts


MISTAKES = """  email: {action: replace, value: user7@example.com}
  first_name: {action: generalize, map: {Angela: Angela, Debra: Debra, Ryan: someone}, other: someone}
  last_name: {action: replace, value: C00007}
  notes: {action: scrub, entities: [email]}
  zip: {action: generalize, prefix: 5}
  country: {action: keep}
  comment: {action: keep}
"""


def recount_text(out: Path, field: str, kept: set[str]) -> int:
    """Raw values of the other fields not kept found in a free-text output field: the places."""
    rows = _table().to_pylist()
    values = {r[f] for r in rows for f in r if f not in kept | {field} and r[f] and len(r[f]) >= 4}
    exempt = {r[f] for r in rows for f in kept if r[f]}
    return count_in_text(pq.read_table(out).column(field).to_pylist(), values, exempt)


def expected_mistakes(world: Path, warned: Path) -> dict:
    """The findings of MISTAKES, recounted with sets and loops: whole cells from the input, the free
    text from the scrubbed notes `warned` published."""
    table = _table().to_pylist()
    kept = {r["country"] for r in table} | {r["comment"] for r in table}
    customers = {r["customer_id"] for r in table}
    raw_values = {
        "email": sum(1 for r in table if r["email"]) if "user7@example.com" not in kept else 0,  # every cell
        "first_name": sum(1 for r in table if r["first_name"] in ("Angela", "Debra")),  # mapped to themselves
        "last_name": ROWS if "C00007" in customers - kept else 0,  # another field's value, in every cell
        "notes": recount_text(warned, "notes", {"country", "comment"}),
        "zip": sum(1 for r in table if r["zip"] not in kept),  # prefix 5 of 5 digits: the value itself
        "comment": recount_text(warned, "comment", {"country", "comment"}),  # kept: a warning
    }
    return {"raw_values": {name: n for name, n in raw_values.items() if n}}


@pytest.fixture(scope="module")
def warned(world):
    out = world / "warned"
    result = run(world, policy(world, "mistakes", MISTAKES), out, "--verify", "warn")
    return out, result


def test_fail_mode_refuses_and_publishes_nothing(world, warned):
    out = world / "refused"
    result = run(world, policy(world, "mistakes", MISTAKES), out)
    assert result.code == 2, result.err
    assert "nothing was published" in result.err and result.err.count("\n") == 1
    expected = expected_mistakes(world, warned[0])["raw_values"]
    assert expected["last_name"] == ROWS and expected["notes"] > 0  # across fields, inside the scrubbed text
    for name, n in expected.items():
        if name != "comment":
            assert f"raw values in {name} ({n})" in result.err
    cards = sum(1 for i in range(ROWS) if i % 10 != 9 and i % 4 == 0)
    assert f"patterns in notes (card {cards})" in result.err
    assert "comment" not in result.err and "country" not in result.err  # kept fields: warnings only
    assert_no_value(result.err, world)
    assert not (out / "_manifest.json").exists() and not list(out.glob("part-*"))


def test_warn_mode_publishes_with_counts_equal_to_a_recount(world, warned):
    out, result = warned
    assert result.code == 0, result.err
    entry = manifest(out)["verify"]
    assert entry["mode"] == "warn"
    assert entry["raw_values"] == expected_mistakes(world, out)["raw_values"]
    assert entry["patterns"]["notes"] == recount_patterns(out, "notes")
    assert entry["patterns"]["email"] == recount_patterns(out, "email")  # the replacement is an email
    assert entry["patterns"]["comment"] == {"email": 1}  # a kept field: a warning, not a refusal
    assert entry["raw_values"]["comment"] == 1  # an email of the email field inside kept free text
    assert "comment" in entry["warnings"] and "comment" not in entry["refused"]
    assert entry["cells_checked"] > 0
    assert_no_value(json.dumps(entry), world)
    assert "published: --verify warn" in result.err


CLEAN = """  email: {action: pseudonymize}
  first_name: {action: generalize, map: {Angela: A, Debra: D}, other: other}
  summary: {action: scrub}
  zip: {action: generalize, prefix: 3}
  country: {action: keep}
"""


@pytest.fixture(scope="module")
def clean(world):
    out = world / "clean"
    result = run(world, policy(world, "clean", CLEAN), out)
    return out, result


def test_clean_run_records_zero_findings(clean):
    out, result = clean
    assert result.code == 0, result.err
    entry = manifest(out)["verify"]
    assert entry["mode"] == "fail" and entry["raw_values"] == {} and entry["patterns"] == {}
    assert set(entry["checked"]["raw_values"]) == {"customer_key", "email", "first_name", "summary"}  # zip3: short
    assert "summary" in entry["checked"]["patterns"]
    assert recount_text(out, "summary", {"country"}) == 0  # the countries in it: a kept field's values
    assert entry["cells_checked"] > 0
    assert "clean: verified" in result.err and "no raw input values" in result.err


def test_a_kept_value_in_text_is_exempt_and_only_then(world):
    out = world / "unkept"
    fields = CLEAN.replace("country: {action: keep}", "country: {action: drop}")
    result = run(world, policy(world, "unkept", fields), out, "--verify", "warn")
    assert result.code == 0, result.err
    expected = recount_text(out, "summary", set())
    assert expected == ROWS  # each summary names a country, a raw value of a field no longer kept
    assert manifest(out)["verify"]["raw_values"] == {"summary": expected}


def test_off_records_the_mode_only(world):
    out = world / "off"
    result = run(world, policy(world, "mistakes", MISTAKES), out, "--verify", "off")
    assert result.code == 0, result.err
    assert manifest(out)["verify"] == {"mode": "off"}


def test_two_workers_count_as_one(world, warned):
    one, two = warned[0], world / "two"
    path = policy(world, "mistakes", MISTAKES)
    multi = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
    result = run(world, path, two, "--verify", "warn", *multi)
    assert result.code == 0, result.err
    first, second = manifest(one)["verify"], manifest(two)["verify"]
    assert first == second and first["raw_values"]["notes"]


def test_format_preserving_tokens_are_not_card_findings(world):
    cards = [f"4{i:011d}1111" for i in range(30)]  # card-shaped: so are their tokens
    table = pa.table({"customer_id": [f"C{i}" for i in range(30)], "card": cards})
    pq.write_table(table, world / "cards.parquet")
    fields = "  card: {action: tokenize, method: ff1, alphabet: digits, keep_last: 4}\n"
    out = world / "ff1"
    result = cli("run", policy(world, "ff1", fields), "--input", world / "cards.parquet", "--output", out)
    assert result.code == 0, result.err
    entry = manifest(out)["verify"]
    assert "card" in entry["checked"]["raw_values"] and "card" not in entry["checked"]["patterns"]


def test_veil_verify_checks_an_existing_output(world, clean):
    out = world / "existing"
    path = policy(world, "mistakes", MISTAKES)
    assert run(world, path, out, "--verify", "off").code == 0
    result = cli("verify", out, "--input", world / "in.parquet", "--policy", path, "--json")
    assert result.code == 2 and "verification found" in result.err
    entry = json.loads(result.out)
    assert entry["raw_values"] == expected_mistakes(world, out)["raw_values"]
    assert entry["patterns"]["notes"] == recount_patterns(out, "notes")
    assert_no_value(result.out + result.err, world)
    result = cli("verify", clean[0], "--input", world / "in.parquet", "--policy", world / "clean.yaml")
    assert result.code == 0, result.err
    assert "no raw input values" in result.out
