"""Undo reversible protection (tokenize, encrypt) for named output fields: the pure part.

A value that fails authentication (tampered, made for another purpose or field, an unknown
key version) is never guessed at: it becomes null and is counted; the job decides whether a
count above zero fails it. Restored fields take back their input names.
"""

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from veil.errors import ConfigError, IntegrityError, KeyShreddedError
from veil.keys import KeyRing
from veil.keys.tink_export import TinkKeySpec
from veil.transforms.actions.base import SUBJECT_KEY_COLUMN, BindContext
from veil.transforms.policy import Policy
from veil.transforms.registry import REGISTRY

RESTORED, FAILED, SHREDDED = "restored.", "failed.", "shredded."


@dataclass(frozen=True)
class ReverseOp:
    """One field to restore.

    Attributes:
        output: the protected field's name in the data (e.g. `email_token`).
        source: the name it is restored under (the policy's input field, e.g. `email`).
        action: the action that made it (tokenize or encrypt).
    """

    output: str
    source: str
    action: str


def reverse_ops(policy: Policy, fields: Sequence[str]) -> tuple[ReverseOp, ...]:
    """The ops restoring `fields` (output names) of `policy`'s view; `ConfigError` if one cannot be."""
    outputs = policy.outputs
    ops, problems = [], []
    for field in fields:
        if field not in outputs:
            problems.append(f"'{field}' is not an output field of the policy (outputs: {', '.join(outputs)})")
            continue
        source = outputs[field]
        spec = policy.fields[source]
        if field not in policy.reversible_outputs:
            problems.append(
                f"'{field}' was made by {spec.action}, which cannot be reversed (only tokenize and encrypt can)"
            )
            continue
        ops.append(ReverseOp(field, source, spec.action))
    if not ops and not problems:
        problems.append("name at least one field to detokenize")
    if problems:
        where = f"policy {policy.source}" if policy.source else f"policy '{policy.purpose}'"
        raise ConfigError(f"{where}: cannot detokenize " + "; ".join(problems))
    return tuple(ops)


@dataclass(frozen=True)
class TinkExport:
    """What a Tink keyset export of one output field holds (no key material).

    Attributes:
        output: the field's name in the data (e.g. `email_token`).
        source: its input field (e.g. `email`).
        spec: the working key (kind, HKDF info) and the associated data values are bound to.
    """

    output: str
    source: str
    spec: TinkKeySpec


def _tink_spec(policy: Policy, source: str) -> TinkKeySpec | None:
    spec = policy.fields[source]
    make = REGISTRY[spec.action].tink_key
    return make(spec, policy.purpose, source) if make is not None else None


def tink_export(policy: Policy, output_field: str) -> TinkExport:
    """The key a Tink keyset for `output_field` of `policy`'s view holds.

    Only a key that protects this one field is handed out: fields made by an action Tink
    cannot read (one-way actions, ff1, per-subject encryption) are refused, and so is a field
    whose key also protects another output field of the policy (siv fields sharing a
    `domain`; encrypt fields, which share the purpose's key), since the keyset would decrypt
    those too.

    Raises:
        ConfigError: the field is unknown or cannot be exported, saying why.
    """
    where = f"policy {policy.source}" if policy.source else f"policy '{policy.purpose}'"
    prefix = f"{where}: cannot export a Tink keyset for '{output_field}'"
    by_output = policy.outputs
    source = by_output.get(output_field)
    if source is None:
        raise ConfigError(f"{prefix}: it is not an output field of the policy (outputs: {', '.join(by_output)})")
    action = policy.fields[source].action
    try:
        spec = _tink_spec(policy, source)
    except ConfigError as error:
        raise ConfigError(f"{prefix}: {error}") from None
    if spec is None:
        one_way = REGISTRY[action].reverse is None
        reason = "which is one-way: nothing can decrypt it" if one_way else "which Tink cannot read"
        raise ConfigError(f"{prefix}: it is made by {action}, {reason} (only tokenize siv and encrypt export)")
    shared = []
    for other_output, other in by_output.items():
        if other == source:
            continue
        try:
            other_spec = _tink_spec(policy, other)
        except ConfigError:
            continue
        if other_spec is not None and (other_spec.kind, other_spec.info) == (spec.kind, spec.info):
            shared.append(other_output)
    if shared:
        fix = (
            "give each field its own 'domain'"
            if spec.kind == "deterministic_aead"
            else "the encrypt fields of one purpose share its key: keep one per policy, or use per_subject"
        )
        raise ConfigError(
            f"{prefix}: its key also protects {', '.join(shared)}, so the keyset would decrypt "
            f"{'that field' if len(shared) == 1 else 'those fields'} too; {fix}"
        )
    return TinkExport(output_field, source, spec)


def restored_schema(schema: pa.Schema, ops: Sequence[ReverseOp]) -> pa.Schema:
    """`schema` with each restored field renamed to its source and typed as text."""
    renamed = {op.output: op.source for op in ops}
    clashes = [op.source for op in ops if op.source in schema.names and op.source not in renamed]
    if clashes:
        raise ConfigError(f"cannot restore {', '.join(clashes)}: the data already has a field of that name")
    return pa.schema([pa.field(renamed[f.name], pa.string()) if f.name in renamed else f for f in schema])


class BoundReverse:
    """Reverse functions bound to keys: build once per worker (`DoFn.setup`).

    Args:
        policy: the policy that made the data.
        ops: what to restore (see `reverse_ops`).
        keyring: the opened keyset.
        key_version: the version for outputs that carry none (ff1); tokens and ciphertexts
            that carry a version are read with it.
    """

    def __init__(self, policy: Policy, ops: Sequence[ReverseOp], keyring: KeyRing, key_version: int | None):
        self.ops = tuple(ops)
        self._fns: list[Callable[..., Any]] = []
        self._per_subject = [REGISTRY[op.action].per_subject(policy.fields[op.source]) for op in self.ops]
        for op in self.ops:
            context = BindContext(policy.purpose, op.source, keyring, key_version)
            self._fns.append(REGISTRY[op.action].reverse(policy.fields[op.source], context))

    def apply_columns(self, columns: Mapping[str, Sequence[Any]]) -> tuple[dict[str, list], Counter]:
        """Restored values by source name, and counts `restored.`, `failed.` and `shredded.<field>`.

        Per-subject ciphertexts read their keys from `SUBJECT_KEY_COLUMN` (added by the subject
        key join); a missing key means the subject was erased: shredded, not tampered.
        """
        counts: Counter = Counter()
        restored = {}
        for op, fn, keyed in zip(self.ops, self._fns, self._per_subject):
            values = []
            keys = columns.get(SUBJECT_KEY_COLUMN) if keyed else None
            for index, value in enumerate(columns[op.output]):
                if value is None:
                    values.append(None)
                    continue
                try:
                    values.append(fn(value, keys[index] if keys is not None else None) if keyed else fn(value))
                    counts[RESTORED + op.output] += 1
                except KeyShreddedError:
                    values.append(None)
                    counts[SHREDDED + op.output] += 1
                except IntegrityError:
                    values.append(None)
                    counts[FAILED + op.output] += 1
            restored[op.source] = values
        return restored, counts

    def apply_batch(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, Counter]:
        """`batch` with the named fields restored under their source names (subject keys dropped)."""
        columns = {op.output: batch.column(op.output).to_pylist() for op in self.ops}
        if SUBJECT_KEY_COLUMN in batch.schema.names:
            columns[SUBJECT_KEY_COLUMN] = batch.column(SUBJECT_KEY_COLUMN).to_pylist()
            batch = batch.drop_columns([SUBJECT_KEY_COLUMN])
        restored, counts = self.apply_columns(columns)
        schema = restored_schema(batch.schema, self.ops)
        renamed = {op.output: op.source for op in self.ops}
        arrays = [
            pa.array(restored[renamed[name]], pa.string()) if name in renamed else batch.column(name)
            for name in batch.schema.names
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=schema), counts

    def apply_rows(self, records: Sequence[dict]) -> tuple[list[dict], Counter]:
        """Dict records with the named fields restored under their source names."""
        restored, counts = self.apply_columns({op.output: [r.get(op.output) for r in records] for op in self.ops})
        renamed = {op.output: op.source for op in self.ops}
        rows = []
        for index, record in enumerate(records):
            rows.append(
                {renamed.get(k, k): (restored[renamed[k]][index] if k in renamed else v) for k, v in record.items()}
            )
        return rows, counts


def restore_counts(counts: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """A restore's counts by kind: `restored`, `failed` and `shredded`, each field -> values."""
    return {
        kind.rstrip("."): {name[len(kind) :]: n for name, n in counts.items() if name.startswith(kind) and n}
        for kind in (RESTORED, FAILED, SHREDDED)
    }


def refuse_unrestored(counts: Mapping[str, int], on_error: str) -> None:
    """With `on_error: fail`, refuse a restore in which values could not be restored.

    Raises:
        KeyShreddedError: values were encrypted under deleted subject keys.
        IntegrityError: values failed authentication.
    """
    if on_error != "fail":
        return
    summary = restore_counts(counts)
    if summary["shredded"]:
        raise KeyShreddedError(
            "; ".join(f"field '{f}': {n} value{'s' if n > 1 else ''}" for f, n in summary["shredded"].items())
            + " were encrypted under subject keys deleted by an erasure (crypto-shredded) and cannot be "
            "restored; nothing was written. Use --on-error null to write them as null"
        )
    if summary["failed"]:
        raise IntegrityError(
            "; ".join(
                f"field '{f}': {n} value{'s' if n > 1 else ''} failed authentication"
                for f, n in summary["failed"].items()
            )
            + " (tampered, made for another purpose or field, or under an unknown key); nothing was written. "
            "Use --on-error null to write them as null"
        )
