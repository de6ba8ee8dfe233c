"""Customer rights: erasure (`veil erase`), access (`veil locate`) and portability (`veil export`).

Erasure tables are folders veil creates (`--init`, with a marker file) and appends Parquet
files of (subject_ref, erased_at) to: keyed references, never subject ids. A policy naming a
folder without the marker is an error, never an empty list, so a wrong path cannot let erased
subjects flow. Every command here appends a line to the audit log, with no values.
"""

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from veil import _fs
from veil.errors import ConfigError, InputError
from veil.keys import open_keyring
from veil.pipelines.job import new_run_id
from veil.pipelines.locks import folder_lock
from veil.pipelines.manifest import output_files, read_manifest
from veil.pipelines.outputs import pause_point, warn_on_stderr
from veil.pipelines.subject_keys import delete_subject_keys
from veil.transforms.actions.base import BindContext
from veil.transforms.audit import append_audit, audit_line
from veil.transforms.policy import Policy, resolve_audit_log, resolve_keyset
from veil.transforms.registry import REGISTRY
from veil.transforms.reverse import BoundReverse, reverse_ops
from veil.transforms.subjects import subject_ref
from veil.transforms.tables import ERASURE_MARKER, ERASURE_SCHEMA, erasure_files


def _erasure_table(policy: Policy) -> str:
    if not policy.erasure:
        raise ConfigError(
            f"policy {policy.source or policy.purpose} has no erasure table (add erasure: {{table: PATH}})"
        )
    return policy.erasure.table


def init_erasure_table(policy: Policy) -> str:
    """Create the policy's (empty) erasure table; refuses to touch an existing one."""
    table = _erasure_table(policy)
    marker = FileSystems.join(table, ERASURE_MARKER)
    if _fs.exists(marker):
        raise ConfigError(f"erasure table {table} already exists")
    _fs.write_bytes(marker, b'{"veil_erasure_table": 1, "columns": ["subject_ref", "erased_at"]}\n')
    return table


ERASE_WAIT_SECONDS = 60.0  # a second `veil erase` on the same table waits this long for the first


def erase_subjects(
    policy: Policy, subjects: list[str], *, keyset: str | None = None, warn: Callable[[str], None] = warn_on_stderr
) -> int:
    """Append the references of `subjects` to the erasure table; returns how many were added.

    Under the table's lock (a concurrent `veil erase` waits its turn, so both take effect):
    the erasure is recorded by one file written aside and renamed into place (all the
    subjects or none), then the subject keys of every recorded subject are deleted (so a
    kill between the two is completed by the next `veil erase` on the table), then audited.
    """
    table = _erasure_table(policy)
    erasure_files(table)  # the table must exist
    keyset_path = resolve_keyset(policy, keyset)
    keyring = open_keyring(keyset_path)
    refs = sorted({ref for ref in (subject_ref(keyring, s.strip()) for s in subjects if s.strip()) if ref})
    if not refs:
        raise ConfigError("name at least one subject id to erase")
    run_id = new_run_id()
    with folder_lock(table, run_id, warn=warn, wait=ERASE_WAIT_SECONDS, what=f"erasure table {table}"):
        now = datetime.now(timezone.utc)
        rows = pa.table({"subject_ref": refs, "erased_at": [now] * len(refs)}, schema=ERASURE_SCHEMA)
        sink = pa.BufferOutputStream()
        pq.write_table(rows, sink)
        _fs.write_bytes(FileSystems.join(table, f"erased-{run_id}.parquet"), sink.getvalue().to_pybytes())
        pause_point("erase-recorded")
        shredded = _shred_erased(policy.subject_keys, table, run_id, warn) if policy.subject_keys else 0
    _audit(policy, keyset_path, "erase", subjects=len(refs), table=table, subject_keys_deleted=shredded)
    return len(refs)


def erased_refs(table: str) -> set[str]:
    """Every subject reference the erasure table records."""
    refs: set[str] = set()
    for path in erasure_files(table):
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            refs.update(pq.read_table(handle, columns=["subject_ref"]).column(0).drop_null().to_pylist())
    return refs


def _shred_erased(keys_table: str, table: str, run_id: str, warn: Callable[[str], None]) -> int:
    """Delete the subject keys of every subject `table` records (this erasure's and any a kill left)."""
    with folder_lock(keys_table, run_id, warn=warn, wait=ERASE_WAIT_SECONDS, what=f"subject key table {keys_table}"):
        return delete_subject_keys(keys_table, erased_refs(table))


def _audit(policy: Policy, keyset_path: str, event: str, **facts: Any) -> None:
    record = audit_line(event, policy=policy.source, policy_sha256=policy.sha256, purpose=policy.purpose, **facts)
    append_audit(resolve_audit_log(policy, keyset_path), record)


def locate_values(policy: Policy, subject: str, keyring) -> dict[str, str]:
    """Output field -> the subject's value there, for deterministic fields made from the subject id."""
    if policy.subject is None or policy.subject not in policy.fields:
        return {}
    spec = policy.fields[policy.subject]
    action = REGISTRY[spec.action]
    if not action.writes_output or not action.deterministic or action.per_subject(spec):
        return {}
    version = keyring.resolve_version(policy.key_version) if action.keyed else None
    bound = action.bind(spec, BindContext(policy.purpose, policy.subject, keyring if action.keyed else None, version))
    return {policy.output_name(policy.subject): bound(subject)}


def locate(policy: Policy, subject: str, *, keyset: str | None = None) -> dict[str, Any]:
    """The subject's pseudonyms and deterministic tokens under `policy`, to find their rows."""
    keyset_path = resolve_keyset(policy, keyset)
    matches = locate_values(policy, subject, open_keyring(keyset_path))
    if not matches:
        raise ConfigError(
            f"policy {policy.source or policy.purpose}: its subject field is not written as a deterministic "
            "pseudonym or token, so a subject's rows cannot be found in its outputs"
        )
    _audit(policy, keyset_path, "locate", fields=sorted(matches))
    return {"purpose": policy.purpose, "subject_field": policy.subject, "matches": matches}


def export_subject(policy: Policy, subject: str, input_dir: str, *, keyset: str | None = None) -> dict[str, Any]:
    """The subject's rows of a veil output of `policy`, with reversible fields restored."""
    keyset_path = resolve_keyset(policy, keyset)
    keyring = open_keyring(keyset_path)
    matches = locate_values(policy, subject, keyring)
    if not matches:
        raise ConfigError(f"policy {policy.source or policy.purpose}: its outputs cannot be searched by subject")
    manifest = read_manifest(input_dir)
    if manifest and manifest.get("purpose") != policy.purpose:
        raise ConfigError(f"input {input_dir} was made for purpose '{manifest.get('purpose')}', not '{policy.purpose}'")
    ((field, value),) = matches.items()
    files = [f for f in output_files(input_dir, manifest)[0] if f.endswith(".parquet")]  # as its manifest lists
    if not files:
        raise InputError(f"input {input_dir} has no Parquet files (export reads veil's Parquet outputs)")
    rows = []
    for path in files:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            rows.extend(pq.read_table(handle, filters=[(field, "=", value)]).to_pylist())
    reversible = reverse_ops(policy, policy.reversible_outputs) if policy.reversible_outputs else ()
    ff1_version = policy.recorded_key_version(
        policy.reversible_outputs,
        (manifest or {}).get("fields", {}),
        (manifest or {}).get("keys", {}).get("key_version"),
    )
    restored, counts = BoundReverse(policy, reversible, keyring, ff1_version).apply_rows(rows)
    _audit(
        policy, keyset_path, "export", input=input_dir, records=len(restored), fields=[op.output for op in reversible]
    )
    return {
        "purpose": policy.purpose,
        "exported_at": datetime.now(timezone.utc).isoformat(),
        "records": restored,
        "not_restored": {name[len("failed.") :]: n for name, n in counts.items() if name.startswith("failed.")},
    }


def export_json(document: dict[str, Any]) -> bytes:
    """The export document as JSON (dates and timestamps as ISO 8601)."""
    return (
        json.dumps(document, indent=2, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)) + "\n"
    ).encode("utf-8")
