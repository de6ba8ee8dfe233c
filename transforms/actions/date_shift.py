"""date_shift: move every date of a subject by the same secret number of days."""

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from veil.errors import ActionError, ErrorCode
from veil.transforms.actions.base import (
    DATES,
    Action,
    ActionParams,
    BindContext,
    SubjectArrowFn,
    VerifyRule,
    arrow_text,
    as_text,
    is_arrow_text,
    present_mask,
    same_type,
)
from veil.transforms.columns import map_column


class DateShiftParams(ActionParams):
    """Per-subject date shift.

    Attributes:
        max_days: the offset, in days, lies in [-max_days, +max_days].
    """

    action: Literal["date_shift"]
    max_days: int = Field(..., ge=1, le=36500)


SUBJECTS_REMEMBERED = 65_536  # offsets kept per worker: bounded, so memory does not grow with the input


_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000}  # timestamp units Python's datetime holds
_EPOCH = date(1970, 1, 1).toordinal()
_FIRST_DAY, _LAST_DAY = date.min.toordinal() - _EPOCH, date.max.toordinal() - _EPOCH  # as days since 1970


def key_info(purpose: str) -> str:
    """HKDF info string of the date-shift key of a purpose."""
    return f"veil/v1/date_shift/{purpose}"


def offset_days(digest: bytes, max_days: int) -> int:
    """The offset from a keyed digest of the subject: first 8 bytes, big-endian, mod (2m+1), - m."""
    return int.from_bytes(digest[:8], "big") % (2 * max_days + 1) - max_days


def shift(value: Any, days: int) -> Any:
    """`value` moved by `days`, in the value's own form (date, timestamp or ISO string)."""
    delta = timedelta(days=days)
    try:
        if isinstance(value, (date, datetime)):
            return value + delta
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                raise ActionError(ErrorCode.INVALID_DATE) from None
            moved = parsed + delta
            return moved.date().isoformat() if len(value.strip()) == 10 else moved.isoformat()
    except OverflowError:  # shifted past year 1 or 9999
        raise ActionError(ErrorCode.INVALID_DATE) from None
    raise ActionError(ErrorCode.WRONG_TYPE)


def _bind(params: DateShiftParams, ctx: BindContext):
    keyring, version = ctx.require_keys()
    prf, max_days = keyring.prf(key_info(ctx.purpose), version), params.max_days

    @lru_cache(maxsize=SUBJECTS_REMEMBERED)
    def offset_of(subject: str) -> int:
        return offset_days(prf.compute(subject.encode("utf-8")), max_days)

    def date_shift(value, subject):
        """Shift by HMAC(key, utf-8 of subject id)-derived days.

        Security: consistent per subject (intervals between a subject's dates survive); not
        reversible without the key; unlinkable across purposes.
        """
        if subject is None:
            raise ActionError(ErrorCode.NO_SUBJECT)
        return shift(value, offset_of(as_text(subject)))

    return date_shift


def _bind_arrow(params: DateShiftParams, ctx: BindContext, input_type: pa.DataType) -> SubjectArrowFn | None:
    """`_bind` over date32 and naive or UTC timestamp columns, with the subject column beside them.

    Zoned timestamps elsewhere than UTC are left to the per-value function: Python adds days to
    the wall-clock time, which across a daylight-saving change is not a whole number of 24 hours.
    """
    t = pa.types
    if t.is_date32(input_type):
        per_unit = 1
    elif t.is_timestamp(input_type) and input_type.unit in _PER_DAY and input_type.tz in (None, "UTC", "+00:00"):
        per_unit = _PER_DAY[input_type.unit]
    else:
        return None
    keyring, version = ctx.require_keys()
    prf, max_days, per_value = keyring.prf(key_info(ctx.purpose), version), params.max_days, _bind(params, ctx)
    first, last = _FIRST_DAY * per_unit, (_LAST_DAY + 1) * per_unit - 1  # Python's range, in the column's unit
    margin = max_days * per_unit

    def shift_column(values: pa.Array, subjects: pa.Array) -> tuple[pa.Array, list[int], ActionError | None]:
        if not is_arrow_text(subjects.type):  # subjects of another type: the per-value function decides
            out, failed, error = map_column(per_value, values.to_pylist(), subjects.to_pylist(), memo=False)
            return pa.array(out, input_type), failed, error
        encoded = arrow_text(subjects).dictionary_encode()
        digests = prf.compute_many([text.encode("utf-8") for text in encoded.dictionary.to_pylist()])
        offsets = np.array([offset_days(d, max_days) for d in digests] or [0], dtype=np.int64)
        days = offsets[encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)]
        present = present_mask(values)
        no_subject = present & ~present_mask(encoded.indices)
        raw = values.cast(pa.int64() if per_unit > 1 else pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
        moved = np.clip(raw.astype(np.int64), first - margin, last + margin) + days * per_unit  # clip: no overflow
        invalid = present & ~no_subject & ((moved < first) | (moved > last))
        ok = present & ~no_subject & ~invalid
        out = pa.array(moved.astype(np.int32) if per_unit == 1 else moved, mask=~ok).cast(input_type)
        failed = np.flatnonzero(no_subject | invalid)
        if not len(failed):
            return out, [], None
        code = ErrorCode.NO_SUBJECT if no_subject[failed[0]] else ErrorCode.INVALID_DATE
        return out, failed.tolist(), ActionError(code)

    return shift_column


ACTION = Action(
    "date_shift",
    DateShiftParams,
    bind=_bind,
    output_type=same_type,
    accepts=DATES,
    keyed=True,
    subject_input=lambda _params: "id",
    bind_arrow=_bind_arrow,
    verify=lambda _params: VerifyRule("coincident", designed=frozenset({"date"})),  # dates, moved
)
