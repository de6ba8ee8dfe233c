"""Run field functions over Arrow columns and Python lists: nulls, distinct values, failures.

The engine's column plumbing, apart from its bookkeeping: an action's per-value or column
function only ever sees non-null values; a deterministic one sees each distinct value of an
Arrow column once (Arrow's hash-based `dictionary_encode` is the per-batch memo); outputs go
back to their rows with `take`. Pure Python and pyarrow, no Beam.
"""

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from veil.errors import ActionError
from veil.transforms.actions.base import ColumnFn, TextColumn

ValueFn = Callable[..., Any]
Outcome = tuple[list, list[int], ActionError | None]  # outputs, failed positions, first failure
_CONSENT_SEPARATORS = re.compile(r"[;,|]")


def has_consent(consents: Any, purpose: str) -> bool:
    """Whether a consent value (a list of purposes, or a ';', ',' or '|' separated string) names `purpose`."""
    if isinstance(consents, str):
        return purpose in (item.strip() for item in _CONSENT_SEPARATORS.split(consents))
    if isinstance(consents, (list, tuple)):
        return purpose in consents
    return False


def consent_mask(consents: pa.Array, purpose: str) -> pa.Array:
    """Per row, whether its consents name `purpose` (`has_consent`), as a boolean array without nulls."""
    if pa.types.is_list(consents.type) or pa.types.is_large_list(consents.type):
        if pa.types.is_string(consents.type.value_type):
            named = pc.filter(pc.list_parent_indices(consents), pc.equal(pc.list_flatten(consents), purpose))
            mask = np.zeros(len(consents), dtype=bool)
            mask[named.to_numpy()] = True
            return pa.array(mask)
    return pa.array([has_consent(value, purpose) for value in consents.to_pylist()], pa.bool_())


def map_column(fn: ValueFn, values: Sequence[Any], subjects: Sequence[Any] | None, memo: bool) -> Outcome:
    """`fn` over non-null `values` (with each row's subject, if given): outputs, failed indices, first failure.

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


def per_value(fn: ValueFn) -> ColumnFn:
    """A column function applying `fn` to each value (of a list without nulls)."""

    def column(values: list) -> Outcome:
        return map_column(fn, values, None, memo=False)

    return column


def map_list(column_fn: ColumnFn, values: Sequence[Any]) -> Outcome:
    """`column_fn` over the non-null `values` of a list, nulls staying null in place."""
    present = [i for i, value in enumerate(values) if value is not None]
    if len(present) == len(values):
        return column_fn(list(values))
    out, failed, error = column_fn([values[i] for i in present])
    full: list[Any] = [None] * len(values)
    for i, result in zip(present, out):
        full[i] = result
    return full, [present[i] for i in failed], error


def _distinct_ok(arrow_type: pa.DataType) -> bool:
    t = pa.types
    return (
        t.is_string(arrow_type)
        or t.is_large_string(arrow_type)
        or t.is_binary(arrow_type)
        or t.is_integer(arrow_type)
        or t.is_floating(arrow_type)
        or t.is_date(arrow_type)
        or t.is_timestamp(arrow_type)
        or t.is_decimal(arrow_type)
    )


def mostly_distinct(array: pa.Array, share: float = 0.9) -> bool:
    """Whether at least `share` of the non-null values of `array` are distinct (so that computing
    each distinct value once would save little and cost a hash and a `take`); False for a type
    `map_array` does not take distinct values of."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    present = len(array) - array.null_count
    if not present or not _distinct_ok(array.type):
        return False
    return pc.count_distinct(array).as_py() >= share * present


def map_array(column_fn: ColumnFn, array: pa.Array, output_type: pa.DataType, distinct: bool) -> Outcome:
    """`column_fn` over an Arrow column: (output array of `output_type`, failed row indices, first failure).

    With `distinct`, the function sees each distinct non-null value once (for deterministic
    functions); otherwise every non-null value, in order.
    """
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if isinstance(column_fn, TextColumn) and (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        column_fn = column_fn.texts  # the non-null values of a string column are all str: nothing to check
    if distinct and _distinct_ok(array.type):
        encoded = array.dictionary_encode()
        out, failed, error = column_fn(encoded.dictionary.to_pylist())
        rows = encoded.indices
        result = pa.array(out, type=output_type).take(rows)
        if failed:
            positions = rows.fill_null(-1).to_numpy(zero_copy_only=False)
            failed = np.flatnonzero(np.isin(positions, failed)).tolist()
        return result, failed, error
    if not array.null_count:
        out, failed, error = column_fn(array.to_pylist())
        return pa.array(out, type=output_type), failed, error
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    out, failed, error = column_fn(array.drop_null().to_pylist())
    rows = pa.array(np.cumsum(valid) - 1, mask=~valid)  # row -> its position among the non-null values
    result = pa.array(out, type=output_type).take(rows)
    return result, np.flatnonzero(valid)[failed].tolist() if failed else [], error


_ARROW_REFUSALS = (ValueError, TypeError, OverflowError, pa.ArrowNotImplementedError)  # Arrow errors derive from these


def _child(group: list, positions: list[int], unreadable: list[int]) -> pa.Array:
    """One Python type's values as an array; values Arrow cannot hold become null, their positions noted."""
    try:
        return pa.array(group, from_pandas=False)
    except _ARROW_REFUSALS:
        pass
    kept = []
    for position, value in zip(positions, group):
        try:
            pa.array([value], from_pandas=False)
            kept.append(value)
        except _ARROW_REFUSALS:
            unreadable.append(position)
            kept.append(None)
    try:
        return pa.array(kept, from_pandas=False)
    except _ARROW_REFUSALS:  # readable one by one, not together (structs of different keys, say)
        unreadable.extend(p for p, v in zip(positions, kept) if v is not None)
        return pa.nulls(len(group))


def python_column(values: Sequence[Any], arrow_type: pa.DataType | None = None) -> tuple[pa.Array, list[int]]:
    """Python values as one Arrow array, whatever their mix: (array, positions of unreadable values).

    The values become an array of `arrow_type` when they all fit it (or, without a type, of the
    type Arrow infers when they are all of one Python type: 1 and 2.5 stay an int and a float);
    otherwise a dense union with one child per Python type, so each value keeps its own
    type and the actions' per-value functions decide about it, as they would about the value
    itself. A value Arrow cannot hold at all (an arbitrary object, text with a lone surrogate)
    becomes null there and its position is returned, for the engine to count as a field error:
    such a value never passes through.
    """
    if arrow_type is not None or len(set(map(type, values)) - {type(None)}) <= 1:  # one type: no inference mixes
        try:
            return pa.array(values, type=arrow_type, from_pandas=False), []
        except _ARROW_REFUSALS:
            pass
    groups: dict[type, list[int]] = {}
    for position, value in enumerate(values):
        groups.setdefault(type(value), []).append(position)
    unreadable: list[int] = []
    children = []
    type_ids, offsets = np.zeros(len(values), dtype=np.int8), np.zeros(len(values), dtype=np.int32)
    for child_id, (kind, positions) in enumerate(groups.items()):
        group = [values[i] for i in positions]
        children.append(pa.nulls(len(group)) if kind is type(None) else _child(group, positions, unreadable))
        type_ids[positions] = child_id
        offsets[positions] = np.arange(len(positions), dtype=np.int32)
    if len(children) == 1:
        return children[0], sorted(unreadable)
    union = pa.UnionArray.from_dense(pa.array(type_ids, pa.int8()), pa.array(offsets, pa.int32()), children)
    return union, sorted(unreadable)


def is_mixed(arrow_type: pa.DataType) -> bool:
    """Whether a column of this type holds values of several Python types (see `python_column`):
    no Arrow kernel reads it, the per-value functions do."""
    return pa.types.is_union(arrow_type)
