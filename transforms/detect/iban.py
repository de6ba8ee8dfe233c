"""iban: international bank account numbers, compact or in groups of four (python-stdnum's checks)."""

import re

from stdnum import iban

from veil.transforms.detect.spans import Span

_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
_GROUP_END = re.compile(r" ?[A-Z0-9]{1,4}$")
PREFILTER = r"[A-Z]{2}\d{2}"


def iban_shaped(text: str) -> list[Span]:
    """Spans written like an IBAN (country letters, two digits, groups), whatever their check digits:
    a phone number is never read inside one."""
    return [Span(m.start(), m.end(), "iban", m.group()) for m in _IBAN.finditer(text)]


def find_ibans(text: str) -> list[Span]:
    """IBANs in `text`: country length, format and mod-97 check by `stdnum.iban`; a trailing group is
    dropped while the candidate fails (`DE89 ... 00 1234`)."""
    spans = []
    for match in _IBAN.finditer(text):
        candidate, start = match.group(), match.start()
        while len(candidate.replace(" ", "")) >= 15:
            compact = candidate.replace(" ", "")
            if iban.is_valid(compact):
                spans.append(Span(start, start + len(candidate), "iban", compact))
                break
            candidate = _GROUP_END.sub("", candidate)
    return spans
