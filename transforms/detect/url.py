"""url: web addresses starting with a scheme (http, https, ftp) or `www.`."""

import re

from veil.transforms.detect.spans import Span

_URL = re.compile(r"(?<![\w@])(?:(?:https?|ftp)://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
PREFILTER = r"(?i)://|www\."
_TRAILING = ".,;:!?"


def find_urls(text: str) -> list[Span]:
    """URLs in `text`, without trailing punctuation or an unbalanced closing bracket."""
    spans = []
    for match in _URL.finditer(text):
        url = match.group()
        while url and (
            url[-1] in _TRAILING or (url[-1] in ")]" and url.count(url[-1]) > url.count("(["[")]".index(url[-1])]))
        ):
            url = url[:-1]
        if len(url) > 7:
            spans.append(Span(match.start(), match.start() + len(url), "url", url))
    return spans
