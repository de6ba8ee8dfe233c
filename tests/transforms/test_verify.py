"""`veil.Verify` in a pipeline of one's own, and the rule each action gives verification."""

import json
import re
import tempfile
from types import SimpleNamespace

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from helpers import count_in_text
from hypothesis import given, settings
from hypothesis import strategies as st

import veil
from veil.errors import ConfigError, DataRefusedError
from veil.transforms.actions.base import TOKEN_FORMAT, TextFormat
from veil.transforms.actions.encrypt import CIPHERTEXT_FORMAT
from veil.transforms.plan import compile_plan
from veil.transforms.policy import parse_policy
from veil.transforms.verification import Part, VerifySpec, join_shard, malformed
from veil.transforms.verify import spill_folder

ROWS = 24
CARD = "4111-1111-1111-1111"


def table() -> pa.Table:
    return pa.table(
        {
            "customer_id": [f"C{i:04d}" for i in range(ROWS)],
            "email": [f"user{i}@example.com" for i in range(ROWS)],
            "card": [f"4{i:011d}1234" for i in range(ROWS)],
            "notes": [f"card {CARD}" if i % 3 == 0 else "nothing to see" for i in range(ROWS)],
            "zip": [f"{20000 + i}" for i in range(ROWS)],
            "income": list(range(10000, 10000 + 1000 * ROWS, 1000)),
        }
    )


def policy(fields: str):
    return parse_policy("version: 1\npurpose: lib\nfields:\n" + fields)


def run_verify(plan, batches, folder, **options) -> dict:
    """The findings of `veil.Verify` over `batches` and their sanitized view."""
    with TestPipeline() as p:
        raw = p | beam.Create(batches).with_output_types(pa.RecordBatch)
        view = (raw | veil.SanitizeBatches(plan, keyset=options.pop("keyset", None))).output
        findings = (raw, view) | veil.Verify(plan, **options)
        _ = findings | beam.Map(json.dumps) | beam.io.WriteToText(str(folder / "findings"))
    (written,) = [line for f in folder.glob("findings*") for line in f.read_text().splitlines()]
    return json.loads(written)


# one group per bundle, spilled at its end; groups closed mid-bundle, each spilled at once
@pytest.mark.parametrize("group_rows, spill_bytes", [(16_384, 32 << 20), (7, 1)])
def test_verify_counts_what_a_recount_counts(keyset, tmp_path, monkeypatch, group_rows, spill_bytes):
    monkeypatch.setattr("veil.transforms.verify.GROUP_ROWS", group_rows)
    monkeypatch.setattr("veil.transforms.verify.SPILL_BYTES", spill_bytes)
    spill = tmp_path / "spill"
    spill.mkdir()
    fields = """  email: {action: replace, value: user3@example.com}
  zip: {action: generalize, prefix: 5}
  notes: {action: scrub, entities: [email]}
  income: {action: generalize, width: 1000}
"""
    plan = compile_plan(policy(fields), table().schema)
    findings = run_verify(plan, table().to_batches(max_chunksize=5), tmp_path, keyset=keyset, temp_location=str(spill))
    assert list(spill.iterdir()) == []  # the spilled hashes are deleted once summed
    raw = table().to_pylist()
    assert findings["raw_values"] == {"email": ROWS, "zip": ROWS}  # width bounds equal incomes: coincident
    assert findings["patterns"] == {
        "email": {"email": ROWS},
        "notes": {"card": sum(1 for r in raw if CARD in r["notes"])},
    }
    assert findings["checked"]["raw_values"] == ["email", "zip", "notes"]  # notes: free text, looked inside
    assert findings["cells_checked"] == 3 * ROWS  # email, zip, notes (income is neither compared nor text)


def test_verify_fail_raises_without_a_value(tmp_path):
    plan = compile_plan(
        policy("  email: {action: generalize, map: {user1@example.com: user1@example.com}, other: x}\n"), table().schema
    )
    with pytest.raises(Exception) as raised:
        run_verify(plan, table().to_batches(), tmp_path, fail=True)
    assert "raw values in email (1)" in str(raised.value)
    assert "@example.com" not in str(raised.value)
    assert isinstance(raised.value, DataRefusedError) or "DataRefusedError" in str(raised.value)


def test_rules_follow_the_actions():
    fields = """  customer_id: {action: pseudonymize}
  card: {action: tokenize, method: ff1, alphabet: digits, keep_last: 4}
  email: {action: tokenize}
  notes: {action: keep}
  income: {action: generalize, width: 1000}
"""
    spec = VerifySpec.of(compile_plan(policy(fields), table().schema))
    rules = {c.output: c for c in spec.fields}
    assert rules["customer_id"].rule.raw == "encoded" and not rules["customer_id"].entities
    assert rules["card"].rule.raw == "derived" and not rules["card"].entities  # ff1: card-shaped by design
    assert rules["notes"].visible and "card" in rules["notes"].entities
    assert rules["income"].rule.raw == "coincident"
    assert rules["notes"].inside and "notes" not in rules["notes"].against  # kept, and named as free text
    assert rules["card"].against == ("card",)  # derived: its own field only
    assert spec.raw_checked == ("customer_id", "card", "email", "notes")
    labels = "  income: {action: generalize, bins: [0, 20000]}\n  email: {action: replace, value: x@y.z}\n"
    spec = VerifySpec.of(compile_plan(policy(labels), table().schema))
    rules = {c.output: c for c in spec.fields}
    assert rules["income"].against == ("income",)  # veil's bin labels: its own field only
    assert set(rules["email"].against) == set(table().column_names)  # spelled in the policy: every field


def test_batches_of_other_schemas_are_checked_in_groups_of_their_own(tmp_path, monkeypatch):
    """A group is one table: a batch whose column is dictionary-encoded starts a new one, counted the same."""
    monkeypatch.setattr("veil.transforms.verify.GROUP_ROWS", 100)
    plan = compile_plan(
        policy("  email: {action: generalize, map: {user1@example.com: user1@example.com}, other: x}\n"), table().schema
    )
    plain = table().select(["email"]).to_batches(max_chunksize=6)
    encoded = [pa.record_batch([b.column(0).dictionary_encode()], names=["email"]) for b in plain]
    mixed = [batch for pair in zip(plain, encoded) for batch in pair]
    with TestPipeline() as p:
        raw = p | "Raw" >> beam.Create(table().to_batches(max_chunksize=6)).with_output_types(pa.RecordBatch)
        view = p | "View" >> beam.Create(mixed).with_output_types(pa.RecordBatch)  # each email twice
        findings = (raw, view) | veil.Verify(plan)
        _ = findings | beam.Map(json.dumps) | beam.io.WriteToText(str(tmp_path / "findings"))
    (written,) = [line for f in tmp_path.glob("findings*") for line in f.read_text().splitlines()]
    result = json.loads(written)
    assert result["cells_checked"] == 2 * ROWS and result["raw_values"] == {"email": 2}  # the label, once per copy


def _outside_format(text: str, shape) -> bool:
    """The format check read plainly: another length, a start the head does not match, or one of
    the first HEAD_CHARS characters outside the alphabet."""
    from veil.transforms.verification import HEAD_CHARS

    if shape.length is not None and len(text) != shape.length:
        return True
    if shape.head is not None and not re.match(shape.head, text):
        return True
    return any(ch not in shape.alphabet for ch in text[:HEAD_CHARS])


FORMATS = [
    TextFormat("0123456789abcdef", 64),  # a hex pseudonym: longer than the checked head
    TextFormat("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 20),  # shorter than it
    TOKEN_FORMAT,  # a head, any length
    CIPHERTEXT_FORMAT,
]


@pytest.mark.parametrize("shape", FORMATS, ids=["hex64", "base32-20", "token", "ciphertext"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_malformed_counts_the_cells_outside_the_format(shape, data):
    def near(text: str) -> st.SearchStrategy[str]:  # a cell in the format, changed a little (or not)
        edits = st.tuples(
            st.integers(0, max(len(text), 1)), st.sampled_from(["", "é", "\n", "!", "a", "v1.", "=" * 30])
        )
        return st.lists(edits, max_size=2).map(lambda cuts: _edited(text, cuts))

    good = "v3." + "Ab_-" * 20 if shape.head else (shape.alphabet * 64)[: shape.length]
    cells = data.draw(st.lists(st.one_of(near(good), st.text(max_size=70), st.none()), max_size=12))
    array = pa.array(cells, pa.string())
    expected = sum(_outside_format(c, shape) for c in cells if c is not None)
    assert malformed(array, shape) == expected
    halves = pa.chunked_array([array.slice(0, len(cells) // 2), array.slice(len(cells) // 2)], pa.string())
    assert malformed(halves, shape) == expected  # a group of batches: the same count


def _edited(text: str, cuts: list[tuple[int, str]]) -> str:
    for at, put in cuts:
        text = text[:at] + put + text[at + 1 :]
    return text


def texts_with_references() -> pa.Table:
    """Notes that name a customer id (no detector finds one) and a reference of another row."""
    notes = [
        f"ticket {i:02d}: CUST{i:04d} reopened" if i % 3 == 0 else f"see R{(i + 1) % ROWS:05d}" for i in range(ROWS)
    ]
    data = table().set_column(0, "customer_id", pa.array([f"CUST{i:04d}" for i in range(ROWS)]))
    return data.set_column(3, "notes", pa.array(notes)).append_column(
        "ref", pa.array([f"R{i:05d}" for i in range(ROWS)])
    )


def recount_inside(rows: list[dict], text: str, kept: set[str]) -> int:
    """Raw values (of fields not kept, other than `text`) found in the `text` cells: the places."""
    values = {str(r[f]) for r in rows for f in r if f not in kept | {text} and len(str(r[f])) >= 4}
    return count_in_text([r[text] for r in rows], values, {str(r[f]) for r in rows for f in kept})


@pytest.mark.parametrize("ref", ["keep", "drop"])
def test_verify_compares_across_fields_and_inside_text(keyset, tmp_path, ref):
    fields = f"""  customer_id: {{action: pseudonymize}}
  email: {{action: replace, value: CUST0005}}
  zip: {{action: replace, value: "12000"}}
  card: {{action: replace, value: "012000"}}
  notes: {{action: scrub, entities: [email]}}
  ref: {{action: {ref}}}
"""
    data = texts_with_references()
    plan = compile_plan(policy(fields), data.schema)
    findings = run_verify(plan, data.to_batches(max_chunksize=7), tmp_path, keyset=keyset)
    rows = data.to_pylist()
    kept = {"ref"} if ref == "keep" else set()
    inside = recount_inside(rows, "notes", kept)
    assert inside == sum(1 for i in range(ROWS) if i % 3 == 0) + (0 if kept else ROWS - ROWS // 3)
    incomes = {str(r["income"]) for r in rows}  # an integer column: its values' decimal text
    assert "12000" in incomes and "012000" not in incomes
    # a label that is another field's raw value counts in every cell; the notes' ids and references inside
    assert findings["raw_values"] == {"email": ROWS, "zip": ROWS, "notes": inside}


def test_all_null_columns_and_empty_batches_count_nothing(keyset, tmp_path):
    empty = table().slice(0, 0)
    nulls = pa.table({name: pa.nulls(4, column.type) for name, column in zip(table().column_names, table().columns)})
    fields = "  customer_id: {action: pseudonymize}\n  notes: {action: scrub}\n  zip: {action: generalize, prefix: 2}\n"
    plan = compile_plan(policy(fields), table().schema)
    findings = run_verify(plan, [*empty.to_batches(), *nulls.to_batches()], tmp_path, keyset=keyset)
    assert findings["cells_checked"] == 0 and findings["raw_values"] == {} and findings["patterns"] == {}


def test_an_input_without_batches_gives_one_findings_of_zero(keyset, tmp_path):
    plan = compile_plan(policy("  customer_id: {action: pseudonymize}\n"), table().schema)
    findings = run_verify(plan, [], tmp_path, keyset=keyset)  # one line, as run_verify requires
    assert findings["cells_checked"] == 0 and findings["raw_values"] == {} and findings["patterns"] == {}


def test_fields_the_input_batches_lack_are_not_compared(keyset, tmp_path):
    data = texts_with_references()
    plan = compile_plan(policy("  notes: {action: scrub, entities: [email]}\n"), data.schema)
    assert "ref" in VerifySpec.of(plan).input_fields  # dropped by the policy, compared when read
    rows, counts = data.to_pylist(), []
    for read in (data, data.drop_columns(["ref"])):
        folder = tmp_path / str(read.num_columns)
        folder.mkdir()
        findings = run_verify(plan, read.to_batches(max_chunksize=7), folder, keyset=keyset)
        lacking = set(data.column_names) - set(read.column_names)
        expected = recount_inside([{k: v for k, v in r.items() if k not in lacking} for r in rows], "notes", set())
        assert findings["raw_values"] == {"notes": expected}
        counts.append(expected)
    assert counts[0] > counts[1] > 0  # the references count only where the ref column was read


def test_a_part_reads_back_as_written_and_joins_the_same():
    """Spilled parts are numbers only (no pickle) and join as the parts they were made of."""
    rng = np.random.default_rng(3)
    h = lambda n: rng.integers(0, 2**63, n, dtype=np.uint64)  # noqa: E731
    shared = h(5)
    parts = [
        Part(raw={"zip": np.concatenate([shared[:3], h(4)])}, kept=[h(2)]),
        Part(raw={"zip": shared[3:]}, normal={"zip": h(3)}, out={"zip": [(shared[:4], np.array([2, 1, 1, 3]))]}),
        Part(out={"zip": [(np.concatenate([shared[4:], h(6)]), np.ones(7, np.int64))], "notes": [(h(0), h(0))]}),
    ]
    back = Part.from_bytes(Part.merged(parts).to_bytes())
    assert sorted(back.raw["zip"].tolist()) == sorted(np.concatenate([p.raw["zip"] for p in parts[:2]]).tolist())
    assert back.normal["zip"].tolist() == parts[1].normal["zip"].tolist()
    assert back.kept[0].tolist() == parts[0].kept[0].tolist() and back.nbytes == Part.merged(parts).nbytes
    ((hashes, counts),) = back.out["zip"]
    assert dict(zip(hashes.tolist(), counts.tolist())) == {
        **{int(v): 1 for v in parts[2].out["zip"][0][0]},
        **dict(zip(shared[:4].tolist(), [2, 1, 1, 3])),
    }
    spec = VerifySpec.of(compile_plan(policy("  zip: {action: generalize, prefix: 5}\n"), table().schema))
    assert join_shard(spec, [back]) == join_shard(spec, parts) == {"raw.zip": 2 + 1 + 1 + 3 + 1}


def test_verify_on_a_remote_runner_needs_a_folder_every_worker_reads(tmp_path):
    remote = SimpleNamespace(options=PipelineOptions(["--runner", "DataflowRunner"]))
    with pytest.raises(ConfigError, match="temp_location"):
        spill_folder(remote, None)
    given_folder = spill_folder(remote, "gs://bucket/tmp")
    assert given_folder.startswith("gs://bucket/tmp/veil-verify-")
    dataflow = SimpleNamespace(options=PipelineOptions(["--runner", "DataflowRunner", "--temp_location", "gs://b/t"]))
    assert spill_folder(dataflow, None).startswith("gs://b/t/veil-verify-")
    assert spill_folder(SimpleNamespace(options=PipelineOptions([])), None).startswith(tempfile.gettempdir())
