"""`EnforceKAnonymity`: k-anonymity and l-diversity over PCollections of Arrow batches.

The records of a class are never gathered: classes are *counted*, and the verdicts travel
back to the batches they came from.

1. **Index** (per batch): the class key of each row (canonical JSON of its quasi-identifier
   values, null a value of its own); per class in the batch one entry `(key, (records,
   distinct sensitive values capped at l, batch id))`. With `suppress`, the batch itself is
   keyed by its batch id (as Arrow IPC bytes).
2. **Classes** (GroupByKey on the class key, one element per batch the class occurs in):
   size and distinct values add up to the class's verdict. A violating class sends
   `(batch id, verdict)` to each batch it occurs in.
3. **Suppress** (GroupByKey on the batch id: one batch and its violating classes): the
   rows of violating classes are dropped, exactly those and no others.

A worker holds one batch (plus its violating class keys) or one class's size and at most l
distinct values per sensitive field (its batch ids are read a second time, never kept),
whatever the size of a class; the runner's GroupByKey streams the entries. A summary for
the manifest and the report (class sizes before suppression, violations, protected groups
before and suppressed, and what-if counts for coarser quasi-identifiers) comes out as one
small dict: N records have fewer than sqrt(2N) distinct class sizes. With `on_violation:
fail` a violation stops the job with a `DataRefusedError` giving counts, never values.

Counts go to Beam Metrics under `veil.<purpose>`: `dropped.k_anonymity`, `dropped.l_diversity`,
and `written` is decreased by the records suppressed (so after `SanitizeBatches`,
`read = written + sum(dropped)` still holds).
"""

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.pvalue import TaggedOutput

from veil.errors import ConfigError, DataRefusedError
from veil.transforms.anonymity import (
    K_ANONYMITY,
    L_DIVERSITY,
    Hint,
    add_capped,
    decode,
    encode,
    group_classes,
    hashable,
    hints_for,
    output_params,
    row_keys,
    shown,
    verdict,
    violation_message,
)
from veil.transforms.beam import ArrowBatchCoder
from veil.transforms.counting import COUNTS, CountingFn
from veil.transforms.generalization import apply_node, batch_classes, merge_class, outcome
from veil.transforms.policy import Policy

__all__ = ["EnforceKAnonymity", "KAnonymityResult"]

_BATCH, _K, _L = b"\x00", b"\x01", b"\x02"
_REASON_CODE = {K_ANONYMITY: _K, L_DIVERSITY: _L}
_CODE_REASON = {_K: K_ANONYMITY, _L: L_DIVERSITY}
_VERDICTS, _BATCHES, _GROUPS = "verdicts", "batches", "groups"


class KAnonymityResult(NamedTuple):
    """What `EnforceKAnonymity` gives back.

    Attributes:
        batches: the records that may be released (Arrow batches, the input's schema).
        summary: one dict (see `veil.transforms.anonymity.manifest_section` for its use):
            `sizes` [[class size, classes]] before suppression, `violations`
            {reason: {classes, records}}, `groups` [[field, value, before, suppressed]] for the
            protected fields, `hints` {what-if: records below k}.
        counts: count dicts of what it suppressed (`dropped.k_anonymity`, `dropped.l_diversity`,
            a negative `written`), as `SanitizeResult.counts`; none with `on_violation: fail`.
    """

    batches: beam.PCollection
    summary: beam.PCollection
    counts: beam.PCollection


def _value_text(value: Any) -> str:
    return encode([value])


def _group_counts(batch: pa.RecordBatch, protected: Sequence[str], rows: Sequence[int] | None = None) -> Counter:
    """(protected field, value as canonical JSON) -> records, over `rows` (default: all)."""
    if rows is not None:
        batch = batch.take(pa.array(rows, pa.int64()))
    counts: Counter = Counter()
    for name in protected:
        for (value,), n, _ in group_classes(batch, [name], values=False):
            counts[(name, _value_text(value))] += n
    return counts


class _IndexFn(beam.DoFn):
    """Batch -> per class entries; with `suppress`, the batch under its id; protected group counts."""

    def __init__(self, quasi_identifiers, sensitive, protected, l: int | None, suppress: bool):  # noqa: E741
        self._qis, self._sensitive, self._protected = tuple(quasi_identifiers), tuple(sensitive), tuple(protected)
        self._l, self._suppress = l, suppress

    def setup(self) -> None:
        self._coder = ArrowBatchCoder()

    def process(self, batch: pa.RecordBatch) -> Iterable[Any]:
        if not batch.num_rows:
            return
        batch_id = uuid.uuid4().hex  # any id works: a collision only merges two batches' verdict lists
        for values, count, distinct in group_classes(batch, self._qis, self._sensitive, values=True):
            # any min(l, n) of a class's n distinct values decide l-diversity as well as all n
            capped = tuple(tuple(hashable(v) for v in seen[: self._l]) for seen in distinct)
            yield encode(values), (count, capped, batch_id)
        if self._suppress:
            yield TaggedOutput(_BATCHES, (batch_id, _BATCH + self._coder.encode(batch)))
        if self._protected:
            yield TaggedOutput(_GROUPS, ("before", _group_counts(batch, self._protected)))


class _ClassFn(beam.DoFn):
    """(class key, its entries) -> (key, size, verdict); violating classes also tell their batches."""

    def __init__(self, k: int, l: int | None, sensitive: int, suppress: bool):  # noqa: E741
        self._k, self._l, self._sensitive, self._suppress = k, l, sensitive, suppress

    def process(self, element: tuple[str, Iterable]) -> Iterable[Any]:
        key, entries = element  # one entry per batch the class occurs in; re-iterable (GroupByKey)
        size, distinct = 0, [set() for _ in range(self._sensitive)]
        for count, capped, _ in entries:
            size += count
            for seen, values in zip(distinct, capped):
                for value in values:
                    add_capped(seen, value, self._l)
        reason = verdict(size, [len(seen) for seen in distinct], self._k, self._l)
        yield key, size, reason
        if reason is not None and self._suppress:  # a second pass: batch ids are never held
            message = _REASON_CODE[reason] + key.encode("utf-8")
            for _, _, batch_id in entries:
                yield TaggedOutput(_VERDICTS, (batch_id, message))


class _SuppressFn(CountingFn):
    """(batch id, [the batch, verdicts of its violating classes]) -> the batch without them."""

    def __init__(self, purpose: str, quasi_identifiers, protected):
        super().__init__(purpose)
        self._qis, self._protected = tuple(quasi_identifiers), tuple(protected)

    def setup(self) -> None:
        self._coder = ArrowBatchCoder()

    def process(self, element: tuple[str, Iterable[bytes]]) -> Iterable[Any]:
        _, payloads = element
        batches, violating = [], {}
        for payload in payloads:
            code, body = payload[:1], payload[1:]
            if code == _BATCH:
                batches.append(self._coder.decode(body))
            else:
                violating[body.decode("utf-8")] = _CODE_REASON[code]
        for batch in batches:
            if not violating:
                yield batch
                continue
            reasons = [violating.get(key) for key in row_keys(batch, self._qis)]
            dropped = [row for row, reason in enumerate(reasons) if reason is not None]
            if not dropped:
                yield batch
                continue
            by_reason = Counter(reason for reason in reasons if reason is not None)
            yield self._count(
                {
                    f"dropped.{K_ANONYMITY}": by_reason[K_ANONYMITY],
                    f"dropped.{L_DIVERSITY}": by_reason[L_DIVERSITY],
                    "written": -len(dropped),
                }
            )
            if self._protected:
                yield TaggedOutput(_GROUPS, ("lost", _group_counts(batch, self._protected, dropped)))
            if len(dropped) < batch.num_rows:
                yield batch.filter(pa.array([reason is None for reason in reasons], pa.bool_()))


def _what_ifs(element: tuple[str, int, Any], hints: Sequence[Hint]) -> Iterable[tuple[tuple[str, str], int]]:
    key, size, _ = element
    values = decode(key)
    for hint in hints:
        for variant in hint.variants():
            yield (variant, encode(hint.apply(variant, values))), size


class _SummaryFn(beam.CombineFn):
    """Tagged facts -> the summary dict (see `KAnonymityResult`).

    Inputs: ("size", (class size, verdict)), ("what_if", (variant, records below k)),
    ("before", Counter), ("lost", Counter) of protected groups.
    """

    def __init__(self, variants: Sequence[str]):
        self._variants = tuple(variants)

    def create_accumulator(self):
        return {"sizes": Counter(), "violations": {}, "what_if": Counter(), "before": Counter(), "lost": Counter()}

    def add_input(self, accumulator, element):
        tag, value = element
        if tag == "size":
            size, reason = value
            accumulator["sizes"][size] += 1
            if reason is not None:
                entry = accumulator["violations"].setdefault(reason, [0, 0])
                entry[0] += 1
                entry[1] += size
        elif tag == "what_if":
            accumulator["what_if"][value[0]] += value[1]
        else:
            accumulator[tag].update(value)
        return accumulator

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for accumulator in accumulators:
            for name in ("sizes", "what_if", "before", "lost"):
                merged[name].update(accumulator[name])
            for reason, (classes, records) in accumulator["violations"].items():
                entry = merged["violations"].setdefault(reason, [0, 0])
                entry[0] += classes
                entry[1] += records
        return merged

    def extract_output(self, accumulator):
        lost = accumulator["lost"]
        return {
            "sizes": sorted([size, n] for size, n in accumulator["sizes"].items()),
            "violations": {
                reason: {"classes": c, "records": r} for reason, (c, r) in sorted(accumulator["violations"].items())
            },
            "groups": [
                [name, shown(decode(text)[0]), n, lost.get((name, text), 0)]
                for (name, text), n in sorted(accumulator["before"].items())
            ],
            "hints": {variant: accumulator["what_if"].get(variant, 0) for variant in self._variants},
        }


class _LevelIndexFn(beam.DoFn):
    """Batch -> (finest class key, its figures in the batch), for `on_violation: generalize`."""

    def __init__(self, policy: Policy):
        self._policy = policy

    def process(self, batch: pa.RecordBatch) -> Iterable[tuple[str, tuple]]:
        if batch.num_rows:
            yield from batch_classes(batch, self._policy)


class _MergeClassFn(beam.CombineFn):
    """A finest class's per-batch figures -> its figures (records add up, distinct values capped at l)."""

    def __init__(self, cap: int, sensitive: int):
        self._cap, self._sensitive = cap, sensitive

    def create_accumulator(self):
        return 0, tuple(() for _ in range(self._sensitive)), {}

    def add_input(self, accumulator, element):
        return merge_class([accumulator, element], self._cap, self._sensitive)

    def merge_accumulators(self, accumulators):
        return merge_class(accumulators, self._cap, self._sensitive)

    def extract_output(self, accumulator):
        return accumulator


class _ApplyNodeFn(CountingFn):
    """Batch + the search's outcome -> the batch at the chosen node, minus the classes still violating."""

    def __init__(self, policy: Policy):
        super().__init__(policy.purpose)
        self._policy = policy

    def process(self, batch: pa.RecordBatch, chosen: dict) -> Iterable[pa.RecordBatch]:
        out, counts = apply_node(batch, self._policy, chosen)
        yield self._count(counts)
        if out.num_rows:
            yield out


def _generalize(batches, policy: Policy) -> KAnonymityResult:
    l_spec = policy.l_diversity
    cap, sensitive = (l_spec.l, len(l_spec.sensitive)) if l_spec else (0, 0)
    chosen = (
        batches
        | "IndexLevels" >> beam.ParDo(_LevelIndexFn(policy))
        | "FinestClasses" >> beam.CombinePerKey(_MergeClassFn(cap, sensitive))
        | "AllClasses" >> beam.combiners.ToList()
        | "Search" >> beam.Map(lambda classes, p: outcome(p, classes), policy).with_output_types(dict)
    )
    released = batches | "ApplyNode" >> beam.ParDo(
        _ApplyNodeFn(policy), beam.pvalue.AsSingleton(chosen)
    ).with_output_types(pa.RecordBatch).with_outputs(COUNTS, main="released")
    summary = chosen | "Summary" >> beam.Map(lambda found: found["summary"])
    return KAnonymityResult(released.released, summary, released[COUNTS])


def _refuse(summary: dict, policy: Policy) -> dict:
    message = violation_message(policy, summary["violations"])
    if message is not None:
        raise DataRefusedError(message)
    return summary


class EnforceKAnonymity(beam.PTransform):
    """Arrow batches -> the batches without the records of classes violating the policy's rules.

    Applies the policy's `k_anonymity` (and `l_diversity`) to batches with the policy's output
    fields (what `SanitizeBatches` makes). With `on_violation: suppress` every record of a
    class smaller than k (or, with l-diversity, with fewer than l distinct values of a
    sensitive field) is dropped; with `fail` the batches pass unchanged unless a class
    violates, and then the job fails with `DataRefusedError` (counts only).

    Returns a `KAnonymityResult` (`batches`, `summary`).

    Args:
        policy: a policy with `k_anonymity`.
        label: the transform label (default `EnforceKAnonymity[<purpose>]`).
    """

    def __init__(self, policy: Policy, *, label: str | None = None):
        super().__init__(label or f"EnforceKAnonymity[{policy.purpose}]")
        if policy.k_anonymity is None:
            raise ConfigError(f"policy '{policy.purpose}' has no k_anonymity rule to enforce")
        self._policy = policy

    def expand(self, batches):
        policy = self._policy
        spec, l_spec = policy.k_anonymity, policy.l_diversity
        l, sensitive = (l_spec.l, l_spec.sensitive) if l_spec else (None, ())  # noqa: E741
        if spec.on_violation == "generalize":
            return _generalize(batches, policy)
        suppress = spec.on_violation == "suppress"
        qis, protected = spec.quasi_identifiers, spec.protected

        index = batches | "Index" >> beam.ParDo(_IndexFn(qis, sensitive, protected, l, suppress)).with_outputs(
            _BATCHES, _GROUPS, main="classes"
        )
        classes = (
            index.classes
            | "GroupClasses" >> beam.GroupByKey()
            | "Classes" >> beam.ParDo(_ClassFn(spec.k, l, len(sensitive), suppress)).with_outputs(_VERDICTS, main="c")
        )
        facts = [index[_GROUPS], classes.c | "SizeAndVerdict" >> beam.Map(lambda c: ("size", (c[1], c[2])))]
        if suppress:
            joined = (
                (index[_BATCHES], classes[_VERDICTS])
                | "Meet" >> beam.Flatten()
                | "GroupBatches" >> beam.GroupByKey()
                | "Suppress"
                >> beam.ParDo(_SuppressFn(policy.purpose, qis, protected))
                .with_output_types(pa.RecordBatch)
                .with_outputs(_GROUPS, COUNTS, main="kept")
            )
            released, counts = joined.kept, joined[COUNTS]
            facts.append(joined[_GROUPS])
        else:
            released = batches
            counts = batches.pipeline | "NoCounts" >> beam.Create([]).with_output_types(dict)

        k, hints = spec.k, hints_for(qis, output_params(policy))
        facts.append(
            classes.c
            | "WhatIf" >> beam.FlatMap(_what_ifs, hints)
            | "WhatIfClasses" >> beam.CombinePerKey(sum)
            | "BelowK" >> beam.Map(lambda c: ("what_if", (c[0][0], c[1] if c[1] < k else 0)))
        )
        variants = [variant for hint in hints for variant in hint.variants()]
        summary = tuple(facts) | "Facts" >> beam.Flatten() | "Summary" >> beam.CombineGlobally(_SummaryFn(variants))
        if not suppress:
            summary = summary | "RefuseViolations" >> beam.Map(_refuse, policy)
        return KAnonymityResult(released, summary, counts)
