"""EnforceKAnonymity in Beam: exactly the records of violating classes go, counted, on skewed Faker data.

Every expectation is recomputed here in plain Python from the sanitized rows, independently of
`veil.transforms.anonymity`. Batches are small (37 rows) so classes span many batches.
"""

import json
from collections import Counter

import pyarrow as pa
import pytest
from helpers import run_enforce

from veil.errors import ConfigError
from veil.pipelines.synthetic import CUSTOMER_SCHEMA, synthetic_customers
from veil.transforms.enforce import EnforceKAnonymity
from veil.transforms.engine import BoundPlan
from veil.transforms.plan import compile_plan
from veil.transforms.policy import parse_policy

ROWS, BATCH = 600, 37
QIS = ("age_band", "zip3", "gender")
FIELDS = """
fields:
  birth_date: {action: generalize, age_bins: [0, 18, 25, 35, 50, 65], at: 2026-01-01, as: age_band}
  zip: {action: generalize, prefix: 3, as: zip3}
  gender: {action: keep}
  country: {action: keep}
  income: {action: generalize, width: 10000, as: income_band}
"""
K_POLICY = f"""
version: 1
purpose: cohorts
{FIELDS}
k_anonymity: {{k: 3, quasi_identifiers: [age_band, zip3, gender], protected: [gender, country]}}
"""
# Bigger classes (no zip), and the skewed country (70% US) as the sensitive field: many classes
# pass k but hold one country only.
L_POLICY = f"""
version: 1
purpose: cohorts
{FIELDS}
k_anonymity: {{k: 3, quasi_identifiers: [age_band, gender, income_band]}}
l_diversity: {{l: 2, sensitive: [country]}}
"""


def sanitized_batches(policy) -> list[pa.RecordBatch]:
    """The policy's output for synthetic customers, in small batches (no keys: nothing is keyed)."""
    table = synthetic_customers(ROWS)
    bound = BoundPlan(compile_plan(policy, CUSTOMER_SCHEMA), None)
    return [bound.apply_batch(batch)[0] for batch in table.to_batches(max_chunksize=BATCH)]


def as_lines(rows) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


def expected_release(rows: list[dict], qis, k: int, sensitive=(), l: int | None = None):  # noqa: E741
    """(kept rows, records dropped for k, records dropped for l), counted the plain way."""
    classes: dict[tuple, list[dict]] = {}
    for row in rows:
        classes.setdefault(tuple(row[q] for q in qis), []).append(row)
    kept, small, undiverse = [], 0, 0
    for members in classes.values():
        if len(members) < k:
            small += len(members)
        elif l is not None and any(len({m[s] for m in members}) < l for s in sensitive):
            undiverse += len(members)
        else:
            kept += members
    return kept, small, undiverse


@pytest.fixture(scope="module")
def k_run(tmp_path_factory):
    policy = parse_policy(K_POLICY)
    batches = sanitized_batches(policy)
    return policy, batches, run_enforce(policy, batches, tmp_path_factory.mktemp("k"))


@pytest.fixture(scope="module")
def l_run(tmp_path_factory):
    policy = parse_policy(L_POLICY)
    batches = sanitized_batches(policy)
    return policy, batches, run_enforce(policy, batches, tmp_path_factory.mktemp("l"))


def test_no_class_smaller_than_k_remains(k_run):
    _, _, (rows, _, _) = k_run
    released = [json.loads(line) for line in rows]
    sizes = Counter(tuple(r[q] for q in QIS) for r in released)
    assert released and min(sizes.values()) >= 3


def test_exactly_the_records_of_small_classes_are_suppressed(k_run):
    _, batches, (rows, summary, counters) = k_run
    source = [row for batch in batches for row in batch.to_pylist()]
    kept, small, _ = expected_release(source, QIS, 3)
    assert 0 < small < len(source) // 2  # skewed data: some classes are small, most records are not
    assert rows == as_lines(kept)  # these records, and no others
    assert counters["dropped.k_anonymity"] == small
    assert counters["written"] == -small  # it corrects SanitizeBatches' count of records written
    assert "dropped.l_diversity" not in counters
    assert summary["violations"]["k_anonymity"]["records"] == small


def test_the_summary_counts_before_suppression(k_run):
    _, batches, (_, summary, _) = k_run
    source = [row for batch in batches for row in batch.to_pylist()]
    class_sizes = Counter(Counter(tuple(r[q] for q in QIS) for r in source).values())
    assert {size: n for size, n in summary["sizes"]} == dict(class_sizes)
    small_classes = {c for c, n in Counter(tuple(r[q] for q in QIS) for r in source).items() if n < 3}
    expected = Counter()
    for row in source:
        for name in ("gender", "country"):
            expected[(name, row[name], "before")] += 1
            expected[(name, row[name], "suppressed")] += tuple(row[q] for q in QIS) in small_classes
    got = Counter()
    for name, value, before, suppressed in summary["groups"]:
        got[(name, value, "before")] += before
        got[(name, value, "suppressed")] += suppressed
    assert +got == +expected
    # what-if: zip3 cut to 2 digits, counted the plain way
    coarse = Counter((r["age_band"], r["zip3"] and r["zip3"][:2], r["gender"]) for r in source)
    assert summary["hints"]["coarser:zip3"] == sum(n for n in coarse.values() if n < 3)
    without_gender = Counter((r["age_band"], r["zip3"]) for r in source)
    assert summary["hints"]["without:gender"] == sum(n for n in without_gender.values() if n < 3)


def test_l_diversity_suppresses_classes_with_too_few_sensitive_values(l_run):
    policy, batches, (rows, summary, counters) = l_run
    qis = policy.k_anonymity.quasi_identifiers
    source = [row for batch in batches for row in batch.to_pylist()]
    kept, small, undiverse = expected_release(source, qis, 3, ("country",), 2)
    assert small > 0 and undiverse > 0 and kept
    assert rows == as_lines(kept)
    assert counters["dropped.k_anonymity"] == small
    assert counters["dropped.l_diversity"] == undiverse
    assert summary["violations"]["l_diversity"]["records"] == undiverse
    released = [json.loads(line) for line in rows]
    by_class: dict[tuple, set] = {}
    for row in released:
        by_class.setdefault(tuple(row[q] for q in qis), set()).add(row["country"])
    assert min(len(countries) for countries in by_class.values()) >= 2


def test_two_worker_processes_give_the_same_result_as_one(k_run, tmp_path):
    policy, batches, single = k_run
    multi = run_enforce(
        policy, batches, tmp_path, "--direct_num_workers", "2", "--direct_running_mode", "multi_processing"
    )
    assert multi[0] == single[0]
    assert multi[1] == single[1]
    assert multi[2] == single[2]


def test_null_is_a_value_of_its_own(tmp_path):
    policy = parse_policy(
        """
version: 1
purpose: cohorts
fields: {zip: {action: keep}, n: {action: keep}}
k_anonymity: {k: 2, quasi_identifiers: [zip]}
"""
    )
    rows = [{"zip": z, "n": i} for i, z in enumerate([None, None, "", "null", "null", "902"])]
    batches = [pa.RecordBatch.from_pylist(rows[:3]), pa.RecordBatch.from_pylist(rows[3:])]
    released, summary, counters = run_enforce(policy, batches, tmp_path)
    assert [json.loads(line)["n"] for line in released] == [0, 1, 3, 4]  # null x2 and "null" x2 stay
    assert counters["dropped.k_anonymity"] == 2  # "" and "902" are alone
    assert summary["sizes"] == [[1, 2], [2, 2]]


def test_fail_mode_stops_with_counts_and_passes_data_that_complies(tmp_path):
    policy = parse_policy(K_POLICY.replace("protected:", "on_violation: fail, protected:"))
    batches = sanitized_batches(policy)
    source = [row for batch in batches for row in batch.to_pylist()]
    classes = Counter(tuple(r[q] for q in QIS) for r in source)
    small = {c: n for c, n in classes.items() if n < 3}
    with pytest.raises(Exception) as error:
        run_enforce(policy, batches, tmp_path / "refused")
    message = str(error.value)
    assert f"{len(small)} equivalence classes with {sum(small.values())} records are smaller than k=3" in message
    assert "on_violation: fail" in message

    complying = parse_policy(
        K_POLICY.replace("[age_band, zip3, gender]", "[gender]").replace("protected:", "on_violation: fail, protected:")
    )
    assert min(Counter(r["gender"] for r in source).values()) >= 3
    rows, summary, _ = run_enforce(complying, batches, tmp_path / "passed")
    assert rows == as_lines(source)
    assert summary["violations"] == {}


def test_a_policy_without_k_anonymity_is_refused():
    with pytest.raises(ConfigError, match="no k_anonymity"):
        EnforceKAnonymity(parse_policy("version: 1\npurpose: cohorts\nfields: {a: {action: keep}}\n"))
