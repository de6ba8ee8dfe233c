"""`on_violation: generalize` in Beam and through `veil run`: the chosen node is the brute-force
optimum over the sanitized records, the output meets k (pycanon agrees), suppression stays within
`max_suppression`, and two worker processes give what one does.

Expectations are recomputed here from the sanitized rows (the view's fields plus the hidden level
columns) in plain Python, and checked with pycanon, an implementation independent of veil.
"""

import copy
import json
from collections import Counter

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from helpers import brute_force, cli, run_enforce
from pycanon import anonymity

from veil.errors import ConfigError
from veil.pipelines.synthetic import CUSTOMER_SCHEMA, synthetic_customers
from veil.transforms.engine import BoundPlan
from veil.transforms.lattice import Rules
from veil.transforms.plan import compile_plan, level_column
from veil.transforms.policy import parse_policy

ROWS, BATCH = 600, 37
QIS = ("age_band", "zip3", "gender")
POLICY = {
    "version": 1,
    "purpose": "cohorts",
    "fields": {
        "birth_date": {
            "action": "generalize",
            "age_bins": [0, 18, 25, 35, 50, 65],
            "at": "2026-01-01",
            "as": "age_band",
        },
        "zip": {"action": "generalize", "prefix": 3, "as": "zip3"},
        "gender": {"action": "keep"},
        "country": {"action": "keep"},
        "income": {"action": "generalize", "width": 10000, "as": "income_band"},
    },
    "k_anonymity": {
        "k": 3,
        "quasi_identifiers": {
            "age_band": {"levels": [{"age_bins": [0, 18, 25, 35, 50, 65]}, {"age_bins": [0, 25, 50, 65]}, "suppress"]},
            "zip3": {"levels": [{"prefix": 3}, {"prefix": 2}, {"prefix": 1}, "suppress"]},
            "gender": {"levels": ["keep", {"map": {"female": "female", "male": "male"}, "other": "other"}, "suppress"]},
        },
        "on_violation": "generalize",
        "max_suppression": 0.03,
        "protected": ["gender", "country"],
    },
}
LEVELS = (3, 4, 3)


def policy_of(**k_changes) -> dict:
    policy = copy.deepcopy(POLICY)
    policy["k_anonymity"].update(k_changes)
    return policy


def sanitized(policy) -> list:
    table = synthetic_customers(ROWS)
    bound = BoundPlan(compile_plan(policy, CUSTOMER_SCHEMA), None)
    return [bound.apply_batch(batch)[0] for batch in table.to_batches(max_chunksize=BATCH)]


def value_at(row: dict, name: str, level: int):
    if level == 0:
        return row[name]
    return None if level == dict(zip(QIS, LEVELS))[name] - 1 else row[level_column(name, level)]


def frame_of(rows: list[dict]) -> pd.DataFrame:
    """Rows as pycanon reads them: every value as text, null a value of its own."""
    return pd.DataFrame([{name: str(value) for name, value in row.items()} for row in rows])


def key_of(row: dict, node) -> tuple:
    return tuple(value_at(row, name, level) for name, level in zip(QIS, node))


def expected(policy_dict: dict, rows: list[dict]):
    spec, l_spec = policy_dict["k_anonymity"], policy_dict.get("l_diversity")
    rules = Rules(
        spec["k"],
        l_spec["l"] if l_spec else None,
        spec["max_suppression"],
        spec.get("fair", False),
    )
    return brute_force(
        rows,
        key_of,
        LEVELS,
        rules,
        sensitive=l_spec["sensitive"][0] if l_spec else None,
        protected=spec["protected"],
    )


def released_at(rows: list[dict], node, k: int, sensitive=None, l=None) -> list[dict]:  # noqa: E741
    """The view at `node`, minus the classes still violating, computed the plain way."""
    keys = [key_of(r, node) for r in rows]
    sizes = Counter(keys)
    distinct: dict = {}
    for key, row in zip(keys, rows):
        distinct.setdefault(key, set()).add(row[sensitive] if sensitive else None)
    out = []
    for key, row in zip(keys, rows):
        if sizes[key] < k or (l and len(distinct[key]) < l):
            continue
        view = {name: value for name, value in row.items() if not name.startswith("__veil_level")}
        view.update(dict(zip(QIS, key)))
        out.append(view)
    return out


def lines(rows) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


CASES = {
    "k": policy_of(),
    "l": {**policy_of(max_suppression=0.05), "l_diversity": {"l": 2, "sensitive": ["income_band"]}},
    "fair": policy_of(fair=True, max_suppression=0.05),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory):
    policy_dict = CASES[request.param]
    policy = parse_policy(yaml.safe_dump(policy_dict, sort_keys=False))
    batches = sanitized(policy)
    return policy_dict, policy, batches, run_enforce(policy, batches, tmp_path_factory.mktemp(request.param))


def test_the_chosen_node_is_the_brute_force_optimum(case):
    policy_dict, _, batches, (_, summary, _) = case
    rows = [row for batch in batches for row in batch.to_pylist()]
    node, suppressed = expected(policy_dict, rows)
    chosen = summary["generalization"]["chosen"]
    assert tuple(chosen["levels"][name]["level"] for name in QIS) == node
    assert chosen["suppressed"] == suppressed
    assert node != (0, 0, 0)  # the case makes the search generalize
    generalization = summary["generalization"]
    assert generalization["lattice_size"] == 36
    assert 0 < generalization["nodes_evaluated"] <= 36


def test_the_output_is_the_view_at_that_node_and_meets_k(case):
    policy_dict, policy, batches, (released, summary, counters) = case
    rows = [row for batch in batches for row in batch.to_pylist()]
    node, suppressed = expected(policy_dict, rows)
    l_spec = policy_dict.get("l_diversity")
    view = released_at(rows, node, 3, l_spec and l_spec["sensitive"][0], l_spec and l_spec["l"])
    assert released == lines(view)
    assert len(rows) - len(view) == suppressed <= policy_dict["k_anonymity"]["max_suppression"] * len(rows)
    assert -counters.get("written", 0) == suppressed
    frame = frame_of([json.loads(line) for line in released])
    assert anonymity.k_anonymity(frame, list(QIS)) >= 3
    sizes = Counter(tuple(json.loads(line)[q] for q in QIS) for line in released)
    assert anonymity.k_anonymity(frame, list(QIS)) == min(sizes.values())
    if l_spec:
        assert anonymity.l_diversity(frame, list(QIS), ["income_band"]) >= 2


def unfair_groups(summary: dict) -> list:
    """Protected groups that lost more than twice the overall suppression rate, recounted."""
    total = sum(before for name, _, before, _ in summary["groups"] if name == "gender")
    lost = sum(gone for name, _, _, gone in summary["groups"] if name == "gender")
    return [
        (name, value) for name, value, before, gone in summary["groups"] if lost and gone / before > 2 * lost / total
    ]


def test_fair_keeps_every_protected_group_within_twice_the_overall_rate(tmp_path):
    summaries = {}
    for fair in (False, True):
        policy = parse_policy(yaml.safe_dump(policy_of(fair=fair, max_suppression=0.05), sort_keys=False))
        summaries[fair] = run_enforce(policy, sanitized(policy), tmp_path / str(fair))[1]
    assert unfair_groups(summaries[False])  # without fair, the best node is unfair to some group
    assert not unfair_groups(summaries[True])
    assert summaries[True]["generalization"]["chosen"]["loss"] > summaries[False]["generalization"]["chosen"]["loss"]


def test_two_worker_processes_give_the_same_node_and_output(case, tmp_path):
    _, policy, batches, single = case
    multi = run_enforce(
        policy, batches, tmp_path, "--direct_num_workers", "2", "--direct_running_mode", "multi_processing"
    )
    assert multi[0] == single[0]
    assert multi[1] == single[1]
    assert multi[2] == single[2]


def test_no_qualifying_node_fails_naming_the_coarsest_nodes_suppression(tmp_path):
    policy_dict = policy_of(k=ROWS * 2)  # more than there are records: even one class is too small
    policy = parse_policy(yaml.safe_dump(policy_dict, sort_keys=False))
    with pytest.raises(Exception) as error:
        run_enforce(policy, sanitized(policy), tmp_path)
    message = str(error.value)
    assert "no generalization of age_band, zip3, gender meets k=1200" in message
    assert "the coarsest (age_band suppress, zip3 suppress, gender suppress) suppresses" in message
    assert "(100.0%)" in message


def test_batches_without_the_level_columns_are_refused(tmp_path):
    policy = parse_policy(yaml.safe_dump(policy_of(), sort_keys=False))
    visible = [batch.select(list(QIS) + ["country", "income_band"]) for batch in sanitized(policy)]
    with pytest.raises(Exception, match="needs the batches SanitizeBatches"):
        run_enforce(policy, visible, tmp_path)


def test_levels_must_make_the_fields_type():
    policy = policy_of()
    policy["k_anonymity"]["quasi_identifiers"]["zip3"] = {"levels": [{"prefix": 3}, {"width": 10}, "suppress"]}
    with pytest.raises(ConfigError, match="levels.1"):
        compile_plan(parse_policy(yaml.safe_dump(policy, sort_keys=False)), CUSTOMER_SCHEMA)


def test_veil_run_reports_what_pycanon_measures(tmp_path):
    pq.write_table(synthetic_customers(ROWS), tmp_path / "in.parquet")
    policy = {**policy_of(fair=True, max_suppression=0.05), "l_diversity": {"l": 2, "sensitive": ["income_band"]}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    result = cli("run", tmp_path / "p.yaml", "--input", tmp_path / "in.parquet", "--output", tmp_path / "out")
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "out" / "_report.json").read_text())
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    frame = frame_of(pq.read_table(tmp_path / "out").to_pylist())
    assert report["smallest_class"] == anonymity.k_anonymity(frame, list(QIS)) >= 3
    assert report["l_diversity"]["income_band"] == anonymity.l_diversity(frame, list(QIS), ["income_band"])
    generalization = manifest["k_anonymity"]["generalization"]
    assert generalization["chosen"]["suppressed"] == ROWS - len(frame)
    assert not any(name.startswith("__veil") for name in frame.columns)
