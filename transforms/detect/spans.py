"""A detected span of text, and merging of spans found by several detectors."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """One entity found in a text.

    Attributes:
        start: index of the first character.
        end: index past the last character.
        entity: the entity name (`email`, `phone`, ...).
        normalized: a canonical text of the span (lower-cased email, E.164 phone, digits of a
            card, ...), so equal entities written differently get equal pseudonyms.
    """

    start: int
    end: int
    entity: str
    normalized: str


def merge_spans(spans: list[Span], priority: tuple[str, ...] = ()) -> list[Span]:
    """Non-overlapping spans in text order: of overlapping spans the longest wins.

    Ties go to the entity named first in `priority` (then to the earlier span).
    """
    if len(spans) < 2:
        return list(spans)
    rank = {entity: i for i, entity in enumerate(priority)}
    chosen: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start - s.end, rank.get(s.entity, len(rank)), s.start)):
        if all(span.end <= other.start or span.start >= other.end for other in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)
