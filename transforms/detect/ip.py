"""ip: IPv4 and IPv6 addresses, checked by the standard `ipaddress` module."""

import ipaddress
import re

from veil.transforms.detect.context import refused_by_context
from veil.transforms.detect.spans import Span, merge_spans

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})(?![\w:]|\.\w)")
PREFILTER = r"\d\.\d|[0-9A-Fa-f]:[0-9A-Fa-f]*:"


def find_ips(text: str) -> list[Span]:
    """IP addresses in `text`. IPv4 after `version` is refused; IPv6 needs 3 colons or a group of 3+
    hex digits, so times (`10:30:00`) and `::1` are not flagged."""
    spans = []
    for match in _IPV4.finditer(text):
        try:
            address = ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        if not refused_by_context(text, match.start()):
            spans.append(Span(match.start(), match.end(), "ip", str(address)))
    for match in _IPV6.finditer(text):
        candidate = match.group()
        try:
            address = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        if candidate.count(":") >= 3 or any(len(group) >= 3 for group in candidate.split(":")):
            spans.append(Span(match.start(), match.end(), "ip", address.compressed))
    return merge_spans(spans)
