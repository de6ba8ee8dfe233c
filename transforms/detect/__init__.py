"""Personal-data detectors: a pattern plus a validator per entity, returning spans. Pure, no Beam.

Entities: email, phone, card, iban, ssn, ip, url, person, date (dates next to a birth word).
`find_entities` runs the detectors asked for and merges overlapping spans (longest wins).
"""

from veil.transforms.detect.detectors import (
    DEFAULT_ENTITIES,
    DEFAULT_REGIONS,
    ENTITIES,
    PREFILTERS,
    Entity,
    find_entities,
)
from veil.transforms.detect.spans import Span, merge_spans

__all__ = [
    "DEFAULT_ENTITIES",
    "DEFAULT_REGIONS",
    "ENTITIES",
    "PREFILTERS",
    "Entity",
    "Span",
    "find_entities",
    "merge_spans",
]
