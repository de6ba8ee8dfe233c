"""Dataset-level privacy, without Beam: equivalence classes, k-anonymity and l-diversity verdicts,
risk figures, the fairness of suppression, and hints toward coarser generalizations.

An *equivalence class* is the set of records that share one tuple of quasi-identifier values
(null is a value of its own). A class smaller than k violates k-anonymity; a class with fewer
than l distinct values (null counts as one) of a sensitive field violates l-diversity. Both
are decided per class, so suppressing whole classes never changes the verdict of another.

Everything here works on plain Python values and counts; `veil.transforms.enforce` runs it in
Beam and `veil.pipelines.report` over a finished output. Class keys and reports hold output
values (which the purpose sees anyway); nothing here logs.
"""

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from veil.transforms.actions.base import ActionParams
from veil.transforms.actions.generalize import GeneralizeParams, bin_label, bucket, period_start
from veil.transforms.policy import Policy

K_ANONYMITY, L_DIVERSITY = "k_anonymity", "l_diversity"
FAIRNESS_FACTOR = 2  # a group losing more than this times the overall suppression rate is flagged
_NAN = "nan"
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # built once: json.dumps with options is slow


# ---------------------------------------------------------------- values and class keys


def canonical(value: Any) -> Any:
    """A JSON value that stands for `value`: equal values, equal forms; decodable by `restored`.

    Strings, integers, floats, booleans and null are themselves (a column has one type, so a
    string cannot be confused with a date in the same position); dates, timestamps, bytes and
    decimals are tagged objects; lists are lists.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return {"float": _NAN}
        return value + 0.0  # -0.0 and 0.0 are one value
    if isinstance(value, datetime):
        return {"timestamp": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    if isinstance(value, dict):
        return {"struct": [[str(k), canonical(v)] for k, v in value.items()]}
    return {"text": str(value)}


def restored(form: Any) -> Any:
    """The Python value of a `canonical` form (lists come back as tuples)."""
    if isinstance(form, list):
        return tuple(restored(item) for item in form)
    if not isinstance(form, dict):
        return form
    ((tag, payload),) = form.items()
    if tag == "date":
        return date.fromisoformat(payload)
    if tag == "timestamp":
        return datetime.fromisoformat(payload)
    if tag == "bytes":
        return bytes.fromhex(payload)
    if tag == "decimal":
        return Decimal(payload)
    if tag == "float":
        return float(payload)
    if tag == "struct":
        return tuple((k, restored(v)) for k, v in payload)
    return payload


def encode(values: Sequence[Any]) -> str:
    """The class key of a tuple of values: canonical JSON text (deterministic, so a Beam key)."""
    return _JSON.encode([canonical(v) for v in values])


def decode(key: str) -> tuple:
    """The values of a class key."""
    return tuple(restored(form) for form in json.loads(key))


def hashable(value: Any) -> Any:
    """`value` as a dict key that groups like Arrow does (lists as tuples, every NaN one value)."""
    if isinstance(value, float) and math.isnan(value):
        return _NAN
    if isinstance(value, list):
        return tuple(hashable(item) for item in value)
    if isinstance(value, dict):
        return tuple((k, hashable(v)) for k, v in value.items())
    return value


def shown(value: Any) -> Any:
    """A value as reports show it (JSON): dates as ISO text, other non-JSON values as text."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [shown(item) for item in value]
    return str(value)


def label(value: Any) -> str:
    """A group's value in one line of text."""
    return "null" if value is None else str(shown(value))


def row_keys(batch: pa.RecordBatch, quasi_identifiers: Sequence[str]) -> list[str]:
    """Each row's class key (`encode` of its quasi-identifier values, once per distinct tuple)."""
    columns = [batch.column(name).to_pylist() for name in quasi_identifiers]
    nested = any(pa.types.is_nested(batch.column(name).type) for name in quasi_identifiers)
    keys: dict[Any, str] = {}
    out = []
    for values in zip(*columns):
        seen = hashable(list(values)) if nested else values  # a NaN only misses the cache
        key = keys.get(seen)
        if key is None:
            key = keys[seen] = encode(values)
        out.append(key)
    return out


def group_classes(
    table: pa.Table | pa.RecordBatch, quasi_identifiers: Sequence[str], sensitive: Sequence[str] = (), *, values: bool
) -> list[tuple[tuple, int, list]]:
    """The equivalence classes of `table`: (quasi-identifier values, records, per sensitive field
    its distinct values (`values=True`) or their number), null a value of its own.

    Arrow's hash aggregation does the work; types it cannot group by (lists, say) fall back to Python.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    qis, sens = [f"q{i}" for i in range(len(quasi_identifiers))], [f"s{i}" for i in range(len(sensitive))]
    renamed = table.select([*quasi_identifiers, *sensitive]).rename_columns([*qis, *sens])
    how = "distinct" if values else "count_distinct"
    aggregates = [([], "count_all")] + [(name, how, pc.CountOptions(mode="all")) for name in sens]
    try:
        grouped = renamed.group_by(qis, use_threads=False).aggregate(aggregates)
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowInvalid):
        return _group_in_python(renamed, qis, sens, values)
    keys = [grouped.column(name).to_pylist() for name in qis]
    counts = grouped.column("count_all").to_pylist()
    distinct = [grouped.column(f"{name}_{how}").to_pylist() for name in sens]
    return [(tuple(key[i] for key in keys), counts[i], [d[i] for d in distinct]) for i in range(grouped.num_rows)]


def _group_in_python(table: pa.Table, qis: list[str], sens: list[str], values: bool) -> list[tuple[tuple, int, list]]:
    columns = [table.column(name).to_pylist() for name in qis]
    sensitive = [table.column(name).to_pylist() for name in sens]
    found: dict[tuple, list] = {}
    for row, key in enumerate(zip(*columns)):
        entry = found.get(hashable(list(key)))
        if entry is None:
            entry = found[hashable(list(key))] = [key, 0, [{} for _ in sens]]
        entry[1] += 1
        for seen, column in zip(entry[2], sensitive):
            seen.setdefault(hashable(column[row]), column[row])
    return [
        (key, n, [list(seen.values()) if values else len(seen) for seen in distinct])
        for key, n, distinct in found.values()
    ]


# ---------------------------------------------------------------- verdicts


def verdict(size: int, distinct: Sequence[int], k: int, l: int | None) -> str | None:  # noqa: E741
    """Why a class of `size` records with `distinct` sensitive values per field is suppressed, or None."""
    if size < k:
        return K_ANONYMITY
    if l is not None and any(count < l for count in distinct):
        return L_DIVERSITY
    return None


def add_capped(values: set, value: Any, cap: int) -> None:
    """Add `value` to `values` unless `cap` distinct values are already there (l-diversity needs no more)."""
    if len(values) < cap:
        values.add(value)


# ---------------------------------------------------------------- class-size figures


EXACT_BINS = 10


def size_bins(k: int | None, largest: int) -> list[tuple[int, int]]:
    """Histogram bins of class sizes: one per size up to max(k, 5) (at most `EXACT_BINS`), then
    doubling widths, with a bin starting at k so that no bin mixes sizes below and at k."""
    exact = min(max(k or 0, 5), EXACT_BINS)
    bins = [(size, size) for size in range(1, exact + 1)]
    low = exact + 1
    while low <= max(largest, k or 0):
        high = 2 * (low - 1)
        if k is not None and low < k <= high:
            bins.append((low, k - 1))
            low = k
        bins.append((low, high))
        low = high + 1
    return bins


def histogram(sizes: Mapping[int, int], bins: Sequence[tuple[int, int]]) -> list[dict[str, int]]:
    """Classes and records per bin, from `sizes` (class size -> number of classes)."""
    rows = [{"min": low, "max": high, "classes": 0, "records": 0} for low, high in bins]
    for size, classes in sizes.items():
        for row in rows:
            if row["min"] <= size <= row["max"]:
                row["classes"] += classes
                row["records"] += size * classes
                break
    return rows


def size_figures(sizes: Mapping[int, int], k: int | None) -> dict[str, Any]:
    """Risk figures of a dataset given its class sizes (size -> number of classes of that size).

    `prosecutor_risk_*` are over records: a record in a class of n has re-identification risk
    1/n for an attacker who knows its subject is in the data; the mean is classes / records.
    """
    sizes = {int(s): int(c) for s, c in sizes.items() if c}
    records = sum(s * c for s, c in sizes.items())
    classes = sum(sizes.values())
    smallest = min(sizes) if sizes else None
    below = {s: c for s, c in sizes.items() if k is not None and s < k}
    return {
        "records": records,
        "equivalence_classes": classes,
        "smallest_class": smallest,
        "largest_class": max(sizes) if sizes else None,
        "records_below_k": sum(s * c for s, c in below.items()) if k is not None else None,
        "classes_below_k": sum(below.values()) if k is not None else None,
        "unique_share": sizes.get(1, 0) / records if records else 0.0,
        "prosecutor_risk_max": 1 / smallest if smallest else 0.0,
        "prosecutor_risk_mean": classes / records if records else 0.0,
    }


def sizes_of(class_counts: Iterable[int]) -> Counter:
    """Class size -> number of classes, from each class's record count."""
    return Counter(int(n) for n in class_counts if n)


# ---------------------------------------------------------------- fairness of suppression


def fairness(groups: Iterable[Sequence[Any]], protected: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Per protected group, how suppression changed its share; and the warnings.

    Args:
        groups: (field, shown value, records before, records suppressed) per group.
        protected: the protected fields, in policy order.

    Returns:
        (entries, warnings). A group is flagged when the share of its records suppressed is
        more than `FAIRNESS_FACTOR` times the overall suppression rate (the rate of the whole
        output, every suppressed record counted once).
    """
    by_field: dict[str, list[tuple[Any, int, int]]] = {name: [] for name in protected}
    for name, value, before, suppressed in groups:
        by_field.setdefault(name, []).append((value, int(before), int(suppressed)))
    entries, warnings = [], []
    for name, rows in by_field.items():
        total = sum(before for _, before, _ in rows)
        lost = sum(suppressed for _, _, suppressed in rows)
        rate = lost / total if total else 0.0
        after_total = total - lost
        for value, before, suppressed in sorted(rows, key=lambda r: (-r[1], json.dumps(r[0], default=str))):
            share = suppressed / before if before else 0.0
            flagged = rate > 0 and share > FAIRNESS_FACTOR * rate
            entries.append(
                {
                    "field": name,
                    "value": value,
                    "records_before": before,
                    "records_suppressed": suppressed,
                    "records_after": before - suppressed,
                    "share_suppressed": share,
                    "share_before": before / total if total else 0.0,
                    "share_after": (before - suppressed) / after_total if after_total else 0.0,
                    "overall_suppressed": rate,
                    "warning": flagged,
                }
            )
            if flagged:
                warnings.append(
                    f"suppression is unfair to {name}={label(value)}: {share:.1%} of its {before} records "
                    f"suppressed, more than {FAIRNESS_FACTOR}x the overall {rate:.1%}"
                )
    return entries, warnings


# ---------------------------------------------------------------- coarser generalizations


@dataclass(frozen=True)
class Coarser:
    """One level coarser than a generalization, applied to that generalization's output values.

    Attributes:
        variant: the generalization (prefix, width, bins, date, round).
        arg: the coarser setting (prefix length, width, period, digits; for bins a label map).
        text: the coarser setting as a policy would write it (`prefix: 2`).
    """

    variant: str
    arg: Any
    text: str
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        try:
            if self.variant == "prefix":
                return str(value)[: self.arg]
            if self.variant == "width":
                return bucket(value, self.arg)
            if self.variant == "date":
                return period_start(value, self.arg)
            if self.variant == "round":
                return round(value, self.arg)
            return self.labels.get(value, value)
        except Exception:  # a value of an unexpected type stays as it is
            return value


_COARSER_PERIOD = {"week": "month", "month": "quarter", "quarter": "year"}


def describe_generalization(params: ActionParams) -> str:
    """A field's action in a few words: a generalization's setting as a policy writes it
    (`prefix: 3`, `age_bins: [0, 18, 65]`), else the action's name (`keep`, `generalize map`)."""
    if not isinstance(params, GeneralizeParams):
        return params.action
    variant = params.variant
    if variant == "map":
        return "generalize map"
    value = getattr(params, variant)
    return f"{variant}: {list(value) if isinstance(value, tuple) else value}"


def _bin_labels(edges: Sequence, coarse: Sequence) -> dict[str, str]:
    """Old bin label -> the label of the coarser bins that holds it."""
    step = 1 if all(isinstance(e, int) for e in edges) else min(b - a for a, b in zip(edges, edges[1:])) / 2
    representatives = [edges[0] - step, *edges]  # one value inside each bin, below-first included
    return {bin_label(v, tuple(edges)): bin_label(v, tuple(coarse)) for v in representatives}


def coarser_of(params: ActionParams) -> Coarser | None:
    """The generalization one level coarser than `params`, where there is an obvious one.

    prefix N -> N-1; width W -> 2W; bins/age_bins -> every other edge (adjacent bins merged);
    date week -> month -> quarter -> year; round N -> N-1. None for other actions, `map`,
    `date: year` and `prefix: 1`.
    """
    if not isinstance(params, GeneralizeParams):
        return None
    variant = params.variant
    if variant == "prefix" and params.prefix > 1:
        return Coarser("prefix", params.prefix - 1, f"prefix: {params.prefix - 1}")
    if variant == "width":
        return Coarser("width", params.width * 2, f"width: {params.width * 2}")
    if variant == "date" and params.date in _COARSER_PERIOD:
        period = _COARSER_PERIOD[params.date]
        return Coarser("date", period, f"date: {period}")
    if variant == "round":
        return Coarser("round", params.round - 1, f"round: {params.round - 1}")
    if variant in ("bins", "age_bins"):
        edges = params.bins or params.age_bins
        if len(edges) < 2:
            return None
        coarse = list(edges[::2])
        return Coarser("bins", None, f"{variant}: {coarse}", _bin_labels(edges, coarse))
    return None


@dataclass(frozen=True)
class Hint:
    """A what-if for one quasi-identifier: coarser by one level, or left out entirely.

    Attributes:
        field: the quasi-identifier.
        index: its position in the quasi-identifier tuple.
        current: its action as the policy writes it.
        coarser: one level coarser (None when the policy allows no obvious one).
    """

    field: str
    index: int
    current: str
    coarser: Coarser | None

    def variants(self) -> list[str]:
        """The what-ifs this hint measures: `coarser:<field>` (where possible) and `without:<field>`."""
        return ([f"coarser:{self.field}"] if self.coarser else []) + [f"without:{self.field}"]

    def apply(self, variant: str, values: tuple) -> tuple:
        """The class tuple `values` under `variant`."""
        if variant.startswith("coarser:"):
            return values[: self.index] + (self.coarser(values[self.index]),) + values[self.index + 1 :]
        return values[: self.index] + values[self.index + 1 :]


def output_params(policy: Policy) -> dict[str, ActionParams]:
    """Output field -> the params of the action that makes it."""
    return {output: policy.fields[name] for output, name in policy.outputs.items()}


def hints_for(quasi_identifiers: Sequence[str], params: Mapping[str, ActionParams | None]) -> list[Hint]:
    """One hint per quasi-identifier, from the actions that make them (None: unknown action)."""
    hints = []
    for index, name in enumerate(quasi_identifiers):
        spec = params.get(name)
        current = describe_generalization(spec) if spec is not None else "unknown"
        hints.append(Hint(name, index, current, coarser_of(spec) if spec is not None else None))
    return hints


def what_if_counts(classes: Iterable[tuple[tuple, int]], hints: Sequence[Hint], k: int) -> dict[str, int]:
    """Records that would be in classes smaller than k under each hint's variants."""
    grouped: dict[str, Counter] = {v: Counter() for hint in hints for v in hint.variants()}
    for values, count in classes:
        for hint in hints:
            for variant in hint.variants():
                grouped[variant][hashable(list(hint.apply(variant, tuple(values))))] += count
    return {variant: sum(n for n in counts.values() if n < k) for variant, counts in grouped.items()}


def hint_entries(hints: Sequence[Hint], below: Mapping[str, int], now: int, k: int) -> list[dict[str, Any]]:
    """Hint lines for the report: per quasi-identifier, how many records would be below k."""
    entries = []
    for hint in hints:
        without = below.get(f"without:{hint.field}", 0)
        entry: dict[str, Any] = {
            "field": hint.field,
            "generalization": hint.current,
            "coarser": hint.coarser.text if hint.coarser else None,
            "records_below_k": now,
            "records_below_k_coarser": below.get(f"coarser:{hint.field}", 0) if hint.coarser else None,
            "records_below_k_without": without,
        }
        if hint.coarser:
            coarser = entry["records_below_k_coarser"]
            entry["hint"] = (
                f"{hint.field}: with {hint.coarser.text} instead of {hint.current}, {coarser} records would be "
                f"in classes below k={k} instead of {now} ({now - coarser} fewer to suppress); "
                f"without {hint.field}: {without}"
            )
        else:
            entry["hint"] = (
                f"{hint.field} ({hint.current}): no coarser level to suggest; without {hint.field}, "
                f"{without} records would be in classes below k={k} instead of {now}"
            )
        entries.append(entry)
    return entries


# ---------------------------------------------------------------- the run's summary -> manifest


def manifest_section(policy: Policy, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's `k_anonymity` entry from the pipeline's summary (see `EnforceKAnonymity`).

    The summary holds the class sizes before suppression, the violations, the protected groups
    (before and suppressed) and the what-if counts; figures here are computed from those.
    """
    spec, l_spec = policy.k_anonymity, policy.l_diversity
    sizes = {int(size): int(classes) for size, classes in summary["sizes"]}
    before = size_figures(sizes, spec.k)
    violations = summary["violations"]
    suppressed = {reason: violations.get(reason, {}).get("records", 0) for reason in (K_ANONYMITY, L_DIVERSITY)}
    total = sum(suppressed.values()) if spec.on_violation != "fail" else 0
    entries, warnings = fairness(summary["groups"], spec.protected)
    generalization = summary.get("generalization")
    hints = [] if generalization else hints_for(spec.quasi_identifiers, output_params(policy))
    section = {
        "k": spec.k,
        "quasi_identifiers": list(spec.quasi_identifiers),
        "on_violation": spec.on_violation,
        "protected": list(spec.protected),
        "l_diversity": {"l": l_spec.l, "sensitive": list(l_spec.sensitive)} if l_spec else None,
        "before": {**before, "class_sizes": sorted([s, c] for s, c in sizes.items())},
        "violations": {
            reason: {"classes": violations.get(reason, {}).get("classes", 0), "records": suppressed[reason]}
            for reason in (K_ANONYMITY, L_DIVERSITY)
        },
        "suppressed": {"records": total, "share": total / before["records"] if before["records"] else 0.0},
        "fairness": entries,
        "warnings": warnings,
        "hints": hint_entries(hints, summary["hints"], before["records_below_k"], spec.k),
    }
    if generalization:  # `before` is the finest level: what `suppress` would have faced
        section["generalization"] = generalization
    return section


def violation_message(policy: Policy, violations: Mapping[str, Mapping[str, int]]) -> str | None:
    """The one-line error of `on_violation: fail`, with counts only; None when nothing violates."""
    spec, l_spec = policy.k_anonymity, policy.l_diversity
    parts = []
    k_viol = violations.get(K_ANONYMITY, {})
    if k_viol.get("classes"):
        parts.append(
            f"{k_viol['classes']} equivalence classes with {k_viol['records']} records are smaller than "
            f"k={spec.k} over {', '.join(spec.quasi_identifiers)}"
        )
    l_viol = violations.get(L_DIVERSITY, {})
    if l_viol.get("classes") and l_spec is not None:
        parts.append(
            f"{l_viol['classes']} classes with {l_viol['records']} records have fewer than l={l_spec.l} "
            f"distinct values of {', '.join(l_spec.sensitive)}"
        )
    if not parts:
        return None
    return (
        f"policy '{policy.purpose}': k-anonymity violated: {'; '.join(parts)}; the policy says "
        "on_violation: fail (use suppress to drop those records, or generalize the quasi-identifiers more)"
    )
