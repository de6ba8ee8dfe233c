"""Avro in and out: `veil run` over `.avro` inputs equals the Parquet run; `--format avro` views read back."""

import base64
import json
import os
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import cli

from veil.errors import InputError, OutputError
from veil.keys import init_keyset
from veil.pipelines.synthetic import synthetic_customers
from veil.transforms.avro import arrow_schema, avro_schema

ROOT = Path(__file__).resolve().parents[2]
MARKETING = ROOT / "configs" / "marketing.yaml"
ROWS = 80

# Written by hand (not by veil's mapping), as BigQuery's Avro export would type these columns.
CUSTOMERS_AVRO = {
    "type": "record",
    "name": "customers",
    "fields": [
        {"name": "customer_id", "type": "string"},
        {"name": "first_name", "type": ["null", "string"]},
        {"name": "email", "type": ["null", "string"]},
        {"name": "phone", "type": ["null", "string"]},
        {"name": "birth_date", "type": ["null", {"type": "int", "logicalType": "date"}]},
        {"name": "city", "type": ["null", "string"]},
        {"name": "country", "type": ["null", "string"]},
        {"name": "signup_ts", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}]},
        {"name": "consents", "type": ["null", {"type": "array", "items": "string"}]},
    ],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("avro")
    table = synthetic_customers(ROWS).select([f["name"] for f in CUSTOMERS_AVRO["fields"]])
    pq.write_table(table, root / "in.parquet")
    (root / "in").mkdir()
    rows = table.to_pylist()
    for part, chunk in enumerate((rows[: ROWS // 2], rows[ROWS // 2 :])):  # two files, one schema
        with open(root / "in" / f"customers-{part}.avro", "wb") as handle:
            fastavro.writer(handle, fastavro.parse_schema(CUSTOMERS_AVRO), chunk)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
        init_keyset(str(root / "k"))
        for name, source, fmt in (("from_parquet", "in.parquet", "parquet"), ("from_avro", "in", "avro")):
            options = ["--output", root / name, "--keyset", root / "k", "--format", fmt]
            result = cli("run", MARKETING, "--input", root / source, *options)
            assert result.code == 0, result.err
        yield root


def read_avro_view(folder: Path) -> tuple[list[dict], dict]:
    rows, schema = [], None
    for path in sorted(folder.glob("part-*.avro")):
        with open(path, "rb") as handle:
            reader = fastavro.reader(handle)
            schema = reader.writer_schema
            rows.extend(reader)
    return rows, schema


def by_key(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: r["customer_key"])


def test_an_avro_input_gives_the_same_view_as_the_parquet_input(world):
    expected = pq.read_table(world / "from_parquet").to_pylist()
    rows, _ = read_avro_view(world / "from_avro")
    assert len(rows) == len(expected) > 10
    assert by_key(rows) == by_key(expected)
    manifest = json.loads((world / "from_avro" / "_manifest.json").read_text())
    assert manifest["inputs"]["format"] == "avro" and len(manifest["inputs"]["files"]) == 2
    assert manifest["output"]["format"] == "avro"
    assert manifest["output"]["files"] and all(name.endswith(".avro") for name in manifest["output"]["files"])


def test_the_avro_view_keeps_types_bigquery_loads(world):
    rows, schema = read_avro_view(world / "from_avro")
    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert types["customer_key"] == ["null", "string"]
    assert types["birth_year"] == ["null", {"type": "int", "logicalType": "date"}]
    assert all(isinstance(r["birth_year"], date) for r in rows if r["birth_year"] is not None)
    assert [f["name"] for f in schema["fields"]] == pq.read_schema(
        next((world / "from_parquet").glob("*.parquet"))
    ).names


def test_the_avro_mapping_round_trips_every_supported_type():
    schema = pa.schema(
        [
            ("s", pa.string()),
            ("b", pa.bool_()),
            ("i", pa.int32()),
            ("l", pa.int64()),
            ("f", pa.float32()),
            ("d", pa.float64()),
            ("raw", pa.binary()),
            ("day", pa.date32()),
            ("at", pa.timestamp("us", tz="UTC")),
            ("local", pa.timestamp("ms")),
            ("money", pa.decimal128(12, 2)),
            ("tags", pa.list_(pa.string())),
            ("where", pa.struct([("city", pa.string()), ("zip", pa.string())])),
        ]
    )
    back = arrow_schema(fastavro.parse_schema(avro_schema(schema)), "test")
    assert back.equals(schema)


def test_values_survive_a_write_and_read(tmp_path):
    schema = pa.schema([("day", pa.date32()), ("at", pa.timestamp("us", tz="UTC")), ("money", pa.decimal128(12, 2))])
    rows = [
        {
            "day": date(2026, 1, 2),
            "at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc),
            "money": Decimal("1.25"),
        },
        {"day": None, "at": None, "money": None},
    ]
    with open(tmp_path / "x.avro", "wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(avro_schema(schema)), rows)
    with open(tmp_path / "x.avro", "rb") as handle:
        assert list(fastavro.reader(handle)) == rows


def test_unreadable_and_unwritable_types_are_named():
    union = {"type": "record", "name": "r", "fields": [{"name": "either", "type": ["int", "string"]}]}
    with pytest.raises(InputError, match="field 'either' has a union of several non-null types"):
        arrow_schema(union, "in.avro")
    with pytest.raises(OutputError, match="'first name' is not a valid Avro name"):
        avro_schema(pa.schema([("first name", pa.string())]))
    with pytest.raises(OutputError, match="field 'm' is of type map"):
        avro_schema(pa.schema([("m", pa.map_(pa.string(), pa.int64()))]))


def test_a_corrupt_avro_input_is_one_clear_line(tmp_path):
    (tmp_path / "bad.avro").write_bytes(b"not avro at all")
    result = cli("validate", MARKETING, "--input", tmp_path / "bad.avro")
    assert result.code == 2 and "bad.avro is not a readable Avro file" in result.err
