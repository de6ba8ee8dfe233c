"""The run manifest: what a run did, in `DIR/_manifest.json`; written by a run, read by the jobs
that take a veil output as input (report, detokenize, rights).

It records the policy (path and sha256), inputs, runner, per output field its source, action,
settings and key version, and the counts. Never a value, never key material.
"""

import json
import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

import veil
from veil import _fs
from veil.errors import ConfigError, InputError
from veil.transforms.io import SUFFIX
from veil.transforms.plan import Plan
from veil.transforms.policy import Policy
from veil.transforms.registry import REGISTRY

MANIFEST = "_manifest.json"
NOTES = {"action", "as_", "description", "reason"}  # not an action's settings: the name, the output, notes for people
_TIMESTAMP = re.compile(r"timestamp\[(\w+)(?:, tz=([^\]]+))?\]")


def split_counts(counts: Mapping[str, int]) -> dict[str, Any]:
    """Flat counter names (`dropped.no_consent`, `field_errors.email`) -> nested manifest counts."""
    nested: dict[str, Any] = {
        "read": counts.get("read", 0),
        "written": counts.get("written", 0),
        "dropped": {},
        "field_errors": {},
    }
    for name, value in sorted(counts.items()):
        group, _, key = name.partition(".")
        if key and group in ("dropped", "field_errors"):
            nested[group][key] = value
        elif key and group == "scrubbed":  # scrubbed.<field>.<entity>
            field, _, entity = key.rpartition(".")
            nested.setdefault("scrubbed", {}).setdefault(field, {})[entity] = value
    return nested


def describe_fields(plan: Plan, key_version: int | None) -> dict[str, Any]:
    """Output field -> {source, action, settings, type, key_version where keyed}."""
    fields = {}
    for op in plan.ops:
        entry: dict[str, Any] = {"source": op.source, "action": op.action}
        settings = op.params.model_dump(mode="json", by_alias=True, exclude_none=True, exclude=NOTES)
        if settings:
            entry["settings"] = settings
        if op.output_type is not None:
            entry["type"] = str(op.output_type)
        if REGISTRY[op.action].keyed:
            entry["key_version"] = key_version
        fields[op.output] = entry
    return fields


def describe_governance(policy: Policy) -> dict[str, Any]:
    """The policy's owner, legal basis, retention, review date and recipients (None where unset)."""
    return {
        "owner": policy.owner,
        "legal_basis": policy.legal_basis,
        "retention": policy.retention,
        "reviewed": policy.reviewed.isoformat() if policy.reviewed else None,
        "recipients": list(policy.recipients),
    }


def schema_fields(schema: pa.Schema | None) -> list[dict[str, str]]:
    """[{name, type}] of a schema, for the manifest."""
    return [] if schema is None else [{"name": f.name, "type": str(f.type)} for f in schema]


def build_manifest(
    *,
    plan: Plan,
    run_id: str,
    started: str,
    finished: str,
    inputs: dict[str, Any],
    output: dict[str, Any],
    runner: str,
    keyset: str | None,
    key_version: int | None,
    counts: Mapping[str, int],
) -> dict[str, Any]:
    """The manifest document of one purpose's output."""
    policy = plan.policy
    return {
        "veil_version": veil.__version__,
        "run_id": run_id,
        "started": started,
        "finished": finished,
        "purpose": policy.purpose,
        "description": policy.description,
        "policy": {"path": policy.source, "sha256": policy.sha256},
        "governance": describe_governance(policy),
        "inputs": inputs,
        "output": output,
        "runner": runner,
        "keys": {"keyset": keyset, "key_version": key_version},
        "subject": policy.subject,
        "gates": {
            "consent": (policy.consent.field or {"table": policy.consent.table}) if policy.consent else None,
            "erasure": {"table": policy.erasure.table} if policy.erasure else None,
        },
        "fields": describe_fields(plan, key_version),
        "dropped_fields": list(plan.dropped),
        "counts": split_counts(counts),
    }


def manifest_json(manifest: Mapping[str, Any]) -> bytes:
    """Stable, readable JSON bytes of a manifest."""
    return (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode("utf-8")


# ---------------------------------------------------------------- reading


def read_manifest(folder: str) -> dict[str, Any] | None:
    """The `_manifest.json` of a veil output folder, if there is one."""
    path = FileSystems.join(folder, MANIFEST)
    if not _fs.exists(path):
        return None
    try:
        return json.loads(_fs.read_bytes(path))
    except ValueError:
        raise ConfigError(f"manifest {path} is not valid JSON") from None


def arrow_type(text: str) -> pa.DataType | None:
    """An Arrow type from its manifest spelling (`int64`, `date32[day]`, `timestamp[us, tz=UTC]`)."""
    match = _TIMESTAMP.fullmatch(text)
    if match:
        return pa.timestamp(match.group(1), match.group(2))
    try:
        return pa.type_for_alias(text)
    except (ValueError, KeyError):
        return None


def output_schema(manifest: Mapping[str, Any] | None) -> dict[str, pa.DataType | None]:
    """Output field -> its Arrow type as the manifest declares it (None: a spelling Arrow does not parse)."""
    return {f["name"]: arrow_type(f["type"]) for f in (manifest or {}).get("output", {}).get("schema", [])}


def output_files(folder: str, manifest: Mapping[str, Any] | None) -> tuple[list[str], str]:
    """(the data files, their format) of a veil output: as its manifest lists them, else its `part-*` files.

    Raises:
        InputError: no manifest and no part files.
    """
    if manifest is not None:
        output = manifest.get("output", {})
        return [FileSystems.join(folder, name) for name in output.get("files", [])], output.get("format", "parquet")
    for fmt, suffix in SUFFIX.items():
        matched = FileSystems.match([FileSystems.join(folder, f"part-*{suffix}")])[0].metadata_list
        if matched:
            return sorted(m.path for m in matched), fmt
    raise InputError(f"{folder} holds no veil output (no {MANIFEST} and no part-* files)")
