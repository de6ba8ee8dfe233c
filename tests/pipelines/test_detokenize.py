"""`veil detokenize` end to end: round trips, tampering, wrong purposes, rotation, the audit log."""

import base64
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import cli as run_cli

from veil.keys import init_keyset, rotate_keyset
from veil.pipelines.synthetic import synthetic_customers, write_customers

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "configs" / "support.yaml"
ROWS = 120


def cli(*args) -> tuple[int, str]:
    result = run_cli(*args)
    return result.code, result.err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("detokenize")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
        mp.delenv("VEIL_KEYSET", raising=False)
        init_keyset(str(root / "keyset.json"))
        write_customers(str(root / "in.parquet"), ROWS)
        assert (
            cli(
                "run",
                SUPPORT,
                "--input",
                root / "in.parquet",
                "--output",
                root / "view",
                "--keyset",
                root / "keyset.json",
            )[0]
            == 0
        )
        yield root


def detokenize(world, source, output, fields, *extra, policy=SUPPORT):
    return cli(
        "detokenize",
        policy,
        "--input",
        source,
        "--output",
        output,
        "--fields",
        fields,
        "--keyset",
        world / "keyset.json",
        *extra,
    )


def raw_by_customer() -> dict[str, dict]:
    return {row["customer_id"]: row for row in synthetic_customers(ROWS).to_pylist()}


def audit_lines(world) -> list[dict]:
    return [json.loads(line) for line in (world / "audit.jsonl").read_text().splitlines()]


def test_siv_and_encrypt_round_trip_to_the_input_values(world, tmp_path):
    code, err = detokenize(world, world / "view", tmp_path / "out", "customer_token,email_token,notes")
    assert code == 0, err
    restored = pq.read_table(tmp_path / "out").to_pylist()
    raw = raw_by_customer()
    consenting = [r for r in raw.values() if r["consents"] and "support" in r["consents"]]
    assert len(restored) == len(consenting) > 0
    for row in restored:
        source = raw[row["customer_id"]]
        assert row["email"] == source["email"].strip().lower()  # the policy normalizes before tokenizing
        assert row["notes"] == source["notes"]
    assert {"customer_token", "email_token"}.isdisjoint(restored[0])
    assert set(restored[0]) >= {"customer_id", "email", "notes", "phone", "last_name"}  # others pass through
    summary = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert summary["counts"]["restored"]["customer_token"] == len(consenting)
    assert summary["counts"]["failed"] == {}


def _tamper(world, target: Path) -> int:
    """A copy of the view with one notes ciphertext altered; returns how many values were altered."""
    shutil.copytree(world / "view", target)
    part = next(target.glob("part-*.parquet"))
    table = pq.read_table(part)
    notes = table.column("notes").to_pylist()
    index = next(i for i, v in enumerate(notes) if v)
    text = notes[index]
    notes[index] = text[:-2] + ("AA" if text[-2:] != "AA" else "BB")
    table = table.set_column(table.schema.get_field_index("notes"), "notes", pa.array(notes, pa.string()))
    pq.write_table(table, part)
    return 1


def test_tampered_ciphertext_fails_the_job_and_writes_nothing(world, tmp_path):
    altered = _tamper(world, tmp_path / "tampered")
    code, err = detokenize(world, tmp_path / "tampered", tmp_path / "out", "notes")
    assert code == 2
    assert err.startswith("error:") and f"field 'notes': {altered} value failed authentication" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert audit_lines(world)[-1]["outcome"] == "failed"


def test_tampered_ciphertext_becomes_null_and_is_counted_with_on_error_null(world, tmp_path):
    altered = _tamper(world, tmp_path / "tampered")
    code, err = detokenize(world, tmp_path / "tampered", tmp_path / "out", "notes", "--on-error", "null")
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert summary["counts"]["failed"] == {"notes": altered}
    tokens = pq.read_table(tmp_path / "tampered").column("notes").to_pylist()
    restored = pq.read_table(tmp_path / "out").column("notes").to_pylist()
    assert sum(1 for t in tokens if t) - sum(1 for r in restored if r) == altered


def test_another_purposes_policy_cannot_detokenize(world, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(SUPPORT.read_text().replace("purpose: support", "purpose: billing"))
    code, err = detokenize(world, world / "view", tmp_path / "out", "email_token", policy=other)
    assert code == 2 and "made for purpose 'support', not 'billing'" in err
    # without the manifest to say so, the tokens themselves refuse: their keys and bindings differ
    shutil.copytree(world / "view", tmp_path / "bare")
    (tmp_path / "bare" / "_manifest.json").unlink()
    code, err = detokenize(world, tmp_path / "bare", tmp_path / "out", "email_token,notes", policy=other)
    assert code == 2 and "failed authentication" in err


def test_fields_that_cannot_be_reversed_are_refused(world, tmp_path):
    code, err = detokenize(world, world / "view", tmp_path / "out", "phone")
    assert code == 2 and "'phone' was made by mask, which cannot be reversed" in err
    code, err = detokenize(world, world / "view", tmp_path / "out", "nonexistent")
    assert code == 2 and "'nonexistent' is not an output field" in err


def test_the_audit_log_records_each_use_and_no_values(world, tmp_path):
    before = len(audit_lines(world))
    assert detokenize(world, world / "view", tmp_path / "out", "email_token")[0] == 0
    lines = audit_lines(world)
    assert len(lines) == before + 1
    last = lines[-1]
    assert last["event"] == "detokenize" and last["outcome"] == "ok" and last["purpose"] == "support"
    assert last["fields"] == ["email_token"] and last["who"] and last["at"].endswith("Z")
    assert last["policy_sha256"] == __import__("hashlib").sha256(SUPPORT.read_bytes()).hexdigest()
    text = (world / "audit.jsonl").read_text()
    for row in synthetic_customers(ROWS).to_pylist():
        for value in (row["email"].strip().lower(), row["customer_id"], row["notes"]):
            assert not value or value not in text


def test_data_made_before_a_rotation_still_detokenizes(tmp_path, monkeypatch):
    monkeypatch.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    keyset = tmp_path / "keyset.json"
    init_keyset(str(keyset))
    write_customers(str(tmp_path / "in.parquet"), 40)
    run = ["run", SUPPORT, "--input", tmp_path / "in.parquet", "--keyset", keyset]
    assert cli(*run, "--output", tmp_path / "v1")[0] == 0
    rotate_keyset(str(keyset))
    assert cli(*run, "--output", tmp_path / "v2")[0] == 0
    first, second = (pq.read_table(tmp_path / v).column("email_token").to_pylist() for v in ("v1", "v2"))
    assert all(t.startswith("v1.") for t in first) and all(t.startswith("v2.") for t in second)
    assert set(first).isdisjoint(second)  # unpinned policies moved to the new primary
    for view in ("v1", "v2"):
        code, err = cli(
            "detokenize",
            SUPPORT,
            "--input",
            tmp_path / view,
            "--output",
            tmp_path / f"r{view}",
            "--fields",
            "email_token",
            "--keyset",
            keyset,
        )
        assert code == 0, err
    restored = [pq.read_table(tmp_path / f"r{v}").column("email").to_pylist() for v in ("v1", "v2")]
    assert restored[0] == restored[1] and all(restored[0])
    # a policy pinned to key_version 1 reproduces exactly the tokens made before the rotation
    pinned = tmp_path / "pinned.yaml"
    pinned.write_text(SUPPORT.read_text().replace("\ndefault: error", "\ndefault: error\nkey_version: 1", 1))
    code, err = cli("run", pinned, "--input", tmp_path / "in.parquet", "--keyset", keyset, "--output", tmp_path / "p")
    assert code == 0, err
    assert pq.read_table(tmp_path / "p").column("email_token").to_pylist() == first
    manifest = json.loads((tmp_path / "p" / "_manifest.json").read_text())
    assert manifest["fields"]["email_token"]["key_version"] == 1


def test_ff1_round_trips_with_the_key_version_from_the_manifest(world, tmp_path):
    tokens = pq.read_table(world / "view").to_pylist()
    raw = raw_by_customer()
    code, err = detokenize(world, world / "view", tmp_path / "out", "card_number,customer_token")
    assert code == 0, err
    restored = pq.read_table(tmp_path / "out").to_pylist()
    assert [r["card_number"] for r in restored] == [raw[r["customer_id"]]["card_number"] for r in restored]
    assert all(t["card_number"][-4:] == r["card_number"][-4:] for t, r in zip(tokens, restored))
    assert all(t["card_number"] != r["card_number"] for t, r in zip(tokens, restored))


def test_ff1_without_a_manifest_needs_the_key_version(world, tmp_path):
    shutil.copytree(world / "view", tmp_path / "bare")
    (tmp_path / "bare" / "_manifest.json").unlink()
    code, err = detokenize(world, tmp_path / "bare", tmp_path / "out", "card_number")
    assert code == 2 and "--key-version" in err
    code, err = detokenize(world, tmp_path / "bare", tmp_path / "out", "card_number", "--key-version", "1")
    assert code == 0, err


def test_data_under_a_disabled_or_destroyed_key_is_refused_by_name(tmp_path, monkeypatch):
    from veil.keys.keyset import destroy_key, disable_key, enable_key

    monkeypatch.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    keyset = tmp_path / "keyset.json"
    init_keyset(str(keyset))
    write_customers(str(tmp_path / "in.parquet"), 30)
    assert (
        cli("run", SUPPORT, "--input", tmp_path / "in.parquet", "--keyset", keyset, "--output", tmp_path / "v")[0] == 0
    )
    rotate_keyset(str(keyset))
    args = ["--fields", "notes", "--keyset", keyset, "--input", tmp_path / "v"]
    disable_key(str(keyset), 1)
    code, err = cli("detokenize", SUPPORT, "--output", tmp_path / "a", *args)
    assert code == 2 and "key version 1 is disabled" in err
    enable_key(str(keyset), 1)
    assert cli("detokenize", SUPPORT, "--output", tmp_path / "b", *args)[0] == 0
    destroy_key(str(keyset), 1)
    code, err = cli("detokenize", SUPPORT, "--output", tmp_path / "c", *args, "--on-error", "null")
    assert code == 2 and "key version 1 is destroyed" in err
