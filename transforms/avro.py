"""Avro files as Arrow batches: schema mapping both ways, a splittable reader and a writer.

Avro is what BigQuery exports and loads with its types intact (dates, timestamps, decimals),
so veil reads `.avro` inputs and writes `--format avro` views. Records go through Beam's Avro
source (fastavro), byte ranges of every file spread across workers (`veil.transforms.file_ranges`);
rows are gathered into Arrow batches of `ROWS_PER_BATCH` for the engine, and written back with `WriteToAvro`.

Type mapping (every view field is written nullable, `["null", T]` with default null):

| Avro | Arrow |
|---|---|
| boolean, int, long, float, double, bytes, string | bool, int32, int64, float32, float64, binary, string |
| enum, `uuid` string | string |
| fixed | fixed_size_binary |
| `date` int | date32 |
| `timestamp-millis` / `-micros` long | timestamp(ms / us, UTC) |
| `local-timestamp-millis` / `-micros` long | timestamp(ms / us), no time zone |
| `time-millis` int / `time-micros` long | time32(ms) / time64(us) |
| `decimal` bytes or fixed | decimal128(precision, scale) |
| array, map (string keys), record | list, map, struct |
| union of null and one type | that type, nullable |
"""

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from veil.errors import InputError, OutputError
from veil.transforms.file_ranges import ByteRange, ReadRanges, avro_source, byte_ranges, read_range

SUFFIX = ".avro"
RECORD_NAME = "veil_view"
READ_RANGE_BYTES = 4 << 20  # a unit of reading work: many, so that every worker gets an even share
_AVRO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_PRIMITIVES = {
    "null": pa.null(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "string": pa.string(),
}
_LOGICAL = {
    "date": pa.date32(),
    "timestamp-millis": pa.timestamp("ms", tz="UTC"),
    "timestamp-micros": pa.timestamp("us", tz="UTC"),
    "local-timestamp-millis": pa.timestamp("ms"),
    "local-timestamp-micros": pa.timestamp("us"),
    "time-millis": pa.time32("ms"),
    "time-micros": pa.time64("us"),
    "uuid": pa.string(),
}


class _Unsupported(Exception):
    """An Avro or Arrow type with no counterpart (carries the reason, never a value)."""


def _to_arrow(schema: Any, named: dict[str, pa.DataType]) -> pa.DataType:
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        if schema in named:
            return named[schema]
        raise _Unsupported(f"unknown Avro type '{schema}'")
    if isinstance(schema, list):
        members = [member for member in schema if member != "null"]
        if len(members) != 1:
            raise _Unsupported("a union of several non-null types")
        return _to_arrow(members[0], named)
    kind, logical = schema.get("type"), schema.get("logicalType")
    if logical == "decimal" and schema.get("precision", 39) <= 38:
        return pa.decimal128(schema["precision"], schema.get("scale", 0))
    if logical in _LOGICAL:
        return _LOGICAL[logical]
    if kind == "record":
        arrow = pa.struct([pa.field(f["name"], _to_arrow(f["type"], named)) for f in schema["fields"]])
    elif kind == "enum":
        arrow = pa.string()
    elif kind == "fixed":
        arrow = pa.binary(schema["size"])
    elif kind == "array":
        return pa.list_(_to_arrow(schema["items"], named))
    elif kind == "map":
        return pa.map_(pa.string(), _to_arrow(schema["values"], named))
    else:
        return _to_arrow(kind, named)
    named[schema["name"]] = arrow
    if schema.get("namespace"):
        named[f"{schema['namespace']}.{schema['name']}"] = arrow
    return arrow


def arrow_schema(avro_schema: Mapping[str, Any], where: str) -> pa.Schema:
    """The Arrow schema of records of `avro_schema` (a record schema, as fastavro parses it).

    Raises:
        InputError: the schema is not a record, or a field has a type veil cannot map.
    """
    if not isinstance(avro_schema, Mapping) or avro_schema.get("type") != "record":
        raise InputError(f"input {where}: an Avro file of records is needed (its schema is not a record)")
    named: dict[str, pa.DataType] = {}
    fields = []
    for field in avro_schema["fields"]:
        try:
            fields.append(pa.field(field["name"], _to_arrow(field["type"], named)))
        except _Unsupported as reason:
            raise InputError(f"input {where}: field '{field['name']}' has {reason}, which veil cannot read") from None
    return pa.schema(fields)


def read_schema(path: str) -> pa.Schema:
    """The Arrow schema of the Avro file at `path`, from its header."""
    import fastavro

    try:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            writer_schema = fastavro.reader(handle).writer_schema
    except MemoryError:
        raise
    except Exception:  # a damaged header fails in many ways (bad varint, bad JSON schema, EOF): the file's fault
        raise InputError(f"input {path} is not a readable Avro file (corrupt or truncated?)") from None
    return arrow_schema(writer_schema, path)


def read_table(handle: BinaryIO, where: str, columns: list[str], rows: int | None = None) -> pa.Table:
    """The named columns of one open Avro file (its first `rows` records, if given) as a table, on the
    driver (small reads: reports, a scan's sample)."""
    import fastavro

    reader = fastavro.reader(handle)
    schema = arrow_schema(reader.writer_schema, where)
    missing = [name for name in columns if name not in schema.names]
    if missing:
        raise InputError(f"file {where} has no column {', '.join(missing)}")
    records = list(reader if rows is None else itertools.islice(reader, rows))
    return pa.Table.from_pylist(records, schema=pa.schema([schema.field(name) for name in columns]))


def _name(name: str, where: str) -> str:
    if not _AVRO_NAME.match(name):
        raise _Unsupported(f"'{where}' is not a valid Avro name (ASCII letters, digits, _): rename it with 'as'")
    return name


def _avro_type(arrow: pa.DataType, where: str, records: list[int]) -> Any:
    t = pa.types
    if t.is_dictionary(arrow):
        return _avro_type(arrow.value_type, where, records)
    if t.is_string(arrow) or t.is_large_string(arrow):
        return "string"
    if t.is_boolean(arrow):
        return "boolean"
    if t.is_int8(arrow) or t.is_int16(arrow) or t.is_int32(arrow) or t.is_uint8(arrow) or t.is_uint16(arrow):
        return "int"
    if t.is_int64(arrow) or t.is_uint32(arrow):
        return "long"
    if t.is_float16(arrow) or t.is_float32(arrow):
        return "float"
    if t.is_float64(arrow):
        return "double"
    if t.is_binary(arrow) or t.is_large_binary(arrow):
        return "bytes"
    if t.is_fixed_size_binary(arrow):
        records[0] += 1
        return {"type": "fixed", "name": f"fixed_{records[0]}", "size": arrow.byte_width}
    if t.is_date(arrow):
        return {"type": "int", "logicalType": "date"}
    if t.is_timestamp(arrow):
        unit = "millis" if arrow.unit in ("s", "ms") else "micros"
        return {"type": "long", "logicalType": f"{'' if arrow.tz else 'local-'}timestamp-{unit}"}
    if t.is_time32(arrow):
        return {"type": "int", "logicalType": "time-millis"}
    if t.is_time64(arrow):
        return {"type": "long", "logicalType": "time-micros"}
    if t.is_decimal(arrow) and arrow.precision <= 38:
        return {"type": "bytes", "logicalType": "decimal", "precision": arrow.precision, "scale": arrow.scale}
    if t.is_list(arrow) or t.is_large_list(arrow):
        return {"type": "array", "items": ["null", _avro_type(arrow.value_type, where, records)]}
    if t.is_struct(arrow):
        records[0] += 1
        return {
            "type": "record",
            "name": f"record_{records[0]}",
            "fields": [_avro_field(child, f"{where}.{child.name}", records) for child in arrow],
        }
    if t.is_null(arrow):
        return "null"
    raise _Unsupported(f"field '{where}' is of type {arrow}, which veil cannot write as Avro")


def _avro_field(field: pa.Field, where: str, records: list[int]) -> dict[str, Any]:
    avro = _avro_type(field.type, where, records)
    return {"name": _name(field.name, where), "type": avro if avro == "null" else ["null", avro], "default": None}


def avro_schema(schema: pa.Schema) -> dict[str, Any]:
    """The Avro record schema a view of Arrow `schema` is written with (every field nullable).

    Raises:
        OutputError: a field's name or type has no Avro form (the message names the field).
    """
    records = [0]
    try:
        fields = [_avro_field(field, field.name, records) for field in schema]
    except _Unsupported as reason:
        raise OutputError(f"cannot write Avro: {reason}") from None
    return {"type": "record", "name": RECORD_NAME, "fields": fields}


def _rows_to_batch(rows: list[dict], schema: pa.Schema) -> pa.RecordBatch:
    try:
        return pa.RecordBatch.from_pylist(rows, schema=schema)
    except (pa.ArrowException, ValueError, TypeError):
        raise InputError("Avro input: records do not match the input schema (files of different schemas?)") from None


class ReadAvroBatches(beam.PTransform):
    """Avro files -> PCollection of RecordBatches with `schema` (the columns to read).

    Files are split into byte ranges read in parallel (Beam's Avro source, as `ReadAllFromAvro`);
    records are gathered into batches of `rows_per_batch`.
    """

    def __init__(self, files: list[str], schema: pa.Schema, rows_per_batch: int):
        super().__init__()
        self._files, self._schema, self._rows = files, schema, rows_per_batch

    def expand(self, pbegin):
        schema, rows = self._schema, self._rows
        return pbegin | "ReadAvro" >> ReadRanges(
            self._files,
            lambda path: byte_ranges([path], READ_RANGE_BYTES),
            lambda part: batches_of(part, schema, rows),
            pa.RecordBatch,
        )


def batches_of(byte_range: ByteRange, schema: pa.Schema, rows: int) -> Iterator[pa.RecordBatch]:
    """The records of the Avro blocks starting in one byte range, in batches of `rows` with `schema`."""
    gathered = []
    for record in read_range(avro_source(byte_range[0]), byte_range):
        gathered.append(record)
        if len(gathered) == rows:
            yield _rows_to_batch(gathered, schema)
            gathered = []
    if gathered:
        yield _rows_to_batch(gathered, schema)


def _records(batch: pa.RecordBatch) -> Iterable[dict]:
    return batch.to_pylist()


class WriteAvroBatches(beam.PTransform):
    """RecordBatches -> `<prefix>-SSSSS-of-NNNNN.avro` files (Beam's `WriteToAvro`, deflate)."""

    def __init__(self, prefix: str, schema: pa.Schema):
        super().__init__()
        self._prefix, self._avro = prefix, avro_schema(schema)  # refuses an unwritable schema now

    def expand(self, batches):
        return (
            batches
            | "ToRecords" >> beam.FlatMap(_records).with_output_types(dict)
            | "WriteAvro" >> beam.io.WriteToAvro(self._prefix, schema=self._avro, file_name_suffix=SUFFIX)
        )
