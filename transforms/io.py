"""Read and write the file formats veil supports (inputs, views, the policy's tables) as Arrow batches.

Parquet, CSV and JSON Lines are chosen by extension. The input's schema is read on the
driver (from the first file; Parquet footers of every file) so the policy is checked against
it before any data moves, and every file is read with that one schema.
"""

import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping
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
from veil.transforms.arrow_coder import ArrowTableCoder  # noqa: F401 (registers the Arrow coders)
from veil.transforms.engine import BATCHES_PER_ROW_GROUP, ROWS_PER_BATCH
from veil.transforms.file_ranges import (
    ByteRange,
    ReadRanges,
    byte_ranges,
    parquet_source,
    read_range,
    row_group_ranges,
)

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
PARQUET_MIN_RANGE_BYTES = 1 << 20  # a unit of reading work: a row group, or small ones together up to this


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
    except (pa.ArrowException, OSError, UnicodeDecodeError):  # a damaged footer, names that are not UTF-8
        raise InputError(f"input {path} is not a readable Parquet file (corrupt or truncated?)") from None


def _sample_csv(path: str) -> pa.Schema:
    """Every CSV column is text: its header names, each a string column."""
    try:
        with _open(path) as handle:
            names = pa_csv.open_csv(handle).schema.names
    except UnicodeDecodeError:
        raise InputError(f"input {path}: its header is not UTF-8 text") from None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"input {path} is not readable CSV ({type(exc).__name__})") from None
    return pa.schema([(name, pa.string()) for name in names])


def _text_as_text(kind: pa.DataType) -> pa.DataType:
    """A type inferred from JSON text (timestamps from ISO strings, also inside lists) back to string."""
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
        return pa.string()
    if pa.types.is_list(kind):
        return pa.list_(_text_as_text(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _text_as_text(f.type)) for f in kind])
    return kind


def _sample_jsonl(path: str) -> pa.Schema:
    """JSON values keep their JSON type (string, number, bool, list, object); a string is never read as a date."""
    with _open(path) as handle:
        head = handle.read(SCHEMA_SAMPLE_BYTES)
    if len(head) == SCHEMA_SAMPLE_BYTES:
        head = head[: head.rfind(b"\n") + 1]
    try:
        inferred = pa_json.read_json(io.BytesIO(head)).schema
    except (pa.ArrowException, OSError):
        lines = head.splitlines()
        where = _bad_json_line(lines)
        if where:
            raise InputError(f"input {path}{where}: not a JSON object (JSON Lines holds one object per line)") from None
        raise InputError(
            f"input {path}{_type_change(lines)} changes type from the lines above (a number, then text, say); "
            "declare its type in the policy's input_types"
        ) from None
    try:
        return pa.schema([(f.name, _text_as_text(f.type)) for f in inferred])
    except UnicodeDecodeError:
        raise InputError(f"input {path}: a field name is not UTF-8 text") from None


def _type_change(lines: list[bytes]) -> str:
    """` line N: field 'x'` where a field of JSON Lines (each line one object) first changes JSON type."""
    kinds: dict[str, type] = {}
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line) if line.strip() else {}
        except ValueError:  # not JSON at all: the bad line check names those
            continue
        for name, value in record.items():
            if value is None:
                continue
            kind = float if isinstance(value, int) and not isinstance(value, bool) else type(value)
            if kinds.setdefault(name, kind) is not kind:
                return f" line {number}: field '{name}'"
    return ": a field"


def read_schema(files: list[str], fmt: str, types: Mapping[str, pa.DataType] | None = None) -> pa.Schema:
    """The one schema of the input files (every Parquet footer must agree).

    CSV columns are text and JSON Lines values have their JSON type, text never inferred into
    numbers or dates (a zip code `01234` stays `01234`); `types` (a policy's `input_types`)
    parse named text columns into other types. Parquet and Avro columns have their own types.
    """
    if fmt in ("parquet", "avro"):
        schemas = [_parquet_schema(path) if fmt == "parquet" else avro.read_schema(path) for path in files]
        first = schemas[0].remove_metadata()
        for path, schema in zip(files[1:], schemas[1:]):
            if not schema.remove_metadata().equals(first):
                raise InputError(f"input {path} has a different schema than {files[0]}; run each schema separately")
        return first
    sampled = _sample_csv(files[0]) if fmt == "csv" else _sample_jsonl(files[0])
    types = types or {}
    return pa.schema([(f.name, types.get(f.name, f.type)) for f in sampled])


def _conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema, where: str) -> Iterable[pa.RecordBatch]:
    """`table` as batches of `schema`, each checked whole (damaged data or text that is not UTF-8 is refused)."""
    try:
        table = table.cast(schema) if not table.schema.equals(schema) else table
    except (pa.ArrowException, ValueError):
        raise InputError(f"input {where}: columns do not match the input schema") from None
    try:
        table.validate(full=True)
    except pa.ArrowInvalid:
        raise InputError(f"input {where} holds damaged data (text that is not UTF-8?): the file is corrupt") from None
    if isinstance(table, pa.RecordBatch):
        yield table
        return
    yield from table.combine_chunks().to_batches(max_chunksize=ROWS_PER_BATCH)


def _first_unparsed(texts: pa.Array, kind: pa.DataType) -> int:
    """The index of the first text in `texts` that does not parse as `kind` (some does not), by bisection."""
    low, high = 0, len(texts)  # the first bad one is in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        try:
            texts.slice(low, middle - low).cast(kind)
            low = middle
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            high = middle
    return low


def _parse_texts(batch: pa.RecordBatch, schema: pa.Schema, path: str, first_row: int) -> pa.RecordBatch:
    """A CSV batch read as text, with the columns `schema` types otherwise parsed (`input_types`).

    Raises:
        InputError: naming the file, the data row and the column (never the value) of a text
            that does not parse.
    """
    arrays = []
    for field in schema:
        column = batch.column(field.name)
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                row = first_row + _first_unparsed(column, field.type) + 1
                raise InputError(
                    f"input {path} data row {row}: column '{field.name}' is not {field.type} (the policy's "
                    "input_types says it is); fix the value or declare the column string"
                ) from None
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _read_csv(handle, path: str, schema: pa.Schema) -> Iterable[pa.RecordBatch]:
    """CSV batches of `schema`'s columns: text read as text (empty cells null), typed columns parsed."""
    text = {field.name: pa.string() for field in schema}
    options = pa_csv.ConvertOptions(
        column_types=text, include_columns=schema.names, strings_can_be_null=True, null_values=[""]
    )
    first_row = 0
    try:
        for batch in pa_csv.open_csv(handle, convert_options=options):
            yield _parse_texts(batch, schema, path, first_row)
            first_row += batch.num_rows
    except pa.ArrowInvalid:
        raise InputError(
            f"input {path}: not readable CSV after data row {first_row} (a row with the wrong number of "
            "fields, or a bad quote)"
        ) from None


def _bad_json_line(lines: list[bytes]) -> str:
    """` line N` for the first of `lines` that is not one JSON object (blank lines are skipped), else ``."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            return f" line {number}"
        if not isinstance(value, dict):
            return f" line {number}"
    return ""


def _json_values(lines: list[bytes], schema: pa.Schema, path: str) -> pa.Table:
    """JSON Lines the fast reader refused, line by line: the table, or an `InputError` naming the line.

    Text parses into a column's type where the policy's `input_types` says so; a number or
    bool in a text column becomes its JSON text.
    """
    where = _bad_json_line(lines)
    if where:
        raise InputError(f"input {path}{where}: not a JSON object (JSON Lines holds one object per line)")
    rows = [(number, json.loads(line)) for number, line in enumerate(lines, start=1) if line.strip()]
    arrays = []
    for field in schema:
        values = [row.get(field.name) for _, row in rows]
        try:
            arrays.append(pa.array(values, field.type))
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
        column = []
        for (number, _), value in zip(rows, values):
            try:
                if isinstance(value, str) and not pa.types.is_string(field.type):
                    column.append(pa.array([value]).cast(field.type)[0].as_py())
                elif pa.types.is_string(field.type) and isinstance(value, (int, float, bool)):
                    column.append(json.dumps(value))
                else:
                    column.append(pa.array([value], field.type)[0].as_py())
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
                raise InputError(
                    f"input {path} line {number}: field '{field.name}' is not {field.type} (the type of its "
                    "first lines, or the policy's input_types); fix the line or declare the field's type "
                    "in input_types"
                ) from None
        arrays.append(pa.array(column, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _read_jsonl(handle, path: str, schema: pa.Schema) -> pa.Table:
    """A JSON Lines file as a table of `schema` (Arrow's reader, or line by line where it refuses)."""
    data = handle.read()
    try:
        return pa_json.read_json(io.BytesIO(data), parse_options=pa_json.ParseOptions(explicit_schema=schema))
    except pa.ArrowInvalid:
        return _json_values(data.splitlines(), schema, path)


def _read_text_file(path: str, fmt: str, schema: pa.Schema, columns: list[str]) -> Iterable[pa.RecordBatch]:
    projected = _project(schema, columns)
    with _open(path) as handle:
        if fmt == "csv":
            yield from _read_csv(handle, path, projected)
        else:
            yield from _conform(_read_jsonl(handle, path, schema).select(columns), projected, path)


def _project(schema: pa.Schema, columns: list[str]) -> pa.Schema:
    return pa.schema([schema.field(name) for name in columns])


def _parquet_range(byte_range: ByteRange, schema: pa.Schema) -> Iterable[pa.RecordBatch]:
    """The batches of the row groups starting in one byte range of a Parquet file, with `schema`."""
    path = byte_range[0]
    for table in read_range(parquet_source(path, schema.names), byte_range):
        yield from _conform(table, schema, path)


def read_file(path: str, fmt: str, schema: pa.Schema, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Every batch of one input file as `ReadBatches` reads it (`schema` from `read_schema`), on this process.

    Raises:
        InputError: the file is damaged, or does not fit `schema`; never showing its content.
    """
    columns = schema.names if columns is None else [name for name in schema.names if name in columns]
    if fmt in ("csv", "jsonl"):
        yield from _read_text_file(path, fmt, schema, columns)
        return
    (whole,) = byte_ranges([path], 1 << 62)
    projected = _project(schema, columns)
    if fmt == "parquet":
        yield from _parquet_range(whole, projected)
    else:
        yield from avro.batches_of(whole, projected, ROWS_PER_BATCH)


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
        if self._fmt == "parquet":  # the row groups of every file, spread over the workers
            return pbegin | "ReadParquet" >> ReadRanges(
                self._files,
                lambda path: row_group_ranges(path, PARQUET_MIN_RANGE_BYTES),
                lambda part: _parquet_range(part, schema),
                pa.RecordBatch,
            )
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
    """One Parquet row group's table from the batches a bundle gathered.

    Its chunks stay as they are: the writer makes one row group of a table whatever its chunks
    (up to a million rows), and combining them first would copy every value once more.
    """
    return pa.Table.from_batches(batches, schema=schema)


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
