"""scrub: find personal data inside free text (the detectors) and replace each span.

Replacements: `label` (`[EMAIL]`), `pseudonym` (`[EMAIL:<8 hex>]`, the first 4 bytes of a keyed
HMAC of the span's normalized text, keyed per purpose, so an analyst can count repeats without
seeing them and two purposes cannot link them) or `mask` (letters and digits become the mask
character; length and punctuation stay). Each replaced span is counted as
`scrubbed.<field>.<entity>` (the bind context's tally, which the engine adds to the run's counts).
"""

from collections import Counter
from collections.abc import Callable
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from veil.errors import ActionError
from veil.transforms.actions.base import (
    Action,
    ActionParams,
    ArrowFn,
    BindContext,
    VerifyRule,
    require_text,
    string_type,
)
from veil.transforms.detect import DEFAULT_ENTITIES, DEFAULT_REGIONS, PREFILTERS, Entity, Span, find_entities
from veil.transforms.detect.phone import check_regions

Replacement = Literal["label", "pseudonym", "mask"]
SCRUBBED = "scrubbed."


class ScrubParams(ActionParams):
    """Scrub free text.

    Attributes:
        entities: what to find (default: email, phone, card, iban, ssn, ip; `person`, `url`
            and `date` (birth dates) on request).
        replace: `label`, `pseudonym` or `mask`.
        regions: phone number regions (ISO 3166 codes) national numbers are read in.
        char: the mask character (`replace: mask`).
    """

    action: Literal["scrub"]
    entities: tuple[Entity, ...] = Field(DEFAULT_ENTITIES, min_length=1)
    replace: Replacement = "label"
    regions: tuple[str, ...] = Field(DEFAULT_REGIONS, min_length=1)
    char: str = Field("*", min_length=1, max_length=1)

    @field_validator("regions")
    @classmethod
    def _known_regions(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        return check_regions(regions)


def key_info(purpose: str) -> str:
    """HKDF info string of the scrub pseudonym key of a purpose (one key for every field and entity)."""
    return f"veil/v1/scrub/{purpose}"


def mask_span(text: str, char: str) -> str:
    """`text` with every letter and digit replaced by `char`; spaces and punctuation stay."""
    return "".join(char if ch.isalnum() else ch for ch in text)


Replacer = Callable[[Span, str], str]


def _replacer(params: ScrubParams, ctx: BindContext) -> Replacer:
    if params.replace == "label":
        return lambda span, _text: f"[{span.entity.upper()}]"
    if params.replace == "mask":
        char = params.char
        return lambda _span, text: mask_span(text, char)
    keyring, version = ctx.require_keys()
    prf = keyring.prf(key_info(ctx.purpose), version)

    def pseudonym(span: Span, _text: str) -> str:
        digest = prf.compute(f"{span.entity}:{span.normalized}".encode())
        return f"[{span.entity.upper()}:{digest[:4].hex()}]"

    return pseudonym


def scrub_text(
    text: str, entities: tuple[str, ...], regions: tuple[str, ...], replace: Replacer, counts: Counter
) -> str:
    """`text` with every span of `entities` replaced; each span counted by entity in `counts`."""
    spans = find_entities(text, entities, regions)
    if not spans:
        return text
    parts, last = [], 0
    for span in spans:
        parts.append(text[last : span.start])
        parts.append(replace(span, text[span.start : span.end]))
        counts[span.entity] += 1
        last = span.end
    parts.append(text[last:])
    return "".join(parts)


def _tally(ctx: BindContext, found: Counter) -> None:
    if ctx.tally is not None:
        for entity, n in found.items():
            ctx.tally[f"{SCRUBBED}{ctx.field}.{entity}"] += n


def _bind(params: ScrubParams, ctx: BindContext):
    replace, entities, regions = _replacer(params, ctx), params.entities, params.regions

    def scrub(value):
        """The text with its detected spans replaced.

        Security: label and mask keep nothing of a span but its kind (mask: its length and
        punctuation); pseudonym is deterministic per (purpose, key version, entity, normalized
        span), not reversible, unlinkable across purposes. Text the detectors miss stays as it is.
        """
        found: Counter = Counter()
        out = scrub_text(require_text(value), entities, regions, replace, found)
        _tally(ctx, found)
        return out

    return scrub


def _bind_arrow(params: ScrubParams, ctx: BindContext, input_type: pa.DataType) -> ArrowFn | None:
    """Scrub a string column: Arrow's RE2 prefilters pick the rows (and the detectors) worth a look;
    only those rows go through Python."""
    if not (pa.types.is_string(input_type) or pa.types.is_large_string(input_type)):
        return None
    replace, regions = _replacer(params, ctx), params.regions
    entities = params.entities
    prefilters = [(entity, PREFILTERS[entity]) for entity in entities]

    def run(array: pa.Array) -> tuple[pa.Array, list[int], ActionError | None]:
        hits = [
            (e, pc.fill_null(pc.match_substring_regex(array, p), False).to_numpy(zero_copy_only=False))
            for e, p in prefilters
        ]
        any_hit = np.logical_or.reduce([h for _, h in hits]) if hits else np.zeros(len(array), dtype=bool)
        rows = np.flatnonzero(any_hit)
        if not len(rows):
            return array.cast(pa.string()), [], None
        found: Counter = Counter()
        texts = array.take(pa.array(rows)).to_pylist()
        outputs = []
        for row, text in zip(rows.tolist(), texts):
            asked = tuple(e for e, h in hits if h[row])
            outputs.append(scrub_text(text, asked, regions, replace, found))
        _tally(ctx, found)
        mask = np.zeros(len(array), dtype=bool)
        mask[rows] = True
        out = pc.replace_with_mask(array.cast(pa.string()), pa.array(mask), pa.array(outputs, pa.string()))
        return out, [], None

    return run


ACTION = Action(
    "scrub",
    ScrubParams,
    bind=_bind,
    output_type=string_type,
    accepts=frozenset({"string"}),
    keyed=True,
    deterministic=False,  # equal texts scrub alike, but each row's spans are counted, so no per-batch memo
    bind_arrow=_bind_arrow,
    # a text without findings stays as it was; the pattern check looks again for what it scrubs,
    # and raw values of other fields are looked for inside it
    verify=lambda params: VerifyRule("coincident", entities=params.entities, regions=params.regions, text=True),
)
