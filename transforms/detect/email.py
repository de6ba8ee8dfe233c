"""email: addresses with a dotted domain and a letter TLD."""

import re

from veil.transforms.detect.spans import Span

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-]|\.[A-Za-z0-9])"
)
PREFILTER = "@"


def find_emails(text: str) -> list[Span]:
    """Email addresses in `text`; a local part with `..` or ending in `.` is refused."""
    spans = []
    for match in _EMAIL.finditer(text):
        local = match.group().partition("@")[0]
        if ".." in local or local.endswith("."):
            continue
        spans.append(Span(match.start(), match.end(), "email", match.group().lower()))
    return spans
