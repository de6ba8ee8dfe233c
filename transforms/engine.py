"""Apply a bound Plan to a batch of columns: gates, field actions, `on_error`, counts.

Pure Python over lists and Arrow batches, no Beam: the Beam DoFns only move data through
these functions and report the counts. A value that cannot be protected never passes
through: it becomes null, drops its record, or stops the job, as the field's `on_error` says.
"""

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from veil.errors import ActionError, ConfigError, DataRefusedError
from veil.keys import KeyRing
from veil.transforms.actions.base import SUBJECT_KEY_COLUMN, BindContext
from veil.transforms.plan import ColumnOp, Plan
from veil.transforms.registry import REGISTRY

Record = dict[str, Any]
_CONSENT_SEPARATORS = re.compile(r"[;,|]")

READ, WRITTEN = "read", "written"
NO_CONSENT, FIELD_ERROR = "dropped.no_consent", "dropped.field_error"
FIELD_ERRORS = "field_errors."


def has_consent(consents: Any, purpose: str) -> bool:
    """Whether a consent value (a list of purposes, or a ';', ',' or '|' separated string) names `purpose`."""
    if isinstance(consents, str):
        return purpose in (item.strip() for item in _CONSENT_SEPARATORS.split(consents))
    if isinstance(consents, (list, tuple)):
        return purpose in consents
    return False


def map_column(
    fn: Callable[..., Any], values: Sequence[Any], subjects: Sequence[Any] | None, memo: bool
) -> tuple[list[Any], list[int], ActionError | None]:
    """`fn` over non-null `values`: (outputs, indices that failed, the first failure).

    A failed value's output is null. With `memo`, each distinct value is computed once.
    """
    out: list[Any] = []
    failed: list[int] = []
    first_error = None
    cache: dict[Any, Any] = {}
    for index, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        try:
            if subjects is not None:
                out.append(fn(value, subjects[index]))
            elif memo:
                key = (type(value), value)  # 1, 1.0 and True are equal keys but not equal inputs
                try:
                    result = cache[key]
                except KeyError:
                    result = cache[key] = fn(value)
                except TypeError:  # unhashable (a list): compute directly
                    result = fn(value)
                out.append(result)
            else:
                out.append(fn(value))
        except ActionError as error:
            out.append(None)
            failed.append(index)
            first_error = first_error or error
    return out, failed, first_error


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
        self._fields: list[tuple[ColumnOp, Callable[..., Any] | None, Callable[..., Any] | None]] = []
        for op in plan.ops:
            action = REGISTRY[op.action]
            context = BindContext(
                policy.purpose, op.source, keyring if action.keyed else None, self.key_version if action.keyed else None
            )
            column = action.bind_column(op.params, context) if action.bind_column else None
            self._fields.append((op, action.bind(op.params, context), column))
        self._mentioned = set(policy.fields) | {policy.subject} | {policy.consent and policy.consent.field}

    def apply_columns(self, columns: Mapping[str, Sequence[Any]], num_rows: int) -> tuple[dict[str, list], Counter]:
        """Gate and transform one batch given as input columns.

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
        subjects = columns.get(policy.subject, missing) if policy.subject else missing
        outputs: dict[str, list] = {}
        dropped_rows: set[int] = set()
        for op, fn, column_fn in self._fields:
            values = columns.get(op.source, missing)
            action = REGISTRY[op.action]
            if op.action == "keep":
                outputs[op.output] = list(values)
                continue
            role = action.subject_input(op.params)
            per_subject = subjects if role == "id" else columns.get(SUBJECT_KEY_COLUMN, missing) if role else None
            if column_fn is not None and per_subject is None:
                result, failed, error = column_fn(list(values))
            else:
                result, failed, error = map_column(fn, values, per_subject, memo=action.deterministic)
            if failed:
                counts[FIELD_ERRORS + op.source] += len(failed)
                if op.params.on_error == "fail":
                    raise DataRefusedError(
                        f"policy '{policy.purpose}': field '{op.source}' ({op.action}) has a value "
                        f"that cannot be protected ({error.code.value}); the policy says on_error: fail "
                        "(use null or drop_record to let the job go on)"
                    )
                if op.params.on_error == "drop_record":
                    dropped_rows.update(failed)
            outputs[op.output] = result
        if dropped_rows:
            counts[FIELD_ERROR] = len(dropped_rows)
            kept = [i for i in range(num_rows) if i not in dropped_rows]
            outputs = {name: [values[i] for i in kept] for name, values in outputs.items()}
        counts[WRITTEN] = num_rows - len(dropped_rows)
        return outputs, counts

    def apply_batch(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, Counter]:
        """`apply_columns` over an Arrow batch; the output has the plan's output schema."""
        needed = {op.source for op in self.plan.ops} | set(self.plan.gate_fields) | {SUBJECT_KEY_COLUMN}
        columns = {name: batch.column(name).to_pylist() for name in needed if name in batch.schema.names}
        outputs, counts = self.apply_columns(columns, batch.num_rows)
        schema = self.plan.output_schema
        if schema is None:
            return pa.RecordBatch.from_pydict(outputs), counts
        arrays = [pa.array(outputs[f.name], type=f.type) for f in schema]
        return pa.RecordBatch.from_arrays(arrays, schema=schema), counts

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
