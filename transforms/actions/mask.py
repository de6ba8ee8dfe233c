"""mask: keep the first/last few characters, mask the rest; the length is kept."""

from typing import Literal

from pydantic import Field

from veil.transforms.actions.base import Action, ActionParams, BindContext, as_text, string_type


class MaskParams(ActionParams):
    """Character mask.

    Attributes:
        keep_first: characters kept in clear at the start.
        keep_last: characters kept in clear at the end.
        char: the single masking character.
    """

    action: Literal["mask"]
    keep_first: int = Field(0, ge=0)
    keep_last: int = Field(0, ge=0)
    char: str = Field("*", min_length=1, max_length=1)


def mask(value: str, *, keep_first: int, keep_last: int, char: str) -> str:
    """Mask all but `keep_first` leading and `keep_last` trailing characters.

    A value too short to keep anything safely (keep_first + keep_last >= its length) is
    masked whole. Security: not reversible; kept characters stay in clear.
    """
    n = len(value)
    if keep_first + keep_last >= n:
        return char * n
    return value[:keep_first] + char * (n - keep_first - keep_last) + value[n - keep_last :]


def _bind(params: MaskParams, _ctx: BindContext):
    first, last, char = params.keep_first, params.keep_last, params.char
    return lambda value: mask(as_text(value), keep_first=first, keep_last=last, char=char)


ACTION = Action("mask", MaskParams, bind=_bind, output_type=string_type, accepts=frozenset({"string", "integer"}))
