"""The run manifest: what a run did, in `DIR/_manifest.json`.

It records the policy (path and sha256), inputs, runner, per output field its source, action,
settings and key version, and the counts. Never a value, never key material.
"""

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

import veil
from veil.transforms.plan import Plan
from veil.transforms.registry import REGISTRY

MANIFEST = "_manifest.json"


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
    return nested


def describe_fields(plan: Plan, key_version: int | None) -> dict[str, Any]:
    """Output field -> {source, action, settings, type, key_version where keyed}."""
    fields = {}
    for op in plan.ops:
        entry: dict[str, Any] = {"source": op.source, "action": op.action}
        settings = op.params.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"action", "as_"})
        if settings:
            entry["settings"] = settings
        if op.output_type is not None:
            entry["type"] = str(op.output_type)
        if REGISTRY[op.action].keyed:
            entry["key_version"] = key_version
        fields[op.output] = entry
    return fields


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
