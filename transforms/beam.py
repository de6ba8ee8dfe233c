"""Beam plumbing around the pure engine: `Sanitize` (dict records) and `SanitizeBatches` (Arrow).

Both run the same compiled Plan through `veil.transforms.engine.BoundPlan`. Keys are opened
once per worker in `DoFn.setup`, from a keyset path, so no key material is ever pickled into
the job graph. Counts go to Beam Metrics under the namespace `veil.<purpose>`:
`read`, `written`, `dropped.<reason>`, `field_errors.<input field>`.
"""

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa

from veil.errors import ConfigError
from veil.keys import open_keyring
from veil.transforms.counting import CountingFn, metrics_namespace
from veil.transforms.engine import ROWS_PER_BATCH, BoundPlan, Record
from veil.transforms.gates import AttachSubjectKeys, SubjectGates
from veil.transforms.plan import Plan, compile_plan, subject_gates
from veil.transforms.policy import Policy, resolve_keyset
from veil.transforms.registry import REGISTRY
from veil.transforms.reverse import BoundReverse, reverse_ops

__all__ = [
    "ArrowBatchCoder",
    "Detokenize",
    "DetokenizeBatches",
    "Sanitize",
    "SanitizeBatches",
    "metrics_namespace",
    "progress",
]


class _Progress:
    """Rows seen by sanitizing DoFns in this process: a progress hint for the local CLI only."""

    def __init__(self) -> None:
        self._lock, self._rows = threading.Lock(), 0

    def add(self, rows: int) -> None:
        with self._lock:
            self._rows += rows

    @property
    def rows(self) -> int:
        return self._rows


progress = _Progress()


class ArrowBatchCoder(beam.coders.Coder):
    """Arrow IPC stream coder for RecordBatch elements, sized by `nbytes` (no pickling to size)."""

    def encode(self, value: pa.RecordBatch) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, value.schema) as writer:
            writer.write_batch(value)
        return sink.getvalue().to_pybytes()

    def decode(self, encoded: bytes) -> pa.RecordBatch:
        return pa.ipc.open_stream(encoded).read_next_batch()

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, value: pa.RecordBatch) -> int:
        return value.nbytes

    def to_type_hint(self):
        return pa.RecordBatch


beam.coders.registry.register_coder(pa.RecordBatch, ArrowBatchCoder)


class _SanitizeFn(CountingFn):
    """Shared setup: compile (if needed) and bind the plan on the worker, count outcomes."""

    def __init__(
        self, plan: Plan | None, policy: Policy, keyset: str | None, key_version: int | None, count_read: bool = True
    ):
        super().__init__(policy.purpose)
        self._plan, self._policy = plan, policy
        self._keyset, self._key_version, self._count_read = keyset, key_version, count_read

    def setup(self) -> None:
        self._keyring = open_keyring(self._keyset) if self._keyset else None
        self._bound: dict[Any, BoundPlan] = {}

    def _bound_plan(self, schema: pa.Schema | None) -> BoundPlan:
        key = None if self._plan is not None else schema
        bound = self._bound.get(key)
        if bound is None:
            plan = self._plan or compile_plan(self._policy, schema)
            bound = self._bound[key] = BoundPlan(plan, self._keyring, self._key_version)
        return bound

    def _count(self, counts: Counter) -> None:
        progress.add(counts["read"])
        if not self._count_read:  # a gate upstream counted what was read
            del counts["read"]
        super()._count(counts)


class _SanitizeBatchFn(_SanitizeFn):
    def process(self, batch: pa.RecordBatch) -> Iterable[pa.RecordBatch]:
        out, counts = self._bound_plan(batch.schema).apply_batch(batch)
        self._count(counts)
        if out.num_rows:
            yield out


class _SanitizeRowsFn(_SanitizeFn):
    def process(self, records: list[Record]) -> Iterable[Record]:
        rows, counts = self._bound_plan(None).apply_rows(records)
        self._count(counts)
        yield from rows


def _resolve(policy: Policy, keyset: str | None, plan: Plan | None) -> str | None:
    needs_keys = plan.keyed if plan is not None else compile_plan(policy).keyed
    return resolve_keyset(policy, keyset) if needs_keys else None


class Sanitize(beam.PTransform):
    """PCollection of dict records -> the policy's protected view, as dict records.

    Args:
        policy: a loaded `Policy` (see `veil.load_policy`).
        keyset: keyset path or URI overriding `VEIL_KEYSET` and the policy's `keyset`.
        key_version: the root key version to write with (default: the policy's pin, else primary).
        label: the transform label (default `Sanitize[<purpose>]`).
    """

    def __init__(
        self, policy: Policy, *, keyset: str | None = None, key_version: int | None = None, label: str | None = None
    ):
        super().__init__(label or f"Sanitize[{policy.purpose}]")
        self._plan = compile_plan(policy)
        self._fn = _SanitizeRowsFn(self._plan, policy, _resolve(policy, keyset, self._plan), key_version)

    def expand(self, records):
        return (
            records
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=ROWS_PER_BATCH)
            | "Apply" >> beam.ParDo(self._fn).with_output_types(dict[str, Any])
        )


class SanitizeBatches(beam.PTransform):
    """PCollection of `pyarrow.RecordBatch` -> batches with the plan's output schema.

    Args:
        policy: a loaded `Policy`.
        schema: the input's Arrow schema; when given, the plan is checked against it now
            (fields missing, wrong types) rather than on the workers.
        keyset: keyset path or URI overriding `VEIL_KEYSET` and the policy's `keyset`.
        key_version: the root key version to write with (default: the policy's pin, else primary).
        consent_rows: the policy's consent table as RecordBatches, when it has one.
        erased_rows: the policy's erasure table as RecordBatches, when it has one.
        subject_key_rows: the policy's subject key table as RecordBatches, when it has one;
            after expansion `new_subject_keys` holds the keys made for subjects without one
            (append them to the table once the pipeline succeeded).
        label: the transform label (default `SanitizeBatches[<purpose>]`).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        schema: pa.Schema | None = None,
        keyset: str | None = None,
        key_version: int | None = None,
        consent_rows: beam.PCollection | None = None,
        erased_rows: beam.PCollection | None = None,
        subject_key_rows: beam.PCollection | None = None,
        label: str | None = None,
    ):
        super().__init__(label or f"SanitizeBatches[{policy.purpose}]")
        plan = compile_plan(policy, schema) if schema is not None else None
        keyset_path = _resolve(policy, keyset, plan)
        self._gates = None
        if subject_gates(policy):
            if policy.consent and policy.consent.table and consent_rows is None:
                raise ConfigError(f"policy '{policy.purpose}' has a consent table: pass its rows as consent_rows")
            if policy.erasure and erased_rows is None:
                raise ConfigError(f"policy '{policy.purpose}' has an erasure table: pass its rows as erased_rows")
            if policy.subject_keys and subject_key_rows is None:
                raise ConfigError(
                    f"policy '{policy.purpose}' has a subject key table: pass its rows as subject_key_rows"
                )
            keyset_path = resolve_keyset(policy, keyset)
            self._gates = SubjectGates(
                policy, keyset_path, consent_rows=consent_rows, erased_rows=erased_rows, key_rows=subject_key_rows
            )
        self.new_subject_keys = None
        self._fn = _SanitizeBatchFn(plan, policy, keyset_path, key_version, count_read=self._gates is None)

    def expand(self, batches):
        if self._gates is not None:
            batches = batches | "Gates" >> self._gates
            self.new_subject_keys = self._gates.new_keys
        return batches | "Apply" >> beam.ParDo(self._fn).with_input_types(pa.RecordBatch).with_output_types(
            pa.RecordBatch
        )


class _DetokenizeFn(CountingFn):
    """Restore named fields on the worker; count restored and failed values per field."""

    def __init__(self, policy: Policy, ops: tuple, keyset: str, key_version: int | None):
        super().__init__(policy.purpose)
        self._policy, self._ops, self._keyset, self._key_version = policy, ops, keyset, key_version

    def setup(self) -> None:
        self._reverse = BoundReverse(self._policy, self._ops, open_keyring(self._keyset), self._key_version)


class _DetokenizeBatchFn(_DetokenizeFn):
    def process(self, batch: pa.RecordBatch) -> Iterable[pa.RecordBatch]:
        out, counts = self._reverse.apply_batch(batch)
        self._count(counts)
        yield out


class _DetokenizeRowsFn(_DetokenizeFn):
    def process(self, record: Record) -> Iterable[Record]:
        rows, counts = self._reverse.apply_rows([record])
        self._count(counts)
        yield from rows


class _Detokenize(beam.PTransform):
    _fn_class: type

    def __init__(
        self,
        policy: Policy,
        fields: Iterable[str],
        *,
        keyset: str | None = None,
        key_version: int | None = None,
        label: str | None = None,
    ):
        super().__init__(label or f"{type(self).__name__}[{policy.purpose}]")
        ops = reverse_ops(policy, list(fields))
        self._fn = self._fn_class(policy, ops, resolve_keyset(policy, keyset), key_version)


class Detokenize(_Detokenize):
    """PCollection of dict records -> the same records with the named fields restored.

    Restored fields take back their input names (`email_token` -> `email`). A value that fails
    authentication becomes null and is counted (`failed.<field>` in Beam Metrics); callers that
    must not go on with failures check that counter (as `veil detokenize` does).

    Args:
        policy: the policy that made the data.
        fields: output field names to restore (tokenize or encrypt fields only).
        keyset: keyset path or URI overriding `VEIL_KEYSET` and the policy's `keyset`.
        key_version: the key version of ff1 tokens (they carry none; see the run's manifest).
        label: the transform label.
    """

    _fn_class = _DetokenizeRowsFn

    def expand(self, records):
        return records | "Restore" >> beam.ParDo(self._fn).with_output_types(dict[str, Any])


class DetokenizeBatches(_Detokenize):
    """`Detokenize` for PCollections of `pyarrow.RecordBatch`.

    Per-subject ciphertexts (`encrypt: {per_subject: true}`) need the policy's subject key
    table, passed as `subject_key_rows` (RecordBatches); a value whose key was deleted by an
    erasure becomes null and is counted as `shredded.<field>`.
    """

    _fn_class = _DetokenizeBatchFn

    def __init__(self, policy: Policy, fields: Iterable[str], *, subject_key_rows=None, **options):
        super().__init__(policy, fields, **options)
        self._per_subject = [
            op.output for op in self._fn._ops if REGISTRY[op.action].per_subject(policy.fields[op.source])
        ]
        if self._per_subject and subject_key_rows is None:
            raise ConfigError(
                f"{', '.join(self._per_subject)} are encrypted per subject: pass the subject key table "
                "as subject_key_rows"
            )
        self._key_rows = subject_key_rows

    def expand(self, batches):
        if self._per_subject:
            batches = batches | "SubjectKeys" >> AttachSubjectKeys(self._per_subject, self._key_rows)
        return batches | "Restore" >> beam.ParDo(self._fn).with_input_types(pa.RecordBatch).with_output_types(
            pa.RecordBatch
        )
