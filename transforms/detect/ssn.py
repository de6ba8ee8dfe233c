"""ssn: US social security numbers; the SSA's never-issued ranges are refused."""

import re

from veil.transforms.detect.context import preceded_by
from veil.transforms.detect.spans import Span

_SEPARATED = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?!\d|[- ]\d)")
_BARE = re.compile(r"(?<![\d-])(\d{3})()(\d{2})(\d{4})(?![\d-])")
_SSN_WORDS = re.compile(r"\b(?:ssn|ss#|social security|soc\.? sec\.?)", re.IGNORECASE)
PREFILTER = r"\d{3}[- ]?\d{2}[- ]?\d{4}"


def issuable(area: str, group: str, serial: str) -> bool:
    """Whether the SSA could have issued this number: not area 000, 666 or 9xx, group 00 or serial 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def find_ssns(text: str) -> list[Span]:
    """SSNs written `ddd-dd-dddd` or `ddd dd dddd`, or as 9 bare digits right after `SSN`/`social security`."""
    spans = []
    for match in _SEPARATED.finditer(text):
        area, _, group, serial = match.groups()
        if issuable(area, group, serial):
            spans.append(Span(match.start(), match.end(), "ssn", area + group + serial))
    for match in _BARE.finditer(text):
        area, _, group, serial = match.groups()
        if issuable(area, group, serial) and preceded_by(text, match.start(), _SSN_WORDS):
            spans.append(Span(match.start(), match.end(), "ssn", area + group + serial))
    return spans
