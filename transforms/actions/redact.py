"""redact: keep the column, null every value (the schema stays, the content goes)."""

from typing import Any, Literal

from veil.transforms.actions.base import Action, ActionParams, same_type


class RedactParams(ActionParams):
    """Replace every value with null. Security: nothing of the value remains."""

    action: Literal["redact"]


def redact(_value: Any) -> None:
    """Always null."""
    return None


ACTION = Action("redact", RedactParams, bind=lambda p, ctx: redact, output_type=same_type, accepts=None)
