"""keep: pass the value through unchanged (for fields that are not personal)."""

from typing import Any, Literal

from veil.transforms.actions.base import Action, ActionParams, same_type


class KeepParams(ActionParams):
    """Keep the field as it is. Security: none; use only for non-personal fields."""

    action: Literal["keep"]


def keep(value: Any) -> Any:
    """The value itself."""
    return value


ACTION = Action("keep", KeepParams, bind=lambda p, ctx: keep, output_type=same_type, accepts=None)
