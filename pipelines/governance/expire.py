"""`veil expire`: delete the veil outputs under a folder that are older than their policy's retention.

An output is a folder with a `_manifest.json` (written by `veil run` or `veil detokenize`); its
retention is the one the manifest recorded under `governance` when the run made it, counted from
the run's `finished` time. An output without a retention is never touched.

Deleting one output, under the folder's lock (`pipelines/locks.py`, the lock `veil run` holds
while it writes there, so expire cannot race a run into the folder):

1. The manifest is read again: a run may have replaced the output since the folder was scanned.
2. One `expire` line is appended to the audit log: the output, its run and policy, its retention
   and the number of files to delete. Never a value. It comes first, so no output disappears
   without its line (if the log cannot be written, nothing is deleted).
3. The files the manifest lists are deleted (only plain names inside the folder: a manifest
   naming `../x` is refused), then the risk report made from them (`_report.json`,
   `_report.html`), then the manifest, last: a kill midway leaves a manifest that the next
   `veil expire` finds again and finishes (with a line of its own; files already gone are skipped).

The audit log is `--audit-log` if given, else the policy's own (`audit_log`, or `audit.jsonl`
beside its keyset) when the policy file the manifest names still has the recorded sha256, else
`audit.jsonl` beside the keyset the manifest recorded. An output for which none is known is not
deleted. The folder itself stays (empty), so a run starting into it at that moment finds it.
"""

import json
import os
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from veil import _fs
from veil.errors import ConfigError, OutputError
from veil.pipelines.governance.times import parse_time, retention_end
from veil.pipelines.job import new_run_id
from veil.pipelines.locks import folder_lock
from veil.pipelines.manifest import MANIFEST
from veil.pipelines.report import REPORT_HTML, REPORT_JSON
from veil.transforms.audit import append_audit, audit_line
from veil.transforms.policy import RETENTION, load_policy, resolve_audit_log

HIDDEN = ".veil-"  # staging folders and locks: never outputs


@dataclass(frozen=True)
class Expiry:
    """What `veil expire` found for, or did to, one output.

    Attributes:
        folder: the output folder.
        purpose: its purpose, as its manifest says.
        retention: its policy's retention when it was made (None: never expires).
        finished: when its run finished.
        expires: when its retention ends (None without retention).
        status: `deleted`, `would delete` (dry run), `kept` (not yet due), `no retention`, or
            `not deleted` (due, but in use, unsafe or undatable: `problem` says why).
        files: how many files were deleted (or would be).
        problem: why a due output was not deleted.
    """

    folder: str
    purpose: str | None
    retention: str | None
    finished: datetime | None
    expires: datetime | None
    status: str
    files: int = 0
    problem: str | None = None


def find_outputs(root: str) -> list[str]:
    """The folders under `root` (itself included) holding a `_manifest.json`, staging folders skipped."""
    if _fs.is_remote(root):
        raise ConfigError(f"veil expire works on local folders; {root} is remote (use the bucket's lifecycle rules)")
    if not os.path.isdir(root):
        raise ConfigError(f"{root} is not a folder; name the folder holding veil outputs")
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(HIDDEN))
        if MANIFEST in files:
            found.append(folder)
    return found


def _read(folder: str) -> dict[str, Any] | None:
    try:
        manifest = json.loads(Path(folder, MANIFEST).read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        raise OutputError(f"{folder}/{MANIFEST} is not valid JSON") from None
    return manifest if isinstance(manifest, dict) else None


def _due(folder: str, manifest: dict[str, Any]) -> tuple[str | None, datetime | None, datetime | None]:
    """(retention, finished, when the retention ends) of an output; OutputError when it cannot be dated."""
    retention = (manifest.get("governance") or {}).get("retention")
    if retention is None:
        return None, None, None
    if not isinstance(retention, str) or not RETENTION.fullmatch(retention):
        raise OutputError(f"{folder}/{MANIFEST}: governance.retention is not a retention (90d, 12w, 6m, 2y)")
    try:
        finished = parse_time(str(manifest.get("finished")), f"{folder}/{MANIFEST}: finished")
    except ConfigError as error:
        raise OutputError(str(error)) from None
    return retention, finished, retention_end(finished, retention)


def _files(folder: str, manifest: dict[str, Any]) -> list[str]:
    """The files of the output, in deletion order: listed data files, reports, the manifest last."""
    listed = (manifest.get("output") or {}).get("files") or []
    unsafe = [n for n in listed if not isinstance(n, str) or n != os.path.basename(n) or n.startswith(".") or not n]
    if unsafe:
        raise OutputError(f"{folder}/{MANIFEST} lists files outside the folder; not deleting it (check the manifest)")
    return [*listed, REPORT_JSON, REPORT_HTML, MANIFEST]


def _audit_log(folder: str, manifest: dict[str, Any], override: str | None) -> str:
    """Where the deletion of this output is audited (see the module docstring)."""
    if override:
        return override
    recorded = manifest.get("policy") or {}
    keyset = (manifest.get("keys") or {}).get("keyset")
    try:
        policy = load_policy(recorded["path"]) if recorded.get("path") else None
    except ConfigError:
        policy = None
    if policy is not None and policy.sha256 == recorded.get("sha256") and (policy.audit_log or keyset):
        return resolve_audit_log(policy, keyset or "")
    if keyset:
        return str(Path(keyset).parent / "audit.jsonl")
    raise OutputError(
        f"{folder}: its manifest names no keyset and its policy file is gone or changed, so the audit log of "
        "its deletion is unknown; pass --audit-log LOG"
    )


def _present(folder: str, manifest: dict[str, Any]) -> list[str]:
    """The output's files still there, in deletion order."""
    return [name for name in _files(folder, manifest) if os.path.lexists(os.path.join(folder, name))]


def _delete(folder: str, seen: dict[str, Any], audit_log: str | None, warn: Callable[[str], None]) -> Expiry | None:
    """Audit, then delete, one due output under its folder's lock; None when a newer run replaced it meanwhile."""
    with folder_lock(folder, new_run_id(), warn=warn, what=f"output {folder}"):
        manifest = _read(folder)
        if manifest is None or manifest.get("run_id") != seen.get("run_id"):
            return None
        retention, finished, expires = _due(folder, manifest)
        files = _present(folder, manifest)
        policy = manifest.get("policy") or {}
        line = audit_line(
            "expire",
            policy=policy.get("path"),
            policy_sha256=policy.get("sha256"),
            purpose=manifest.get("purpose"),
            output=os.path.abspath(folder),
            run_id=manifest.get("run_id"),
            finished=manifest.get("finished"),
            retention=retention,
            expired_at=expires.isoformat(),
            files=len(files),
            outcome="ok",
        )
        log = _audit_log(folder, manifest, audit_log)
        try:
            append_audit(log, line)  # first: nothing goes unaudited
        except OSError as error:
            raise OutputError(
                f"{folder}: audit log {log} cannot be written ({error.strerror}); not deleting it"
            ) from None
        for name in files:
            with suppress(FileNotFoundError):  # removed since it was listed: gone all the same
                os.remove(os.path.join(folder, name))
    return Expiry(folder, manifest.get("purpose"), retention, finished, expires, "deleted", len(files))


def expire_outputs(
    root: str, now: datetime, *, dry_run: bool, audit_log: str | None, warn: Callable[[str], None]
) -> list[Expiry]:
    """Delete (or, with `dry_run`, list) every output under `root` whose retention ended before `now`.

    Returns one `Expiry` per output found. A due output that cannot be deleted safely (in use by
    a run, unreadable, listing files outside its folder, no audit log) is reported with its
    problem and left as it is; the others are still deleted.
    """
    results = []
    for folder in find_outputs(root):
        manifest: dict[str, Any] = {}
        try:
            manifest = _read(folder) or {}
            retention, finished, expires = _due(folder, manifest)
            purpose = manifest.get("purpose")
            if retention is None:
                results.append(Expiry(folder, purpose, None, None, None, "no retention"))
            elif expires > now:
                results.append(Expiry(folder, purpose, retention, finished, expires, "kept"))
            elif dry_run:
                files = len(_present(folder, manifest))
                results.append(Expiry(folder, purpose, retention, finished, expires, "would delete", files))
            else:
                done = _delete(folder, manifest, audit_log, warn)
                results.append(done or Expiry(folder, purpose, retention, finished, expires, "kept"))
        except OutputError as error:
            results.append(Expiry(folder, manifest.get("purpose"), None, None, None, "not deleted", problem=str(error)))
    return results
