"""Apply a bound Plan to an Arrow batch: gates, field actions, `on_error`, counts, dead letters.

The one executor of veil: Arrow batches (`veil run`, `SanitizeBatches`) and dict records
(`Sanitize`, via `records_batch`) run through `BoundPlan.apply_batch`. Pure Python and
pyarrow, no Beam: the Beam DoFns only move data through it and report the counts. A value
that cannot be protected never passes through: it becomes null, drops its record, or stops the
job, as the field's `on_error` says, and it is listed as a dead letter (field, action, code;
never the value).
"""

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from veil.errors import ActionError, ConfigError, DataRefusedError, ErrorCode, VeilError
from veil.keys import KeyRing
from veil.transforms.actions.base import (
    INTERNAL_PREFIX,
    SUBJECT_KEY_COLUMN,
    Action,
    ArrowFn,
    BindContext,
    ColumnFn,
    SubjectArrowFn,
    kind_of,
)
from veil.transforms.columns import (
    consent_mask,
    is_mixed,
    map_array,
    map_column,
    map_list,
    mostly_distinct,
    per_value,
    python_column,
)
from veil.transforms.plan import ColumnOp, Plan
from veil.transforms.registry import REGISTRY
from veil.transforms.subjects import REF_COLUMN, subject_ref

Record = dict[str, Any]

ROWS_PER_BATCH = 2048  # rows per Arrow batch (and dict records per call) the Beam transforms hand the engine
BATCHES_PER_ROW_GROUP = 32  # Parquet output: up to 32 output batches (about 65k rows) per row group
PROBE_EVERY = 16  # batches: how often a deterministic field looks again at whether its values repeat
READ, WRITTEN = "read", "written"
NO_CONSENT, FIELD_ERROR = "dropped.no_consent", "dropped.field_error"
FIELD_ERRORS = "field_errors."
UNREADABLE_COLUMN = INTERNAL_PREFIX + "unreadable"  # per row: the input fields whose dict value Arrow cannot hold


class DeadLetter(NamedTuple):
    """One value that could not be protected: where it was and why, never the value.

    Attributes:
        purpose: the policy's purpose.
        field: the input field.
        action: the field's action.
        code: the error code (`veil.errors.ErrorCode` value, e.g. "not a valid date").
        on_error: what the policy did with it: `null` (the field was nulled) or `drop_record`.
        position: the row's index in the batch the transform was given, when that batch
            reached the engine whole (None after a subject gate re-split it, and for dicts).
        subject_ref: the keyed reference of the record's subject (HMAC under the keyset's
            subject key, as in erasure tables) when the policy has a subject and the keyset a
            subject key; None otherwise.
    """

    purpose: str
    field: str
    action: str
    code: str
    on_error: str
    position: int | None
    subject_ref: str | None


class AppliedRecords(NamedTuple):
    """What `BoundPlan.apply_records` gives back: `Applied`, with the rows written as dict records."""

    records: list[Record]
    counts: Counter
    dead_letters: list[DeadLetter]


class Applied(NamedTuple):
    """What `BoundPlan.apply_batch` gives back.

    Attributes:
        batch: the rows written, in the plan's output fields.
        counts: `read`, `written`, `dropped.<reason>` and `field_errors.<input field>`.
        dead_letters: one per value that could not be protected.
    """

    batch: pa.RecordBatch
    counts: Counter
    dead_letters: list[DeadLetter]


@dataclass
class _Field:
    """One output field bound on a worker: its op, per-value and column functions, Arrow kernels by input type."""

    op: ColumnOp
    action: Action
    fn: Callable[..., Any]
    column_fn: ColumnFn | None
    context: BindContext
    subject_column: str | None  # the input column a per-subject function reads beside the value
    kernels: dict[pa.DataType, ArrowFn | SubjectArrowFn | None] = field(default_factory=dict)
    batch_fn: ColumnFn = field(init=False)  # what an Arrow batch runs without a kernel
    _memo: bool = field(init=False, default=True)
    _batches: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.batch_fn = self.column_fn or per_value(self.fn)

    def memo_pays(self, values: pa.Array) -> bool:
        """Whether this batch's column function should see each distinct value once: for a
        deterministic action, unless its values barely repeat (`mostly_distinct`, looked at on
        the first batch and every PROBE_EVERY batches). Either way the outputs are the same."""
        if not self.action.deterministic:
            return False
        if self._batches % PROBE_EVERY == 0:
            self._memo = not mostly_distinct(values)
        self._batches += 1
        return self._memo

    def kernel(self, input_type: pa.DataType) -> ArrowFn | SubjectArrowFn | None:
        """The action's Arrow kernel for this input type (None: none for it)."""
        if self.action.bind_arrow is None:
            return None
        if input_type not in self.kernels:
            self.kernels[input_type] = self.action.bind_arrow(self.op.params, self.context, input_type)
        return self.kernels[input_type]

    def output_type(self, input_type: pa.DataType) -> pa.DataType | None:
        """The output type for an input of `input_type`: the plan's, else the action's rule when it takes
        that kind (None: the values decide)."""
        if self.op.output_type is not None:
            return self.op.output_type
        kinds = self.action.accepted_kinds(self.op.params)
        kind = kind_of(input_type)
        if is_mixed(input_type) or (kinds is not None and kind != "null" and kind not in kinds):
            return None
        return self.action.output_type(self.op.params, input_type)

    def code_of(self, value: Any, subject: Any, first: ActionError | None) -> str:
        """The error code of one failed value: the per-value function (the specification) says it."""
        try:
            self.fn(value, subject) if self.subject_column is not None else self.fn(value)
        except ActionError as error:
            return error.code.value
        return (first.code if first is not None else ErrorCode.WRONG_TYPE).value


def _move_tally(context: BindContext, counts: Counter) -> None:
    """Add what an action tallied while it ran (`scrubbed.<field>.<entity>`) to the batch's counts."""
    if context.tally:
        counts.update(context.tally)
        context.tally.clear()


class BoundPlan:
    """A Plan with its actions bound to keys: build once per worker (`DoFn.setup`).

    Attributes:
        plan: the compiled plan.
        key_version: the root key version keyed actions use (None if nothing is keyed).
    """

    def __init__(self, plan: Plan, keyring: KeyRing | None, key_version: int | None = None):
        self.plan = plan
        policy = plan.policy
        if plan.keyed:
            if keyring is None:
                raise ConfigError(f"policy '{policy.purpose}' has keyed fields but no keyring was given")
            key_version = keyring.resolve_version(key_version or policy.key_version)
        self.key_version = key_version if plan.keyed else None
        self._keyring = keyring
        self._fields = [self._bind(op, keyring) for op in plan.ops]
        self._levels = [self._bind(op, keyring) for op in plan.levels]  # hidden coarser levels (see Plan.levels)

    def _bind(self, op: ColumnOp, keyring: KeyRing | None) -> _Field:
        policy, action = self.plan.policy, REGISTRY[op.action]
        context = BindContext(
            policy.purpose,
            op.source,
            keyring if action.keyed else None,
            self.key_version if action.keyed else None,
            tally=Counter(),
        )
        column_fn = action.bind_column(op.params, context) if action.bind_column else None
        role = action.subject_input(op.params)
        subject_column = None if role is None else policy.subject if role == "id" else SUBJECT_KEY_COLUMN
        return _Field(op, action, action.bind(op.params, context), column_fn, context, subject_column)

    def _refuse(self, op: ColumnOp, error: ActionError | None) -> None:
        """Raise for a field with `on_error: fail` that met a value it cannot protect."""
        code = error.code.value if error is not None else ErrorCode.WRONG_TYPE.value
        raise DataRefusedError(
            f"policy '{self.plan.policy.purpose}': field '{op.source}' ({op.action}) has a value "
            f"that cannot be protected ({code}); the policy says on_error: fail "
            "(use null or drop_record to let the job go on)"
        )

    def _subject_refs(self, batch: pa.RecordBatch, rows: Sequence[int]) -> list[str | None]:
        """The subject references of `rows` (for dead letters), where the policy and keyset allow one."""
        if REF_COLUMN in batch.schema.names:
            refs = batch.column(REF_COLUMN)
            return [refs[row].as_py() for row in rows]
        subject = self.plan.policy.subject
        if self._keyring is None or subject is None or subject not in batch.schema.names:
            return [None] * len(rows)
        try:
            column = batch.column(subject)
            return [subject_ref(self._keyring, column[row].as_py()) for row in rows]
        except VeilError:  # a keyset without a subject key: no references
            return [None] * len(rows)

    def apply_batch(self, batch: pa.RecordBatch, positions: bool = True, levels: bool = True) -> Applied:
        """Gate and transform an Arrow batch, column by column; the output has the plan's batch
        schema (with `levels`, the default) or its output schema.

        Columns stay Arrow arrays: actions with Arrow kernels never convert values to Python,
        the others see each distinct value once (deterministic) or each non-null value; a mixed
        Python column (from dict records) goes value by value through the per-value function.

        Args:
            batch: the input rows (input fields by name; missing fields are null).
            positions: whether row indices of this batch mean something to the caller (they go
                into dead letters).
            levels: whether to add the hidden level columns of `on_violation: generalize`.

        Raises:
            DataRefusedError: a field with `on_error: fail` met a value it cannot protect.
        """
        policy = self.plan.policy
        schema = self.plan.batch_schema if levels else self.plan.output_schema
        counts: Counter = Counter({READ: batch.num_rows})
        origin = np.arange(batch.num_rows) if positions else None  # input row of each row left
        if policy.consent and policy.consent.field:
            if policy.consent.field in batch.schema.names:
                allowed = consent_mask(batch.column(policy.consent.field), policy.purpose)
            else:  # no consent column: nobody consented
                allowed = pa.array(np.zeros(batch.num_rows, dtype=bool))
            refused = len(allowed) - (pc.sum(allowed).as_py() or 0)
            if refused:
                counts[NO_CONSENT] = refused
                batch = batch.filter(allowed)
                if origin is not None:
                    origin = origin[allowed.to_numpy(zero_copy_only=False)]
        unreadable = self._unreadable(batch)
        arrays: list[pa.Array] = []
        failures: list[tuple[_Field, list[int], ActionError | None]] = []
        dropped = np.zeros(batch.num_rows, dtype=bool)
        python_columns: dict[str, list] = {}
        fields = [*self._fields, *self._levels] if levels else self._fields
        for index, bound in enumerate(fields):
            op = bound.op
            target = schema.field(index).type if schema is not None else None
            values = batch.column(op.source) if op.source in batch.schema.names else pa.nulls(batch.num_rows)
            result, failed, error = self._apply_field(bound, batch, values, python_columns)
            _move_tally(bound.context, counts)
            if index >= len(self._fields):  # a coarser level: a value it fails on is null (more general), not counted
                failed = []
            bad = unreadable.get(op.source) if index < len(self._fields) else None
            if bad:  # made null by `records_batch` already: count them as what they are
                failed = sorted(set(failed) | set(bad))
                error = error or ActionError(ErrorCode.UNREADABLE, op.source, op.action)
            if failed:
                counts[FIELD_ERRORS + op.source] += len(failed)
                if op.params.on_error == "fail":
                    self._refuse(op, error)
                failures.append((bound, failed, error))
                if op.params.on_error == "drop_record":
                    dropped[failed] = True
            if target is not None and result.type != target and not is_mixed(result.type):
                result = result.cast(target)
            arrays.append(result)
        out = pa.RecordBatch.from_arrays(arrays, names=[bound.op.output for bound in fields])
        letters = self._dead_letters(batch, failures, unreadable, origin)
        lost = int(dropped.sum())
        if lost:
            counts[FIELD_ERROR] = lost
            out = out.filter(pa.array(~dropped))
        counts[WRITTEN] = out.num_rows
        return Applied(out, counts, letters)

    def apply_records(self, records: Sequence[Mapping[str, Any]], positions: bool = True) -> AppliedRecords:
        """`apply_batch` over dict records (converted by `records_batch`, and back): each output
        record has the output fields only."""
        applied = self.apply_batch(records_batch(self.plan, records), positions, levels=False)
        return AppliedRecords(applied.batch.to_pylist(), applied.counts, applied.dead_letters)

    def _apply_field(
        self, bound: _Field, batch: pa.RecordBatch, values: pa.Array, python_columns: dict[str, list]
    ) -> tuple[pa.Array, list[int], ActionError | None]:
        """One field's output column, failed rows and first failure."""
        output_type = bound.output_type(values.type)
        python = is_mixed(values.type)
        kernel = None if python else bound.kernel(values.type)
        if bound.subject_column is not None:
            name = bound.subject_column
            subjects = batch.column(name) if name in batch.schema.names else pa.nulls(batch.num_rows, pa.string())
            if kernel is not None:
                return kernel(values, subjects)
            if name not in python_columns:
                python_columns[name] = subjects.to_pylist()
            out, failed, error = map_column(bound.fn, values.to_pylist(), python_columns[name], False)
            return python_column(out, output_type)[0], failed, error
        if kernel is not None:
            return kernel(values)
        if python or output_type is None:
            out, failed, error = map_list(bound.batch_fn, values.to_pylist())
            return python_column(out, output_type)[0], failed, error
        return map_array(bound.batch_fn, values, output_type, bound.memo_pays(values))

    @staticmethod
    def _unreadable(batch: pa.RecordBatch) -> dict[str, list[int]]:
        """Input field -> rows whose dict value Arrow could not hold (see `records_batch`)."""
        if UNREADABLE_COLUMN not in batch.schema.names:
            return {}
        found: dict[str, list[int]] = {}
        for row, names in enumerate(batch.column(UNREADABLE_COLUMN).to_pylist()):
            for name in names or ():
                found.setdefault(name, []).append(row)
        return found

    def _dead_letters(self, batch, failures, unreadable, origin: np.ndarray | None) -> list[DeadLetter]:
        """One dead letter per failed value (computed only when something failed)."""
        if not failures:
            return []
        purpose, letters = self.plan.policy.purpose, []
        for bound, failed, first in failures:
            op = bound.op
            refs = self._subject_refs(batch, failed)
            bad = set(unreadable.get(op.source, ()))
            values = batch.column(op.source) if op.source in batch.schema.names else None
            subjects = (
                batch.column(bound.subject_column)
                if bound.subject_column is not None and bound.subject_column in batch.schema.names
                else None
            )
            for row, ref in zip(failed, refs):
                if row in bad:
                    code = ErrorCode.UNREADABLE.value
                else:
                    value = values[row].as_py() if values is not None else None
                    subject = subjects[row].as_py() if subjects is not None else None
                    code = bound.code_of(value, subject, first)
                position = int(origin[row]) if origin is not None else None
                letters.append(DeadLetter(purpose, op.source, op.action, code, op.params.on_error, position, ref))
        return letters


def unlisted_fields(plan: Plan, names: Iterable[str]) -> list[str]:
    """Input field names a `default: error` policy refuses (those it does not name), in order."""
    mentioned = plan.policy.mentioned_fields
    return [name for name in names if name not in mentioned and not name.startswith(INTERNAL_PREFIX)]


def records_batch(plan: Plan, records: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
    """Dict records as the Arrow batch `BoundPlan.apply_batch` takes: the plan's input fields only.

    Each field becomes a column of the plan's input type when it has one and the values fit,
    else of the type the values share, else a mixed column the per-value functions read
    value by value (`python_column`); a value Arrow cannot hold at all is marked for the engine
    to count as a field error. A missing key is null.

    Raises:
        ConfigError: the policy says `default: error` and a record has a field it does not name.
    """
    policy = plan.policy
    if policy.default == "error":
        seen: dict[str, None] = {}
        for record in records:
            seen.update(dict.fromkeys(record))
        unlisted = unlisted_fields(plan, seen)
        if unlisted:
            raise ConfigError(
                f"policy '{policy.purpose}': default: error, and a record "
                f"has fields the policy does not name: {', '.join(sorted(unlisted))}"
            )
    schema = plan.input_schema
    arrays, names, unreadable = [], [], [[] for _ in records]
    for name in plan.input_fields:
        arrow_type = schema.field(name).type if schema is not None and name in schema.names else None
        array, bad = python_column([record.get(name) for record in records], arrow_type)
        arrays.append(array)
        names.append(name)
        for row in bad:
            unreadable[row].append(name)
    if any(unreadable):
        arrays.append(pa.array(unreadable, pa.list_(pa.string())))
        names.append(UNREADABLE_COLUMN)
    return pa.RecordBatch.from_arrays(arrays, names=names)
