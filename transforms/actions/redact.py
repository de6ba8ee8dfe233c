"""redact: keep the column, null every value (the schema stays, the content goes)."""

from typing import Any, Literal

import pyarrow as pa

from veil.errors import ActionError
from veil.transforms.actions.base import Action, ActionParams, ArrowFn, BindContext, VerifyRule, same_type


class RedactParams(ActionParams):
    """Replace every value with null. Security: nothing of the value remains."""

    action: Literal["redact"]


def redact(_value: Any) -> None:
    """Always null."""
    return None


def redact_arrow(array: pa.Array) -> tuple[pa.Array, list[int], ActionError | None]:
    """`redact` over a whole Arrow array: an all-null array of the same type and length."""
    return pa.nulls(len(array), type=array.type), [], None


def _bind_arrow(_params: RedactParams, _ctx: BindContext, _input_type: pa.DataType) -> ArrowFn:
    return redact_arrow


ACTION = Action(
    "redact",
    RedactParams,
    bind=lambda p, ctx: redact,
    output_type=same_type,
    accepts=None,
    bind_arrow=_bind_arrow,
    verify=lambda _params: VerifyRule("labels"),  # nothing but nulls
)
