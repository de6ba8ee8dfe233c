"""Read and write the file formats veil supports (inputs, views, the policy's tables) as Arrow batches.

Parquet, CSV and JSON Lines are chosen by extension. The input's schema is read on the
driver (from the first file; Parquet footers of every file) so the policy is checked against
it before any data moves, and every file is read with that one schema.
"""

import io
import json
import os
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from veil.errors import InputError
from veil.transforms import avro
from veil.transforms.engine import BATCHES_PER_ROW_GROUP, ROWS_PER_BATCH

FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".avro": "avro",
}
SUFFIX = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl", "avro": avro.SUFFIX}
SCHEMA_SAMPLE_BYTES = 1 << 20
PARQUET_RANGE_BYTES = 16 << 20  # a unit of reading work: enough of them for every worker to get a share


def format_of(path: str) -> str:
    """parquet, csv, jsonl or avro, from the file's extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise InputError(
            f"input {path}: unknown format '{ext or '(no extension)'}'; use .parquet, .csv, .jsonl or .avro files"
        )
    return FORMATS[ext]


def match_inputs(pattern: str) -> list[str]:
    """The files `pattern` (a path, folder or glob, local or remote) names, sorted."""
    if not any(ch in pattern for ch in "*?[") and os.path.isdir(pattern):
        pattern = os.path.join(pattern, "*")
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception:
        matched = []
    files = sorted(m.path for m in matched if not os.path.basename(m.path).startswith(("_", ".")))
    if not files:
        raise InputError(f"input {pattern} matches no files")
    return files


def _open(path: str):
    return FileSystems.open(path, compression_type="uncompressed")


def _parquet_schema(path: str) -> pa.Schema:
    try:
        with _open(path) as handle:
            return pq.read_schema(handle)
    except (pa.ArrowException, OSError):
        raise InputError(f"input {path} is not a readable Parquet file (corrupt or truncated?)") from None


def _sample_csv(path: str) -> pa.Schema:
    try:
        with _open(path) as handle:
            return pa_csv.open_csv(handle).schema
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"input {path} is not readable CSV ({type(exc).__name__})") from None


def _sample_jsonl(path: str) -> pa.Schema:
    with _open(path) as handle:
        head = handle.read(SCHEMA_SAMPLE_BYTES)
    if len(head) == SCHEMA_SAMPLE_BYTES:
        head = head[: head.rfind(b"\n") + 1]
    try:
        return pa_json.read_json(io.BytesIO(head)).schema
    except (pa.ArrowException, OSError):
        raise InputError(f"input {path} is not readable JSON Lines (one JSON object per line)") from None


def read_schema(files: list[str], fmt: str) -> pa.Schema:
    """The one schema of the input files (every Parquet footer must agree)."""
    if fmt in ("parquet", "avro"):
        schemas = [_parquet_schema(path) if fmt == "parquet" else avro.read_schema(path) for path in files]
        first = schemas[0].remove_metadata()
        for path, schema in zip(files[1:], schemas[1:]):
            if not schema.remove_metadata().equals(first):
                raise InputError(f"input {path} has a different schema than {files[0]}; run each schema separately")
        return first
    return _sample_csv(files[0]) if fmt == "csv" else _sample_jsonl(files[0])


def _conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema, where: str) -> Iterable[pa.RecordBatch]:
    try:
        table = table.cast(schema) if not table.schema.equals(schema) else table
    except (pa.ArrowException, ValueError):
        raise InputError(f"input {where}: columns do not match the input schema") from None
    if isinstance(table, pa.RecordBatch):
        yield table
        return
    yield from table.combine_chunks().to_batches(max_chunksize=ROWS_PER_BATCH)


def _read_text_file(path: str, fmt: str, schema: pa.Schema, columns: list[str]) -> Iterable[pa.RecordBatch]:
    with _open(path) as handle:
        try:
            if fmt == "csv":
                options = pa_csv.ConvertOptions(column_types=schema, include_columns=columns)
                reader = pa_csv.open_csv(handle, convert_options=options)
                for batch in reader:
                    yield from _conform(batch, _project(schema, columns), path)
            else:
                table = pa_json.read_json(handle, parse_options=pa_json.ParseOptions(explicit_schema=schema))
                yield from _conform(table.select(columns), _project(schema, columns), path)
        except pa.ArrowInvalid:
            raise InputError(
                f"input {path}: a row does not fit the column types inferred from the "
                f"start of the file ({fmt}); convert the file to Parquet with "
                "explicit types"
            ) from None


def _project(schema: pa.Schema, columns: list[str]) -> pa.Schema:
    return pa.schema([schema.field(name) for name in columns])


class ReadBatches(beam.PTransform):
    """Files of one format -> PCollection of RecordBatches with `schema` (or its `columns` only).

    Args:
        files: the files, all of format `fmt`.
        fmt: parquet, csv or jsonl.
        schema: their one schema.
        columns: read only these columns (in schema order): what the job needs, nothing else
            is decoded. Default: every column.
    """

    def __init__(self, files: list[str], fmt: str, schema: pa.Schema, columns: list[str] | None = None):
        super().__init__()
        self._files, self._fmt, self._schema = files, fmt, schema
        self._columns = [name for name in schema.names if columns is None or name in columns]

    def expand(self, pbegin):
        full, columns = self._schema, self._columns
        schema = _project(full, columns)
        if self._fmt == "avro":  # byte ranges of every file, records gathered into batches
            return pbegin | "Avro" >> avro.ReadAvroBatches(self._files, schema, ROWS_PER_BATCH)
        if self._fmt == "parquet":  # byte ranges of every file, spread over the workers (Reshuffle inside)
            tables = (
                pbegin
                | "Files" >> beam.Create(self._files)
                | "ReadParquet"
                >> beam.io.ReadAllFromParquetBatched(desired_bundle_size=PARQUET_RANGE_BYTES, columns=columns)
            )
            return tables | "ToBatches" >> beam.FlatMap(
                lambda table: _conform(table, schema, "parquet")
            ).with_output_types(pa.RecordBatch)
        fmt = self._fmt
        return (
            pbegin
            | "Files" >> beam.Create(self._files)
            | "Spread" >> beam.Reshuffle()
            | "Read"
            >> beam.FlatMap(lambda path: _read_text_file(path, fmt, full, columns)).with_output_types(pa.RecordBatch)
        )


def read_columns(
    files: list[str], fmt: str, columns: list[str], types: dict[str, pa.DataType], names: list[str] | None = None
) -> pa.Table:
    """The named columns of `files` (one format) as one table, on the driver: for small reads such as a report's.

    Args:
        types: the Arrow type of columns whose text spelling (CSV, JSON Lines) must not be inferred
            (a zip code "010" stays text).
        names: every column of a CSV file, in order, when known (its header line is then skipped).

    Raises:
        InputError: a file cannot be read, or lacks a column.
    """
    tables = []
    for path in files:
        try:
            with _open(path) as handle:
                if fmt == "parquet":
                    table = pq.read_table(handle, columns=list(columns))
                elif fmt == "avro":
                    table = avro.read_table(handle, path, list(columns))
                elif fmt == "csv":
                    read = pa_csv.ReadOptions(column_names=names, skip_rows=1 if names else 0)
                    convert = pa_csv.ConvertOptions(column_types=types, include_columns=list(columns))
                    table = pa_csv.read_csv(handle, read_options=read, convert_options=convert)
                else:
                    data = handle.read()
                    if not data.strip():  # an empty shard
                        continue
                    schema = pa.schema(list(types.items())) if types else None
                    parse = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
                    table = pa_json.read_json(io.BytesIO(data), parse_options=parse).select(list(columns))
        except (pa.ArrowException, OSError, KeyError) as exc:
            raise InputError(f"file {path} cannot be read ({type(exc).__name__})") from None
        tables.append(table)
    if not tables:
        return pa.table({name: pa.array([], types.get(name, pa.null())) for name in columns})
    return pa.concat_tables(tables, promote_options="permissive")


def _json_default(value: Any) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(type(value).__name__)


def _to_jsonl(batch: pa.RecordBatch) -> str:
    return "\n".join(json.dumps(row, default=_json_default, ensure_ascii=False) for row in batch.to_pylist())


def _flatten_lists(batch: pa.RecordBatch) -> pa.RecordBatch:
    arrays = [
        pc.binary_join(col, ";") if pa.types.is_list(col.type) or pa.types.is_large_list(col.type) else col
        for col in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _to_csv(batch: pa.RecordBatch) -> str:
    sink = io.BytesIO()
    pa_csv.write_csv(_flatten_lists(batch), sink, pa_csv.WriteOptions(include_header=False))
    return sink.getvalue().decode("utf-8").rstrip("\n")


def csv_header(schema: pa.Schema) -> str:
    """The CSV header line for `schema`, quoted the way pyarrow quotes."""
    sink = io.BytesIO()
    pa_csv.write_csv(pa.table({n: pa.array([], pa.string()) for n in schema.names}), sink)
    return sink.getvalue().decode("utf-8").rstrip("\n")


def _row_group(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """One Parquet row group's table from the batches a bundle gathered (one chunk: one row group)."""
    return pa.Table.from_batches(batches, schema=schema).combine_chunks()


class WriteBatches(beam.PTransform):
    """RecordBatches -> `<prefix>-SSSSS-of-NNNNN.<format>` files."""

    def __init__(self, prefix: str, fmt: str, schema: pa.Schema):
        super().__init__()
        self._prefix, self._fmt, self._schema = prefix, fmt, schema

    def expand(self, batches):
        suffix = SUFFIX[self._fmt]
        if self._fmt == "avro":
            return batches | "Avro" >> avro.WriteAvroBatches(self._prefix, self._schema)
        if self._fmt == "parquet":
            return (
                batches
                | "Gather"
                >> beam.BatchElements(min_batch_size=BATCHES_PER_ROW_GROUP, max_batch_size=BATCHES_PER_ROW_GROUP)
                | "ToTable" >> beam.Map(_row_group, self._schema).with_output_types(pa.Table)
                | "WriteParquet"
                >> beam.io.WriteToParquetBatched(self._prefix, self._schema, codec="snappy", file_name_suffix=suffix)
            )
        if self._fmt == "csv":
            lines, header = batches | "ToCsv" >> beam.Map(_to_csv).with_output_types(str), csv_header(self._schema)
        else:
            lines, header = batches | "ToJsonl" >> beam.Map(_to_jsonl).with_output_types(str), None
        return lines | "WriteText" >> beam.io.WriteToText(self._prefix, file_name_suffix=suffix, header=header)
