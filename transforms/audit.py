"""The audit log: one JSON line per re-identification (detokenize), never a value.

Each line says when (UTC), who (the OS user), what policy (path and sha256) and purpose,
which fields, input, output and counts, and how it ended. Local logs are appended to;
a remote log (gs://, ...) is rewritten with the line added, since object stores cannot append.
"""

import getpass
import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from veil import _fs


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


def append_audit(path: str, record: Mapping[str, Any]) -> None:
    """Append `record` as one JSON line to the audit log at `path`."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    if _fs.is_remote(path):
        previous = _fs.read_bytes(path) if _fs.exists(path) else b""
        _fs.write_bytes(path, previous + line)
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "ab") as handle:
        handle.write(line)
