"""Beam plumbing around the pure engine: `Sanitize` (dict records) and `SanitizeBatches` (Arrow).

Both run the same compiled Plan through `veil.transforms.engine.BoundPlan`. Keys are opened
once per worker in `DoFn.setup`, from a keyset path, so no key material is ever pickled into
the job graph. Counts go to Beam Metrics under the namespace `veil.<purpose>`:
`read`, `written`, `dropped.<reason>`, `field_errors.<input field>`.
"""

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from veil.errors import ConfigError, IntegrityError, KeyShreddedError
from veil.keys import open_keyring
from veil.transforms.actions.base import INTERNAL_PREFIX
from veil.transforms.arrow_coder import ArrowBatchCoder
from veil.transforms.audit import append_audit, audit_line
from veil.transforms.counting import COUNTS, CountingFn, SumCounts, metrics_namespace
from veil.transforms.engine import ROWS_PER_BATCH, BoundPlan, records_batch
from veil.transforms.gates import AttachSubjectKeys, SubjectGates
from veil.transforms.plan import Plan, compile_plan, subject_gates
from veil.transforms.policy import Policy, resolve_audit_log, resolve_keyset
from veil.transforms.reverse import BoundReverse, refuse_unrestored, restore_counts, reverse_ops
from veil.transforms.tables import GateTables

__all__ = [
    "ArrowBatchCoder",
    "Detokenize",
    "DetokenizeBatches",
    "Sanitize",
    "SanitizeBatches",
    "SanitizeResult",
    "metrics_namespace",
]


DEAD_LETTERS = "dead_letters"
NO_NEW_KEYS = "no_new_subject_keys"  # an output of the Sanitize DoFn that stays empty


class SanitizeResult(NamedTuple):
    """What `Sanitize` and `SanitizeBatches` give back (as Beam's `with_exception_handling` does).

    Attributes:
        output: the protected view (dict records for `Sanitize`, RecordBatches for `SanitizeBatches`).
        dead_letters: one dict per value that could not be protected (`veil.transforms.engine.DeadLetter`
            fields: purpose, field, action, code, on_error, position, subject_ref), never the value.
        new_subject_keys: RecordBatches of the subject keys made for subjects without one (empty
            unless the policy has a subject key table); append them to the table once the pipeline
            succeeded (`veil run` does), or the ciphertexts made with them cannot be read back.
        counts: the outcome counts as data, dicts of the counter names of Beam Metrics (`read`,
            `written`, `dropped.<reason>`, ...); their sum (`veil.transforms.counting.SumCounts`)
            is what the metrics say, available to a later stage of the same pipeline.
    """

    output: beam.PCollection
    dead_letters: beam.PCollection
    new_subject_keys: beam.PCollection
    counts: beam.PCollection


class _SanitizeFn(CountingFn):
    """Bind the plan on the worker (compiling it per input schema when none was given), apply it to
    each batch, count outcomes and emit dead letters (tagged)."""

    def __init__(
        self,
        plan: Plan | None,
        policy: Policy,
        keyset: str | None,
        key_version: int | None,
        gated: bool,
        positions: bool,
        levels: bool = False,
    ):
        super().__init__(policy.purpose)
        self._plan, self._policy = plan, policy
        self._keyset, self._key_version, self._gated, self._positions = keyset, key_version, gated, positions
        self._levels = levels

    def setup(self) -> None:
        self._keyring = open_keyring(self._keyset) if self._keyset else None
        self._bound: dict[Any, BoundPlan] = {}

    def _bound_plan(self, schema: pa.Schema) -> BoundPlan:
        key = None if self._plan is not None else schema
        bound = self._bound.get(key)
        if bound is None:
            inputs = pa.schema([f for f in schema if not f.name.startswith(INTERNAL_PREFIX)])
            plan = self._plan or compile_plan(self._policy, inputs)
            bound = self._bound[key] = BoundPlan(plan, self._keyring, self._key_version)
        return bound

    def process(self, batch: pa.RecordBatch) -> Iterable[Any]:
        applied = self._bound_plan(batch.schema).apply_batch(batch, positions=self._positions, levels=self._levels)
        counts = applied.counts
        if self._gated:  # the gate upstream counted what was read
            del counts["read"]
        yield self._count(counts)
        for letter in applied.dead_letters:
            yield pvalue.TaggedOutput(DEAD_LETTERS, letter._asdict())
        if applied.batch.num_rows:
            yield applied.batch


class _SanitizeTransform(beam.PTransform):
    """What both transforms check at construction (plan, keys, gate tables) and run in `expand()`;
    arguments as `SanitizeBatches`."""

    _dict_records: bool
    _aggregating = False  # True only inside DPAggregates, where the rows never leave the aggregation

    def __init__(
        self,
        policy: Policy | Plan,
        *,
        schema: pa.Schema | None = None,
        keyset: str | None = None,
        key_version: int | None = None,
        consent_rows: beam.PCollection | None = None,
        erased_rows: beam.PCollection | None = None,
        subject_key_rows: beam.PCollection | None = None,
        tables: GateTables | None = None,
        levels: bool = False,
        label: str | None = None,
    ):
        if isinstance(policy, Plan):
            plan, policy = policy, policy.policy
        else:
            plan = compile_plan(policy, schema) if schema is not None or self._dict_records else None
        if policy.aggregates is not None and not self._aggregating:
            raise ConfigError(
                f"policy '{policy.purpose}' releases only differentially private aggregates, never rows: "
                "use veil.DPAggregates (as veil run does)"
            )
        super().__init__(label or f"{type(self).__name__}[{policy.purpose}]")
        self.policy, self.plan = policy, plan
        needs_keys = bool(policy.keyed_outputs) or subject_gates(policy)
        self._keyset = resolve_keyset(policy, keyset) if needs_keys else None
        overrides = {"consent": consent_rows, "erasure": erased_rows, "subject_keys": subject_key_rows}
        self._overrides = {name: rows for name, rows in overrides.items() if rows is not None}
        # found on the driver now: a missing erasure table refuses to build, never lets subjects flow
        self._tables = tables if tables is not None else GateTables.of(policy, frozenset(self._overrides))
        gated = subject_gates(policy)  # positions mean something only in the caller's own batches, not re-split
        positions = not (gated or self._dict_records)
        levels = levels and not self._dict_records
        self._fn = _SanitizeFn(plan, policy, self._keyset, key_version, gated, positions, levels)

    def _sanitize(self, batches: beam.PCollection) -> SanitizeResult:
        pipeline, policy = batches.pipeline, self.policy
        new_keys, counts = None, []
        if subject_gates(policy):
            tables = {**self._tables.read(pipeline, policy.purpose), **self._overrides}
            gates = SubjectGates(
                policy,
                self._keyset,
                consent_rows=tables.get("consent"),
                erased_rows=tables.get("erasure"),
                key_rows=tables.get("subject_keys"),
            )
            gated = batches | "Gates" >> gates
            batches, new_keys = gated.records, gated.new_keys
            counts.append(gated.counts)
        # without subject gates, no new subject keys: an output of Apply it never writes (a Create of
        # nothing would be three more transforms and a stage of its own, ~25 ms of a small run)
        types = {DEAD_LETTERS: dict[str, Any], COUNTS: dict[str, int]}
        if new_keys is None:
            types[NO_NEW_KEYS] = pa.RecordBatch
        apply = beam.ParDo(self._fn).with_input_types(pa.RecordBatch).with_output_types(pa.RecordBatch, **types)
        applied = batches | "Apply" >> apply.with_outputs(*types, main="output")
        counts.append(applied[COUNTS])
        if new_keys is None:
            new_keys = applied[NO_NEW_KEYS]
        counted = counts[0] if len(counts) == 1 else tuple(counts) | "Counts" >> beam.Flatten()
        return SanitizeResult(applied.output, applied[DEAD_LETTERS], new_keys, counted)


class Sanitize(_SanitizeTransform):
    """PCollection of dict records -> a `SanitizeResult` whose `output` is the policy's view, as dicts.

    Records are batched into Arrow (`veil.transforms.engine.records_batch`, typed by `schema`
    where given and the values fit) and run through the same engine, gates and subject tables as
    `SanitizeBatches`: consent, erasure and subject key tables the policy names are read by the
    transform (Beam IO), so an erased subject never flows and per-subject encryption makes one
    key per subject. Arguments as `SanitizeBatches`.
    """

    _dict_records = True

    def expand(self, records) -> SanitizeResult:
        plan = self.plan
        batches = (
            records
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=ROWS_PER_BATCH)
            | "ToArrow" >> beam.Map(lambda chunk: records_batch(plan, chunk)).with_output_types(pa.RecordBatch)
        )
        result = self._sanitize(batches)
        rows = result.output | "ToDicts" >> beam.FlatMap(pa.RecordBatch.to_pylist).with_output_types(dict[str, Any])
        return result._replace(output=rows)


class SanitizeBatches(_SanitizeTransform):
    """PCollection of `pyarrow.RecordBatch` -> a `SanitizeResult` whose `output` has the plan's output schema.

    Args:
        policy: a loaded `Policy`, or a `Plan` compiled from one (then nothing is compiled again).
        schema: the input's Arrow schema; when given, the plan is compiled and checked against
            it now (fields missing, wrong types) rather than on the workers.
        keyset: keyset path or URI overriding `VEIL_KEYSET` and the policy's `keyset`.
        key_version: the root key version to write with (default: the policy's pin, else primary).
        consent_rows: the consent table as RecordBatches, overriding the policy's (which the
            transform otherwise reads itself); likewise erased_rows and subject_key_rows.
        tables: the policy's tables as found on the driver (`GateTables.of`), when the caller
            already found them (`veil run`).
        levels: with `on_violation: generalize`, add the coarser levels of the quasi-identifiers
            as hidden columns, for `EnforceKAnonymity` (which needs them and removes them).
        label: the transform label (default `<transform>[<purpose>]`).
    """

    _dict_records = False

    def expand(self, batches) -> SanitizeResult:
        return self._sanitize(batches)


class _DetokenizeFn(CountingFn):
    """Restore named fields on the worker; count restored and failed values per field (Beam metrics,
    and a tagged output of counts that the audit stage sums)."""

    def __init__(self, policy: Policy, ops: tuple, keyset: str, key_version: int | None, dict_records: bool):
        super().__init__(policy.purpose)
        self._policy, self._ops, self._keyset, self._key_version = policy, ops, keyset, key_version
        self._dict_records = dict_records

    def setup(self) -> None:
        self._reverse = BoundReverse(self._policy, self._ops, open_keyring(self._keyset), self._key_version)

    def process(self, element: Any) -> Iterable[Any]:
        if self._dict_records:
            rows, counts = self._reverse.apply_rows([element])
        else:
            out, counts = self._reverse.apply_batch(element)
            rows = [out]
        yield self._count(counts)
        yield from rows


class _AppendAuditLine(beam.DoFn):
    """The run's summed counts -> one audit line (the one `veil detokenize` writes); with
    `on_error: fail`, then refuse a run in which values could not be restored."""

    def __init__(self, path: str, facts: dict[str, Any], on_error: str):
        self._path, self._facts, self._on_error = path, facts, on_error

    def process(self, counts: dict) -> Iterable[dict]:
        refusal, outcome = None, {"outcome": "ok"}
        try:
            refuse_unrestored(counts, self._on_error)
        except (IntegrityError, KeyShreddedError) as error:
            refusal, outcome = error, {"outcome": "failed", "error": type(error).__name__}
        append_audit(self._path, audit_line("detokenize", **self._facts, **outcome, counts=restore_counts(counts)))
        if refusal is not None:
            raise refusal
        yield restore_counts(counts)


class _Detokenize(beam.PTransform):
    _dict_records: bool
    _aggregating = False  # True only inside DPAggregates, where the rows never leave the aggregation

    def __init__(
        self,
        policy: Policy,
        fields: Iterable[str],
        *,
        keyset: str | None = None,
        key_version: int | None = None,
        audit_log: str | None = None,
        audit_facts: Mapping[str, Any] | None = None,
        on_error: str = "null",
        subject_key_rows: beam.PCollection | None = None,
        label: str | None = None,
    ):
        super().__init__(label or f"{type(self).__name__}[{policy.purpose}]")
        ops = reverse_ops(policy, list(fields))
        keyset_path = resolve_keyset(policy, keyset)
        if audit_log is not None and not audit_log:
            raise ConfigError("re-identification is audited: name an audit log (audit_log=PATH), or leave the policy's")
        if on_error not in ("null", "fail"):
            raise ConfigError(f"unknown on_error '{on_error}'; use fail or null")
        self._audit_log = audit_log or resolve_audit_log(policy, keyset_path)
        self._facts = {
            "policy": policy.source,
            "policy_sha256": policy.sha256,
            "purpose": policy.purpose,
            "fields": [op.output for op in ops],
            **(audit_facts or {}),
        }
        self._on_error = on_error
        self._per_subject = [op.output for op in ops if op.output in policy.per_subject_outputs]
        self._key_rows, self._key_table = subject_key_rows, None
        if self._per_subject:
            if self._dict_records:
                raise ConfigError(
                    f"{', '.join(self._per_subject)} are encrypted per subject: restore them from RecordBatches "
                    "(veil.DetokenizeBatches), which joins the subject key table"
                )
            if subject_key_rows is None:
                self._key_table = GateTables.of(policy).subject_keys
        self._fn = _DetokenizeFn(policy, ops, keyset_path, key_version, self._dict_records)

    @property
    def audit_facts(self) -> dict[str, Any]:
        """What the audit line says besides the outcome and counts (policy, purpose, fields, the caller's facts)."""
        return dict(self._facts)

    def expand(self, elements):
        if self._per_subject:
            key_rows = self._key_rows
            if key_rows is None:
                key_rows = GateTables(subject_keys=self._key_table).read(elements.pipeline, self._facts["purpose"])[
                    "subject_keys"
                ]
            elements = elements | "SubjectKeys" >> AttachSubjectKeys(self._per_subject, key_rows)
        kind = dict[str, Any] if self._dict_records else pa.RecordBatch
        restored = elements | "Restore" >> beam.ParDo(self._fn).with_output_types(kind).with_outputs(
            COUNTS, main="restored"
        )
        _ = (
            restored[COUNTS]
            | "SumCounts" >> beam.CombineGlobally(SumCounts())
            | "Audit" >> beam.ParDo(_AppendAuditLine(self._audit_log, self._facts, self._on_error))
        )
        return restored.restored


class Detokenize(_Detokenize):
    """PCollection of dict records -> the same records with the named fields restored, audited.

    Restored fields take back their input names (`email_token` -> `email`). A value that fails
    authentication becomes null and is counted (`failed.<field>` in Beam Metrics). Once the
    restore has run, the pipeline appends one line to the audit log (the policy's `audit_log`,
    else `audit.jsonl` beside the keyset): who, when, policy, purpose, fields and counts, never
    a value; the line `veil detokenize` writes.

    Args:
        policy: the policy that made the data.
        fields: output field names to restore (tokenize or encrypt fields only).
        keyset: keyset path or URI overriding `VEIL_KEYSET` and the policy's `keyset`.
        key_version: the key version of ff1 tokens (they carry none; see the run's manifest).
        audit_log: the audit log to append to (default: the policy's); an empty name is refused.
        audit_facts: more facts for the line (`veil detokenize` adds input, output, run_id).
        on_error: `null` (default: failed values are null, counted in the line) or `fail`:
            a run with values that could not be restored is refused (after its line is written).
        label: the transform label.
    """

    _dict_records = True


class DetokenizeBatches(_Detokenize):
    """`Detokenize` for PCollections of `pyarrow.RecordBatch`, audited the same way.

    Per-subject ciphertexts (`encrypt: {per_subject: true}`) are read with the policy's subject
    key table, which the transform reads itself (`subject_key_rows` overrides it); a value whose
    key was deleted by an erasure becomes null and is counted as `shredded.<field>`.
    """

    _dict_records = False
