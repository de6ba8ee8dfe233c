"""replace: every non-null value becomes one constant."""

from typing import Literal

import pyarrow as pa

from veil.transforms.actions.base import Action, ActionParams

Constant = str | int | float | bool | None


class ReplaceParams(ActionParams):
    """Replace every non-null value with `value`. Security: nothing of the value remains."""

    action: Literal["replace"]
    value: Constant


def _output_type(params: ReplaceParams, input_type: pa.DataType) -> pa.DataType:
    if params.value is None:
        return input_type
    return pa.scalar(params.value).type


def _bind(params: ReplaceParams, _ctx):
    constant = params.value
    return lambda _value: constant


ACTION = Action("replace", ReplaceParams, bind=_bind, output_type=_output_type, accepts=None)
