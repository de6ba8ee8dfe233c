"""keep: pass the value through unchanged (for fields that are not personal)."""

from typing import Any, Literal

import pyarrow as pa

from veil.errors import ActionError
from veil.transforms.actions.base import Action, ActionParams, ArrowFn, BindContext, VerifyRule, same_type


class KeepParams(ActionParams):
    """Keep the field as it is. Security: none; use only for non-personal fields."""

    action: Literal["keep"]


def keep(value: Any) -> Any:
    """The value itself."""
    return value


def keep_arrow(array: pa.Array) -> tuple[pa.Array, list[int], ActionError | None]:
    """`keep` over a whole Arrow array: the array itself, nothing fails."""
    return array, [], None


def _bind_arrow(_params: KeepParams, _ctx: BindContext, _input_type: pa.DataType) -> ArrowFn:
    return keep_arrow


ACTION = Action(
    "keep",
    KeepParams,
    bind=lambda p, ctx: keep,
    output_type=same_type,
    accepts=None,
    bind_arrow=_bind_arrow,
    verify=lambda _params: VerifyRule("visible", text=True),  # free text if its name says so (notes, comments)
)
