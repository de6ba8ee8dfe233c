"""The audit log's hash chain: every edit, deletion, swap or cut is found at its line; concurrent writers keep it.

Expected hashes are computed here with hashlib over the file's own bytes, not with the module's helpers.
"""

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from veil import _fs
from veil.transforms.audit import append_audit, audit_line, check_chain

LINES = 6
EMPTY = hashlib.sha256(b"").hexdigest()


def write_log(path: Path, count: int = LINES) -> list[bytes]:
    for number in range(count):
        append_audit(str(path), audit_line("detokenize", purpose="support", fields=["email"], n=number))
    return path.read_bytes().splitlines()


def joined(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def test_each_line_carries_the_sha256_of_the_previous_line(tmp_path):
    lines = write_log(tmp_path / "audit.jsonl")
    records = [json.loads(line) for line in lines]
    assert records[0]["prev"] == EMPTY
    for previous, record in zip(lines, records[1:]):
        assert record["prev"] == hashlib.sha256(previous).hexdigest()
    assert [r["n"] for r in records] == list(range(LINES))
    check = check_chain(joined(lines))
    assert check.intact and check.lines == LINES and check.head == hashlib.sha256(lines[-1]).hexdigest()


def test_an_empty_log_is_an_intact_chain():
    assert check_chain(b"").intact and check_chain(b"").lines == 0


@pytest.mark.parametrize("at", range(LINES))
def test_an_edited_line_is_found_at_that_line(tmp_path, at):
    lines = write_log(tmp_path / "audit.jsonl")
    lines[at] = lines[at].replace(b'"support"', b'"marketing"')
    check = check_chain(joined(lines))
    assert check.broken_line == at + 1 and "was changed after it was written" in check.problem


@pytest.mark.parametrize("at", range(LINES - 1))
def test_an_edit_that_recomputes_its_digest_is_found_at_the_next_line(tmp_path, at):
    lines = write_log(tmp_path / "audit.jsonl")
    record = json.loads(lines[at])
    record["fields"] = []
    body = {k: v for k, v in record.items() if k != "digest"}
    record["digest"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    lines[at] = json.dumps(record, sort_keys=True).encode()
    check = check_chain(joined(lines))
    assert check.broken_line == at + 2 and f"line {at + 1} was rewritten" in check.problem


@pytest.mark.parametrize("at", range(LINES - 1))  # deleting the last line leaves a shorter, valid chain: see head
def test_a_deleted_line_is_found_where_it_was(tmp_path, at):
    lines = write_log(tmp_path / "audit.jsonl")
    del lines[at]
    check = check_chain(joined(lines))
    assert check.broken_line == at + 1
    assert ("lines before it are gone" if at == 0 else "deleted or moved") in check.problem


def test_deleting_the_newest_line_changes_the_head(tmp_path):
    lines = write_log(tmp_path / "audit.jsonl")
    full, cut = check_chain(joined(lines)), check_chain(joined(lines[:-1]))
    assert cut.intact and cut.lines == LINES - 1 and cut.head != full.head


@pytest.mark.parametrize("at", range(LINES - 1))
def test_swapped_lines_are_found_at_the_first_of_them(tmp_path, at):
    lines = write_log(tmp_path / "audit.jsonl")
    lines[at], lines[at + 1] = lines[at + 1], lines[at]
    assert check_chain(joined(lines)).broken_line == at + 1


def test_a_line_that_is_not_json_or_has_no_chain_fields(tmp_path):
    lines = write_log(tmp_path / "audit.jsonl")
    assert check_chain(joined([*lines[:2], b"{oops", *lines[3:]])).broken_line == 3
    legacy = json.dumps({"at": "2026-01-01T00:00:00Z", "event": "detokenize"}).encode()
    check = check_chain(joined([legacy, *lines]))
    assert check.broken_line == 1 and "no prev and digest" in check.problem


def test_a_cut_off_last_line_is_found_and_the_next_append_starts_a_line_of_its_own(tmp_path):
    log = tmp_path / "audit.jsonl"
    lines = write_log(log, 3)
    log.write_bytes(joined(lines)[:-20])  # a write interrupted mid-line
    check = check_chain(log.read_bytes())
    assert check.broken_line == 3
    append_audit(str(log), audit_line("erase", purpose="support"))
    after = log.read_bytes().splitlines()
    assert len(after) == 4 and json.loads(after[3])["prev"] == hashlib.sha256(after[2]).hexdigest()
    assert check_chain(log.read_bytes()).broken_line == 3  # still named: nothing hides the cut


def test_long_lines_chain_across_read_chunks(tmp_path):
    log = tmp_path / "audit.jsonl"
    for number in range(3):
        append_audit(str(log), audit_line("detokenize", fields=[f"field_{i}" for i in range(3000)], n=number))
    lines = log.read_bytes().splitlines()
    assert len(lines[0]) > 20000 and check_chain(log.read_bytes()).intact


def test_a_record_cannot_bring_its_own_chain_fields(tmp_path):
    log = tmp_path / "audit.jsonl"
    append_audit(str(log), {"event": "x", "prev": "forged", "digest": "forged"})
    assert json.loads(log.read_bytes())["prev"] == EMPTY and check_chain(log.read_bytes()).intact


def test_a_remote_log_is_rewritten_with_the_chained_line(tmp_path, monkeypatch):
    monkeypatch.setattr(_fs, "is_remote", lambda path: True)  # local paths through Beam's FileSystems
    log = tmp_path / "remote.jsonl"
    lines = write_log(log, 3)
    assert len(lines) == 3 and check_chain(log.read_bytes()).intact


WRITER = """
import sys, time
from pathlib import Path
from veil.transforms.audit import append_audit, audit_line
log, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
Path(log + ".ready-" + name).touch()
while not Path(log + ".go").exists():  # both start together, after their imports
    time.sleep(0.001)
for n in range(count):
    append_audit(log, audit_line("detokenize", writer=name, n=n))
"""


def test_two_concurrent_writer_processes_leave_a_valid_chain(tmp_path):
    log, count = tmp_path / "audit.jsonl", 150
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(log), name, str(count)]) for name in "ab"]
    deadline = time.monotonic() + 60
    while not all(Path(f"{log}.ready-{name}").exists() for name in "ab") and time.monotonic() < deadline:
        time.sleep(0.01)
    Path(f"{log}.go").touch()
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    data = log.read_bytes()
    check = check_chain(data)
    assert check.intact, f"line {check.broken_line} {check.problem}"
    records = [json.loads(line) for line in data.splitlines()]
    assert check.lines == len(records) == 2 * count
    for name in "ab":
        assert [r["n"] for r in records if r["writer"] == name] == list(range(count))
    assert len({r["writer"] for r in records[:count]}) == 2, "the writers did not overlap: the test proves nothing"
