"""Apply a bound Plan to a batch of columns: gates, field actions, `on_error`, counts.

Pure Python over lists and Arrow batches, no Beam: the Beam DoFns only move data through
these functions and report the counts. A value that cannot be protected never passes
through: it becomes null, drops its record, or stops the job, as the field's `on_error` says.
"""

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from veil.errors import ActionError, ConfigError, DataRefusedError
from veil.keys import KeyRing
from veil.transforms.actions.base import SUBJECT_KEY_COLUMN, Action, ArrowFn, BindContext, ColumnFn, SubjectArrowFn
from veil.transforms.columns import consent_mask, has_consent, map_array, map_column, map_list, per_value
from veil.transforms.plan import ColumnOp, Plan
from veil.transforms.registry import REGISTRY

Record = dict[str, Any]

ROWS_PER_BATCH = 2048  # rows per Arrow batch (and dict records per call) the Beam transforms hand the engine
BATCHES_PER_ROW_GROUP = 32  # Parquet output: up to 32 output batches (about 65k rows) per row group
READ, WRITTEN = "read", "written"
NO_CONSENT, FIELD_ERROR = "dropped.no_consent", "dropped.field_error"
FIELD_ERRORS = "field_errors."


@dataclass
class _Field:
    """One output field bound on a worker: its op, per-value and column functions, Arrow kernels by input type."""

    op: ColumnOp
    action: Action
    fn: Callable[..., Any] | None
    column_fn: ColumnFn | None
    context: BindContext
    kernels: dict[pa.DataType, ArrowFn | SubjectArrowFn | None] = field(default_factory=dict)
    batch_fn: ColumnFn = field(init=False)  # what an Arrow batch runs without a kernel

    def __post_init__(self) -> None:
        self.batch_fn = self.column_fn or per_value(self.fn)

    def kernel(self, input_type: pa.DataType) -> ArrowFn | SubjectArrowFn | None:
        """The action's Arrow kernel for this input type (None: none for it)."""
        if self.action.bind_arrow is None:
            return None
        if input_type not in self.kernels:
            self.kernels[input_type] = self.action.bind_arrow(self.op.params, self.context, input_type)
        return self.kernels[input_type]


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
        self._fields: list[_Field] = []
        for op in plan.ops:
            action = REGISTRY[op.action]
            context = BindContext(
                policy.purpose, op.source, keyring if action.keyed else None, self.key_version if action.keyed else None
            )
            column_fn = action.bind_column(op.params, context) if action.bind_column else None
            self._fields.append(_Field(op, action, action.bind(op.params, context), column_fn, context))
        self._mentioned = set(policy.fields) | {policy.subject} | {policy.consent and policy.consent.field}

    def _per_subject(self, bound: _Field) -> str | None:
        """The input column a per-subject action reads next to the value (None: it reads the value only)."""
        role = bound.action.subject_input(bound.op.params)
        if role is None:
            return None
        return self.plan.policy.subject if role == "id" else SUBJECT_KEY_COLUMN

    def _failures(self, op: ColumnOp, failed: list[int], error: ActionError | None, counts: Counter) -> bool:
        """Count a field's failed values; whether its records are dropped. Raises for `on_error: fail`."""
        counts[FIELD_ERRORS + op.source] += len(failed)
        if op.params.on_error == "fail":
            raise DataRefusedError(
                f"policy '{self.plan.policy.purpose}': field '{op.source}' ({op.action}) has a value "
                f"that cannot be protected ({error.code.value}); the policy says on_error: fail "
                "(use null or drop_record to let the job go on)"
            )
        return op.params.on_error == "drop_record"

    def apply_columns(self, columns: Mapping[str, Sequence[Any]], num_rows: int) -> tuple[dict[str, list], Counter]:
        """Gate and transform one batch given as input columns of Python values.

        Returns:
            (output name -> values of the rows written, counts). Counts are `read`, `written`,
            `dropped.<reason>` and `field_errors.<input field>`.

        Raises:
            DataRefusedError: a field with `on_error: fail` met a value it cannot protect.
        """
        policy = self.plan.policy
        counts: Counter = Counter({READ: num_rows})
        missing: list[Any] = [None] * num_rows
        if policy.consent and policy.consent.field:
            consents = columns.get(policy.consent.field, missing)
            keep = [i for i in range(num_rows) if has_consent(consents[i], policy.purpose)]
            if len(keep) < num_rows:
                counts[NO_CONSENT] = num_rows - len(keep)
                columns = {name: [column[i] for i in keep] for name, column in columns.items()}
                num_rows, missing = len(keep), [None] * len(keep)
        outputs: dict[str, list] = {}
        dropped_rows: set[int] = set()
        for bound in self._fields:
            op = bound.op
            values = columns.get(op.source, missing)
            subject_column = self._per_subject(bound)
            if op.action == "keep":
                result, failed, error = list(values), [], None
            elif subject_column is not None:
                subjects = columns.get(subject_column, missing)
                result, failed, error = map_column(bound.fn, values, subjects, memo=False)
            elif bound.column_fn is not None:
                result, failed, error = map_list(bound.column_fn, values)
            else:
                result, failed, error = map_column(bound.fn, values, None, memo=bound.action.deterministic)
            if failed and self._failures(op, failed, error, counts):
                dropped_rows.update(failed)
            outputs[op.output] = result
        if dropped_rows:
            counts[FIELD_ERROR] = len(dropped_rows)
            kept = [i for i in range(num_rows) if i not in dropped_rows]
            outputs = {name: [values[i] for i in kept] for name, values in outputs.items()}
        counts[WRITTEN] = num_rows - len(dropped_rows)
        return outputs, counts

    def apply_batch(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, Counter]:
        """Gate and transform an Arrow batch, column by column; the output has the plan's output schema.

        Columns stay Arrow arrays: actions with Arrow kernels never convert values to Python,
        the others see each distinct value once (deterministic) or each non-null value.
        """
        schema = self.plan.output_schema
        if schema is None:  # compiled without a schema: the output types come from the values
            outputs, counts = self.apply_columns(batch.to_pydict(), batch.num_rows)
            return pa.RecordBatch.from_pydict(outputs), counts
        policy = self.plan.policy
        counts: Counter = Counter({READ: batch.num_rows})
        if policy.consent and policy.consent.field and policy.consent.field in batch.schema.names:
            allowed = consent_mask(batch.column(policy.consent.field), policy.purpose)
            refused = len(allowed) - pc.sum(allowed).as_py() if len(allowed) else 0
            if refused:
                counts[NO_CONSENT] = refused
                batch = batch.filter(allowed)
        elif policy.consent and policy.consent.field:  # no consent column: nobody consented
            counts[NO_CONSENT] = batch.num_rows
            batch = batch.slice(0, 0)
        arrays: list[pa.Array] = []
        dropped = np.zeros(batch.num_rows, dtype=bool)
        python_columns: dict[str, list] = {}
        for bound, target in zip(self._fields, schema):
            op = bound.op
            if op.source in batch.schema.names:
                values = batch.column(op.source)
            else:
                values = pa.nulls(batch.num_rows, target.type)
            subject_column = self._per_subject(bound)
            kernel = bound.kernel(values.type)
            if subject_column is not None:
                subjects = (
                    batch.column(subject_column)
                    if subject_column in batch.schema.names
                    else pa.nulls(batch.num_rows, pa.string())
                )
                if kernel is not None:
                    result, failed, error = kernel(values, subjects)
                else:
                    if subject_column not in python_columns:
                        python_columns[subject_column] = subjects.to_pylist()
                    out, failed, error = map_column(bound.fn, values.to_pylist(), python_columns[subject_column], False)
                    result = pa.array(out, type=target.type)
            elif kernel is not None:
                result, failed, error = kernel(values)
            else:
                result, failed, error = map_array(bound.batch_fn, values, target.type, bound.action.deterministic)
            if failed and self._failures(op, failed, error, counts):
                dropped[failed] = True
            arrays.append(result if result.type == target.type else result.cast(target.type))
        out = pa.RecordBatch.from_arrays(arrays, schema=schema)
        lost = int(dropped.sum())
        if lost:
            counts[FIELD_ERROR] = lost
            out = out.filter(pa.array(~dropped))
        counts[WRITTEN] = out.num_rows
        return out, counts

    def apply_rows(self, records: Sequence[Record]) -> tuple[list[Record], Counter]:
        """`apply_columns` over dict records; each output record has the output fields only."""
        if self.plan.policy.default == "error":
            for record in records:
                unlisted = set(record) - self._mentioned
                if unlisted:
                    raise ConfigError(
                        f"policy '{self.plan.policy.purpose}': default: error, and a record "
                        f"has fields the policy does not name: {', '.join(sorted(unlisted))}"
                    )
        names = {op.source for op in self.plan.ops} | set(self.plan.gate_fields)
        columns = {name: [record.get(name) for record in records] for name in names}
        outputs, counts = self.apply_columns(columns, len(records))
        order = [op.output for op in self.plan.ops]
        rows = [dict(zip(order, values)) for values in zip(*(outputs[name] for name in order))]
        return rows, counts
