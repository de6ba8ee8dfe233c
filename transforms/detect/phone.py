"""phone: numbers `phonenumbers` finds valid in one of the given regions (or possible, when international)."""

import re

import phonenumbers

from veil.transforms.detect.context import refused_by_context
from veil.transforms.detect.date import find_dates
from veil.transforms.detect.iban import iban_shaped
from veil.transforms.detect.ip import find_ips
from veil.transforms.detect.spans import Span

DEFAULT_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CA")
_CANDIDATE = re.compile(  # not right after a digit group and a space: the tail of a longer number
    r"(?<![\w+@/:.,-])(?<!\d )(?:\+ ?|00)?(?:\(\d{1,5}\) ?)?\d(?:[ .\-/]?\(?\d\)?){5,16}(?![\w@]|[.:/,-]\d)"
)
_TIME = re.compile(r"\d:\d\d")
_NATIONAL_MAX_DIGITS = 13  # written without a country code, a longer number is a card or account, not a phone
PREFILTER = r"\d[ .\-/()]?\d[ .\-/()]?\d[ .\-/()]?\d[ .\-/()]?\d[ .\-/()]?\d"


def check_regions(regions: tuple[str, ...]) -> tuple[str, ...]:
    """`regions`, if every code is a phone region `phonenumbers` knows (the scrub policy and `veil scan` share it).

    Raises:
        ValueError: a code is unknown (the message names it).
    """
    unknown = [region for region in regions if region not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(f"unknown phone region(s) {', '.join(unknown)}; use ISO 3166 codes such as US, GB, DE")
    return regions


def _number(candidate: str, regions: tuple[str, ...]) -> phonenumbers.PhoneNumber | None:
    """The parsed number if valid in a region (or possible, written with +/00); None otherwise."""
    international = candidate.startswith(("+", "00"))
    for region in (None,) if international else regions:
        try:
            number = phonenumbers.parse("+" + candidate[2:] if candidate.startswith("00") else candidate, region)
        except phonenumbers.NumberParseException:
            continue
        # possible is checked first: it is cheap, and for +1 numbers validity tries every NANP region
        if international and any(not ch.isdigit() for ch in candidate[1:]) and phonenumbers.is_possible_number(number):
            return number
        if phonenumbers.is_valid_number(number):
            return number
    return None


def find_phones(text: str, regions: tuple[str, ...] = DEFAULT_REGIONS, exclude: list[Span] = ()) -> list[Span]:
    """Phone numbers in `text`.

    A candidate is 7-15 digits with spaces, dots, dashes or brackets. It counts when
    `phonenumbers` finds it valid for one of `regions`, or, written internationally (`+`/`00`) with
    separators, possible (fictional `+1-555-...` numbers are scrubbed too). Refused: candidates
    overlapping a date, an IP, anything written like an IBAN (valid or not) or an `exclude` span
    (cards, SSNs, IBANs found first), the tail of a longer digit chain (`... 5944 9800 084`), after
    `order #`, `invoice` and similar words, national numbers of more than 13 digits, and digit runs
    without a separator unless 10 or 11 digits long.
    """
    spans, blockers = [], None
    for match in _CANDIDATE.finditer(text):
        candidate, start, end = match.group(), match.start(), match.end()
        while candidate.endswith(")") and candidate.count(")") > candidate.count("("):  # "(call +44 20 ...)"
            candidate, end = candidate[:-1], end - 1
        digits = sum(ch.isdigit() for ch in candidate)
        if not 7 <= digits <= 15 or _TIME.search(text, max(0, start - 3), min(len(text), end + 3)):
            continue
        if candidate.isdigit() and not 10 <= len(candidate) <= 11:  # a bare digit run: an amount, a code, a timestamp
            continue
        if digits > _NATIONAL_MAX_DIGITS and not candidate.startswith(("+", "00")):  # a card or account number
            continue
        if refused_by_context(text, start):
            continue
        if blockers is None:  # found once, and only for a text with a candidate left
            blockers = [*exclude, *find_dates(text), *find_ips(text), *iban_shaped(text)]
        if any(start < span.end and span.start < end for span in blockers):
            continue
        number = _number(candidate, regions)
        if number is not None:
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            spans.append(Span(start, end, "phone", e164))
    return spans
