"""Verification of a view against its input, without Beam: what is checked, per-batch parts, the join.

Two checks (README "Verification"):

* raw values: an output cell (as text, at least `MIN_CHARS` characters) that equals a raw
  value of the input field it derives from; how a field is compared follows its action's
  `VerifyRule` (keyed hashes, a lookup of the policy's labels, or the encoding's format);
  values that also occur in a kept input field are exempt (visible by the policy's choice);
* patterns: the detectors over the output's string cells, entities the field's action is
  designed to produce excepted.

Everything here works on one Arrow batch at a time and returns small parts: keyed hashes by
shard (joined per shard, `join_shard`), and counts (`Findings` sums them). No value leaves a
function: only hashes under a per-run key, counts and label positions.
"""

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from veil.keys.value_hash import ValueHasher
from veil.transforms.actions.base import TextFormat, VerifyRule
from veil.transforms.detect import DEFAULT_ENTITIES, DEFAULT_REGIONS, PREFILTERS, find_entities
from veil.transforms.plan import Plan
from veil.transforms.registry import REGISTRY

MIN_CHARS = 4  # shorter raw values (a 3-digit zip prefix, "US") are not compared: too common to mean a leak
SHARDS = 16  # keyed hashes are joined per shard: the top 4 bits of the hash
_SHARD_SHIFT = np.uint64(60)


@dataclass(frozen=True)
class FieldCheck:
    """How one output field is checked.

    Attributes:
        output: the output field.
        source: the input field it derives from.
        rule: its action's rule (merged over its k-anonymity levels).
        labels: the rule's labels as text (the ones long enough to compare).
        entities: entities the pattern check counts in it (empty: not pattern-checked).
        regions: phone regions for the pattern check.
        visible: the field is kept as it is (`keep`): its findings are warnings.
    """

    output: str
    source: str
    rule: VerifyRule
    labels: tuple[str, ...]
    entities: tuple[str, ...]
    regions: tuple[str, ...]
    visible: bool


def _merged(rules: list[VerifyRule]) -> VerifyRule:
    """One rule for a field written at one of several k-anonymity levels (each a rule)."""
    kinds = {rule.raw for rule in rules}
    raw = next(k for k in ("coincident", "visible", "encoded", "derived", "labels") if k in kinds)
    designed: frozenset[str] | None = frozenset()
    for rule in rules:
        designed = None if designed is None or rule.designed is None else designed | rule.designed
    labels = tuple(dict.fromkeys(label for rule in rules for label in rule.labels))
    entities = tuple(dict.fromkeys(e for rule in rules for e in rule.entities))
    regions = tuple(dict.fromkeys(r for rule in rules for r in rule.regions))
    longest = None if any(rule.longest is None for rule in rules) else max(rule.longest or 0 for rule in rules)
    return VerifyRule(raw, labels, rules[0].format, designed, entities, regions, longest)


def _label_texts(values: tuple[Any, ...]) -> tuple[str, ...]:
    if not values:
        return ()
    texts = as_text(pa.array(list(values))).to_pylist()
    return tuple(dict.fromkeys(t for t in texts if t is not None and len(t) >= MIN_CHARS))


@dataclass(frozen=True)
class VerifySpec:
    """What verification checks in one view: derived once from the plan.

    Attributes:
        purpose: the policy's purpose.
        fields: one check per output field.
        kept_sources: input fields the policy keeps (their values are exempt from raw findings).
    """

    purpose: str
    fields: tuple[FieldCheck, ...]
    kept_sources: tuple[str, ...]

    @classmethod
    def of(cls, plan: Plan) -> "VerifySpec":
        """The checks of `plan`'s output fields."""
        policy, checks = plan.policy, []
        for op in plan.ops:
            levels = policy.levels_of(op.output) if plan.levels else (op.params,)
            rule = _merged([REGISTRY[p.action].verify(p) for p in levels if p is not None])
            string_out = op.output_type is None or _is_text(op.output_type)
            entities: tuple[str, ...] = ()
            if rule.designed is not None and string_out:
                asked = dict.fromkeys([*DEFAULT_ENTITIES, *rule.entities])
                entities = tuple(e for e in asked if e not in rule.designed)
            visible = rule.raw == "visible"
            labels = _label_texts(rule.labels)
            checks.append(
                FieldCheck(op.output, op.source, rule, labels, entities, rule.regions or DEFAULT_REGIONS, visible)
            )
        kept = tuple(dict.fromkeys(c.source for c in checks if c.visible))
        return cls(policy.purpose, tuple(checks), kept)

    @property
    def hashed(self) -> tuple[FieldCheck, ...]:
        """Fields compared with their input by keyed hash (not those whose outputs are always too short)."""
        long_enough = (c for c in self.fields if c.rule.longest is None or c.rule.longest >= MIN_CHARS)
        return tuple(c for c in long_enough if c.rule.raw == "derived")

    @property
    def labelled(self) -> tuple[FieldCheck, ...]:
        """Fields whose outputs are labels long enough to compare."""
        return tuple(c for c in self.fields if c.rule.raw == "labels" and c.labels)

    @property
    def encoded(self) -> tuple[FieldCheck, ...]:
        """Fields whose cells must be in their encoding's format."""
        return tuple(c for c in self.fields if c.rule.raw == "encoded")

    @property
    def raw_checked(self) -> tuple[str, ...]:
        """Output fields the raw-value check covers."""
        compared = {c.output for c in (*self.hashed, *self.labelled, *self.encoded)}
        return tuple(c.output for c in self.fields if c.output in compared)

    @property
    def pattern_checked(self) -> tuple[str, ...]:
        """Output fields the pattern check covers."""
        return tuple(c.output for c in self.fields if c.entities)

    @property
    def input_fields(self) -> tuple[str, ...]:
        """Input fields the input side reads (none when no field is compared with its input)."""
        compared = [c.source for c in (*self.hashed, *self.labelled)]
        return tuple(dict.fromkeys([*compared, *self.kept_sources])) if compared else ()


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def as_text(array: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """A column as text, the way both sides are compared (None: a type verification does not
    compare, such as lists and structs). Dates are ISO text, numbers their decimal text."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    if pa.types.is_dictionary(kind):
        array, kind = array.dictionary_decode(), kind.value_type
    if _is_text(kind):
        return array
    if pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return None
    try:
        return array.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _long_enough(texts: pa.Array) -> pa.Array:
    """The non-null texts of at least `MIN_CHARS` characters."""
    keep = pc.fill_null(pc.greater_equal(pc.utf8_length(texts), MIN_CHARS), False)
    return texts.filter(keep)


def _shards(
    hashes: np.ndarray, counts: np.ndarray | None = None
) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """(shard, its hashes, their counts) for every shard some hash falls in."""
    shard = (hashes >> _SHARD_SHIFT).astype(np.uint8)
    order = np.argsort(shard, kind="stable")  # a radix sort on bytes
    bounds = np.searchsorted(shard[order], np.arange(SHARDS + 1))
    for s in range(SHARDS):
        picked = order[bounds[s] : bounds[s + 1]]
        if len(picked):
            yield s, hashes[picked], None if counts is None else counts[picked]


@dataclass
class Part:
    """What one batch contributes to one shard's join.

    Attributes:
        raw: input field -> keyed hashes of its distinct values.
        kept: keyed hashes of values of kept input fields.
        out: output field -> (keyed hashes of its distinct cells, how many cells each).
    """

    raw: dict[str, np.ndarray] = field(default_factory=dict)
    kept: list[np.ndarray] = field(default_factory=list)
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)


def input_parts(batch: pa.RecordBatch, spec: VerifySpec, hasher: ValueHasher) -> Iterator[tuple[int, Part]]:
    """An input batch's keyed hashes, by shard: values of the hashed fields' sources and of kept fields."""
    if not spec.hashed:
        return
    parts: dict[int, Part] = {}
    sources = dict.fromkeys(c.source for c in spec.hashed)
    for name in (*sources, *spec.kept_sources):
        texts = as_text(batch.column(name))
        if texts is None:
            continue
        hashes = hasher.hash_array(pc.unique(_long_enough(texts)))
        for shard, picked, _ in _shards(hashes):
            part = parts.setdefault(shard, Part())
            if name in sources:
                part.raw[name] = picked
            else:
                part.kept.append(picked)
    yield from parts.items()


def output_parts(batch: pa.RecordBatch, spec: VerifySpec, hasher: ValueHasher) -> Iterator[tuple[int, Part]]:
    """An output batch's keyed hashes of the hashed fields' cells (with their counts), by shard."""
    parts: dict[int, Part] = {}
    for check in spec.hashed:
        texts = as_text(batch.column(check.output))
        if texts is None:
            continue
        encoded = _long_enough(texts).dictionary_encode()
        counts = np.bincount(encoded.indices.to_numpy(), minlength=len(encoded.dictionary)).astype(np.int64)
        hashes = hasher.hash_array(encoded.dictionary)
        for shard, picked, picked_counts in _shards(hashes, counts):
            parts.setdefault(shard, Part()).out.setdefault(check.output, []).append((picked, picked_counts))
    yield from parts.items()


def join_shard(spec: VerifySpec, parts: Iterable[Part]) -> Counter:
    """Raw-value findings of one shard: output cells whose hash is a raw value of their source
    field and not a kept field's value. Returns `raw.<output field>` counts."""
    raw: dict[str, list[np.ndarray]] = {}
    kept: list[np.ndarray] = []
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for part in parts:
        for name, hashes in part.raw.items():
            raw.setdefault(name, []).append(hashes)
        kept.extend(part.kept)
        for name, pairs in part.out.items():
            out.setdefault(name, []).extend(pairs)
    exempt = np.concatenate(kept) if kept else np.zeros(0, np.uint64)
    found: Counter = Counter()
    for check in spec.hashed:
        if check.output not in out or check.source not in raw:
            continue
        values = np.concatenate(raw[check.source])
        if len(exempt):
            values = values[~np.isin(values, exempt)]
        hashes = np.concatenate([h for h, _ in out[check.output]])  # one lookup per field and shard
        counts = np.concatenate([c for _, c in out[check.output]])
        hits = int(counts[np.isin(hashes, values)].sum())
        if hits:
            found[f"raw.{check.output}"] += hits
    return found


def input_counts(batch: pa.RecordBatch, spec: VerifySpec) -> Counter:
    """Which policy labels are raw values of their field's source (`label.<field>.<i>`), or of a
    kept field (`labelkept.<field>.<i>`), in one input batch (1 each: `Findings` keeps them as sets)."""
    found: Counter = Counter()
    kept = [t for t in (as_text(batch.column(s)) for s in spec.kept_sources) if t is not None]
    for check in spec.labelled:
        labels = pa.array(list(check.labels), pa.string())
        texts = as_text(batch.column(check.source))
        for i in _labels_in(texts, labels) if texts is not None else ():
            found[f"label.{check.output}.{i}"] = 1
        for column in kept:
            for i in _labels_in(column, labels):
                found[f"labelkept.{check.output}.{i}"] = 1
    return found


def _labels_in(texts: pa.Array, labels: pa.Array) -> list[int]:
    """Positions of the `labels` that are among `texts` (a lookup in the small label set)."""
    hits = texts.filter(pc.fill_null(pc.is_in(texts, value_set=labels), False))
    if not len(hits):
        return []
    return [i for i in pc.index_in(pc.unique(hits), value_set=labels).to_pylist() if i is not None]


def _prefilter(entities: tuple[str, ...]) -> str:
    return "|".join(f"(?:{PREFILTERS[e]})" for e in entities)


def output_counts(batch: pa.RecordBatch, spec: VerifySpec) -> Counter:
    """One output batch's counts: `cells` checked, cells per policy label (`labelout.<field>.<i>`),
    `raw.<field>` cells not in their encoding's format, `pattern.<field>.<entity>` spans found."""
    found: Counter = Counter()
    raw_checked = spec.raw_checked
    for check in spec.fields:
        if not (check.entities or check.output in raw_checked):
            continue
        texts = as_text(batch.column(check.output))
        if texts is None:
            continue
        found["cells"] += len(texts) - texts.null_count
        if check in spec.labelled:
            for i, n in _label_counts(texts, check.labels):
                found[f"labelout.{check.output}.{i}"] += n
        if check.rule.raw == "encoded" and check.rule.format:
            bad = malformed(texts, check.rule.format)
            if bad:
                found[f"raw.{check.output}"] += bad
        if check.entities:
            for entity, n in _pattern_counts(texts, check.entities, check.regions).items():
                found[f"pattern.{check.output}.{entity}"] += n
    return found


HEAD_CHARS = 48  # a format's head and alphabet are checked on this many first characters (a subject key id is 32)


def malformed(texts: pa.Array, shape: TextFormat) -> int:
    """How many non-null cells of `texts` are not in `shape`: another length, a start its head does not
    match, or a character outside its alphabet among the first `HEAD_CHARS` (RE2 on those only)."""
    if texts.null_count == len(texts):
        return 0
    outside = "".join("\\" + ch if not ch.isalnum() else ch for ch in shape.alphabet)
    first = pc.utf8_slice_codeunits(texts, 0, HEAD_CHARS)
    bad = pc.match_substring_regex(first, f"[^{outside}]")
    if shape.length is not None:
        bad = pc.or_(bad, pc.not_equal(pc.utf8_length(texts), shape.length))
    if shape.head is not None:
        head = pc.match_substring_regex(first, f"^(?:{shape.head})")
        bad = pc.or_(bad, pc.invert(head))
    return int(pc.sum(pc.cast(bad, pa.int64())).as_py() or 0)


def _label_counts(texts: pa.Array, labels: tuple[str, ...]) -> Iterator[tuple[int, int]]:
    """(label position, cells equal to it) for the labels present in `texts` (few distinct values)."""
    counts = pc.value_counts(texts.drop_null())
    positions = pc.index_in(counts.field("values"), value_set=pa.array(list(labels), pa.string())).to_pylist()
    for position, n in zip(positions, counts.field("counts").to_pylist()):
        if position is not None:
            yield position, n


def _pattern_counts(texts: pa.Array, entities: tuple[str, ...], regions: tuple[str, ...]) -> Counter:
    """Spans of `entities` found in the cells of `texts`: each distinct text is read once."""
    encoded = texts.drop_null().dictionary_encode()
    if not len(encoded.dictionary):
        return Counter()
    hit = pc.fill_null(pc.match_substring_regex(encoded.dictionary, _prefilter(entities)), False)
    rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
    if not len(rows):
        return Counter()
    times = np.bincount(encoded.indices.to_numpy(), minlength=len(encoded.dictionary))
    found: Counter = Counter()
    for row, text in zip(rows.tolist(), encoded.dictionary.take(pa.array(rows)).to_pylist()):
        for span in find_entities(text, entities, regions):
            found[span.entity] += int(times[row])
    return found


@dataclass
class Findings:
    """The sum of every part's counts, and what they mean once summed (`result`)."""

    counts: Counter = field(default_factory=Counter)

    def add(self, counts: Counter | dict) -> "Findings":
        """Add one part's counts (label facts are kept as sets: 1 however often seen)."""
        for name, n in counts.items():
            if name.startswith(("label.", "labelkept.")):
                self.counts[name] = 1
            else:
                self.counts[name] += n
        return self

    def result(self, spec: VerifySpec) -> dict[str, Any]:
        """`{cells_checked, raw_values: {output field: n}, patterns: {output field: {entity: n}}}`,
        nonzero counts only."""
        raw: Counter = Counter()
        patterns: dict[str, dict[str, int]] = {}
        for name, n in self.counts.items():
            kind, _, rest = name.partition(".")
            if kind == "raw":
                raw[rest] += n
            elif kind == "pattern":
                output, _, entity = rest.rpartition(".")
                patterns.setdefault(output, {})[entity] = n
            elif kind == "labelout" and self.counts.get(f"label.{rest}") and not self.counts.get(f"labelkept.{rest}"):
                raw[rest.rpartition(".")[0]] += n
        order = {c.output: i for i, c in enumerate(spec.fields)}
        return {
            "cells_checked": self.counts.get("cells", 0),
            "raw_values": {f: raw[f] for f in sorted(raw, key=order.get) if raw[f]},
            "patterns": {f: dict(sorted(patterns[f].items())) for f in sorted(patterns, key=order.get)},
            "checked": {"raw_values": list(spec.raw_checked), "patterns": list(spec.pattern_checked)},
        }
