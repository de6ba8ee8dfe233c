"""Verification of a view against its input, without Beam: what is checked, per-batch parts, the join.

Two checks (README "Verification"):

* raw values: an output cell (as text, at least `MIN_CHARS` characters) that equals a raw
  value, and in free text a raw value inside a cell; how a field is compared follows its
  action's `VerifyRule`: a label the policy spells is looked up among the raw values of every
  input field that is not kept, a derived cell (mask, prefix, ff1) is compared by keyed hash
  with its own field's raw values, an encoded cell must be in its encoding's format, and free
  text (scrub, a kept field named as free text) is compared by keyed hash, whole and by spans
  (`veil.transforms.inside_text`), with the raw values of every other input field that is not
  kept; values that also occur in a kept input field are exempt (visible by the policy's choice);
* patterns: the detectors over the output's string cells, entities the field's action is
  designed to produce excepted.

Everything here works on one Arrow batch at a time and returns small parts: keyed hashes by
shard (joined per shard, `join_shard`), and counts (`Findings` sums them). No value leaves a
function: only hashes under a per-run key, counts and label positions.
"""

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from veil.keys.value_hash import ValueHasher, string_buffers
from veil.transforms.actions.base import TextFormat, VerifyRule
from veil.transforms.detect import DEFAULT_ENTITIES, DEFAULT_REGIONS, PREFILTERS, find_entities
from veil.transforms.detect.hints import looks_like_free_text
from veil.transforms.inside_text import is_span, normal_forms, spans
from veil.transforms.plan import Plan
from veil.transforms.registry import REGISTRY

Columns = pa.RecordBatch | pa.Table  # one batch, or a group of batches as a table (chunked columns, no copy)

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
        against: the input fields whose raw values its cells are compared with (none: not
            compared by value).
        inside: free text: raw values are looked for inside its cells too (by spans).
    """

    output: str
    source: str
    rule: VerifyRule
    labels: tuple[str, ...]
    entities: tuple[str, ...]
    regions: tuple[str, ...]
    visible: bool
    against: tuple[str, ...] = ()
    inside: bool = False


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
    across, text = any(rule.across for rule in rules), any(rule.text for rule in rules)
    return VerifyRule(raw, labels, rules[0].format, designed, entities, regions, longest, across, text)


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
        policy, ops = plan.policy, plan.ops
        rules = []
        for op in ops:
            levels = policy.levels_of(op.output) if plan.levels else (op.params,)
            rules.append(_merged([REGISTRY[p.action].verify(p) for p in levels if p is not None]))
        kept = tuple(dict.fromkeys(op.source for op, rule in zip(ops, rules) if rule.raw == "visible"))
        inputs = [(f.name, f.type) for f in plan.input_schema] if plan.input_schema is not None else []
        if plan.input_schema is None:  # dict records: only the fields the policy writes are known
            inputs = [(op.source, None) for op in ops]
        consent = policy.consent.field if policy.consent else None  # purpose names, the policies' own words
        others = tuple(name for name, kind in inputs if name not in kept and name != consent and _comparable(kind))
        texts = tuple(name for name, kind in inputs if name in others and not _timed(kind))
        checks = []
        for op, rule in zip(ops, rules):
            string_out = op.output_type is None or _is_text(op.output_type)
            entities: tuple[str, ...] = ()
            if rule.designed is not None and string_out:
                asked = dict.fromkeys([*DEFAULT_ENTITIES, *rule.entities])
                entities = tuple(e for e in asked if e not in rule.designed)
            visible = rule.raw == "visible"
            named = looks_like_free_text(op.source) or looks_like_free_text(op.output)
            inside = rule.text and string_out and (named or not visible)
            against: tuple[str, ...] = ()
            if inside:
                against = tuple(name for name in texts if name != op.source)
            elif rule.raw == "labels" and rule.across:
                against = others
            elif rule.raw in ("labels", "derived"):
                against = (op.source,)
            labels = _label_texts(rule.labels)
            regions = rule.regions or DEFAULT_REGIONS
            checks.append(FieldCheck(op.output, op.source, rule, labels, entities, regions, visible, against, inside))
        return cls(policy.purpose, tuple(checks), kept)

    @property
    def hashed(self) -> tuple[FieldCheck, ...]:
        """Fields compared with their own input field's values by keyed hash (not those whose outputs
        are always too short)."""
        long_enough = (c for c in self.fields if c.rule.longest is None or c.rule.longest >= MIN_CHARS)
        return tuple(c for c in long_enough if c.rule.raw == "derived" and not c.inside)

    @property
    def inside(self) -> tuple[FieldCheck, ...]:
        """Free-text fields: their cells, whole and by spans, are compared by keyed hash with the raw
        values of the other input fields that are not kept."""
        return tuple(c for c in self.fields if c.inside and c.against)

    @property
    def joined(self) -> tuple[FieldCheck, ...]:
        """Fields whose cells' keyed hashes are joined with the input's (`join_shard`)."""
        return (*self.hashed, *self.inside)

    @property
    def hashed_inputs(self) -> dict[str, bool]:
        """Input fields whose values the input side hashes -> whether their normal forms too (for spans);
        the kept fields among them are the exempt values."""
        wanted: dict[str, bool] = {c.source: False for c in self.hashed}
        for check in self.inside:
            wanted.update(dict.fromkeys(check.against, True))
        if wanted:
            wanted.update(dict.fromkeys(self.kept_sources, bool(self.inside)))
        return wanted

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
        compared = {c.output for c in (*self.joined, *self.labelled, *self.encoded)}
        return tuple(c.output for c in self.fields if c.output in compared)

    @property
    def pattern_checked(self) -> tuple[str, ...]:
        """Output fields the pattern check covers."""
        return tuple(c.output for c in self.fields if c.entities)

    @property
    def input_fields(self) -> tuple[str, ...]:
        """Input fields the input side reads (none when no field is compared with the input)."""
        compared = [name for c in (*self.joined, *self.labelled) for name in c.against]
        return tuple(dict.fromkeys([*compared, *self.kept_sources])) if compared else ()


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _comparable(kind: pa.DataType | None) -> bool:
    """Whether values of `kind` are compared as text (not lists, structs, maps, bytes)."""
    if kind is None:
        return True
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return not (pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind))


def _timed(kind: pa.DataType | None) -> bool:
    """Timestamps, times and durations: their text (ISO with microseconds and a zone) is not how
    text writes them, so they are not looked for in free text."""
    if kind is None:
        return False
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_timestamp(kind) or pa.types.is_time(kind) or pa.types.is_duration(kind)


def as_text(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray | None:
    """A column as text, the way both sides are compared (None: a type verification does not
    compare, such as lists and structs). Dates are ISO text, numbers their decimal text. A chunked
    column (a group of batches, `Columns`) stays chunked: every check takes either, without a copy."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        array, kind = array.cast(kind.value_type), kind.value_type
    if _is_text(kind):
        return array
    if pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return None
    try:
        return array.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _long(texts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Which texts are non-null and at least `MIN_CHARS` characters long."""
    return pc.fill_null(pc.greater_equal(pc.utf8_length(texts), MIN_CHARS), False)


def _long_enough(texts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The non-null texts of at least `MIN_CHARS` characters."""
    return texts.filter(_long(texts))


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
        normal: input field -> keyed hashes of the normal forms of its values that differ from
            the values (`inside_text.normal_forms`), what spans of free text are compared with too.
        kept: keyed hashes of values (and normal forms) of kept input fields.
        out: output field -> (keyed hashes of its distinct cells, or of its cells' spans, and how
            many cells each is, or is in).
    """

    raw: dict[str, np.ndarray] = field(default_factory=dict)
    normal: dict[str, np.ndarray] = field(default_factory=dict)
    kept: list[np.ndarray] = field(default_factory=list)
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """The bytes of its arrays (what `to_bytes` writes, less its header)."""
        arrays = [*self.raw.values(), *self.normal.values(), *self.kept]
        arrays += [a for pairs in self.out.values() for pair in pairs for a in pair]
        return sum(a.nbytes for a in arrays)

    @classmethod
    def merged(cls, parts: Iterable["Part"]) -> "Part":
        """One part holding every hash (and count) of `parts`, each field's arrays joined into one."""
        raw: dict[str, list[np.ndarray]] = {}
        normal: dict[str, list[np.ndarray]] = {}
        kept: list[np.ndarray] = []
        out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for part in parts:
            for mine, theirs in ((raw, part.raw), (normal, part.normal)):
                for name, hashes in theirs.items():
                    mine.setdefault(name, []).append(hashes)
            kept.extend(part.kept)
            for name, pairs in part.out.items():
                out.setdefault(name, []).extend(pairs)
        return cls(
            {name: np.concatenate(chunks) for name, chunks in raw.items()},
            {name: np.concatenate(chunks) for name, chunks in normal.items()},
            [np.concatenate(kept)] if kept else [],
            {
                name: [(np.concatenate([h for h, _ in pairs]), np.concatenate([c for _, c in pairs]))]
                for name, pairs in out.items()
            },
        )

    def to_bytes(self) -> bytes:
        """The part as bytes `from_bytes` reads back: a JSON header naming each array and its length,
        then the arrays (8-byte little-endian integers). Only numbers: never a pickle, never a value."""
        header: list[list[Any]] = []
        arrays: list[np.ndarray] = []
        for kind, named in (("raw", self.raw), ("normal", self.normal)):
            for name, hashes in named.items():
                header.append([kind, name, len(hashes)])
                arrays.append(hashes)
        for hashes in self.kept:
            header.append(["kept", "", len(hashes)])
            arrays.append(hashes)
        for name, pairs in self.out.items():
            for hashes, counts in pairs:
                header.append(["out", name, len(hashes)])
                arrays += [hashes, counts]
        head = json.dumps(header).encode("utf-8")
        body = b"".join(np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes() for a in arrays)
        return len(head).to_bytes(8, "little") + head + body

    @classmethod
    def from_bytes(cls, data: bytes) -> "Part":
        """The part `to_bytes` wrote."""
        size = int.from_bytes(data[:8], "little")
        at = 8 + size
        part = cls()

        def take(dtype: str, n: int) -> np.ndarray:
            nonlocal at
            array = np.frombuffer(data, dtype, n, at)
            at += 8 * n
            return array

        for kind, name, n in json.loads(data[8:at]):
            if kind == "out":
                hashes = take("<u8", n)
                part.out.setdefault(name, []).append((hashes, take("<i8", n)))
            elif kind == "kept":
                part.kept.append(take("<u8", n))
            else:
                getattr(part, kind)[name] = take("<u8", n)
        return part


def input_parts(batch: Columns, spec: VerifySpec, hasher: ValueHasher) -> Iterator[tuple[int, Part]]:
    """An input batch's keyed hashes, by shard: the distinct values of the input fields compared by
    hash (`VerifySpec.hashed_inputs`), each hashed once, with their normal forms where spans of free
    text are compared with them."""
    parts: dict[int, Part] = {}
    kept = set(spec.kept_sources)
    for name, normal in spec.hashed_inputs.items():
        texts = as_text(batch.column(name)) if name in batch.schema.names else None  # a column not read
        if texts is None:
            continue
        values = _long_enough(pc.unique(texts))  # distinct first: fewer texts to measure
        forms = [("raw", hasher.hash_array(values))]
        if normal:
            forms.append(("normal", hasher.hash_array(normal_forms(values))))
        for form, hashes in forms:
            for shard, picked, _ in _shards(hashes):
                part = parts.setdefault(shard, Part())
                if name in kept:
                    part.kept.append(picked)
                else:
                    getattr(part, form)[name] = picked
    yield from parts.items()


def output_parts(batch: Columns, spec: VerifySpec, hasher: ValueHasher) -> Iterator[tuple[int, Part]]:
    """An output batch's keyed hashes, by shard, with their counts: the distinct cells of the fields
    compared with their own input, and the distinct cells and spans of the free-text fields."""
    parts: dict[int, Part] = {}
    for check in spec.joined:
        texts = as_text(batch.column(check.output))
        if texts is None:
            continue
        hashes, counts = _text_hashes(texts, hasher) if check.inside else _cell_hashes(texts, hasher)
        for shard, picked, picked_counts in _shards(hashes, counts):
            parts.setdefault(shard, Part()).out.setdefault(check.output, []).append((picked, picked_counts))
    yield from parts.items()


def _cell_hashes(texts: pa.Array | pa.ChunkedArray, hasher: ValueHasher) -> tuple[np.ndarray, np.ndarray]:
    """The keyed hashes of the distinct cells long enough to compare, and how many cells each."""
    distinct = pc.value_counts(texts)  # distinct first: fewer texts to measure
    distinct = distinct.filter(_long(distinct.field("values")))
    return hasher.hash_array(distinct.field("values")), distinct.field("counts").to_numpy()


def _text_hashes(texts: pa.Array | pa.ChunkedArray, hasher: ValueHasher) -> tuple[np.ndarray, np.ndarray]:
    """The keyed hashes of what a free-text field's cells are compared by: their spans, and each cell
    whole (at least `MIN_CHARS` characters) unless it is one of its own spans; with, for each, how
    many places it is at (a span found twice in a cell is two places)."""
    distinct_cells = pc.value_counts(texts.drop_null())
    cells = distinct_cells.field("values")
    if not len(cells):
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    times = distinct_cells.field("counts").to_numpy()
    whole = np.flatnonzero(
        pc.and_(pc.greater_equal(pc.utf8_length(cells), MIN_CHARS), pc.invert(is_span(cells))).to_numpy(
            zero_copy_only=False
        )
    )
    found, owners = spans(cells)
    distinct = pa.concat_arrays([cells.take(pa.array(whole)), found]).dictionary_encode()
    size = len(distinct.dictionary)
    if not size:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    places = times[np.concatenate([whole, owners])]
    counts = np.bincount(distinct.indices.to_numpy(), weights=places, minlength=size).astype(np.int64)
    return hasher.hash_array(distinct.dictionary), counts


def join_shard(spec: VerifySpec, parts: Iterable[Part]) -> Counter:
    """Raw-value findings of one shard: output cells (and spans of free text) whose hash is a raw
    value of a field they are compared with (`FieldCheck.against`) and not a kept field's value.
    Returns `raw.<output field>` counts: cells, and for free text the places a value is found at."""
    whole = Part.merged(parts)
    exempt = whole.kept[0] if whole.kept else np.zeros(0, np.uint64)
    found: Counter = Counter()
    for check in spec.joined:
        if check.output not in whole.out:
            continue
        chunks = [whole.raw[name] for name in check.against if name in whole.raw]
        if check.inside:
            chunks += [whole.normal[name] for name in check.against if name in whole.normal]
        if not chunks:
            continue
        values = np.concatenate(chunks)
        ((hashes, counts),) = whole.out[check.output]  # one lookup per field and shard
        hit = _member(hashes, values)
        if len(exempt) and hit.any():
            hit[hit] = ~_member(hashes[hit], exempt)
        hits = int(counts[hit].sum())
        if hits:
            found[f"raw.{check.output}"] += hits
    return found


def _member(hashes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which of `hashes` are among `values` (a hash set lookup: several times faster than `np.isin`'s sort)."""
    found = pc.is_in(pa.array(hashes, pa.uint64()), value_set=pa.array(values, pa.uint64()))
    return found.to_numpy(zero_copy_only=False)  # booleans are bits in Arrow: always a new array


def input_counts(batch: Columns, spec: VerifySpec) -> Counter:
    """Which policy labels are raw values of an input field they are compared with (`label.<field>.<i>`:
    any field that is not kept), or of a kept field (`labelkept.<field>.<i>`), in one input batch (1
    each: `Findings` keeps them as sets)."""
    found: Counter = Counter()
    if not spec.labelled:
        return found
    kept = set(spec.kept_sources)
    for name in dict.fromkeys([*(f for c in spec.labelled for f in c.against), *spec.kept_sources]):
        if name not in batch.schema.names:  # a column the pipeline did not read
            continue
        column = batch.column(name)
        for check in spec.labelled:
            fact = "labelkept" if name in kept else "label" if name in check.against else None
            for i in _labels_in(column, check.labels) if fact else ():
                found[f"{fact}.{check.output}.{i}"] = 1
    return found


def _labels_in(column: pa.Array | pa.ChunkedArray, labels: tuple[str, ...]) -> list[int]:
    """Positions of the `labels` that are the text of some value of `column` (a lookup in the small
    label set; a column that is not text is looked up in its own type, with the labels that are the
    text of a value of that type, so it is never cast)."""
    if pa.types.is_dictionary(column.type):
        column = as_text(column)
    value_set, positions = _labels_as(labels, column.type)
    if not len(value_set):
        return []
    found = pc.index_in(column, value_set=value_set)
    if found.null_count == len(found):
        return []
    return [positions[i] for i in pc.unique(found.drop_null()).to_pylist()]


@lru_cache(maxsize=256)
def _labels_as(labels: tuple[str, ...], kind: pa.DataType) -> tuple[pa.Array, tuple[int, ...]]:
    """The labels that are the text (`as_text`) of a value of type `kind`, as such values, and their
    positions among `labels` (`2024-01-31` is a date's; `18-24` no number's or date's)."""
    values, positions = [], []
    for i, label in enumerate(labels):
        try:
            value = pa.array([label], pa.string()).cast(kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            continue
        text = as_text(value)
        if text is not None and text.to_pylist() == [label]:
            values.append(value)
            positions.append(i)
    return (pa.concat_arrays(values) if values else pa.array([], kind)), tuple(positions)


def _prefilter(entities: tuple[str, ...]) -> str:
    return "|".join(f"(?:{PREFILTERS[e]})" for e in entities)


def output_counts(batch: Columns, spec: VerifySpec) -> Counter:
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
        labelled = check in spec.labelled
        distinct = pc.value_counts(texts.drop_null()) if labelled or check.entities else None
        if labelled:
            for i, n in _label_counts(distinct, check.labels):
                found[f"labelout.{check.output}.{i}"] += n
        if check.rule.raw == "encoded" and check.rule.format:
            bad = malformed(texts, check.rule.format)
            if bad:
                found[f"raw.{check.output}"] += bad
        if check.entities:
            for entity, n in _pattern_counts(distinct, check.entities, check.regions).items():
                found[f"pattern.{check.output}.{entity}"] += n
    return found


HEAD_CHARS = 48  # a format's head and alphabet are checked on this many first characters (a subject key id is 32)


def _format_patterns(shape: TextFormat) -> tuple[str, ...]:
    """RE2 patterns a cell in `shape` matches, all of them (and any other cell misses one): its
    alphabet on the first `HEAD_CHARS` characters and its length in one, its head in another."""
    chars = "[" + "".join("\\" + ch if not ch.isalnum() else ch for ch in shape.alphabet) + "]"
    if shape.length is None:
        alphabet = f"^(?:{chars}{{{HEAD_CHARS}}}|{chars}*$)"
    elif shape.length <= HEAD_CHARS:
        alphabet = f"^{chars}{{{shape.length}}}$"
    else:  # the first HEAD_CHARS in the alphabet, then any characters up to the length
        alphabet = f"(?s)^{chars}{{{HEAD_CHARS}}}.{{{shape.length - HEAD_CHARS}}}$"
    return (alphabet,) if shape.head is None else (alphabet, f"^(?:{shape.head})")


def _only_alphabet(texts: pa.Array, shape: TextFormat) -> bool:
    """Whether every byte of every cell of `texts` is a character of `shape`'s (ASCII) alphabet and,
    if its length is fixed, every cell has that many bytes: then every cell is in the format but for
    its head (one pass over the bytes, no call per cell)."""
    starts, lengths, data = string_buffers(texts)
    if shape.length is not None:
        valid = lengths == shape.length
        if texts.null_count:
            valid |= ~texts.is_valid().to_numpy(zero_copy_only=False)
        if not valid.all():
            return False
    region = data[starts[0] : starts[-1] + lengths[-1]].tobytes()
    return not region.translate(None, shape.alphabet.encode("ascii"))


def malformed(texts: pa.Array | pa.ChunkedArray, shape: TextFormat) -> int:
    """How many non-null cells of `texts` are not in `shape`: another length, a start its head does not
    match, or a character outside its alphabet among the first `HEAD_CHARS`.

    When every byte is in an ASCII alphabet (and the lengths are right), only the head is matched
    (RE2, anchored); otherwise each cell is matched against the whole format."""
    cells = len(texts) - texts.null_count
    if not cells:
        return 0
    chunks = texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]
    patterns = _format_patterns(shape)
    if shape.alphabet.isascii() and all(_only_alphabet(c, shape) for c in chunks if len(c)):
        patterns = patterns[1:]  # the alphabet and length hold: the head, if any, is left
    good = None
    for pattern in patterns:
        matched = pc.match_substring_regex(texts, pattern)
        good = matched if good is None else pc.and_(good, matched)
    return 0 if good is None else cells - int(pc.sum(good).as_py() or 0)


def _label_counts(counts: pa.StructArray, labels: tuple[str, ...]) -> Iterator[tuple[int, int]]:
    """(label position, cells equal to it) for the labels among a column's distinct cells (`counts`:
    its `value_counts`, few distinct values)."""
    positions = pc.index_in(counts.field("values"), value_set=pa.array(list(labels), pa.string())).to_pylist()
    for position, n in zip(positions, counts.field("counts").to_pylist()):
        if position is not None:
            yield position, n


def _pattern_counts(distinct: pa.StructArray, entities: tuple[str, ...], regions: tuple[str, ...]) -> Counter:
    """Spans of `entities` found in a column's cells, each distinct text read once (`distinct`: the
    `value_counts` of its non-null cells)."""
    if not len(distinct):
        return Counter()
    values = distinct.field("values")
    hit = pc.fill_null(pc.match_substring_regex(values, _prefilter(entities)), False)
    rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
    if not len(rows):
        return Counter()
    times = distinct.field("counts").to_numpy()
    found: Counter = Counter()
    for row, text in zip(rows.tolist(), values.take(pa.array(rows)).to_pylist()):
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
