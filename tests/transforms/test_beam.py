"""The Beam transforms: Sanitize (dicts) and SanitizeBatches (Arrow) agree, count, and fail closed."""

import datetime as dt

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from veil.errors import DataRefusedError
from veil.keys import open_keyring
from veil.transforms.beam import ArrowBatchCoder, Sanitize, SanitizeBatches, metrics_namespace
from veil.transforms.engine import BoundPlan
from veil.transforms.plan import compile_plan
from veil.transforms.policy import parse_policy

POLICY = """
version: 1
purpose: analytics
subject: customer_id
consent: {field: consents}
fields:
  customer_id: {action: pseudonymize, domain: customer, as: customer_key}
  email: {action: tokenize, normalize: [strip, lower], as: email_token}
  birth_date: {action: generalize, age_bins: [0, 18, 25, 35, 50, 65], at: 2026-01-01, as: age_band}
  income: {action: generalize, width: 10000, on_error: drop_record}
  signup: {action: date_shift, max_days: 20}
  city: {action: keep}
"""

SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("email", pa.string()),
        ("birth_date", pa.date32()),
        ("income", pa.int64()),
        ("signup", pa.date32()),
        ("city", pa.string()),
        ("consents", pa.list_(pa.string())),
        ("notes", pa.string()),
    ]
)


def _records() -> list[dict]:
    return [
        {
            "customer_id": f"C{i:07d}",
            "email": f" User{i}@Example.org ",
            "birth_date": dt.date(1950 + i, 6, 1),
            "income": 1234 * i,
            "signup": dt.date(2024, 1, 1) + dt.timedelta(days=i),
            "city": "Springfield",
            "consents": ["analytics"] if i % 4 else ["marketing"],
            "notes": f"secret note {i}",
        }
        for i in range(40)
    ]


def _expected(policy, keyset, records):
    """What the pure engine gives, outside Beam: both transforms must give exactly this."""
    return BoundPlan(compile_plan(policy, SCHEMA), open_keyring(keyset)).apply_records(records).records


def test_sanitize_and_sanitize_batches_give_the_same_rows(keyset):
    policy = parse_policy(POLICY)
    records = _records()
    expected = _expected(policy, keyset, records)
    assert len(expected) == 30  # 40 records, 10 without consent to analytics
    batch = pa.RecordBatch.from_pylist(records, schema=SCHEMA)
    with TestPipeline() as p:
        as_dicts = (p | "Dicts" >> beam.Create(records) | Sanitize(policy, keyset=keyset)).output
        as_batches = (
            p
            | "Batches" >> beam.Create([batch.slice(0, 15), batch.slice(15)])
            | SanitizeBatches(policy, schema=SCHEMA, keyset=keyset)
        ).output | beam.FlatMap(lambda b: b.to_pylist())
        assert_that(as_dicts, equal_to(expected), label="dicts")
        assert_that(as_batches, equal_to(expected), label="batches")


def test_without_subject_gates_the_new_subject_keys_are_an_empty_output_of_the_sanitize_step(keyset):
    policy = parse_policy(POLICY)
    batch = pa.RecordBatch.from_pylist(_records(), schema=SCHEMA)
    with TestPipeline() as p:
        result = p | beam.Create([batch]) | SanitizeBatches(policy, schema=SCHEMA, keyset=keyset)
        assert result.new_subject_keys.producer is result.output.producer  # no transform of its own
        assert result.new_subject_keys.element_type == pa.RecordBatch
        assert_that(result.new_subject_keys | beam.Map(lambda b: b.num_rows), equal_to([]), label="no keys")
        assert_that(result.output | beam.Map(lambda b: b.num_rows), equal_to([30]), label="rows")


def test_counts_reach_beam_metrics(keyset):
    policy = parse_policy(POLICY)
    records = _records()
    records[1]["income"] = "not a number"  # a wrong type: on_error drop_record
    p = TestPipeline()
    _ = p | beam.Create(records) | Sanitize(policy, keyset=keyset)
    result = p.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_namespace(metrics_namespace("analytics")))["counters"]
    counts = {c.key.metric.name: c.committed for c in counters}
    assert counts == {
        "read": 40,
        "written": 29,
        "dropped.no_consent": 10,
        "dropped.field_error": 1,
        "field_errors.income": 1,
    }


def test_a_value_refused_by_on_error_fail_stops_the_job_without_the_value(keyset):
    policy = parse_policy(POLICY.replace("on_error: drop_record", "on_error: fail"))
    records = _records()[:4]
    records[1]["income"] = "income-secret-771"
    with pytest.raises(DataRefusedError) as raised:
        with TestPipeline() as p:
            _ = p | beam.Create(records) | Sanitize(policy, keyset=keyset)
    assert "income" in str(raised.value)
    assert "income-secret-771" not in str(raised.value)


def test_schema_free_batches_compile_on_the_worker(keyset):
    policy = parse_policy(POLICY)
    records = _records()
    expected = _expected(policy, keyset, records)
    with TestPipeline() as p:
        out = (
            p
            | beam.Create([pa.RecordBatch.from_pylist(records, schema=SCHEMA)])
            | SanitizeBatches(policy, keyset=keyset)
        ).output | beam.FlatMap(lambda b: b.to_pylist())
        assert_that(out, equal_to(expected))


def test_keys_are_not_pickled_into_the_job_graph(keyset):
    import pickle

    transform = Sanitize(parse_policy(POLICY), keyset=keyset)
    graph_bytes = pickle.dumps(transform._fn)
    assert b"wrapped" not in graph_bytes and keyset.encode() in graph_bytes


def test_arrow_batch_coder_round_trips_and_sizes_by_nbytes():
    batch = pa.RecordBatch.from_pylist(_records(), schema=SCHEMA)
    coder = ArrowBatchCoder()
    assert coder.decode(coder.encode(batch)).equals(batch)
    assert coder.estimate_size(batch) == batch.nbytes


def test_sanitized_batches_are_typed_so_they_get_the_arrow_coder(keyset):
    """An untyped output would get Beam's pickling fallback coder (a sliced batch pickles its whole parent buffers)."""
    with TestPipeline() as p:
        batches = p | beam.Create([pa.RecordBatch.from_pylist(_records(), schema=SCHEMA)]).with_output_types(
            pa.RecordBatch
        )
        out = (batches | SanitizeBatches(parse_policy(POLICY), schema=SCHEMA, keyset=keyset)).output
        assert out.element_type is pa.RecordBatch
        assert isinstance(beam.coders.registry.get_coder(out.element_type), ArrowBatchCoder)
