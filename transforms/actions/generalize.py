"""generalize: replace a value by a coarser one (a bin, a bucket, a period, a prefix, a label)."""

import math
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from veil.errors import ActionError, ErrorCode
from veil.transforms.actions.base import (
    DATES,
    NUMERIC,
    SCALARS,
    Action,
    ActionParams,
    BindContext,
    Kind,
    as_date,
    as_text,
    is_number,
)

Number = int | float
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


def bin_label(value: Number, edges: tuple[Number, ...]) -> str:
    """The label of the bin `value` falls in (see `GeneralizeParams.bins`)."""
    if value < edges[0]:
        return f"<{edges[0]}"
    if value >= edges[-1]:
        return f"{edges[-1]}+"
    for low, high in zip(edges, edges[1:]):
        if low <= value < high:
            if isinstance(low, int) and isinstance(high, int):
                return f"{low}-{high - 1}"
            return f"[{low}, {high})"
    raise AssertionError("unreachable: edges are increasing")


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


def _number(value: Any) -> Number:
    if isinstance(value, Decimal):  # decimal columns are numeric; output types say float64
        value = float(value)
    if not is_number(value):
        raise ActionError(ErrorCode.WRONG_TYPE)
    if isinstance(value, float) and not math.isfinite(value):
        raise ActionError(ErrorCode.NOT_FINITE)
    return value


def bucket(value: Number, width: Number) -> Number:
    """The lower bound of the `width`-wide bucket holding `value`, in the value's type."""
    if isinstance(value, int) and isinstance(width, int):
        return (value // width) * width
    try:
        return float(math.floor(value / width) * width)
    except OverflowError:  # the quotient is not a finite float
        raise ActionError(ErrorCode.NOT_FINITE) from None


def _bind(p: GeneralizeParams, _ctx: BindContext):
    variant = p.variant
    if variant == "bins":
        return lambda v: bin_label(_number(v), p.bins)
    if variant == "age_bins":
        return lambda v: bin_label(age_on(as_date(v), p.at), p.age_bins)
    if variant == "width":
        return lambda v: bucket(_number(v), p.width)
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
    integer = pa.types.is_integer(input_type)
    if variant == "width":  # int64 even for narrow inputs: a bucket bound may not fit int8
        return pa.int64() if integer and isinstance(p.width, int) else pa.float64()
    if variant == "round":
        return pa.int64() if integer else pa.float64()
    return pa.string()


ACCEPTS: dict[str, frozenset[Kind]] = {
    "bins": NUMERIC,
    "age_bins": DATES,
    "width": NUMERIC,
    "date": DATES,
    "prefix": frozenset({"string", "integer"}),
    "map": SCALARS,
    "round": NUMERIC,
}

ACTION = Action(
    "generalize", GeneralizeParams, bind=_bind, output_type=_output_type, accepts=lambda p: ACCEPTS[p.variant]
)
