"""replace: every non-null value becomes one constant."""

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import field_validator

from veil.errors import ActionError
from veil.transforms.actions.base import Action, ActionParams, ArrowFn, BindContext, VerifyRule
from veil.transforms.actions.redact import redact_arrow

Constant = str | int | float | bool | None


class ReplaceParams(ActionParams):
    """Replace every non-null value with `value`. Security: nothing of the value remains."""

    action: Literal["replace"]
    value: Constant

    @field_validator("value")
    @classmethod
    def _fits_a_column(cls, value: Constant) -> Constant:
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise ValueError("an integer value must fit in 64 bits")
        return value


def _output_type(params: ReplaceParams, input_type: pa.DataType) -> pa.DataType:
    if params.value is None:
        return input_type
    return pa.scalar(params.value).type


def _bind(params: ReplaceParams, _ctx):
    constant = params.value
    return lambda _value: constant


def replace_arrow(array: pa.Array, *, constant: Constant) -> tuple[pa.Array, list[int], ActionError | None]:
    """`constant` wherever `array` is not null, null where it is; nothing fails.

    The output's type is the constant's (the input's for a null constant), as `_output_type` says.
    """
    if constant is None:
        return redact_arrow(array)
    value = pa.scalar(constant)
    if array.null_count == 0:
        return pa.repeat(value, len(array)), [], None
    return pc.if_else(pc.is_valid(array), value, pa.scalar(None, type=value.type)), [], None


def _bind_arrow(params: ReplaceParams, _ctx: BindContext, _input_type: pa.DataType) -> ArrowFn:
    constant = params.value
    return lambda array: replace_arrow(array, constant=constant)


ACTION = Action(
    "replace",
    ReplaceParams,
    bind=_bind,
    output_type=_output_type,
    accepts=None,
    bind_arrow=_bind_arrow,
    verify=lambda params: VerifyRule("labels", labels=() if params.value is None else (params.value,), across=True),
)
