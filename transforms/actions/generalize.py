"""generalize: replace a value by a coarser one (a bin, a bucket, a period, a prefix, a label)."""

import math
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from veil.errors import ActionError, ErrorCode
from veil.transforms.actions.base import (
    BEYOND_ANY_STRING,
    DATES,
    NUMERIC,
    SCALARS,
    Action,
    ActionParams,
    ArrowFn,
    BindContext,
    Kind,
    VerifyRule,
    arrow_text,
    as_date,
    as_text,
    encodable,
    is_arrow_text,
    is_number,
    present_mask,
)

Number = int | float
ArrowResult = tuple[pa.Array, list[int], ActionError | None]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Period = Literal["year", "quarter", "month", "week"]
VARIANTS = ("bins", "age_bins", "width", "date", "prefix", "map", "round")


class GeneralizeParams(ActionParams):
    """Exactly one generalization.

    Attributes:
        bins: increasing edges; label `lo-hi` (integer edges, hi = next edge - 1) or `[lo, hi)`,
            `X+` above the last edge, `<e0` below the first.
        age_bins: edges over the age in whole years at date `at` of a date value.
        at: the reference date for `age_bins`.
        width: bucket width; the output is the bucket's lower bound, in the input's type.
        date: year, quarter, month or week (ISO, Monday); the output is the period's first day.
        prefix: keep the first N characters.
        map: value -> label; `other` labels every unmapped value (without it, a field error).
        round: round to N decimals (negative N rounds to tens, hundreds, ...).
    """

    action: Literal["generalize"]
    bins: tuple[Number, ...] | None = Field(None, min_length=1)
    age_bins: tuple[int, ...] | None = Field(None, min_length=1)
    at: date | None = None
    width: Number | None = Field(None, gt=0)
    date: Period | None = None
    prefix: int | None = Field(None, ge=1)
    map: dict[str | int, str] | None = Field(None, min_length=1)
    other: str | None = None
    round: int | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "GeneralizeParams":
        chosen = [v for v in VARIANTS if getattr(self, v) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"generalize takes exactly one of {', '.join(VARIANTS)}"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        edges = self.bins or self.age_bins
        if not all(math.isfinite(x) for x in (*(edges or ()), *([self.width] if self.width is not None else []))):
            raise ValueError("bin edges and width must be finite numbers (not .inf or .nan)")
        if edges and any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError("bin edges must be strictly increasing")
        if (self.age_bins is None) != (self.at is None):
            raise ValueError("age_bins and at go together (at: the date ages are computed on)")
        if self.other is not None and self.map is None:
            raise ValueError("'other' is only for map")
        return self

    @property
    def variant(self) -> str:
        """Which generalization this is."""
        return next(v for v in VARIANTS if getattr(self, v) is not None)

    @property
    def title(self) -> str:
        """`generalize <variant>`, as messages name it."""
        return f"generalize {self.variant}"


def _span_label(low: Number, high: Number) -> str:
    """The label of the bin [low, high)."""
    if isinstance(low, int) and isinstance(high, int):
        return f"{low}-{high - 1}"
    return f"[{low}, {high})"


def bin_label(value: Number, edges: tuple[Number, ...]) -> str:
    """The label of the bin `value` falls in (see `GeneralizeParams.bins`)."""
    if value < edges[0]:
        return f"<{edges[0]}"
    if value >= edges[-1]:
        return f"{edges[-1]}+"
    for low, high in zip(edges, edges[1:]):
        if low <= value < high:
            return _span_label(low, high)
    raise AssertionError("unreachable: edges are increasing")


def bin_labels(edges: tuple[Number, ...]) -> list[str]:
    """Every label of `bin_label`, indexed by how many edges are <= the value."""
    return [f"<{edges[0]}", *(_span_label(low, high) for low, high in zip(edges, edges[1:])), f"{edges[-1]}+"]


def age_on(birth: date, at: date) -> int:
    """Completed years between `birth` and `at`."""
    return at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))


def period_start(day: date, period: Period) -> date:
    """The first day of the year, quarter, month or ISO week that `day` is in."""
    if period == "year":
        return day.replace(month=1, day=1)
    if period == "quarter":
        return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    if period == "month":
        return day.replace(day=1)
    return day - timedelta(days=day.weekday())


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def number_of_text(text: str) -> Number:
    """The number a text spells (CSV, JSON Lines): an integer literal is an int, a decimal one a float.

    Surrounding spaces are allowed; anything else (words, `nan`, `1,000`) raises
    `ActionError(NOT_A_NUMBER)`, which never carries the text.
    """
    text = text.strip()
    if _INTEGER_TEXT.fullmatch(text):
        return int(text)
    if _DECIMAL_TEXT.fullmatch(text):
        return float(text)
    raise ActionError(ErrorCode.NOT_A_NUMBER)


def _number(value: Any) -> Number:
    if isinstance(value, Decimal):  # decimal columns are numeric; output types say float64
        value = float(value)
    if isinstance(value, str):  # text columns (CSV, JSON Lines) hold numbers as text
        value = number_of_text(value)
    if not is_number(value):
        raise ActionError(ErrorCode.WRONG_TYPE)
    if isinstance(value, float) and not math.isfinite(value):
        raise ActionError(ErrorCode.NOT_FINITE)
    return value


def bucket(value: Number, width: Number) -> Number:
    """The lower bound of the `width`-wide bucket holding `value`, in the value's type.

    Integers floor like `//` (so -1 is in the bucket starting at -width); floats are
    `float(floor(value / width) * width)`.

    Raises:
        ActionError: NOT_FINITE when an integer bound does not fit int64 (a value near -2**63)
            or a float bound (or the quotient) is not a finite float.
    """
    if isinstance(value, int) and isinstance(width, int):
        low = (value // width) * width
        if not INT64_MIN <= low <= INT64_MAX:
            raise ActionError(ErrorCode.NOT_FINITE)
        return low
    try:
        low = float(math.floor(value / width) * width)
    except (OverflowError, ValueError):  # the quotient or the bound is not a finite float
        raise ActionError(ErrorCode.NOT_FINITE) from None
    if not math.isfinite(low):  # the product overflowed
        raise ActionError(ErrorCode.NOT_FINITE)
    return low


def _text_bucket(text: str, width: Number) -> Number:
    """`bucket` of the number in `text`; an int for an int width (text columns give int64 bounds then)."""
    low = bucket(_number(text), width)
    if isinstance(width, int) and isinstance(low, float):
        low = int(low)
        if not INT64_MIN <= low <= INT64_MAX:
            raise ActionError(ErrorCode.NOT_FINITE)
    return low


def _bind(p: GeneralizeParams, _ctx: BindContext):
    variant = p.variant
    if variant == "bins":
        return lambda v: bin_label(_number(v), p.bins)
    if variant == "age_bins":
        return lambda v: bin_label(age_on(as_date(v), p.at), p.age_bins)
    if variant == "width":
        return lambda v: _text_bucket(v, p.width) if isinstance(v, str) else bucket(_number(v), p.width)
    if variant == "date":
        return lambda v: period_start(as_date(v), p.date)
    if variant == "prefix":
        return lambda v: as_text(v)[: p.prefix]
    if variant == "round":
        return lambda v: round(_number(v), p.round)
    mapping, other = p.map, p.other

    def relabel(value):
        label = mapping.get(value)
        if label is None and not isinstance(value, str):
            label = mapping.get(str(value))
        if label is None:
            if other is None:
                raise ActionError(ErrorCode.UNMAPPED)
            return other
        return label

    return relabel


def _output_type(p: GeneralizeParams, input_type: pa.DataType) -> pa.DataType:
    variant = p.variant
    if variant == "date":
        return pa.date32()
    text = pa.types.is_string(input_type) or pa.types.is_large_string(input_type)
    integer = pa.types.is_integer(input_type) or (text and variant == "width")  # bounds of an int width are ints
    if variant == "width":  # int64 even for narrow inputs: a bucket bound may not fit int8
        return pa.int64() if integer and isinstance(p.width, int) else pa.float64()
    if variant == "round":
        return pa.int64() if integer and not text else pa.float64()
    return pa.string()


# ---------------------------------------------------------------- Arrow kernels
# Each equals `_bind` applied per value over `array.to_pylist()`; None where one would not.


def _int64_safe(input_type: pa.DataType) -> bool:
    """Integer types whose every value is an int64 (all but uint64)."""
    return pa.types.is_integer(input_type) and not pa.types.is_uint64(input_type)


def _float_type(input_type: pa.DataType) -> bool:
    """float32 and float64 (a float16 or a decimal falls back)."""
    return pa.types.is_float32(input_type) or pa.types.is_float64(input_type)


def _dated(input_type: pa.DataType) -> bool:
    """Date and timestamp types (a date in a string falls back)."""
    return pa.types.is_date(input_type) or pa.types.is_timestamp(input_type)


def _numbers(array: pa.Array, kind: pa.DataType) -> np.ndarray:
    """The values as a numpy array of `kind` (int64 or float64), nulls as 0."""
    array = array.cast(kind, safe=False)  # int -> float64 rounds to nearest, as Python's float(int)
    if array.null_count:
        array = pc.fill_null(array, 0)
    return array.to_numpy(zero_copy_only=False)


def _local_dates(array: pa.Array) -> pa.Array:
    """`as_date` over a date or timestamp array: the calendar date (local, for a zoned timestamp)."""
    if pa.types.is_date32(array.type):
        return array
    if pa.types.is_date64(array.type):  # via a timestamp: it floors a partial day, as Python does
        return array.cast(pa.timestamp("ms")).cast(pa.date32())
    if array.type.tz is not None:
        array = pc.local_timestamp(array)
    return array.cast(pa.date32())


def _outcome(
    values: np.ndarray, present: np.ndarray, bad: np.ndarray | None, code: ErrorCode, kind: pa.DataType
) -> ArrowResult:
    """`values` as an Arrow array of `kind`, null where absent or bad; the bad indices; the first error."""
    ok = present if bad is None else present & ~bad
    out = pa.array(values, type=kind, mask=None if ok.all() else ~ok)
    failed = [] if bad is None else np.flatnonzero(bad).tolist()
    return out, failed, ActionError(code) if failed else None


def _labelled(
    index: np.ndarray, present: np.ndarray, bad: np.ndarray | None, code: ErrorCode, labels: list[str]
) -> ArrowResult:
    """`labels[index]` per value, as `_outcome` does."""
    picked, failed, error = _outcome(index, present, bad, code, pa.int64())
    return pa.array(labels, pa.string()).take(picked), failed, error


def _int_thresholds(edges: tuple[Number, ...]) -> np.ndarray:
    """int64 t_i with `v >= edges[i]` exactly when `v >= t_i` for int64 v (edges are finite: params say so).

    Edges past int64 are clamped below or dropped above (no int64 reaches them).
    """
    out = []
    for edge in edges:
        threshold = edge if isinstance(edge, int) else math.ceil(edge)
        if threshold > INT64_MAX:
            break
        out.append(max(threshold, INT64_MIN))
    return np.array(out, dtype=np.int64)


def _float_edges(edges: tuple[Number, ...]) -> np.ndarray | None:
    """The edges as float64 when each is finite and exact as a float (comparisons stay exact)."""
    try:
        out = [float(edge) for edge in edges]
    except OverflowError:
        return None
    if not all(math.isfinite(f) and f == e for f, e in zip(out, edges)):
        return None
    return np.array(out, dtype=np.float64)


def _bins_arrow(edges: tuple[Number, ...], input_type: pa.DataType) -> ArrowFn | None:
    labels = bin_labels(edges)
    if _int64_safe(input_type):
        thresholds = _int_thresholds(edges)

        def int_bins(array: pa.Array) -> ArrowResult:
            index = np.searchsorted(thresholds, _numbers(array, pa.int64()), side="right")
            return _labelled(index, present_mask(array), None, ErrorCode.NOT_FINITE, labels)

        return int_bins
    cuts = _float_edges(edges) if _float_type(input_type) else None
    if cuts is None:
        return None

    def float_bins(array: pa.Array) -> ArrowResult:
        values, present = _numbers(array, pa.float64()), present_mask(array)
        bad = present & ~np.isfinite(values)
        index = np.searchsorted(cuts, values, side="right")
        return _labelled(index, present, bad, ErrorCode.NOT_FINITE, labels)

    return float_bins


def _age_bins_arrow(edges: tuple[int, ...], at: date, input_type: pa.DataType) -> ArrowFn | None:
    thresholds = _int_thresholds(edges)
    if thresholds is None or not _dated(input_type):
        return None
    labels, at_day = bin_labels(edges), at.month * 100 + at.day

    def age_bins(array: pa.Array) -> ArrowResult:
        days = _local_dates(array)
        year, month, day = (_numbers(part(days), pa.int64()) for part in (pc.year, pc.month, pc.day))
        age = at.year - year - (at_day < month * 100 + day).astype(np.int64)  # age_on
        index = np.searchsorted(thresholds, age, side="right")
        return _labelled(index, present_mask(array), None, ErrorCode.NOT_FINITE, labels)

    return age_bins


def _width_arrow(width: Number, input_type: pa.DataType) -> ArrowFn | None:
    if _int64_safe(input_type) and isinstance(width, int):
        if width > INT64_MAX:
            return None
        lowest = -(-INT64_MIN // width)  # the least quotient whose bound fits int64

        def int_width(array: pa.Array) -> ArrowResult:
            quotient = np.floor_divide(_numbers(array, pa.int64()), width)  # floors, like //
            present = present_mask(array)
            bad = present & (quotient < lowest)
            return _outcome(quotient * width, present, bad, ErrorCode.NOT_FINITE, pa.int64())

        return int_width
    if not (_int64_safe(input_type) or _float_type(input_type)):
        return None
    try:
        step = float(width)
    except OverflowError:
        return None
    if step != width:  # an int width a float cannot hold: Python multiplies it exactly
        return None

    def float_width(array: pa.Array) -> ArrowResult:
        present = present_mask(array)
        with np.errstate(all="ignore"):
            low = np.floor(_numbers(array, pa.float64()) / step) * step + 0.0  # + 0.0: no -0.0
        bad = present & ~np.isfinite(low)
        return _outcome(low, present, bad, ErrorCode.NOT_FINITE, pa.float64())

    return float_width


def _date_arrow(period: Period, input_type: pa.DataType) -> ArrowFn | None:
    if not _dated(input_type):
        return None

    def period_starts(array: pa.Array) -> ArrowResult:
        return pc.floor_temporal(_local_dates(array), unit=period, week_starts_monday=True), [], None

    return period_starts


def _prefix_arrow(prefix: int, input_type: pa.DataType) -> ArrowFn | None:
    if not is_arrow_text(input_type):
        return None
    stop = min(prefix, BEYOND_ANY_STRING)

    def prefixes(array: pa.Array) -> ArrowResult:
        return pc.utf8_slice_codeunits(arrow_text(array), 0, stop).cast(pa.string()), [], None

    return prefixes


def _map_arrow(mapping: dict[str | int, str], other: str | None, input_type: pa.DataType) -> ArrowFn | None:
    if not (pa.types.is_string(input_type) or pa.types.is_large_string(input_type)):
        return None
    keys = [key for key in mapping if isinstance(key, str)]  # an int key never equals a string
    texts = [*keys, *mapping.values(), other or ""]
    if not all(encodable(text) for text in texts):
        return None
    known = pa.array(keys, type=input_type)
    labels = [mapping[key] for key in keys] + [other or ""]

    def relabel(array: pa.Array) -> ArrowResult:
        found = pc.index_in(array, value_set=known)
        present = present_mask(array)
        missing = present & ~present_mask(found)
        index = _numbers(pc.fill_null(found, len(keys)), pa.int64())
        return _labelled(index, present, missing if other is None else None, ErrorCode.UNMAPPED, labels)

    return relabel


def _bind_arrow(p: GeneralizeParams, _ctx: BindContext, input_type: pa.DataType) -> ArrowFn | None:
    """Arrow kernels for `_bind`, or None where the per-value function must run.

    Falls back for: string dates, decimals, uint64, map over non-strings, round but over
    integers to >= 0 digits, and edges or widths a kernel cannot compare exactly.
    """
    variant = p.variant
    if variant == "bins":
        return _bins_arrow(p.bins, input_type)
    if variant == "age_bins":
        return _age_bins_arrow(p.age_bins, p.at, input_type)
    if variant == "width":
        return _width_arrow(p.width, input_type)
    if variant == "date":
        return _date_arrow(p.date, input_type)
    if variant == "prefix":
        return _prefix_arrow(p.prefix, input_type)
    if variant == "map":
        return _map_arrow(p.map, p.other, input_type)
    if variant == "round" and _int64_safe(input_type) and p.round >= 0:  # round(int, n >= 0) is the int
        return lambda array: (array.cast(pa.int64()), [], None)
    return None


NUMBER_OR_TEXT: frozenset[Kind] = NUMERIC | {"string"}  # text is parsed (`number_of_text`)
ACCEPTS: dict[str, frozenset[Kind]] = {
    "bins": NUMBER_OR_TEXT,
    "age_bins": DATES,
    "width": NUMBER_OR_TEXT,
    "date": DATES,
    "prefix": frozenset({"string", "integer"}),
    "map": SCALARS,
    "round": NUMBER_OR_TEXT,
}


def _verify_rule(p: GeneralizeParams) -> VerifyRule:
    """Labels are a small set (a map's, spelled in the policy, may be copied from any column); bucket
    bounds and period starts are values of the input's own domain (coincident); a prefix keeps part
    of the value (derived)."""
    variant = p.variant
    if variant in ("bins", "age_bins"):
        return VerifyRule("labels", labels=tuple(bin_labels(p.bins or p.age_bins)))
    if variant == "map":
        return VerifyRule("labels", labels=(*p.map.values(), *(() if p.other is None else (p.other,))), across=True)
    if variant == "prefix":
        return VerifyRule("derived", longest=p.prefix)
    return VerifyRule("coincident")


ACTION = Action(
    "generalize",
    GeneralizeParams,
    bind=_bind,
    output_type=_output_type,
    accepts=lambda p: ACCEPTS[p.variant],
    bind_arrow=_bind_arrow,
    verify=_verify_rule,
)
