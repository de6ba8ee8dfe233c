"""The generalization lattice and its search, on class counts only (no Beam, no records).

Each quasi-identifier has levels, finest first (level 0 is the field's own action; the last
may be `suppress`). A *node* picks one level per quasi-identifier; the nodes form a lattice
ordered by "every level at least as coarse". The data are counted once, at the finest
level: a *finest class* holds the records sharing, for every quasi-identifier, the values at
every level (its *path*), so a node's classes are unions of finest classes and their sizes,
distinct sensitive values and protected group counts are sums (unions) of the finest
classes' figures. No record is read twice.

A node *meets the rules* when, after suppressing the records of its classes smaller than k
(or, with l-diversity, with fewer than l distinct values of a sensitive field), at most
`max_suppression` of the records are suppressed. That is monotone (a coarser node's classes
are unions of finer ones, so it suppresses a subset of the records), which lets the search
tag whole sub-lattices from one evaluation, as ARX's Flash and OLA do. With `fair`, a node
also needs no protected group to lose more than `FAIRNESS_FACTOR` times the overall
suppression rate; that is not monotone, so it is checked on each candidate.

The chosen node minimises the loss, Sweeney's precision metric: the mean over
quasi-identifiers of level / (levels - 1) (a quasi-identifier with one level adds 0); ties
go to fewer suppressed records, then to the smaller level tuple (later quasi-identifiers are
coarsened first). Losses are exact fractions, so ties are exact.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import product
from typing import Any

import numpy as np

from veil.transforms.anonymity import FAIRNESS_FACTOR, K_ANONYMITY, L_DIVERSITY

Node = tuple[int, ...]
# One finest class: (per quasi-identifier its values at every level, records,
# per sensitive field its distinct values (any min(l, n) of them), {(protected field, value): records}).
FinestClass = tuple[tuple[tuple, ...], int, tuple[tuple, ...], Mapping[tuple[str, Any], int]]
RUNNER_UPS = 5
_DENSE = 2**62  # re-number combined class codes before they could overflow int64


def loss(node: Node, level_counts: Sequence[int]) -> Fraction:
    """Sweeney's precision loss of `node`: mean over quasi-identifiers of level / (levels - 1)."""
    terms = [Fraction(level, count - 1) if count > 1 else Fraction(0) for level, count in zip(node, level_counts)]
    return sum(terms, Fraction(0)) / len(terms)


def order_key(node: Node, level_counts: Sequence[int], suppressed: int) -> tuple:
    """How candidates rank: loss, then suppressed records, then the level tuple."""
    return loss(node, level_counts), suppressed, node


@dataclass(frozen=True)
class Rules:
    """What a node must meet.

    Attributes:
        k: the smallest class allowed to stay.
        l: distinct values per sensitive field a class needs (None: no l-diversity).
        max_suppression: the largest share of records that may be suppressed.
        fair: whether no protected group may lose more than `factor` times the overall rate.
        factor: the fairness factor.
    """

    k: int
    l: int | None = None  # noqa: E741 - the rule's own name
    max_suppression: float = 0.0
    fair: bool = False
    factor: int = FAIRNESS_FACTOR


@dataclass(frozen=True)
class NodeStats:
    """One evaluated node.

    Attributes:
        node: its level per quasi-identifier.
        loss: its precision loss.
        records: records in the data.
        classes: its equivalence classes before suppression.
        suppressed: records in its violating classes.
        by_reason: suppressed records per reason (k_anonymity, l_diversity).
        group_suppressed: per protected group (in `ClassTable.groups` order) its records suppressed.
        meets_rules: k (and l) with at most `max_suppression` suppressed.
        unfair: indices of protected groups losing more than the factor times the overall rate.
    """

    node: Node
    loss: Fraction
    records: int
    classes: int
    suppressed: int
    by_reason: dict[str, int]
    group_suppressed: tuple[int, ...]
    meets_rules: bool
    unfair: tuple[int, ...]

    def qualifies(self, rules: Rules) -> bool:
        """Whether the search may choose this node."""
        return self.meets_rules and not (rules.fair and self.unfair)

    @property
    def share(self) -> float:
        """The share of records suppressed."""
        return self.suppressed / self.records if self.records else 0.0


@dataclass
class ClassTable:
    """The finest classes as arrays, ready for projecting onto any node.

    Attributes:
        level_counts: levels per quasi-identifier.
        records: records per finest class.
        path_codes: per quasi-identifier, the index of each class's path.
        level_codes: per quasi-identifier and level, the code of each path's value at that level.
        level_values: per quasi-identifier and level, the values by code.
        sensitive: per sensitive field, (class index, value code) of each distinct value.
        groups: the protected groups, (field, value) each.
        group_before: records per group.
        group_rows: (class index, group index, records) arrays.
    """

    level_counts: tuple[int, ...]
    records: np.ndarray
    path_codes: list[np.ndarray]
    level_codes: list[list[np.ndarray]]
    level_values: list[list[list[Any]]]
    sensitive: list[tuple[np.ndarray, np.ndarray, int]]
    groups: list[tuple[str, Any]]
    group_before: np.ndarray
    group_rows: tuple[np.ndarray, np.ndarray, np.ndarray]
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, classes: Iterable[FinestClass], level_counts: Sequence[int], sensitive: int = 0) -> "ClassTable":
        """The table of `classes` (see `FinestClass`); every path has one value per level."""
        level_counts = tuple(level_counts)
        paths: list[dict[tuple, int]] = [{} for _ in level_counts]
        path_codes: list[list[int]] = [[] for _ in level_counts]
        records: list[int] = []
        values: list[dict[Any, int]] = [{} for _ in range(sensitive)]
        pairs: list[tuple[list[int], list[int]]] = [([], []) for _ in range(sensitive)]
        groups: dict[tuple[str, Any], int] = {}
        group_rows: tuple[list[int], list[int], list[int]] = ([], [], [])
        for index, (class_paths, count, distinct, group_counts) in enumerate(classes):
            records.append(int(count))
            for known, codes, path in zip(paths, path_codes, class_paths):
                codes.append(known.setdefault(tuple(path), len(known)))
            for seen, (rows, codes), found in zip(values, pairs, distinct):
                for value in dict.fromkeys(found):
                    rows.append(index)
                    codes.append(seen.setdefault(value, len(seen)))
            for group, n in group_counts.items():
                group_rows[0].append(index)
                group_rows[1].append(groups.setdefault(group, len(groups)))
                group_rows[2].append(int(n))
        level_codes, level_values = [], []
        for known, count in zip(paths, level_counts):
            per_level_codes, per_level_values = [], []
            for level in range(count):
                seen: dict[Any, int] = {}
                codes = [seen.setdefault(path[level], len(seen)) for path in known]
                per_level_codes.append(np.array(codes, dtype=np.int64))
                per_level_values.append(list(seen))
            level_codes.append(per_level_codes)
            level_values.append(per_level_values)
        ints = np.int64
        rows = tuple(np.array(column, dtype=ints) for column in group_rows)
        return cls(
            level_counts=level_counts,
            records=np.array(records, dtype=ints),
            path_codes=[np.array(codes, dtype=ints) for codes in path_codes],
            level_codes=level_codes,
            level_values=level_values,
            sensitive=[
                (np.array(r, dtype=ints), np.array(c, dtype=ints), len(seen)) for (r, c), seen in zip(pairs, values)
            ],
            groups=list(groups),
            group_before=np.bincount(rows[1], weights=rows[2], minlength=len(groups)).astype(ints),
            group_rows=rows,
        )

    @property
    def total(self) -> int:
        """Records in the data."""
        return int(self.records.sum())

    def lattice(self) -> list[Node]:
        """Every node, finest first (by height, then level tuple)."""
        return sorted(product(*(range(count) for count in self.level_counts)), key=lambda n: (sum(n), n))

    def project(self, node: Node) -> np.ndarray:
        """The index of each finest class's class at `node` (0..classes-1)."""
        key = np.zeros(len(self.records), dtype=np.int64)
        span = 1
        for codes_by_level, values, paths, level in zip(self.level_codes, self.level_values, self.path_codes, node):
            radix = max(len(values[level]), 1)
            if span * radix >= _DENSE:
                _, key = np.unique(key, return_inverse=True)
                span = int(key.max()) + 1 if len(key) else 1
            key = key * radix + codes_by_level[level][paths]
            span *= radix
        return np.unique(key, return_inverse=True)[1].reshape(-1)

    def violations(self, node: Node, rules: Rules) -> tuple[np.ndarray, np.ndarray]:
        """(class index at `node` per finest class, reason code per finest class: 0 none, 1 k, 2 l)."""
        inverse = self.project(node)
        classes = int(inverse.max()) + 1 if len(inverse) else 0
        sizes = np.bincount(inverse, weights=self.records, minlength=classes)
        reason = np.where(sizes < rules.k, 1, 0)
        if rules.l is not None:
            diverse = np.ones(classes, dtype=bool)
            for rows, codes, distinct in self.sensitive:
                pairs = np.unique(inverse[rows] * max(distinct, 1) + codes)
                per_class = np.bincount(pairs // max(distinct, 1), minlength=classes)
                diverse &= per_class >= rules.l
            reason = np.where((reason == 0) & ~diverse, 2, reason)
        return inverse, reason[inverse]

    def evaluate(self, node: Node, rules: Rules) -> NodeStats:
        """The figures of `node` under `rules` (counted once per node and rules)."""
        cached = self._cache.get((rules, node))
        if cached is not None:
            return cached
        inverse, reason = self.violations(node, rules)
        total = self.total
        suppressed_k = int(self.records[reason == 1].sum())
        suppressed_l = int(self.records[reason == 2].sum())
        suppressed = suppressed_k + suppressed_l
        rows, group, n = self.group_rows
        lost = np.bincount(group, weights=n * (reason[rows] > 0), minlength=len(self.groups)).astype(np.int64)
        # a group is unfair when lost/before > factor * suppressed/total (compared in integers)
        unfair = tuple(
            int(g)
            for g in np.flatnonzero((suppressed > 0) & (lost * total > rules.factor * suppressed * self.group_before))
        )
        stats = NodeStats(
            node=node,
            loss=loss(node, self.level_counts),
            records=total,
            classes=int(inverse.max()) + 1 if len(inverse) else 0,
            suppressed=suppressed,
            by_reason={K_ANONYMITY: suppressed_k, L_DIVERSITY: suppressed_l},
            group_suppressed=tuple(int(x) for x in lost),
            meets_rules=suppressed <= rules.max_suppression * total,
            unfair=unfair,
        )
        self._cache[(rules, node)] = stats
        return stats


@dataclass(frozen=True)
class SearchResult:
    """What the search found.

    Attributes:
        chosen: the chosen node's figures.
        finest: the finest node's figures (what plain suppression would do).
        coarsest: the coarsest node's figures.
        lattice_size: nodes in the lattice.
        evaluated: nodes whose classes the search counted (the finest and coarsest nodes are
            counted for the report too, but only count here if the search needed them).
        runner_ups: the next best evaluated nodes (qualifying or not), best first.
    """

    chosen: NodeStats | None
    finest: NodeStats
    coarsest: NodeStats
    lattice_size: int
    evaluated: int
    runner_ups: tuple[NodeStats, ...]


def _successors(node: Node, level_counts: Sequence[int]) -> Iterable[Node]:
    for index, level in enumerate(node):
        if level + 1 < level_counts[index]:
            yield node[:index] + (level + 1,) + node[index + 1 :]


def _predecessors(node: Node) -> Iterable[Node]:
    for index, level in enumerate(node):
        if level > 0:
            yield node[:index] + (level - 1,) + node[index + 1 :]


def _tag(status: dict[Node, bool], node: Node, passed: bool, level_counts: Sequence[int]) -> None:
    """Tag `node` and, by monotonicity, every coarser node (passed) or every finer one (failed)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if status.get(current) is passed:
            continue
        status[current] = passed
        stack.extend(_successors(current, level_counts) if passed else _predecessors(current))


def _tag_rules(table: ClassTable, rules: Rules, nodes: Sequence[Node], evaluated: dict[Node, NodeStats]):
    """Whether each node meets the rules, evaluating few (Flash: binary search along upward paths)."""
    status: dict[Node, bool] = {}
    counts = table.level_counts
    for start in nodes:
        if start in status:
            continue
        path = [start]
        while True:  # climb through untagged nodes, coarsening the last quasi-identifier that can be
            step = next((n for n in reversed(list(_successors(path[-1], counts))) if n not in status), None)
            if step is None:
                break
            path.append(step)
        low, high = 0, len(path) - 1
        while low <= high:
            middle = (low + high) // 2
            node = path[middle]
            if node not in status:
                evaluated[node] = table.evaluate(node, rules)
            passed = status[node] if node in status else evaluated[node].meets_rules
            _tag(status, node, passed, counts)
            if passed:
                high = middle - 1
            else:
                low = middle + 1
    return status


def search(table: ClassTable, rules: Rules) -> SearchResult:
    """The node with the least loss that qualifies (None if none does); see the module docstring."""
    nodes = table.lattice()
    evaluated: dict[Node, NodeStats] = {}
    status = _tag_rules(table, rules, nodes, evaluated)
    counts = table.level_counts
    by_loss: dict[Fraction, list[Node]] = {}
    for node in nodes:
        if status[node]:
            by_loss.setdefault(loss(node, counts), []).append(node)
    chosen = None
    for value in sorted(by_loss):
        for node in by_loss[value]:
            evaluated[node] = table.evaluate(node, rules)
        qualifying = [evaluated[n] for n in by_loss[value] if evaluated[n].qualifies(rules)]
        if qualifying:
            chosen = min(qualifying, key=lambda s: order_key(s.node, counts, s.suppressed))
            break
    finest, coarsest = table.evaluate(nodes[0], rules), table.evaluate(nodes[-1], rules)  # for the report
    others = sorted(
        (s for s in evaluated.values() if chosen is None or s.node != chosen.node),
        key=lambda s: (not s.qualifies(rules), *order_key(s.node, counts, s.suppressed)),
    )
    return SearchResult(chosen, finest, coarsest, len(nodes), len(evaluated), tuple(others[:RUNNER_UPS]))


def search_classes(
    classes: Iterable[FinestClass], level_counts: Sequence[int], rules: Rules, sensitive: int = 0
) -> tuple[ClassTable, SearchResult]:
    """`search` over finest classes given as tuples (see `FinestClass`)."""
    table = ClassTable.build(classes, level_counts, sensitive)
    return table, search(table, rules)
