"""drop: the field is not part of the output (the same as leaving it out under `default: drop`)."""

from typing import Any, Literal

from veil.transforms.actions.base import Action, ActionParams


class DropParams(ActionParams):
    """Remove the field from the output."""

    action: Literal["drop"]


def _no_output(_params: Any, _input_type: Any) -> None:
    return None


ACTION = Action("drop", DropParams, bind=None, output_type=_no_output, accepts=None)
