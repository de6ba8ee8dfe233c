"""replace: every non-null value becomes one constant."""

from typing import Literal

import pyarrow as pa
from pydantic import field_validator

from veil.transforms.actions.base import Action, ActionParams

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


ACTION = Action("replace", ReplaceParams, bind=_bind, output_type=_output_type, accepts=None)
