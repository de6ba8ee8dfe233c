"""card: 13-19 digit payment card numbers, Luhn-valid, in a known issuer (IIN) range."""

import re

from stdnum import luhn

from veil.transforms.detect.context import refused_by_context
from veil.transforms.detect.iban import iban_shaped
from veil.transforms.detect.spans import Span

# Not glued to letters (a hex digest holds digit runs) nor right after `+` (a phone number).
_CARD = re.compile(r"(?<![\w+-])\d(?:[ -]?\d){12,18}(?![\w]|[ -]\d)")
PREFILTER = r"\d{4}"

# (lowest prefix, highest prefix, lengths): Visa, Mastercard, Amex, Discover, JCB, Diners,
# UnionPay, Maestro, Mir.
_IIN_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),
    (51, 55, frozenset({16})),
    (2221, 2720, frozenset({16})),
    (34, 34, frozenset({15})),
    (37, 37, frozenset({15})),
    (6011, 6011, frozenset(range(16, 20))),
    (644, 649, frozenset(range(16, 20))),
    (65, 65, frozenset(range(16, 20))),
    (3528, 3589, frozenset(range(16, 20))),
    (300, 305, frozenset(range(14, 20))),
    (36, 36, frozenset(range(14, 20))),
    (38, 39, frozenset(range(14, 20))),
    (62, 62, frozenset(range(16, 20))),
    (5018, 5018, frozenset(range(13, 20))),
    (5020, 5020, frozenset(range(13, 20))),
    (5038, 5038, frozenset(range(13, 20))),
    (5893, 5893, frozenset(range(13, 20))),
    (6304, 6304, frozenset(range(13, 20))),
    (6759, 6759, frozenset(range(13, 20))),
    (6761, 6763, frozenset(range(13, 20))),
    (2200, 2204, frozenset(range(16, 20))),
)


def known_iin(digits: str) -> bool:
    """Whether `digits` starts with a known card issuer prefix and has a length that issuer uses."""
    for low, high, lengths in _IIN_RANGES:
        prefix = int(digits[: len(str(low))])
        if low <= prefix <= high and len(digits) in lengths:
            return True
    return False


def find_cards(text: str) -> list[Span]:
    """Card numbers in `text`: one separator kind at most, Luhn-valid, known IIN; not after `order #` and
    the like, nor glued to letters (`a4111...` in a hex digest), right after `+` (a phone number) or
    inside anything written like an IBAN."""
    spans, accounts = [], iban_shaped(text)
    for match in _CARD.finditer(text):
        candidate = match.group()
        separators = {ch for ch in candidate if not ch.isdigit()}
        if len(separators) > 1:
            continue
        digits = candidate.replace(" ", "").replace("-", "")
        if not (13 <= len(digits) <= 19 and known_iin(digits) and luhn.is_valid(digits)):
            continue
        inside_account = any(a.start < match.end() and match.start() < a.end for a in accounts)
        if inside_account or refused_by_context(text, match.start()):
            continue
        spans.append(Span(match.start(), match.end(), "card", digits))
    return spans
