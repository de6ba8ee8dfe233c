"""`veil audit verify|show`: exit codes, the broken line named, filters."""

import json
from pathlib import Path

import pytest
from helpers import cli

from veil.transforms.audit import append_audit, audit_line


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # table cells unwrapped


def write_log(path: Path) -> None:
    events = [
        ("detokenize", "2026-11-01T10:00:00Z"),
        ("erase", "2026-11-15T10:00:00Z"),
        ("expire", "2026-12-01T09:00:00Z"),
    ]
    for event, at in events:
        append_audit(str(path), {**audit_line(event, purpose="support", outcome="ok"), "at": at})


def test_verify_an_intact_log(tmp_path):
    log = tmp_path / "audit.jsonl"
    write_log(log)
    result = cli("audit", "verify", log)
    assert result.code == 0, result.err
    assert f"ok: audit log {log}: 3 lines, chain intact" in result.out


def test_verify_names_the_first_broken_line_and_exits_2(tmp_path):
    log = tmp_path / "audit.jsonl"
    write_log(log)
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], lines[2]]) + "\n")
    result = cli("audit", "verify", log)
    assert result.code == 2
    assert result.err.startswith(f"error: audit log {log}: line 2 does not follow line 1")
    assert len(result.err.strip().splitlines()) == 1


def test_verify_defaults_to_the_log_beside_the_keyset(tmp_path, monkeypatch):
    monkeypatch.setenv("VEIL_KEYSET", str(tmp_path / "keys" / "keyset.json"))
    write_log(tmp_path / "keys" / "audit.jsonl")
    assert cli("audit", "verify").code == 0
    missing = cli("audit", "verify", tmp_path / "nope.jsonl")
    assert missing.code == 2 and "not found" in missing.err


def test_show_filters_by_event_and_time(tmp_path):
    log = tmp_path / "audit.jsonl"
    write_log(log)
    every = cli("audit", "show", log)
    assert every.code == 0 and "3 lines shown" in every.out
    assert all(event in every.out for event in ("detokenize", "erase", "expire"))
    erase = cli("audit", "show", log, "--event", "erase")
    assert "1 line shown" in erase.out and "detokenize" not in erase.out
    since = cli("audit", "show", log, "--since", "2026-11-10")
    assert "2 lines shown" in since.out and "detokenize" not in since.out
    bad = cli("audit", "show", log, "--since", "last week")
    assert bad.code == 2 and "--since 'last week' is not an ISO 8601" in bad.err


def test_show_marks_an_unreadable_line(tmp_path):
    log = tmp_path / "audit.jsonl"
    write_log(log)
    log.write_text(log.read_text() + "not json\n")
    result = cli("audit", "show", log)
    assert result.code == 0 and "(unreadable line)" in result.out and "3 lines shown" in result.out
    assert json.loads(log.read_text().splitlines()[0])["event"] == "detokenize"
