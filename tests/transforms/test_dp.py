"""DPAggregates on Beam: accuracy with a large epsilon, the noise's spread against the stddev
PipelineDP reports, Gaussian noise against the analytic Gaussian mechanism's sigma, private
group selection, contribution bounding, and no row ever out.

Two pipelines (one per epsilon) compute every table the tests read; expectations are computed
here from the data and the documented settings, not from veil's code.
"""

import json
import math
import statistics

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

pytest.importorskip(
    "pipeline_dp", reason="pipeline-dp (the dp extra) is published for Linux x86_64 with Python 3.11-3.13 only"
)

from veil.errors import ConfigError  # noqa: E402
from veil.transforms.beam import Sanitize, SanitizeBatches  # noqa: E402
from veil.transforms.dp import DPAggregates  # noqa: E402
from veil.transforms.plan import compile_plan  # noqa: E402
from veil.transforms.policy import parse_policy  # noqa: E402

FIELDS = """
version: 1
purpose: stats
fields:
  customer_id: {action: keep}
  country: {action: keep}
  income: {action: keep}
"""
GROUPS = 400  # public groups of the noise test: 400 independent draws of each table's noise
PUBLIC = json.dumps([f"g{i}" for i in range(GROUPS)])
UNITS_PER_GROUP = 3
# eps 1 split by the accountant over three tables; the noise tables have one mechanism each
NOISY = (
    FIELDS.replace("  income: {action: keep}\n", "")  # nothing reads it: a policy with aggregates must not name it
    + f"""
aggregates:
  privacy_unit: customer_id
  epsilon: 1.0
  delta: 1.0e-6
  tables:
    - {{name: first, group_by: [country], metrics: [count], public_groups: {PUBLIC}}}
    - {{name: second, group_by: [country], metrics: [count], public_groups: {PUBLIC}}}
    - {{name: selected, group_by: [country], metrics: [count]}}
"""
)
GAUSSIAN_GROUPS = 2000  # public groups of the Gaussian test: 2,000 draws of its noise
GAUSSIAN_L0 = 4  # max_groups_per_unit: L2 sensitivity sqrt(4) * 1 = 2 (L1 would be 4)
GAUSSIAN = (
    FIELDS.replace("  income: {action: keep}\n", "")
    + f"""
aggregates:
  privacy_unit: customer_id
  epsilon: 1.0
  delta: 1.0e-5
  noise: gaussian
  tables:
    - {{name: counts, group_by: [country], metrics: [count], max_groups_per_unit: {GAUSSIAN_L0},
       public_groups: {json.dumps([f"g{i}" for i in range(GAUSSIAN_GROUPS)])}}}
"""
)
BIG, TINY = 400, 3  # privacy units in the two groups selected privately
ACCURATE = (
    FIELDS
    + """
aggregates:
  privacy_unit: customer_id
  epsilon: 10000000.0  # so large that the variance of 9 records is within 0.5
  delta: 1.0e-6
  tables:
    - {name: by_country, group_by: [country], metrics: [count, sum, mean, variance], value: income, min: 0, max: 1000}
    - {name: bounded, group_by: [country], metrics: [count, sum], value: income, min: 0, max: 1000,
       max_groups_per_unit: 1, max_rows_per_group: 2, public_groups: [A, B, C]}
    - {name: pairs, group_by: [country, income], metrics: [count], public_groups: [[A, 100], [B, 100], [Z, 1]]}
"""
)
TRUE_COUNTS = {"US": 250, "CA": 60, "GB": 9}  # privacy units, one record each, income 100 + i % 7


def _batch(rows: list[tuple]) -> pa.RecordBatch:
    units, countries, incomes = zip(*rows)
    return pa.record_batch(
        {"customer_id": list(units), "country": list(countries), "income": pa.array(incomes, pa.int64())}
    )


def _run(policy_text: str, rows: list[tuple], folder) -> tuple[dict[str, list[dict]], object]:
    """Each table's rows (as the transform released them) and the result (budget, explain)."""
    policy = parse_policy(policy_text)
    batch = _batch(rows)
    pipeline = TestPipeline()
    result = (
        pipeline
        | beam.Create([batch]).with_output_types(pa.RecordBatch)
        | DPAggregates(compile_plan(policy, batch.schema))
    )
    for name, table in result.tables.items():
        _ = (
            table
            | f"Json[{name}]" >> beam.Map(lambda t: json.dumps({"rows": t.to_pylist(), "columns": t.schema.names}))
            | f"Write[{name}]" >> beam.io.WriteToText(str(folder / name), num_shards=1, shard_name_template="")
        )
    pipeline.run().wait_until_finish()
    return {name: json.loads((folder / name).read_text()) for name in result.tables}, result


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    rows = [(f"u{g}-{u}", f"g{g}", 1) for g in range(GROUPS) for u in range(UNITS_PER_GROUP)]
    rows += [(f"big{u}", "big", 1) for u in range(BIG)] + [(f"tiny{u}", "tiny", 1) for u in range(TINY)]
    return _run(NOISY, rows, tmp_path_factory.mktemp("noisy"))


@pytest.fixture(scope="module")
def gaussian(tmp_path_factory):
    rows = [(f"u{g}-{u}", f"g{g}", 1) for g in range(GAUSSIAN_GROUPS) for u in range(UNITS_PER_GROUP)]
    return _run(GAUSSIAN, rows, tmp_path_factory.mktemp("gaussian"))


@pytest.fixture(scope="module")
def accurate(tmp_path_factory):
    rows = [(f"{c}{i}", c, 100 + i % 7) for c, n in TRUE_COUNTS.items() for i in range(n)]
    rows += [(None, "US", 100)] * 5  # no privacy unit: left out
    # "whale" has 300 records in A and 50 in each of B and C; ten ordinary units per group
    rows += [("whale", "A", 5000)] * 300 + [("whale", "B", 5000)] * 50 + [("whale", "C", 5000)] * 50
    rows += [(f"{g}{i}", g, 100) for g in "ABC" for i in range(10)]
    return _run(ACCURATE, rows, tmp_path_factory.mktemp("accurate"))


def test_with_a_large_epsilon_counts_sums_and_means_are_close_to_the_truth(accurate):
    tables, _ = accurate
    released = {row["country"]: row for row in tables["by_country"]["rows"]}
    assert set(TRUE_COUNTS) <= set(released)  # a huge epsilon selects every group with a few units
    for country, units in TRUE_COUNTS.items():
        true_sum = sum(100 + i % 7 for i in range(units))
        row = released[country]
        assert abs(row["count"] - units) < 0.5, country
        assert abs(row["sum"] - true_sum) < 0.01 * true_sum, country
        assert abs(row["mean"] - true_sum / units) < 1, country
        true_variance = statistics.pvariance([100 + i % 7 for i in range(units)])  # 4 for a full cycle of 7
        assert abs(row["variance"] - true_variance) < 0.5, country


def test_a_subject_with_many_records_is_bounded(accurate):
    tables, _ = accurate
    released = {row["country"]: row for row in tables["bounded"]["rows"]}
    assert set(released) == {"A", "B", "C"}
    # the whale reaches one group (max_groups_per_unit 1) with at most 2 records (max_rows_per_group),
    # each clamped to max 1000; the ten ordinary units of each group count 1 and 100 each
    extra_counts = [released[g]["count"] - 10 for g in "ABC"]
    extra_sums = [released[g]["sum"] - 1000 for g in "ABC"]
    assert all(-0.5 < extra < 2.5 for extra in extra_counts)
    assert 0.5 < sum(extra_counts) < 2.5  # 350 records of one unit moved the counts by 1 or 2 in all
    assert -10 < sum(extra_sums) < 2 * 1000 + 10
    assert sum(1 for extra in extra_counts if extra > 0.5) == 1


def test_groups_of_several_fields_are_one_column_each(accurate):
    tables, _ = accurate
    assert tables["pairs"]["columns"] == ["country", "income", "count", "count_noise_stddev"]
    released = {(row["country"], row["income"]): row["count"] for row in tables["pairs"]["rows"]}
    assert set(released) == {("A", 100), ("B", 100), ("Z", 1)}  # the whale's (A, 5000) is not public: left out
    assert released[("A", 100)] == pytest.approx(10, abs=0.5) and released[("B", 100)] == pytest.approx(10, abs=0.5)
    assert released[("Z", 1)] == pytest.approx(0, abs=0.5)  # public and empty: released, noise only


def test_without_public_groups_a_group_below_the_selection_threshold_is_absent(noisy):
    tables, _ = noisy
    groups = [row["country"] for row in tables["selected"]["rows"]]
    assert "big" in groups
    assert "tiny" not in groups  # 3 units: far below the threshold at epsilon 1/6, delta 1e-6 (all of it)
    assert set(groups) <= {"big"} | {f"g{i}" for i in range(GROUPS)}


def test_the_budget_is_split_by_the_accountant_and_sums_to_the_policy(noisy):
    _, result = noisy
    assert math.isclose(sum(m["epsilon"] for m in result.budget), 1.0)
    assert math.isclose(sum(m["delta"] for m in result.budget), 1.0e-6)
    per_table = {}
    for mechanism in result.budget:
        per_table[mechanism["table"]] = per_table.get(mechanism["table"], 0) + mechanism["epsilon"]
    assert per_table == pytest.approx({"first": 1 / 3, "second": 1 / 3, "selected": 1 / 3})
    assert {m["mechanism"] for m in result.budget if m["table"] == "selected"} == {"Count", "PartitionSelection"}
    assert "Laplace mechanism" in result.explain["first"] and "Truncated Geometric" in result.explain["selected"]


@pytest.mark.parametrize("name", ["first", "second"])
def test_the_noise_spread_matches_the_stddev_pipelinedp_reports(noisy, name):
    tables, _ = noisy
    rows = tables[name]["rows"]
    assert len(rows) == GROUPS  # public groups: every one released, none added
    (reported,) = {row["count_noise_stddev"] for row in rows}
    # Laplace with sensitivity 1 (one record per unit) at epsilon 1/3: scale 3, stddev 3 * sqrt(2)
    assert reported == pytest.approx(3 * math.sqrt(2))
    noise = [row["count"] - UNITS_PER_GROUP for row in rows]
    # 400 draws: the sample stddev of Laplace noise is within 1 +- 0.056 of the true one (1 sd);
    # [0.8, 1.2] is about 3.6 sd, so this fails by chance about once in 3,000 runs
    assert 0.8 < statistics.pstdev(noise) / reported < 1.2
    assert abs(statistics.fmean(noise)) < 4 * reported / math.sqrt(GROUPS)


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def analytic_gaussian_sigma(epsilon: float, delta: float, l2_sensitivity: float) -> float:
    """The smallest sigma for which Gaussian noise is (epsilon, delta)-DP: the analytic Gaussian
    mechanism (Balle and Wang 2018, Theorem 8), which PipelineDP's documentation names for its
    Gaussian noise. Found by bisection on its delta(sigma), which falls as sigma grows."""

    def delta_of(sigma: float) -> float:
        a, b = l2_sensitivity / (2 * sigma), epsilon * sigma / l2_sensitivity
        return _phi(a - b) - math.exp(epsilon) * _phi(-a - b)

    low, high = 1e-6, 1e6
    for _ in range(200):
        low, high = (low, (low + high) / 2) if delta_of((low + high) / 2) <= delta else ((low + high) / 2, high)
    return high


def test_the_analytic_sigma_recount_is_right():
    # the classic bound sqrt(2 ln(1.25 / delta)) / epsilon holds for epsilon < 1 and is looser
    assert analytic_gaussian_sigma(0.5, 1e-5, 1.0) < math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    assert analytic_gaussian_sigma(1.0, 1e-5, 2.0) == pytest.approx(2 * analytic_gaussian_sigma(1.0, 1e-5, 1.0))
    assert analytic_gaussian_sigma(1.0, 1e-5, 1.0) == pytest.approx(3.7306, abs=1e-3)


def test_gaussian_noise_reaches_pipelinedp_calibrated_to_the_l2_sensitivity(gaussian):
    tables, result = gaussian
    assert [(m["noise"], m["epsilon"], m["delta"]) for m in result.budget] == [("Gaussian", 1.0, 1.0e-5)]
    assert "Gaussian mechanism" in result.explain["counts"] and "Laplace" not in result.explain["counts"]
    (reported,) = {row["count_noise_stddev"] for row in tables["counts"]["rows"]}
    expected = analytic_gaussian_sigma(1.0, 1.0e-5, math.sqrt(GAUSSIAN_L0))  # about 7.46; Laplace's: 4 * sqrt(2)
    assert expected <= reported == pytest.approx(expected, rel=2e-3)  # python-dp rounds sigma up, never down


def test_gaussian_noise_is_normal_with_the_reported_spread(gaussian):
    tables, _ = gaussian
    rows = tables["counts"]["rows"]
    assert len(rows) == GAUSSIAN_GROUPS
    (sigma,) = {row["count_noise_stddev"] for row in rows}
    noise = [row["count"] - UNITS_PER_GROUP for row in rows]
    # 2,000 draws: the sample stddev is within 1 +- 0.016 of sigma (1 sd); [0.9, 1.1] is 6 sd
    assert 0.9 < statistics.pstdev(noise) / sigma < 1.1
    assert abs(statistics.fmean(noise)) < 4 * sigma / math.sqrt(GAUSSIAN_GROUPS)
    # the shape: 68.3% of normal draws fall within one sigma (sd 1.0%), 75.7% of Laplace draws of the
    # same stddev; [0.645, 0.72] is 3.6 sd of the normal share either side
    within = sum(abs(value) < sigma for value in noise) / len(noise)
    assert 0.645 < within < 0.72


def test_the_two_tables_draw_independent_noise(noisy):
    tables, _ = noisy
    first = {row["country"]: row["count"] for row in tables["first"]["rows"]}
    second = {row["country"]: row["count"] for row in tables["second"]["rows"]}
    assert sum(1 for group in first if first[group] == second[group]) == 0


def test_only_groups_and_metrics_come_out(noisy, accurate):
    columns = {name: table["columns"] for result in (noisy, accurate) for name, table in result[0].items()}
    assert columns == {
        "first": ["country", "count", "count_noise_stddev"],
        "second": ["country", "count", "count_noise_stddev"],
        "selected": ["country", "count", "count_noise_stddev"],
        "by_country": ["country", "count", "sum", "mean", "variance"],  # they share one mechanism's noise
        "bounded": ["country", "count", "sum", "count_noise_stddev", "sum_noise_stddev"],
        "pairs": ["country", "income", "count", "count_noise_stddev"],
    }
    units = {"whale"} | {f"u{g}-{u}" for g in range(3) for u in range(UNITS_PER_GROUP)}
    text = json.dumps([result[0] for result in (noisy, accurate)])
    assert not any(f'"{unit}"' in text for unit in units)


def test_a_policy_with_aggregates_releases_no_rows_through_sanitize():
    policy = parse_policy(ACCURATE)
    for transform in (SanitizeBatches, Sanitize):
        with pytest.raises(ConfigError, match="releases only differentially private aggregates, never rows"):
            transform(policy)


def test_a_value_that_is_not_a_number_is_refused_before_data_moves():
    policy = parse_policy(ACCURATE)
    schema = pa.schema([("customer_id", pa.string()), ("country", pa.string()), ("income", pa.string())])
    with pytest.raises(ConfigError, match=r"aggregates.tables.0 \(by_country\): value 'income' is string"):
        DPAggregates(compile_plan(policy, schema))


def test_public_groups_of_the_wrong_type_are_refused():
    policy = parse_policy(ACCURATE.replace("public_groups: [A, B, C]", "public_groups: [1, 2]"))
    schema = pa.schema([("customer_id", pa.string()), ("country", pa.string()), ("income", pa.int64())])
    with pytest.raises(ConfigError, match="public_groups do not fit group_by field 'country' \\(string\\)"):
        DPAggregates(compile_plan(policy, schema))


def test_a_group_of_lists_is_refused():
    policy = parse_policy(ACCURATE)
    schema = pa.schema([("customer_id", pa.string()), ("country", pa.list_(pa.string())), ("income", pa.int64())])
    with pytest.raises(ConfigError, match="group_by field 'country' is list<item: string>; a group is made of plain"):
        DPAggregates(compile_plan(policy, schema))
