"""The audit log: one JSON line per re-identification, erasure or deletion, never a value.

Each line says when (UTC), who (the OS user), what event, and the facts of it (policy path and
sha256, purpose, fields, input, output, counts, how it ended). The log is a hash chain, so a
line that is edited, deleted, moved or cut off afterwards is found by `check_chain`:

* `prev` is the sha256 (hex) of the previous line's bytes, without its newline; the first line
  of a file carries the sha256 of an empty string.
* `digest` is the sha256 of the line's own JSON without `digest` (keys sorted, as written), so
  an edit that does not recompute it is found at the line itself; one that does is found at
  the next line, whose `prev` no longer matches.

Local logs are appended to under an exclusive lock (`flock`) held from reading the last line to
the one `O_APPEND` write, so concurrent writers keep the chain. A remote log (gs://, ...) is
rewritten with the line added, since object stores cannot append (concurrent writers there
can lose a line: keep remote logs to one writer at a time).
"""

import fcntl
import getpass
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from veil import _fs

CHAIN_FIELDS = ("prev", "digest")
_TAIL_CHUNK = 8192


def utc_now() -> str:
    """The current UTC time, ISO 8601 with microseconds (audit lines, manifests, reports)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def current_user() -> str:
    """The OS user running veil, as best known."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def audit_line(event: str, **facts: Any) -> dict[str, Any]:
    """An audit record: `at`, `who`, `event` and the given facts (names, counts; no values)."""
    return {"at": utc_now(), "who": current_user(), "event": event, **facts}


def line_sha256(line: bytes) -> str:
    """The sha256 (hex) of one log line's bytes, without its newline: the next line's `prev`."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def _body_digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


def chained_line(record: Mapping[str, Any], previous: bytes | None) -> bytes:
    """`record` as one log line (with its newline) following the line `previous` (None: the first)."""
    body = {name: value for name, value in record.items() if name not in CHAIN_FIELDS}
    body["prev"] = line_sha256(previous or b"")
    body["digest"] = _body_digest(body)
    return (json.dumps(body, sort_keys=True) + "\n").encode("utf-8")


def _last_line(fd: int) -> tuple[bytes | None, bool]:
    """(the file's last line without its newline, or None when empty; whether its end is cut off)."""
    end = os.fstat(fd).st_size
    if end == 0:
        return None, False
    torn = os.pread(fd, 1, end - 1) != b"\n"
    tail, position = b"", end if torn else end - 1
    while position > 0:
        begin = max(0, position - _TAIL_CHUNK)
        tail = os.pread(fd, position - begin, begin) + tail
        position = begin
        cut = tail.rfind(b"\n")
        if cut >= 0:
            return tail[cut + 1 :], torn
    return tail, torn


def append_audit(path: str, record: Mapping[str, Any]) -> None:
    """Append `record` as one chained JSON line to the audit log at `path` (created if missing)."""
    if _fs.is_remote(path):
        previous = _fs.read_bytes(path) if _fs.exists(path) else b""
        lines = previous.rstrip(b"\n").split(b"\n") if previous else []
        torn = bool(previous) and not previous.endswith(b"\n")
        line = chained_line(record, lines[-1] if lines else None)
        _fs.write_bytes(path, previous + (b"\n" if torn else b"") + line)
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until the close: no other writer reads a stale last line
        last, torn = _last_line(fd)
        data = (b"\n" if torn else b"") + chained_line(record, last)  # a cut-off line stays a line of its own
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ChainCheck:
    """What `check_chain` found.

    Attributes:
        lines: the lines in the log.
        head: the sha256 of the last line (the `prev` the next line will carry); record it
            elsewhere to protect the newest line too, which nothing after it vouches for.
        broken_line: the first line (1-based) that breaks the chain, or None.
        problem: what is wrong with that line.
    """

    lines: int
    head: str
    broken_line: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        """Whether every line is where and as it was written."""
        return self.broken_line is None


def _line_problem(number: int, line: bytes, previous: bytes | None) -> str | None:
    """What is wrong with line `number` (1-based) following line `previous`, or None."""
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return "is not a JSON line (edited or damaged)"
    if not isinstance(record, dict):
        return "is not a JSON object (edited or damaged)"
    if not all(isinstance(record.get(name), str) for name in CHAIN_FIELDS):
        return "has no prev and digest (written before veil chained its audit log, or edited)"
    digest = record.pop("digest")
    if digest != _body_digest(record):
        return "was changed after it was written (its digest does not match its content)"
    if record["prev"] == line_sha256(previous or b""):
        return None
    if previous is None:
        return "does not start a chain (its prev is not the sha256 of an empty string): lines before it are gone"
    return (
        f"does not follow line {number - 1} (its prev is not the sha256 of line {number - 1}): "
        f"line {number - 1} was rewritten, or lines were deleted or moved here"
    )


def check_chain(data: bytes) -> ChainCheck:
    """Check the hash chain of an audit log's bytes; the first broken line, if any."""
    lines = data.split(b"\n")
    torn = lines[-1] != b""
    if not torn:
        lines.pop()
    previous: bytes | None = None
    for number, line in enumerate(lines, start=1):
        problem = _line_problem(number, line, previous)
        if problem is None and torn and number == len(lines):
            problem = "is cut off (no newline at its end: a write was interrupted, or the line was edited)"
        if problem is not None:
            return ChainCheck(len(lines), line_sha256(lines[-1]), number, problem)
        previous = line
    return ChainCheck(len(lines), line_sha256(previous or b""))
