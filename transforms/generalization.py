"""`on_violation: generalize` without Beam: finest classes of a batch, the search over them for a
policy, and what the chosen node does to a batch.

The sanitized batches carry each quasi-identifier at level 0 (its own column) and at every
coarser level but `suppress` (hidden columns, `veil.transforms.plan.level_column`). A finest
class is keyed by the values at every level of every quasi-identifier (its path); the search
(`veil.transforms.lattice`) runs on their counts; the outcome names the chosen level per
quasi-identifier and the classes still to suppress at that node (keys of output values, which
the purpose sees anyway). Nothing here logs; messages carry counts and level settings only.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from veil.errors import ConfigError, DataRefusedError
from veil.transforms.anonymity import (
    K_ANONYMITY,
    L_DIVERSITY,
    decode,
    describe_generalization,
    encode,
    group_classes,
    hashable,
    row_keys,
    shown,
)
from veil.transforms.lattice import ClassTable, NodeStats, Rules, SearchResult, search
from veil.transforms.plan import level_column
from veil.transforms.policy import Policy

_REASONS = {1: K_ANONYMITY, 2: L_DIVERSITY}


def path_columns(policy: Policy) -> list[tuple[str, list[str | None]]]:
    """Per quasi-identifier, the batch column of each level (None: `suppress`), finest first."""
    out = []
    for name in policy.k_anonymity.quasi_identifiers:
        levels = policy.levels_of(name)
        columns = [name] + [None if params is None else level_column(name, i) for i, params in enumerate(levels)][1:]
        out.append((name, columns))
    return out


def level_settings(policy: Policy) -> dict[str, list[str]]:
    """Per quasi-identifier, each level as a policy writes it (`prefix: 2`, `suppress`)."""
    return {
        name: [
            describe_generalization(params) if params is not None else "suppress" for params in policy.levels_of(name)
        ]
        for name in policy.k_anonymity.quasi_identifiers
    }


def _value_text(value: Any) -> str:
    return encode([value])


def batch_classes(batch: pa.RecordBatch, policy: Policy) -> Iterable[tuple[str, tuple]]:
    """(class key, (records, distinct sensitive values capped at l, {(protected field, value text): records}))
    per finest class of `batch`."""
    spec, l_spec = policy.k_anonymity, policy.l_diversity
    sensitive, cap = (l_spec.sensitive, l_spec.l) if l_spec else ((), 0)
    columns = [c for _, levels in path_columns(policy) for c in levels if c is not None]
    missing = [c for c in columns if c not in batch.schema.names]
    if missing:
        raise ConfigError(
            f"policy '{policy.purpose}': on_violation: generalize needs the batches SanitizeBatches(policy, "
            f"levels=True) makes (they carry every level of the quasi-identifiers); these lack {', '.join(missing)}"
        )
    groups: dict[tuple, Counter] = {}
    for name in spec.protected:
        for values, n, _ in group_classes(batch, [*columns, name], values=False):
            groups.setdefault(hashable(list(values[:-1])), Counter())[(name, _value_text(values[-1]))] += n
    for values, count, distinct in group_classes(batch, columns, sensitive, values=True):
        capped = tuple(tuple(hashable(v) for v in seen[:cap]) for seen in distinct)
        yield encode(values), (count, capped, dict(groups.get(hashable(list(values)), {})))


def merge_class(entries: Iterable[tuple], cap: int, sensitive: int) -> tuple:
    """One finest class's figures from its per-batch entries (see `batch_classes`)."""
    count, distinct, groups = 0, [set() for _ in range(sensitive)], Counter()
    for n, capped, group_counts in entries:
        count += n
        for seen, values in zip(distinct, capped):
            for value in values:
                if len(seen) < cap:
                    seen.add(value)
        groups.update(group_counts)
    return count, tuple(tuple(sorted(seen, key=repr)) for seen in distinct), dict(groups)


def _paths(key: str, layout: Sequence[tuple[str, list[str | None]]]) -> tuple[tuple, ...]:
    """A finest class key -> per quasi-identifier its value at every level (None at `suppress`)."""
    flat = iter(decode(key))
    return tuple(tuple(None if column is None else next(flat) for column in levels) for _, levels in layout)


def rules_of(policy: Policy) -> Rules:
    """The search's rules from the policy."""
    spec, l_spec = policy.k_anonymity, policy.l_diversity
    return Rules(k=spec.k, l=l_spec.l if l_spec else None, max_suppression=spec.allowed_suppression, fair=spec.fair)


def _node_entry(stats: NodeStats, names: Sequence[str], settings: dict[str, list[str]], rules: Rules) -> dict:
    why = []
    if not stats.meets_rules:
        why.append(f"suppresses {stats.share:.1%}, more than max_suppression")
    elif rules.fair and stats.unfair:
        why.append("unfair to a protected group")
    return {
        "levels": {name: {"level": level, "setting": settings[name][level]} for name, level in zip(names, stats.node)},
        "loss": float(stats.loss),
        "classes": stats.classes,
        "suppressed": stats.suppressed,
        "share_suppressed": stats.share,
        "qualifies": stats.qualifies(rules),
        "why_not": "; ".join(why) or None,
    }


def refusal(policy: Policy, result: SearchResult, settings: dict[str, list[str]]) -> str:
    """The one-line error when no node qualifies: the coarsest node's suppression."""
    spec, rules = policy.k_anonymity, rules_of(policy)
    names = spec.quasi_identifiers
    coarsest = result.coarsest
    levels = ", ".join(f"{name} {settings[name][level]}" for name, level in zip(names, coarsest.node))
    rule = f"k={spec.k}" + (f" and l={rules.l}" if rules.l else "")
    fair = " and fair to every protected group" if rules.fair else ""
    return (
        f"policy '{policy.purpose}': no generalization of {', '.join(names)} meets {rule} with at most "
        f"{rules.max_suppression:.1%} of records suppressed{fair}; even the coarsest ({levels}) suppresses "
        f"{coarsest.suppressed} of {coarsest.records} records ({coarsest.share:.1%}): raise max_suppression, "
        "add coarser levels or lower k"
    )


def outcome(policy: Policy, classes: Iterable[tuple[str, tuple]]) -> dict[str, Any]:
    """Search the lattice over the finest classes (key, merged figures); the chosen node, the
    class keys still to suppress there, and the summary for the manifest.

    Raises:
        DataRefusedError: no node qualifies (the message names the coarsest node's suppression).
    """
    spec = policy.k_anonymity
    layout, settings, rules = path_columns(policy), level_settings(policy), rules_of(policy)
    names = list(spec.quasi_identifiers)
    classes = sorted(classes)  # the same table whatever order the workers sent them in
    table = ClassTable.build(
        ((_paths(key, layout), n, distinct, groups) for key, (n, distinct, groups) in classes),
        [len(levels) for _, levels in layout],
        len(policy.l_diversity.sensitive) if policy.l_diversity else 0,
    )
    result = search(table, rules)
    if result.chosen is None:
        raise DataRefusedError(refusal(policy, result, settings))
    chosen = result.chosen
    inverse, reason = table.violations(chosen.node, rules)
    suppress: dict[str, str] = {}
    violations: dict[str, list[int]] = {}
    counted: set[int] = set()
    for index, (key, (n, _, _)) in enumerate(classes):
        if not reason[index]:
            continue
        paths = _paths(key, layout)
        coarse = encode([path[level] for path, level in zip(paths, chosen.node)])
        why = _REASONS[int(reason[index])]
        suppress[coarse] = why
        entry = violations.setdefault(why, [0, 0])
        entry[1] += n
        if int(inverse[index]) not in counted:
            counted.add(int(inverse[index]))
            entry[0] += 1
    finest_sizes = Counter(int(size) for size in np.bincount(table.project(result.finest.node), weights=table.records))
    groups = [
        [field, shown(decode(text)[0]), int(before), lost]
        for (field, text), before, lost in zip(table.groups, table.group_before, chosen.group_suppressed)
    ]
    summary = {
        "sizes": sorted([size, n] for size, n in finest_sizes.items()),
        "violations": {r: {"classes": c, "records": n} for r, (c, n) in sorted(violations.items())},
        "groups": sorted(groups, key=lambda g: (g[0], str(g[1]))),
        "hints": {},
        "generalization": {
            "lattice_size": result.lattice_size,
            "nodes_evaluated": result.evaluated,
            "chosen": _node_entry(chosen, names, settings, rules),
            "finest": _node_entry(result.finest, names, settings, rules),
            "runner_ups": [_node_entry(s, names, settings, rules) for s in result.runner_ups],
            "max_suppression": rules.max_suppression,
            "fair": rules.fair,
        },
    }
    return {"levels": list(chosen.node), "suppress": suppress, "summary": summary}


def apply_node(batch: pa.RecordBatch, policy: Policy, chosen: dict[str, Any]) -> tuple[pa.RecordBatch, Counter]:
    """A sanitized batch at the chosen node: each quasi-identifier at its chosen level, hidden
    level columns gone, records of the classes still violating dropped; and the counts."""
    layout = path_columns(policy)
    arrays, names = [], []
    levels = dict(zip((name for name, _ in layout), chosen["levels"]))
    columns = dict(layout)
    hidden = {c for _, cs in layout for c in cs[1:] if c is not None}
    for field in batch.schema:
        if field.name in hidden:
            continue
        array = batch.column(field.name)
        if field.name in levels and levels[field.name]:
            source = columns[field.name][levels[field.name]]
            array = pa.nulls(batch.num_rows, field.type) if source is None else batch.column(source)
        arrays.append(array)
        names.append(field.name)
    out = pa.RecordBatch.from_arrays(arrays, names=names)
    counts: Counter = Counter()
    suppress = chosen["suppress"]
    if suppress and out.num_rows:
        keys = row_keys(out, [name for name, _ in layout])
        reasons = [suppress.get(key) for key in keys]
        if any(reasons):
            counts.update(f"dropped.{r}" for r in reasons if r)
            counts["written"] = -sum(1 for r in reasons if r)
            out = out.filter(pa.array([r is None for r in reasons], pa.bool_()))
    return out, counts
