"""Scan a table for personal data: per column, which entities the detectors find and how often.

Pure (Arrow in, figures out, no Beam). A column's figures never hold one of its values: only
its type, the share of its non-null values in which each entity was found, whether the entity
is the whole value (an `email` column) or spans inside text (`notes`), and the hints its name
gives. Like `scrub`, Arrow's RE2 prefilters pick the values (and the detectors) worth a look.

Text is what the detectors read: strings as they are, integers as their digits, lists of strings
joined by `; `. Dates and timestamps are not text; they count as the `date` entity (a whole value)
only where the column's name says birth (`dob`, `geburtsdatum`, ...), as do text columns whose
values are dates. In text, a date counts next to a birth word only (`born 3 March 1990`).
"""

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from veil.transforms.actions.base import kind_of
from veil.transforms.detect.date import find_dates
from veil.transforms.detect.detectors import DEFAULT_REGIONS, ENTITIES, PREFILTERS, find_entities
from veil.transforms.detect.hints import column_hints

WHOLE_SHARE = 0.5  # an entity that is the whole value in at least this share of values is what the column holds
FREE_TEXT_WORDS = 4  # a value with at least this many words (2+ letters) is prose
_WORD = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class ColumnScan:
    """What the detectors found in one column of a sample.

    Attributes:
        name: the column's name.
        type: its Arrow type, as text (`string`, `int64`, `date32[day]`, ...).
        kind: the coarse kind of that type actions declare they accept (`string`, `integer`,
            `date`, ...; a dictionary column is of its values' kind).
        values: the sampled non-null values.
        entities: entity -> share of the non-null values in which it was found (entities found
            at least once only).
        whole: entity -> share of the non-null values that are wholly that entity.
        free_text: whether most values are prose (at least `FREE_TEXT_WORDS` words), so
            entities are spans inside text rather than whole values.
        hints: what the column's name suggests (`email`, `birth`, `zip`, ...: see `hints.py`).
        distinct: share of the non-null values that are distinct (an identifier is near 1).
    """

    name: str
    type: str
    kind: str
    values: int
    entities: dict[str, float]
    whole: dict[str, float]
    free_text: bool
    hints: tuple[str, ...]
    distinct: float

    @property
    def main_entity(self) -> str | None:
        """The entity that is the whole value in at least `WHOLE_SHARE` of the values (the largest share), if any."""
        best = max(self.whole.items(), key=lambda item: item[1], default=(None, 0.0))
        return best[0] if best[1] >= WHOLE_SHARE else None


def _texts(column: pa.ChunkedArray) -> pa.Array | None:
    """The column's non-null values as the text the detectors read, or None for a type without text."""
    array = column.combine_chunks()
    kind = array.type
    if pa.types.is_dictionary(kind):
        array, kind = array.dictionary_decode(), kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        texts = array.cast(pa.string())
    elif pa.types.is_integer(kind):
        texts = pc.cast(array, pa.string())
    elif (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and pa.types.is_string(kind.value_type):
        texts = pc.binary_join(array, "; ")
    else:
        return None
    return texts.drop_null()


def _distinct(values: pa.ChunkedArray) -> int:
    """How many distinct values (0 for a type Arrow cannot compare, such as lists)."""
    try:
        return len(pc.unique(values))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return 0


def _is_whole(span, text: str) -> bool:
    return span.start == len(text) - len(text.lstrip()) and span.end == len(text.rstrip())


def _shares(counts: dict[str, int], total: int) -> dict[str, float]:
    return {entity: counts[entity] / total for entity in ENTITIES if counts.get(entity)}


def scan_column(name: str, column: pa.ChunkedArray, regions: tuple[str, ...] = DEFAULT_REGIONS) -> ColumnScan:
    """The detectors' figures for one column (see `ColumnScan`)."""
    hints = column_hints(name)
    present = column.drop_null()
    total = len(present)
    distinct = _distinct(present) / total if total else 0.0
    found: dict[str, int] = {}
    whole: dict[str, int] = {}
    free_text = False
    texts = _texts(column) if total else None
    if texts is None:
        if total and "birth" in hints and (pa.types.is_date(column.type) or pa.types.is_timestamp(column.type)):
            found["date"] = whole["date"] = total
    else:
        counted = pc.value_counts(texts)  # equal texts are scanned once, counted as often as they occur
        distinct_texts, counts = counted.field("values"), counted.field("counts").to_pylist()
        hits = [
            (entity, pc.match_substring_regex(distinct_texts, PREFILTERS[entity]).to_numpy(False))
            for entity in ENTITIES
        ]
        any_hit = np.logical_or.reduce([hit for _, hit in hits])
        prose = 0
        for row, (text, count) in enumerate(zip(distinct_texts.to_pylist(), counts)):
            prose += count * (len(_WORD.findall(text)) >= FREE_TEXT_WORDS)
            asked = tuple(entity for entity, hit in hits if hit[row]) if any_hit[row] else ()
            seen: set[str] = set()
            for span in find_entities(text, asked, regions) if asked else ():
                if span.entity not in seen:
                    seen.add(span.entity)
                    found[span.entity] = found.get(span.entity, 0) + count
                if _is_whole(span, text):
                    whole[span.entity] = whole.get(span.entity, 0) + count
            if "birth" in hints and "date" not in seen and any(_is_whole(s, text) for s in find_dates(text)):
                found["date"] = found.get("date", 0) + count
                whole["date"] = whole.get("date", 0) + count
        free_text = prose >= WHOLE_SHARE * total
    return ColumnScan(
        name, str(column.type), kind_of(column.type), total, _shares(found, total), _shares(whole, total), free_text,
        hints, distinct,
    )  # fmt: skip


def scan_table(table: pa.Table, regions: tuple[str, ...] = DEFAULT_REGIONS) -> list[ColumnScan]:
    """`scan_column` over every column of `table`, in schema order."""
    return [scan_column(name, table.column(name), regions) for name in table.column_names]
