"""date: calendar dates in common formats; personal only next to words that say birth."""

import re
from datetime import date

from veil.transforms.detect.context import preceded_by
from veil.transforms.detect.spans import Span

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "january jan januar janvier enero gennaio januari",
            "february feb februar fevrier février febrero febbraio februari",
            "march mar märz maerz mars marzo maart",
            "april apr avril abril aprile",
            "may mai mayo maggio mei",
            "june jun juni juin junio giugno",
            "july jul juli juillet julio luglio",
            "august aug august aout août agosto augustus",
            "september sep sept septembre septiembre settembre",
            "october oct oktober octobre octubre ottobre",
            "november nov novembre noviembre",
            "december dec dezember decembre décembre diciembre dicembre",
        ),
        start=1,
    )
    for name in names.split()
}
_MONTH = "(" + "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True)) + ")"
_ISO = re.compile(r"(?<![\d.\-/])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?![\d]|[\-/.]\d)")
_NUMERIC = re.compile(r"(?<![\d.\-/])(\d{1,2})([-/.])(\d{1,2})\2(\d{4}|\d{2})(?![\d]|[\-/.]\d)")
_DAY_MONTH = re.compile(
    r"(?<!\w)(\d{1,2})(?:st|nd|rd|th)?\.?\s+(?:de\s+)?" + _MONTH + r"\.?,?\s+(?:de\s+)?(\d{4})(?!\d)", re.I
)
_MONTH_DAY = re.compile(r"(?<!\w)" + _MONTH + r"\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?!\d)", re.I)
_BIRTH_WORDS = re.compile(
    r"born|birth|\bdob\b|d\.o\.b|b-?day|geboren|geburt|\bgeb\.|\bnée?\b|naissance|nacid[oa]|nacimiento|"
    r"\bnat[oa]\b|nascita|geboorte",
    re.IGNORECASE,
)
PREFILTER = r"\d{4}"


def _valid(year: int, month: int, day: int) -> date | None:
    if year < 100:
        year += 1900 if year > 30 else 2000
    if not 1900 <= year <= 2100:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def find_dates(text: str) -> list[Span]:
    """Every date in `text` (ISO, d/m/y or m/d/y with `/`, `.` or `-`, `3 March 1990`, `March 3, 1990`).

    The normalized text is the ISO date; an ambiguous d/m/y vs m/d/y reads as d/m/y when both are valid.
    """
    spans = []
    for match in _ISO.finditer(text):
        found = _valid(int(match.group(1)), int(match.group(3)), int(match.group(4)))
        if found:
            spans.append(Span(match.start(), match.end(), "date", found.isoformat()))
    for match in _NUMERIC.finditer(text):
        first, second, year = int(match.group(1)), int(match.group(3)), int(match.group(4))
        found = _valid(year, second, first) or _valid(year, first, second)
        if found:
            spans.append(Span(match.start(), match.end(), "date", found.isoformat()))
    for match in _DAY_MONTH.finditer(text):
        found = _valid(int(match.group(3)), _MONTHS[match.group(2).lower()], int(match.group(1)))
        if found:
            spans.append(Span(match.start(), match.end(), "date", found.isoformat()))
    for match in _MONTH_DAY.finditer(text):
        found = _valid(int(match.group(3)), _MONTHS[match.group(1).lower()], int(match.group(2)))
        if found:
            spans.append(Span(match.start(), match.end(), "date", found.isoformat()))
    return spans


def find_birth_dates(text: str) -> list[Span]:
    """The dates of `find_dates` within 40 characters after a birth word (`born`, `DOB`, `geboren`, `née`, ...)."""
    return [span for span in find_dates(text) if preceded_by(text, span.start, _BIRTH_WORDS)]
