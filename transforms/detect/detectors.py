"""The entity list and `find_entities`: every asked-for detector over one text, spans merged."""

from typing import Literal

from veil.transforms.detect import card, date, email, iban, ip, person, phone, ssn, url
from veil.transforms.detect.spans import Span, merge_spans

Entity = Literal["email", "phone", "card", "iban", "ssn", "ip", "url", "person", "date"]
ENTITIES: tuple[str, ...] = ("email", "card", "iban", "ssn", "phone", "ip", "url", "person", "date")  # tie priority
DEFAULT_ENTITIES: tuple[str, ...] = ("email", "phone", "card", "iban", "ssn", "ip")
DEFAULT_REGIONS = phone.DEFAULT_REGIONS
# Per entity, an RE2 pattern every text holding one matches (Arrow's `match_substring_regex`):
# texts matching none of the asked-for entities' prefilters need no Python at all.
PREFILTERS: dict[str, str] = {
    "email": email.PREFILTER,
    "phone": phone.PREFILTER,
    "card": card.PREFILTER,
    "iban": iban.PREFILTER,
    "ssn": ssn.PREFILTER,
    "ip": ip.PREFILTER,
    "url": url.PREFILTER,
    "person": r"\p{Lu}",
    "date": date.PREFILTER,
}
_SIMPLE = {
    "email": email.find_emails,
    "card": card.find_cards,
    "iban": iban.find_ibans,
    "ssn": ssn.find_ssns,
    "ip": ip.find_ips,
    "url": url.find_urls,
    "person": person.find_persons,
    "date": date.find_birth_dates,
}


def find_entities(
    text: str, entities: tuple[str, ...] = DEFAULT_ENTITIES, regions: tuple[str, ...] = DEFAULT_REGIONS
) -> list[Span]:
    """Spans of `entities` in `text`, merged: of overlapping spans the longest wins.

    Phone candidates overlapping a date of any kind, a card, an SSN or an IP are refused, so a
    timestamp or a card number is never read as a phone number.
    """
    spans: list[Span] = []
    for entity in entities:
        if entity != "phone":
            spans.extend(_SIMPLE[entity](text))
    if "phone" in entities:
        blockers = [s for s in spans if s.entity in ("card", "ssn", "iban")]
        spans.extend(phone.find_phones(text, regions, blockers))
    return merge_spans(spans, ENTITIES)
