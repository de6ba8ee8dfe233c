"""date_shift: move every date of a subject by the same secret number of days."""

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field

from veil.errors import ActionError, ErrorCode
from veil.transforms.actions.base import DATES, Action, ActionParams, BindContext, as_text, same_type


class DateShiftParams(ActionParams):
    """Per-subject date shift.

    Attributes:
        max_days: the offset, in days, lies in [-max_days, +max_days].
    """

    action: Literal["date_shift"]
    max_days: int = Field(..., ge=1, le=36500)


SUBJECTS_REMEMBERED = 65_536  # offsets kept per worker: bounded, so memory does not grow with the input


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


ACTION = Action(
    "date_shift",
    DateShiftParams,
    bind=_bind,
    output_type=same_type,
    accepts=DATES,
    keyed=True,
    subject_input=lambda _params: "id",
)
