"""The library transforms keep what `veil run` keeps: they read the policy's tables themselves,
make one key per subject, and report every value they could not protect as a dead letter."""

import datetime as dt

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from veil.errors import InputError
from veil.keys import open_keyring
from veil.pipelines.rights import erase_subjects, init_erasure_table
from veil.transforms.beam import Sanitize, SanitizeBatches
from veil.transforms.plan import compile_plan
from veil.transforms.policy import load_policy
from veil.transforms.subjects import subject_ref

GATED = """version: 1
purpose: support
subject: customer_id
keyset: {keyset}
erasure: {{table: erasures}}
subject_keys: subject-keys
fields:
  customer_id: {{action: keep}}
  notes: {{action: encrypt, per_subject: true}}
  income: {{action: generalize, width: 1000, on_error: {on_error}}}
"""
SCHEMA = pa.schema([("customer_id", pa.string()), ("notes", pa.string()), ("income", pa.int64())])
RECORDS = [{"customer_id": f"C{i % 4}", "notes": f"note {i}", "income": 1000 * i} for i in range(12)]


def _policy(tmp_path, keyset, on_error="null"):
    path = tmp_path / "support.yaml"
    path.write_text(GATED.format(keyset=keyset, on_error=on_error))
    policy = load_policy(path)
    init_erasure_table(policy)
    return policy


def _satisfies(check):
    """An `assert_that` matcher running `check` on the PCollection's elements."""

    def matcher(elements):
        check(list(elements))

    return matcher


@pytest.mark.parametrize("shape", ["dicts", "batches"])
def test_an_erased_subject_never_flows_without_passing_any_table(tmp_path, keyset, shape):
    policy = _policy(tmp_path, keyset)
    erase_subjects(policy, ["C1"], keyset=keyset)
    with TestPipeline() as p:
        if shape == "dicts":
            result = p | beam.Create(RECORDS) | Sanitize(policy)
            ids = result.output | beam.Map(lambda r: r["customer_id"])
        else:
            batch = pa.RecordBatch.from_pylist(RECORDS, schema=SCHEMA)
            result = p | beam.Create([batch]) | SanitizeBatches(policy, schema=SCHEMA)
            ids = result.output | beam.FlatMap(lambda b: b.column("customer_id").to_pylist())
        assert_that(ids, equal_to([r["customer_id"] for r in RECORDS if r["customer_id"] != "C1"]))


def test_a_policy_whose_erasure_table_is_missing_refuses_to_build(tmp_path, keyset):
    policy = _policy(tmp_path, keyset)
    (tmp_path / "erasures" / "_veil_erasure_table").unlink()
    for transform in (Sanitize, SanitizeBatches):
        with pytest.raises(InputError, match="erasure table .* does not exist"):
            transform(policy)


def test_per_subject_encryption_through_dicts_makes_one_key_per_subject(tmp_path, keyset):
    policy = _policy(tmp_path, keyset)
    keyring = open_keyring(keyset)
    expected = sorted(subject_ref(keyring, f"C{i}") for i in range(4))
    with TestPipeline() as p:
        result = p | beam.Create(RECORDS) | Sanitize(policy)
        refs = result.new_subject_keys | beam.FlatMap(lambda b: b.column("subject_ref").to_pylist())
        assert_that(refs, equal_to(expected))
        pairs = result.output | beam.Map(lambda r: (r["customer_id"], r["notes"].split(".")[1])) | beam.Distinct()

        def one_key_each(found):  # every subject's notes under one key, a different key per subject
            assert sorted(c for c, _ in found) == ["C0", "C1", "C2", "C3"] and len({k for _, k in found}) == 4

        assert_that(pairs, _satisfies(one_key_each), label="one key each")


@pytest.mark.parametrize("on_error", ["null", "drop_record"])
@pytest.mark.parametrize("shape", ["dicts", "batches"])
def test_a_value_that_fails_is_a_dead_letter_with_its_code_and_no_part_of_it(tmp_path, keyset, on_error, shape):
    policy = _policy(tmp_path, keyset, on_error)
    secret = 987654321987654321987
    records = [dict(r) for r in RECORDS]
    if shape == "dicts":
        records[5]["income"] = f"income {secret}"  # text that is no number
        code = "text that is not a number"
    else:
        policy = load_policy(tmp_path / "support.yaml")
        records[5]["income"] = None
        code = None
    expected_ref = subject_ref(open_keyring(keyset), "C1")  # the keyring itself cannot go into the matcher
    written = 11 if on_error == "drop_record" else 12

    def check(letters):
        (letter,) = letters
        assert letter == {
            "purpose": "support",
            "field": "income",
            "action": "generalize",
            "code": code,
            "on_error": on_error,
            "position": None,  # gated: the batch was re-split by subject
            "subject_ref": expected_ref,
        }
        assert str(secret) not in repr(letters) and "inf" not in repr(letters)

    with TestPipeline() as p:
        if shape == "dicts":
            result = p | beam.Create(records) | Sanitize(policy)
            rows = result.output
        else:  # a float income Arrow holds, which width refuses: not finite
            schema = SCHEMA.set(2, pa.field("income", pa.float64()))
            floats = [dict(r, income=float(r["income"] or 0)) for r in records]
            floats[5]["income"] = float("inf")
            code = "not a finite number"
            batch = pa.RecordBatch.from_pylist(floats, schema=schema)
            result = p | beam.Create([batch]) | SanitizeBatches(compile_plan(policy, schema))
            rows = result.output | beam.FlatMap(lambda b: b.to_pylist())
        assert_that(result.dead_letters, _satisfies(check), label="dead letters")
        assert_that(rows, _satisfies(lambda r: len(r) == written or pytest.fail(f"{len(r)} rows")), label="rows")


def test_dead_letter_positions_are_rows_of_the_given_batch_without_gates(keyset):
    from veil.transforms.policy import parse_policy

    policy = parse_policy(
        "version: 1\npurpose: analytics\nfields:\n  d: {action: generalize, date: month, on_error: null}\n"
    )
    batch = pa.RecordBatch.from_pylist([{"d": "2024-01-02"}, {"d": "2024-02-30"}, {"d": None}, {"d": "x"}])
    with TestPipeline() as p:
        result = p | beam.Create([batch]) | SanitizeBatches(policy)  # schema-free: compiled on the worker
        letters = result.dead_letters | beam.Map(lambda d: (d["position"], d["code"]))
        assert_that(letters, equal_to([(1, "not a valid date"), (3, "not a valid date")]))
        months = result.output | beam.FlatMap(lambda b: b.column("d").to_pylist())
        assert_that(months, equal_to([dt.date(2024, 1, 1), None, None, None]), label="months")


AUDITED = """version: 1
purpose: support
keyset: {keyset}
audit_log: audit/log.jsonl
fields:
  email: {{action: tokenize, as: email_token}}
  city: {{action: keep}}
"""


@pytest.mark.parametrize("shape", ["dicts", "batches"])
def test_library_detokenize_writes_one_audit_line_per_run_and_no_value(tmp_path, keyset, shape):
    import json

    from veil.transforms.beam import Detokenize, DetokenizeBatches
    from veil.transforms.engine import BoundPlan

    (tmp_path / "p.yaml").write_text(AUDITED.format(keyset=keyset))
    policy = load_policy(tmp_path / "p.yaml")
    emails = [f"person{i}@example.org" for i in range(5)]
    protected = (
        BoundPlan(compile_plan(policy), open_keyring(keyset))
        .apply_records([{"email": e, "city": "Utrecht"} for e in emails])
        .records
    )
    protected[4]["email_token"] = "v1.tampered"
    log = tmp_path / "audit" / "log.jsonl"
    for run in (1, 2):
        with TestPipeline() as p:
            if shape == "dicts":
                out = p | beam.Create(protected) | Detokenize(policy, ["email_token"])
                restored = out | beam.Map(lambda r: r["email"])
            else:
                out = (
                    p
                    | beam.Create([pa.RecordBatch.from_pylist(protected)])
                    | DetokenizeBatches(policy, ["email_token"])
                )
                restored = out | beam.FlatMap(lambda b: b.column("email").to_pylist())
            assert_that(restored, equal_to([*emails[:4], None]))
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        assert len(lines) == run  # exactly one line per run
        line = lines[-1]
        assert line["event"] == "detokenize" and line["outcome"] == "ok" and line["fields"] == ["email_token"]
        assert line["counts"] == {"restored": {"email_token": 4}, "failed": {"email_token": 1}, "shredded": {}}
        assert line["policy_sha256"] == policy.sha256 and line["who"]
    text = log.read_text()
    assert not any(e in text or e.split("@")[0] in text for e in emails) and "tampered" not in text


def test_library_detokenize_refuses_to_build_without_an_audit_log(tmp_path, keyset):
    from veil.errors import ConfigError
    from veil.transforms.beam import Detokenize

    (tmp_path / "p.yaml").write_text(AUDITED.format(keyset=keyset))
    with pytest.raises(ConfigError, match="audited"):
        Detokenize(load_policy(tmp_path / "p.yaml"), ["email_token"], audit_log="")


def test_dict_detokenize_refuses_per_subject_fields_it_cannot_join_keys_for(tmp_path, keyset):
    from veil.errors import ConfigError
    from veil.transforms.beam import Detokenize, DetokenizeBatches

    policy = _policy(tmp_path, keyset)
    with pytest.raises(ConfigError, match="notes are encrypted per subject.*DetokenizeBatches"):
        Detokenize(policy, ["notes"])
    DetokenizeBatches(policy, ["notes"])  # reads the policy's subject key table itself
