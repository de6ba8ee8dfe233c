"""Beam YAML transforms: `VeilSanitize` and `VeilDetokenize` over schema'd rows.

Beam YAML finds them through a `python` provider naming them by fully qualified name
(`configs/beam-yaml-provider.yaml`); its `InlineProvider` calls the class with the
transform's `config` as keyword arguments. Rows are batched into Arrow and run through the
same transforms as `veil run` (`SanitizeBatches`, then `EnforceKAnonymity` for a policy with
`k_anonymity`; `DetokenizeBatches`), so the gates, `on_error` rules, counts (Beam Metrics,
namespace `veil.<purpose>`) and the audit line of a restore are the library's. A policy
whose guarantee a YAML transform cannot keep is refused at construction: per-subject
encryption makes subject keys that must be appended to the key table only once the data is
safely written, and a transform cannot order that after the pipeline's own sink.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

import apache_beam as beam
import pyarrow as pa
from apache_beam.typehints import arrow_type_compatibility, schemas
from apache_beam.typehints.row_type import RowTypeConstraint

from veil.errors import ConfigError, InputError
from veil.transforms.beam import DetokenizeBatches, SanitizeBatches
from veil.transforms.enforce import EnforceKAnonymity
from veil.transforms.engine import ROWS_PER_BATCH, DeadLetter, records_batch
from veil.transforms.plan import compile_plan
from veil.transforms.policy import Policy, load_policy
from veil.transforms.reverse import restored_schema, reverse_ops

__all__ = ["VeilDetokenize", "VeilSanitize"]

_DEAD_LETTER_ROW = RowTypeConstraint.from_fields(
    [(name, Optional[int] if name == "position" else Optional[str]) for name in DeadLetter._fields]
)


def rows_schema(rows: beam.PCollection, what: str) -> pa.Schema:
    """The Arrow schema of a PCollection of Beam rows (nullable fields, no Beam metadata).

    Raises:
        ConfigError: the elements have no schema (a transform before this one returns plain objects).
    """
    try:
        beam_schema = schemas.schema_from_element_type(rows.element_type)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{what} takes schema'd rows; its input has elements of type {rows.element_type} "
            "(give the transform before it an output schema, e.g. with MapToFields)"
        ) from None
    schema = arrow_type_compatibility.arrow_schema_from_beam_schema(beam_schema)
    return pa.schema([field.with_nullable(True) for field in schema])


def row_type(schema: pa.Schema, what: str) -> type:
    """The Beam row type (a schema'd NamedTuple) of an Arrow schema.

    Raises:
        ConfigError: a field's Arrow type has no Beam row type (dates and timestamps among them).
    """
    for field in schema:
        try:
            arrow_type_compatibility.beam_schema_from_arrow_schema(pa.schema([field]))
        except ValueError:
            raise ConfigError(
                f"{what}: field '{field.name}' would be {field.type}, which Beam rows cannot hold; "
                "generalize it to text in the policy, or use veil run"
            ) from None
    return schemas.named_tuple_from_schema(arrow_type_compatibility.beam_schema_from_arrow_schema(schema))


def _rows_batch(schema: pa.Schema, rows: Sequence[Any]) -> pa.RecordBatch:
    """Beam rows -> one Arrow batch of `schema`; a value that does not fit is named by its field, never shown."""
    records = [row._asdict() for row in rows]
    arrays = []
    for field in schema:
        try:
            arrays.append(pa.array([record.get(field.name) for record in records], field.type))
        except (pa.ArrowException, TypeError, ValueError):
            raise InputError(f"field '{field.name}' has a value that is not of its schema's {field.type}") from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _batch_rows(batch: pa.RecordBatch, kind: type) -> Iterable[Any]:
    for record in batch.to_pylist():
        yield kind(**record)


class _ToRows(beam.PTransform):
    """Arrow batches -> Beam rows of `kind`."""

    def __init__(self, kind: type):
        super().__init__()
        self._kind = kind

    def expand(self, batches):
        kind = self._kind
        return batches | "Rows" >> beam.FlatMap(_batch_rows, kind).with_output_types(kind)


def _batched(rows: beam.PCollection, to_batch) -> beam.PCollection:
    return (
        rows
        | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=ROWS_PER_BATCH)
        | "ToArrow" >> beam.Map(to_batch).with_output_types(pa.RecordBatch)
    )


def _letter_row(letter: Mapping[str, Any]) -> beam.Row:
    return beam.Row(**{name: letter.get(name) for name in DeadLetter._fields})


def _error_output(error_handling: Mapping[str, str] | None) -> str | None:
    if not error_handling:
        return None
    unknown = sorted(set(error_handling) - {"output"})
    output = error_handling.get("output")
    if unknown or not isinstance(output, str) or not output or output == "output":
        raise ConfigError("VeilSanitize: error_handling takes one key, output: NAME (a name other than 'output')")
    return output


class VeilSanitize(beam.PTransform):
    """Beam YAML `VeilSanitize`: schema'd rows -> the policy's view, as schema'd rows.

    The rows go through the transforms `veil run` uses: consent, erasure and other gates
    the policy names (their tables read through Beam IO), every field action with its
    `on_error` rule, then the policy's k-anonymity (suppression, refusal or generalization
    search), counting into Beam Metrics under `veil.<purpose>`. The view's fields are the
    policy's outputs, in its order. A value that cannot be protected never reaches the
    output: with `error_handling`, its dead letter (purpose, field, action, code, on_error,
    position, subject_ref, never the value) goes to the named output. A policy that encrypts
    per subject is refused (use `veil run`, which appends the new subject keys once the
    data is written).

    Args:
        policy: path or URI of the policy YAML.
        keyset: keyset path or URI, overriding VEIL_KEYSET and the policy's keyset.
        error_handling: `{output: NAME}` to emit dead letters as the output NAME.
    """

    def __init__(self, policy: str, keyset: Optional[str] = None, error_handling: Optional[Mapping[str, str]] = None):
        super().__init__()
        self._policy: Policy = load_policy(policy)
        if self._policy.subject_keys:
            raise ConfigError(
                f"VeilSanitize: policy '{self._policy.purpose}' encrypts per subject (subject_keys "
                f"{self._policy.subject_keys}); its new subject keys must be kept only once the data is "
                "written, which a transform cannot order after the pipeline's sink: use veil run"
            )
        self._keyset, self._errors = keyset, _error_output(error_handling)

    def expand(self, rows):
        policy = self._policy
        plan = compile_plan(policy, rows_schema(rows, "VeilSanitize"))
        kind = row_type(plan.output_schema, f"VeilSanitize (policy '{policy.purpose}')")
        generalize = policy.k_anonymity is not None and policy.k_anonymity.on_violation == "generalize"
        sanitize = SanitizeBatches(plan, keyset=self._keyset, levels=generalize)
        batches = _batched(rows, lambda chunk: records_batch(plan, [row._asdict() for row in chunk]))
        result = batches | f"Sanitize[{policy.purpose}]" >> sanitize
        view = result.output
        if policy.k_anonymity is not None:
            view = (view | f"KAnonymity[{policy.purpose}]" >> EnforceKAnonymity(policy)).batches
        out = view | "ToRows" >> _ToRows(kind)
        if self._errors is None:
            return out
        letters = result.dead_letters | "DeadLetterRows" >> beam.Map(_letter_row).with_output_types(_DEAD_LETTER_ROW)
        return {"output": out, self._errors: letters}


class VeilDetokenize(beam.PTransform):
    """Beam YAML `VeilDetokenize`: rows of a policy's view -> the same rows with `fields` restored, audited.

    Restored fields take back their input names, as text (`email_token` -> `email`); the
    restore is `DetokenizeBatches`, so per-subject ciphertexts are read with the policy's
    subject key table, and once the restore has run the pipeline appends one line to the
    audit log (the policy's `audit_log`, else `audit.jsonl` beside the keyset) with the
    counts, never a value.

    Args:
        policy: path or URI of the policy that made the data.
        fields: the view's output fields to restore (tokenize or encrypt fields).
        keyset: keyset path or URI, overriding VEIL_KEYSET and the policy's keyset.
        key_version: the key version of ff1 tokens (they carry none; see the run's manifest).
        on_error: `fail` (default: a value that fails authentication fails the pipeline, after
            the audit line) or `null` (it becomes null, and is counted).
    """

    def __init__(
        self,
        policy: str,
        fields: Sequence[str],
        keyset: Optional[str] = None,
        key_version: Optional[int] = None,
        on_error: str = "fail",
    ):
        super().__init__()
        self._policy: Policy = load_policy(policy)
        if isinstance(fields, str):
            fields = [name.strip() for name in fields.split(",") if name.strip()]
        self._fields = list(fields)
        self._ops = reverse_ops(self._policy, self._fields)  # refuses a field that cannot be restored, now
        self._detokenize = DetokenizeBatches(
            self._policy, self._fields, keyset=keyset, key_version=key_version, on_error=on_error
        )

    def expand(self, rows):
        policy = self._policy
        schema = rows_schema(rows, "VeilDetokenize")
        missing = [op.output for op in self._ops if op.output not in schema.names]
        if missing:
            raise ConfigError(f"VeilDetokenize: the input rows have no field {', '.join(missing)}")
        kind = row_type(restored_schema(schema, self._ops), f"VeilDetokenize (policy '{policy.purpose}')")
        batches = _batched(rows, lambda chunk: _rows_batch(schema, chunk))
        restored = batches | f"Detokenize[{policy.purpose}]" >> self._detokenize
        return restored | "ToRows" >> _ToRows(kind)
