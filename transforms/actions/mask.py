"""mask: keep the first/last few characters, mask the rest; the length is kept."""

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from veil.errors import ActionError
from veil.transforms.actions.base import (
    BEYOND_ANY_STRING,
    Action,
    ActionParams,
    ArrowFn,
    BindContext,
    arrow_text,
    as_text,
    encodable,
    is_arrow_text,
    string_type,
)


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


def mask_arrow(array: pa.Array, *, keep_first: int, keep_last: int, char: str) -> pa.Array:
    """`mask` over a string or integer Arrow array, with Arrow kernels; nulls stay null.

    Lengths and slices count code points, as Python's do (`utf8_length`, `utf8_slice_codeunits`).
    """
    text = arrow_text(array)
    first, last = min(keep_first, BEYOND_ANY_STRING), min(keep_last, BEYOND_ANY_STRING)
    filler = pa.scalar(char, type=text.type)
    length = pc.utf8_length(text)
    if first + last == 0:
        return pc.binary_repeat(filler, length).cast(pa.string())
    short = pc.less_equal(length, first + last)  # too short: masked whole
    any_short = pc.any(short).as_py()
    hidden = pc.subtract(length, first + last)
    if any_short or text.null_count:  # a repeat count must not be negative, even under a null
        hidden = pc.if_else(pc.fill_null(short, True), 0, hidden)
    parts = []
    if first:
        parts.append(pc.utf8_slice_codeunits(text, 0, first))
    parts.append(pc.binary_repeat(filler, hidden))
    if last:
        parts.append(pc.utf8_slice_codeunits(text, -last))
    out = pc.binary_join_element_wise(*parts, pa.scalar("", type=text.type))
    if any_short:  # few rows, usually: patch them in
        wholly = pc.binary_repeat(filler, pc.filter(length, short))
        out = pc.replace_with_mask(out, pc.fill_null(short, False), wholly)
    return out.cast(pa.string())


def _bind_arrow(params: MaskParams, _ctx: BindContext, input_type: pa.DataType) -> ArrowFn | None:
    if not is_arrow_text(input_type) or not encodable(params.char):
        return None
    first, last, char = params.keep_first, params.keep_last, params.char

    def run(array: pa.Array) -> tuple[pa.Array, list[int], ActionError | None]:
        return mask_arrow(array, keep_first=first, keep_last=last, char=char), [], None

    return run


ACTION = Action(
    "mask",
    MaskParams,
    bind=_bind,
    output_type=string_type,
    accepts=frozenset({"string", "integer"}),
    bind_arrow=_bind_arrow,
)
