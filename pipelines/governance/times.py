"""Instants and retention periods: parse `--now`/`--since` and manifest times, add a retention.

A retention is a count and a unit (`90d`, `12w`, `6m`, `2y`, as `Policy.retention` checks).
Months and years are calendar months and years (a day past the end of a shorter month is its
last day: 31 January + 1m is 28 or 29 February); days and weeks are exact.
"""

import calendar
from datetime import date, datetime, timedelta, timezone

from veil.errors import ConfigError

# Average Gregorian lengths, to compare retentions of different units (6m is longer than 180d).
_UNIT_DAYS = {"d": 1.0, "w": 7.0, "m": 365.2425 / 12, "y": 365.2425}
_UNIT_WORDS = {"d": "day", "w": "week", "m": "month", "y": "year"}


def parse_time(text: str, what: str = "time") -> datetime:
    """A timezone-aware UTC datetime from ISO 8601 (`2026-12-02`, `2026-12-02T08:00:00Z`, with offsets).

    A date is its midnight UTC; a time without an offset is UTC. `ConfigError` naming `what` otherwise.
    """
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{what} {text!r} is not an ISO 8601 date or time (e.g. 2026-12-02 or 2026-12-02T08:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _split(retention: str) -> tuple[int, str]:
    return int(retention[:-1]), retention[-1]


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus whole calendar months, the day clamped to the target month's length."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def retention_end(start: datetime, retention: str) -> datetime:
    """When an output made at `start` has been kept for `retention`."""
    count, unit = _split(retention)
    if unit == "d":
        return start + timedelta(days=count)
    if unit == "w":
        return start + timedelta(weeks=count)
    return add_months(start, count if unit == "m" else 12 * count)


def retention_days(retention: str) -> float:
    """The retention's length in (average) days, to rank retentions of different units."""
    count, unit = _split(retention)
    return count * _UNIT_DAYS[unit]


def retention_words(retention: str) -> str:
    """`6m` -> "6 months", `1y` -> "1 year"."""
    count, unit = _split(retention)
    return f"{count} {_UNIT_WORDS[unit]}{'s' if count != 1 else ''}"


def today_utc() -> date:
    """Today's date in UTC."""
    return datetime.now(timezone.utc).date()
