"""Crypto-shredding end to end: per-subject keys, erasure deletes them, old ciphertexts go dark."""

import base64
import json
import os

import pyarrow.parquet as pq
import pytest
from failures import POLICY
from helpers import cli as run_cli

from veil.keys import init_keyset
from veil.pipelines.synthetic import synthetic_customers, write_customers

ROWS = 60


def cli(*args) -> tuple[int, str]:
    result = run_cli(*args)
    return result.code, result.err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("shred")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
        mp.delenv("VEIL_KEYSET", raising=False)
        init_keyset(str(root / "keyset.json"))
        write_customers(str(root / "in.parquet"), ROWS)
        (root / "p.yaml").write_text(POLICY)
        assert cli("erase", root / "p.yaml", "--init")[0] == 0
        multi = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
        code, err = cli("run", root / "p.yaml", "--input", root / "in.parquet", "--output", root / "before", *multi)
        assert code == 0, err
        yield root


def keys(world) -> list[dict]:
    return pq.read_table(world / "subject-keys").to_pylist()


def test_exactly_one_key_per_subject_with_two_workers_and_again_after_a_rerun(world, tmp_path):
    refs = [k["subject_ref"] for k in keys(world)]
    assert len(refs) == len(set(refs)) == ROWS
    assert cli("run", world / "p.yaml", "--input", world / "in.parquet", "--output", tmp_path / "again")[0] == 0
    assert len(keys(world)) == ROWS  # existing subjects reuse their keys
    ids = {row["customer_id"] for row in synthetic_customers(ROWS).to_pylist()}
    table_bytes = b"".join(p.read_bytes() for p in (world / "subject-keys").iterdir())
    assert not any(i.encode() in table_bytes for i in ids)  # references only, never subject ids


def test_per_subject_ciphertexts_name_their_key_not_the_subject(world):
    rows = pq.read_table(world / "before").to_pylist()
    key_ids = {k["key_id"] for k in keys(world)}
    for row in rows:
        for field in ("notes", "email"):
            if row[field] is not None:
                assert row[field].startswith("s.") and row[field].split(".")[1] in key_ids


def test_erasure_shreds_the_subjects_old_ciphertexts_and_nobody_elses(world, tmp_path):
    raw = {r["customer_id"]: r for r in synthetic_customers(ROWS).to_pylist()}
    victim = "C0000003"
    assert cli("erase", world / "p.yaml", "--subject", victim)[0] == 0
    assert len(keys(world)) == ROWS - 1
    fields = ["--fields", "notes,email,customer_token"]
    code, err = cli("detokenize", world / "p.yaml", "--input", world / "before", "--output", tmp_path / "a", *fields)
    assert code == 2 and "crypto-shredded" in err and "field 'email': 1 value" in err
    code, err = cli(
        "detokenize",
        world / "p.yaml",
        "--input",
        world / "before",
        "--output",
        tmp_path / "b",
        *fields,
        "--on-error",
        "null",
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "b" / "_manifest.json").read_text())
    assert summary["counts"]["shredded"] == {"email": 1, **({"notes": 1} if raw[victim]["notes"] else {})}
    assert summary["counts"]["failed"] == {}
    for row in pq.read_table(tmp_path / "b").to_pylist():
        if row["customer_id"] == victim:
            assert row["email"] is None and row["notes"] is None
        else:
            assert row["email"] == raw[row["customer_id"]]["email"]
            assert row["notes"] == raw[row["customer_id"]]["notes"]
    # and the subject no longer flows at all
    code, _ = cli("run", world / "p.yaml", "--input", world / "in.parquet", "--output", tmp_path / "after")
    manifest = json.loads((tmp_path / "after" / "_manifest.json").read_text())
    assert code == 0 and manifest["counts"]["dropped"] == {"erased": 1}


def test_per_subject_encryption_needs_a_subject_key_table(tmp_path):
    (tmp_path / "p.yaml").write_text(POLICY.replace("subject_keys: subject-keys\n", ""))
    code, err = cli("validate", tmp_path / "p.yaml")
    assert code == 2 and "subject_keys" in err
