"""`veil expire`: exactly the outputs past retention go (listed files, then the manifest), each audited."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from helpers import cli

from veil.pipelines.governance.times import parse_time
from veil.pipelines.locks import folder_lock
from veil.pipelines.synthetic import write_customers
from veil.transforms.audit import check_chain


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


def write_policy(path: Path, purpose: str, keyset: str, **governance) -> Path:
    doc = {
        "version": 1,
        "purpose": purpose,
        "keyset": keyset,
        **governance,
        "fields": {"customer_id": {"action": "pseudonymize", "as": "customer_key"}, "country": {"action": "keep"}},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def outputs(tmp_path, keyset):
    """One run of three policies: retention 90d (its own audit log), 1y (the log beside the keyset), none."""
    write_customers(str(tmp_path / "in.parquet"), 40)
    policies = [
        write_policy(tmp_path / "short.yaml", "short", keyset, retention="90d", audit_log="short-audit.jsonl"),
        write_policy(tmp_path / "long.yaml", "long", keyset, retention="1y"),
        write_policy(tmp_path / "forever.yaml", "forever", keyset),
    ]
    result = cli("run", *policies, "--input", tmp_path / "in.parquet", "--output", tmp_path / "out", "--quiet")
    assert result.code == 0, result.err
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def finished(folder: Path):
    return parse_time(json.loads((folder / "_manifest.json").read_text())["finished"])


def test_expire_deletes_exactly_the_outputs_past_retention(outputs):
    root = outputs
    out = root / "out"
    short, long, forever = out / "short", out / "long", out / "forever"
    listed = json.loads((short / "_manifest.json").read_text())["output"]["files"]
    assert listed and all((short / name).exists() for name in listed)
    before = {folder: snapshot(folder) for folder in (short, long, forever)}
    day91 = (finished(short) + timedelta(days=91)).isoformat()

    dry = cli("expire", out, "--now", day91, "--dry-run")
    assert dry.code == 0, dry.err
    assert "3 outputs: 1 would delete, 1 kept, 1 without retention" in dry.out
    assert {folder: snapshot(folder) for folder in (short, long, forever)} == before
    assert not (short / "short-audit.jsonl").exists() and not (root / "short-audit.jsonl").exists()

    early = cli("expire", out, "--now", (finished(short) + timedelta(days=89)).isoformat())
    assert early.code == 0 and "0 deleted, 2 kept" in early.out

    done = cli("expire", out, "--now", day91)
    assert done.code == 0, done.err
    assert "3 outputs: 1 deleted, 1 kept, 1 without retention" in done.out
    assert not any(name in snapshot(short) for name in [*listed, "_manifest.json"])
    assert snapshot(long) == before[long] and snapshot(forever) == before[forever]
    log = root / "short-audit.jsonl"  # the policy's own audit log (relative to the policy file)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "expire" and line["purpose"] == "short" and line["retention"] == "90d"
    assert line["output"] == str(short.resolve()) and line["files"] == len(listed) + 1 and line["outcome"] == "ok"
    assert check_chain(log.read_bytes()).intact

    later = cli("expire", out, "--now", (finished(long) + timedelta(days=400)).isoformat())
    assert later.code == 0, later.err
    assert "2 outputs: 1 deleted, 0 kept, 1 without retention" in later.out  # short has no manifest left
    assert "_manifest.json" not in snapshot(long) and snapshot(forever) == before[forever]
    beside_keyset = root / "audit.jsonl"
    assert [json.loads(x)["purpose"] for x in beside_keyset.read_text().splitlines()] == ["long"]
    assert cli("audit", "verify", beside_keyset).code == 0


def fake_output(folder: Path, files: list[str], retention: str = "90d") -> None:
    folder.mkdir(parents=True)
    for name in files:
        if "/" not in name:
            (folder / name).write_text("x")
    manifest = {
        "run_id": "r1",
        "finished": "2026-01-01T00:00:00Z",
        "purpose": "p",
        "governance": {"retention": retention},
        "keys": {"keyset": str(folder.parent / "keyset.json")},
        "output": {"files": files},
    }
    (folder / "_manifest.json").write_text(json.dumps(manifest))


def test_a_manifest_listing_files_outside_its_folder_is_refused(tmp_path):
    (tmp_path / "victim.txt").write_text("keep me")
    fake_output(tmp_path / "out" / "bad", ["part-1.parquet", "../../victim.txt"])
    fake_output(tmp_path / "out" / "good", ["part-1.parquet"])
    staged = tmp_path / "out" / "good" / ".veil-staging-r2"  # a run's staging folder: never an output
    fake_output(staged, ["part-1.parquet"])
    result = cli("expire", tmp_path / "out", "--now", "2027-01-01")
    assert result.code == 2
    assert result.err.startswith("error: 1 output not deleted: ") and "lists files outside the folder" in result.err
    assert (tmp_path / "victim.txt").read_text() == "keep me"
    assert (tmp_path / "out" / "bad" / "part-1.parquet").exists()
    assert not (tmp_path / "out" / "good" / "_manifest.json").exists()
    assert (staged / "_manifest.json").exists() and (staged / "part-1.parquet").exists()
    assert len((tmp_path / "out" / "audit.jsonl").read_text().splitlines()) == 1  # for good only


def test_an_output_in_use_by_a_run_is_left_alone(tmp_path):
    folder = tmp_path / "out" / "busy"
    fake_output(folder, ["part-1.parquet"])
    with folder_lock(str(folder), "run-1", warn=print):
        result = cli("expire", tmp_path / "out", "--now", "2027-01-01")
    assert result.code == 2 and "is in use by run run-1" in result.err
    assert (folder / "_manifest.json").exists() and (folder / "part-1.parquet").exists()
    assert not (tmp_path / "out" / "audit.jsonl").exists()
    assert cli("expire", tmp_path / "out", "--now", "2027-01-01").code == 0  # once the run is done
    assert not (folder / "_manifest.json").exists()


def test_nothing_is_deleted_without_its_audit_line(tmp_path):
    folder = tmp_path / "out" / "due"
    fake_output(folder, ["part-1.parquet"])
    (tmp_path / "not-a-folder").write_text("")
    result = cli(
        "expire", tmp_path / "out", "--now", "2027-01-01", "--audit-log", tmp_path / "not-a-folder" / "a.jsonl"
    )
    assert result.code == 2 and "cannot be written" in result.err and "not deleting it" in result.err
    assert (folder / "_manifest.json").exists() and (folder / "part-1.parquet").exists()


def test_bad_arguments(tmp_path):
    missing = cli("expire", tmp_path / "nope")
    assert missing.code == 2 and "is not a folder" in missing.err
    bad_now = cli("expire", tmp_path, "--now", "yesterday")
    assert bad_now.code == 2 and bad_now.err.startswith("error: --now 'yesterday'")
