"""Fuzzing the input readers: truncated and corrupted CSV, JSON Lines, Parquet and Avro files.

A damaged file reads (the damage hit only values), or is refused with one `InputError` that
shows none of the file's values; `veil run` over it prints one `error:` line, exit 2.
"""

import base64
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fuzzing import assert_clean, assert_no_value, budget, fuzz, mutated
from helpers import cli
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import InputError
from veil.keys import init_keyset
from veil.pipelines.synthetic import synthetic_customers, write_customers
from veil.transforms.avro import avro_schema
from veil.transforms.io import read_file, read_schema

ROWS = 24
SUFFIXES = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl", "avro": ".avro"}
TYPES = {"income": pa.int64()}  # CSV and JSON Lines parse one column, as a policy's input_types would
POLICY = """version: 1
purpose: analytics
keyset: keyset.json
fields:
  customer_id: {action: pseudonymize}
  email: {action: tokenize}
  city: {action: keep}
  income: {action: generalize, width: 10000}
input_types: {income: int64}
"""


def personal_values() -> set[str]:
    table = synthetic_customers(ROWS)
    return {str(v) for name in table.schema.names for v in table.column(name).to_pylist() if v is not None}


PERSONAL = personal_values()


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, bytes]:
    """A small valid file of each format (Parquet in row groups of 6 rows, Avro in small blocks)."""
    root = tmp_path_factory.mktemp("originals")
    table = synthetic_customers(ROWS)
    files = {}
    for fmt in ("csv", "jsonl"):
        path = root / f"in{SUFFIXES[fmt]}"
        write_customers(str(path), ROWS)
        files[fmt] = path.read_bytes()
    pq.write_table(table, root / "in.parquet", row_group_size=6)
    files["parquet"] = (root / "in.parquet").read_bytes()
    plain = table.drop_columns(["consents", "birth_date", "signup_ts"])  # Avro of the simple types
    with open(root / "in.avro", "wb") as out:
        fastavro.writer(out, avro_schema(plain.schema), plain.to_pylist(), sync_interval=200, codec="deflate")
    files["avro"] = (root / "in.avro").read_bytes()
    return files


def read_or_refuse(path: Path, fmt: str) -> None:
    try:
        schema = read_schema([str(path)], fmt, TYPES if fmt in ("csv", "jsonl") else None)
        for batch in read_file(str(path), fmt, schema):
            assert isinstance(batch, pa.RecordBatch)
    except InputError as error:
        assert "\n" not in str(error)
        assert_no_value(str(error).replace(str(path), "FILE"), PERSONAL)


@fuzz
@given(st.data())
@budget(100)
def test_damaged_files_read_or_are_refused(originals, tmp_path_factory, data):
    fmt = data.draw(st.sampled_from(sorted(originals)))
    path = tmp_path_factory.mktemp("damaged") / f"in{SUFFIXES[fmt]}"
    path.write_bytes(data.draw(mutated(originals[fmt])))
    read_or_refuse(path, fmt)


@pytest.mark.parametrize("fmt", sorted(SUFFIXES))
def test_the_undamaged_files_read_whole(originals, tmp_path, fmt):
    path = tmp_path / f"in{SUFFIXES[fmt]}"
    path.write_bytes(originals[fmt])
    schema = read_schema([str(path)], fmt, TYPES if fmt in ("csv", "jsonl") else None)
    assert sum(batch.num_rows for batch in read_file(str(path), fmt, schema)) == ROWS


@fuzz
@given(st.data())
@budget(1, pipeline=True)
def test_veil_run_over_a_damaged_file_prints_one_error_line(originals, tmp_path_factory, monkeypatch, data):
    monkeypatch.setenv("VEIL_MASTER_KEY", base64.b64encode(bytes(range(32))).decode())
    monkeypatch.delenv("VEIL_KEYSET", raising=False)
    root = tmp_path_factory.mktemp("run")
    init_keyset(str(root / "keyset.json"))
    (root / "p.yaml").write_text(POLICY)
    fmt = data.draw(st.sampled_from(sorted(originals)))
    path = root / f"in{SUFFIXES[fmt]}"
    path.write_bytes(data.draw(mutated(originals[fmt])))
    result = cli("run", root / "p.yaml", "--input", path, "--output", root / "out")
    assert_clean(result, PERSONAL)


@pytest.mark.parametrize(
    "fmt, damage, says",
    [  # each found by fuzzing: a UnicodeDecodeError, SchemaParseException or OSError from a reader (exit 1)
        ("csv", lambda d: b"\xae" + d, "header is not UTF-8"),
        ("jsonl", lambda d: d.replace(b'"city"', b'"c\xb0ty"', 1), "field name is not UTF-8"),
        ("jsonl", lambda d: d.replace(b"Kenneth", b"Ken\xb0eth", 1), "damaged data (text that is not UTF-8?)"),
        ("avro", lambda d: d.replace(b'"name": "zip"', b'"n!me": "zip"', 1), "not a readable Avro file"),
        ("parquet", lambda d: d[:60] + b"\xff" * 340 + d[400:], "the file is corrupt or truncated"),
    ],
)
def test_damage_found_by_fuzzing_is_refused_with_the_file_named(originals, tmp_path, fmt, damage, says):
    path = tmp_path / f"in{SUFFIXES[fmt]}"
    damaged = damage(originals[fmt])
    assert damaged != originals[fmt]
    path.write_bytes(damaged)
    with pytest.raises(InputError) as info:
        schema = read_schema([str(path)], fmt, TYPES if fmt in ("csv", "jsonl") else None)
        list(read_file(str(path), fmt, schema))
    assert str(path) in str(info.value) and says in str(info.value)
