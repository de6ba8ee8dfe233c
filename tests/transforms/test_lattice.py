"""The lattice search against brute force: every node of the lattice evaluated the plain way.

The brute force here works on records (dicts and Counters), not on the class table, and applies
the documented rules: loss = mean of level / (levels - 1), ties to fewer suppressed records,
then to the smaller level tuple; k, l, max_suppression and fair.
"""

import random
from collections import Counter

import pytest
from helpers import brute_force

from veil.transforms.lattice import ClassTable, Rules, search, search_classes

CASES = 60


def random_data(seed: int):
    """(records, hierarchies): records are dicts with q0.., s (sensitive), p (protected); each
    hierarchy is a list of level functions over a quasi-identifier's raw value."""
    rng = random.Random(seed)
    qis = rng.randint(2, 3)
    hierarchies = []
    for _ in range(qis):
        levels = rng.randint(1, 4)
        bases = [1] + [rng.choice([2, 3]) ** j for j in range(1, levels)]
        funcs = [lambda v, b=b: v // b for b in bases]
        if rng.random() < 0.2 and levels > 2:  # a level that does not nest in the one before
            funcs[1] = lambda v: (v + 1) // 3
        if levels > 1 and rng.random() < 0.6:
            funcs[-1] = lambda v: None  # suppress
        hierarchies.append(funcs)
    n = rng.randint(30, 200)
    skew = [rng.random() for _ in range(qis)]
    records = [
        {
            **{f"q{i}": int(rng.paretovariate(1 + 3 * skew[i])) % 12 for i in range(qis)},
            "s": rng.choice("abcd"[: rng.randint(1, 4)]),
            "p": rng.choices(["x", "y", "z"], weights=[8, 3, 1])[0],
        }
        for _ in range(n)
    ]
    return records, hierarchies


def paths_of(record, hierarchies):
    return tuple(tuple(f(record[f"q{i}"]) for f in levels) for i, levels in enumerate(hierarchies))


def finest_classes(records, hierarchies):
    classes: dict[tuple, list] = {}
    for record in records:
        entry = classes.setdefault(paths_of(record, hierarchies), [0, set(), Counter()])
        entry[0] += 1
        entry[1].add(record["s"])
        entry[2][("p", record["p"])] += 1
    return [(paths, n, (tuple(seen),), groups) for paths, (n, seen, groups) in classes.items()]


@pytest.mark.parametrize(
    "k, l, max_suppression, fair",
    [(2, None, 0.0, False), (3, None, 0.05, False), (5, None, 0.1, False), (3, 2, 0.05, False), (3, None, 0.2, True)],
)
def test_the_search_finds_the_brute_force_optimum(k, l, max_suppression, fair):  # noqa: E741
    rules = Rules(k=k, l=l, max_suppression=max_suppression, fair=fair)
    evaluated = lattice = found = 0
    for seed in range(CASES):
        records, hierarchies = random_data(seed)
        counts = [len(levels) for levels in hierarchies]
        _, result = search_classes(finest_classes(records, hierarchies), counts, rules, sensitive=1)
        expected = brute_force(
            records,
            lambda r, node, h=hierarchies: tuple(paths_of(r, h)[i][level] for i, level in enumerate(node)),
            counts,
            Rules(k, l, max_suppression, fair),
            sensitive="s",
            protected=["p"],
        )
        got = None if result.chosen is None else (result.chosen.node, result.chosen.suppressed)
        assert got == expected, f"seed {seed}"
        evaluated, lattice, found = evaluated + result.evaluated, lattice + result.lattice_size, found + bool(got)
        assert result.evaluated <= result.lattice_size
    assert found >= CASES // 3  # the cases exercise real choices, not only "none qualifies"
    assert evaluated < lattice  # monotonicity saved evaluations


def test_the_finest_node_counts_what_plain_suppression_drops():
    records, hierarchies = random_data(7)
    _, result = search_classes(
        finest_classes(records, hierarchies), [len(h) for h in hierarchies], Rules(k=3, l=2), sensitive=1
    )
    classes: dict[tuple, list] = {}
    for record in records:
        classes.setdefault(tuple(record[f"q{i}"] for i in range(len(hierarchies))), []).append(record["s"])
    small = sum(len(v) for v in classes.values() if len(v) < 3)
    undiverse = sum(len(v) for v in classes.values() if len(v) >= 3 and len(set(v)) < 2)
    assert result.finest.node == (0,) * len(hierarchies)
    assert result.finest.by_reason == {"k_anonymity": small, "l_diversity": undiverse}


def test_ties_go_to_fewer_suppressed_then_to_coarsening_later_quasi_identifiers():
    # two QIs of 3 levels each; (1, 0) and (0, 1) have the same loss
    def path(a, b):
        return ((a, a // 2, None), (b, b // 2, None))

    same = [(path(a, b), 1, (), {}) for a in (0, 1) for b in (0, 1)]  # either merge makes pairs: nothing suppressed
    _, result = search_classes(same, [3, 3], Rules(k=2))
    assert result.chosen.node == (0, 1)
    fewer = [(path(0, 0), 2, (), {}), (path(0, 1), 1, (), {}), (path(2, 0), 1, (), {}), (path(4, 0), 1, (), {})]
    _, result = search_classes(fewer, [3, 3], Rules(k=2, max_suppression=0.5))
    # (0, 1) merges b 0|1 (suppresses 2: a=2, a=4); (1, 0) merges a 0|1 only (suppresses 3)
    assert result.chosen.node == (0, 1) and result.chosen.suppressed == 2


def test_no_qualifying_node_reports_the_coarsest():
    classes = [(((1, None),), 1, (), {}), (((2, None),), 1, (), {})]  # two records, k=3: even one class is small
    table, result = search_classes(classes, [2], Rules(k=3))
    assert result.chosen is None
    assert result.coarsest.node == (1,) and result.coarsest.suppressed == 2 and result.coarsest.share == 1.0
    assert search(table, Rules(k=2)).chosen.node == (1,)


def test_a_table_of_no_records_chooses_the_finest_node():
    table = ClassTable.build([], [3, 2])
    assert search(table, Rules(k=5)).chosen.node == (0, 0)
