"""Fuzzing the consent and erasure tables: columns of the wrong type, nulls, in every table format.

A table is read (null entries ignored), or refused with one `InputError` naming it and showing
no subject; `veil run` with it prints one `error:` line, exit 2.
"""

import base64
import json
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from fuzzing import assert_clean, assert_no_value, budget, fuzz
from helpers import cli
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import InputError
from veil.keys import init_keyset
from veil.pipelines.synthetic import write_customers
from veil.transforms.gates import _ConsentEntries, _ErasedRefs
from veil.transforms.io import read_file
from veil.transforms.policy import load_policy
from veil.transforms.subjects import PARTITIONS, latest_consent
from veil.transforms.tables import ERASURE_MARKER, GateTables

MASTER = base64.b64encode(bytes(range(32))).decode()
ROWS = 8
KINDS = {
    "string": (pa.string(), st.sampled_from(["C0000001", "C0000002", "analytics", "true", "no", "2025-01-01T10:00Z"])),
    "int": (pa.int64(), st.integers(-5, 5)),
    "float": (pa.float64(), st.floats(allow_nan=True)),
    "bool": (pa.bool_(), st.booleans()),
    "timestamp": (pa.timestamp("us", tz="UTC"), st.datetimes(timezones=st.just(timezone.utc))),
    "date": (pa.date32(), st.dates()),
    "list": (pa.list_(pa.string()), st.lists(st.text(max_size=3), max_size=2)),
    "null": (pa.null(), st.none()),
}
POLICY = """version: 1
purpose: analytics
subject: customer_id
keyset: keyset.json
consent: {table: consent.FORMAT}
erasure: {table: erasures}
fields:
  customer_id: {action: pseudonymize}
  city: {action: keep}
"""


@st.composite
def columns(draw, names: list[str]) -> pa.Table:
    """A table of `names`, each column of a random type, values drawn with nulls among them."""
    arrays = {}
    for name in names:
        kind, values = KINDS[draw(st.sampled_from(sorted(KINDS)))]
        arrays[name] = pa.array([draw(st.none() | values) for _ in range(ROWS)], kind)
    return pa.table(arrays)


def write_table(table: pa.Table, path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "csv":
        flat = [pa.compute.binary_join(c, ";") if pa.types.is_list(c.type) else c for c in table.columns]
        pa_csv.write_csv(pa.table(flat, names=table.column_names), path)
    else:
        default = lambda v: v.isoformat() if isinstance(v, (date, datetime)) else str(v)  # noqa: E731
        path.write_text("".join(json.dumps(row, default=default) + "\n" for row in table.to_pylist()))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MASTER_KEY", MASTER)
        init_keyset(str(root / "keyset.json"))
    write_customers(str(root / "in.parquet"), 20)
    return root


def make_tables(root, data) -> tuple[str, list[str]]:
    """A policy over a random consent table and a random erasure file; (policy path, subjects in them)."""
    fmt = data.draw(st.sampled_from(["parquet", "csv", "jsonl"]))
    consent = data.draw(columns(["subject", "purpose", "granted", "at"]))
    write_table(consent, root / f"consent.{fmt}", fmt)
    erasures = root / "erasures"
    erasures.mkdir()
    (erasures / ERASURE_MARKER).write_text('{"veil_erasure_table": 1}\n')
    pq.write_table(data.draw(columns(["subject_ref", "erased_at"])), erasures / "erased-0.parquet")
    (root / "p.yaml").write_text(POLICY.replace("FORMAT", fmt))
    subjects = [str(v) for v in consent.column("subject").to_pylist() if v is not None]
    return str(root / "p.yaml"), subjects


def read_gates(policy_path: str) -> None:
    """What the gates read from the tables, as their Beam steps do; an `InputError` may stop it."""
    policy = load_policy(policy_path)
    tables = GateTables.of(policy)
    entries = _ConsentEntries(policy.keyset, policy, PARTITIONS)
    entries.setup()
    consent = tables.consent
    found = [e for f in consent.files for b in read_file(f, consent.format, consent.schema) for e in entries.process(b)]
    latest_consent(entry for _, chunk in found for entry in chunk)
    erased = _ErasedRefs(PARTITIONS)
    for path in tables.erasure.files:
        for batch in read_file(path, "parquet", tables.erasure.schema):
            list(erased.process(batch))


@fuzz
@given(st.data())
@budget(50)
def test_tables_of_any_column_types_are_read_or_refused(world, tmp_path_factory, monkeypatch, data):
    monkeypatch.setenv("VEIL_MASTER_KEY", MASTER)
    root = tmp_path_factory.mktemp("t")
    (root / "keyset.json").write_bytes((world / "keyset.json").read_bytes())
    policy, subjects = make_tables(root, data)
    try:
        read_gates(policy)
    except InputError as error:
        assert "\n" not in str(error)
        assert_no_value(str(error).replace(str(root), "ROOT"), [s for s in subjects if s.startswith("C0")])


@fuzz
@given(st.data())
@budget(1, pipeline=True)
def test_veil_run_with_odd_tables_prints_one_error_line(world, tmp_path_factory, monkeypatch, data):
    monkeypatch.setenv("VEIL_MASTER_KEY", MASTER)
    monkeypatch.delenv("VEIL_KEYSET", raising=False)
    root = tmp_path_factory.mktemp("t")
    (root / "keyset.json").write_bytes((world / "keyset.json").read_bytes())
    policy, subjects = make_tables(root, data)
    result = cli("run", policy, "--input", world / "in.parquet", "--output", root / "out")
    assert_clean(result, [s for s in subjects if s.startswith("C0")])


def test_an_erasure_entry_that_is_not_a_reference_fails_closed():
    """Found by fuzzing: `int(ref[:8], 16)` raised ValueError (exit 1); a damaged entry may be an erased subject."""
    batch = pa.record_batch({"subject_ref": ["a" * 64, "analytics"], "erased_at": pa.nulls(2, pa.timestamp("us"))})
    with pytest.raises(InputError, match="erasure table holds an entry that is not a subject reference"):
        list(_ErasedRefs(PARTITIONS).process(batch))


def test_consent_columns_of_the_wrong_type_are_refused_before_data_moves(world, tmp_path, monkeypatch):
    monkeypatch.setenv("VEIL_MASTER_KEY", MASTER)
    (tmp_path / "keyset.json").write_bytes((world / "keyset.json").read_bytes())
    table = pa.table({"subject": ["C1"], "purpose": [7], "granted": [True], "at": [date(2025, 1, 1)]})
    write_table(table, tmp_path / "consent.parquet", "parquet")
    (tmp_path / "erasures").mkdir()
    (tmp_path / "erasures" / ERASURE_MARKER).write_text("{}")
    (tmp_path / "p.yaml").write_text(POLICY.replace("FORMAT", "parquet"))
    with pytest.raises(InputError, match=r"column purpose \(purpose\) cannot hold int64"):
        GateTables.of(load_policy(tmp_path / "p.yaml"))
