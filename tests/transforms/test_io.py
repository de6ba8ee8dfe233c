"""Reading inputs as Arrow batches: every format, and only the columns a job needs."""

import json

import apache_beam as beam
import fastavro
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from veil.transforms.avro import avro_schema
from veil.transforms.engine import BATCHES_PER_ROW_GROUP
from veil.transforms.io import ReadBatches, WriteBatches, format_of, read_file, read_schema
from veil.transforms.plan import compile_plan
from veil.transforms.policy import parse_policy
from veil.transforms.sample import RowSample

TABLE = pa.table(
    {
        "customer_id": ["c-1", "c-2", "c-3"],
        "secret": ["s-1", "s-2", "s-3"],
        "income": [52000, 12000, 7000],
        "consents": ["analytics", "marketing", "analytics;support"],
    }
)


def write(table: pa.Table, path) -> None:
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    elif path.suffix == ".csv":
        pa_csv.write_csv(table, path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in table.to_pylist()))


def check_read(path, columns, expected_rows):
    """Assert what ReadBatches yields from `path`: the column names of every batch, and the rows."""
    files, fmt = [str(path)], {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}[path.suffix]
    schema = read_schema(files, fmt)
    with TestPipeline() as pipeline:
        batches = pipeline | ReadBatches(files, fmt, schema, columns)
        names = batches | "Names" >> beam.Map(lambda batch: tuple(batch.schema.names)) | beam.Distinct()
        rows = batches | "Rows" >> beam.FlatMap(lambda batch: [tuple(row.items()) for row in batch.to_pylist()])
        assert_that(names, equal_to([tuple(expected_rows[0])]), label="CheckNames")
        assert_that(rows, equal_to([tuple(row.items()) for row in expected_rows]), label="CheckRows")


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_read_batches_reads_only_the_named_columns_in_schema_order(tmp_path, suffix):
    path = tmp_path / f"in{suffix}"
    write(TABLE, path)
    incomes = ["52000", "12000", "7000"] if suffix == ".csv" else [52000, 12000, 7000]  # CSV cells are text
    expected = [{"customer_id": c, "income": i} for c, i in zip(["c-1", "c-2", "c-3"], incomes)]
    check_read(path, ["income", "customer_id"], expected)  # asked out of order: schema order comes back


def test_read_batches_reads_every_column_by_default(tmp_path):
    path = tmp_path / "in.parquet"
    write(TABLE, path)
    check_read(path, None, TABLE.to_pylist())


def test_plan_input_fields_are_the_sources_and_gate_fields():
    policy = parse_policy(
        """
version: 1
purpose: analytics
subject: customer_id
consent: {field: consents}
fields:
  income: {action: generalize, width: 10000}
  customer_id: {action: pseudonymize}
  secret: {action: drop}
"""
    )
    plan = compile_plan(policy, TABLE.schema)
    assert plan.input_fields == ("income", "customer_id", "consents")
    assert "secret" in plan.dropped


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl", ".avro"])
def test_a_sample_read_through_read_file_draws_from_every_file(tmp_path, suffix):
    for number, part in enumerate((TABLE.slice(0, 2), TABLE.slice(2))):
        path = tmp_path / f"part-{number}{suffix}"
        if suffix == ".avro":
            with open(path, "wb") as out:
                fastavro.writer(out, fastavro.parse_schema(avro_schema(TABLE.schema)), part.to_pylist())
        else:
            write(part, path)
    files = sorted(str(p) for p in tmp_path.iterdir())
    fmt = format_of(files[0])
    schema = read_schema(files, fmt)

    def sample(size: int, seed: int) -> pa.Table:
        drawn = RowSample(size, schema, seed)
        for path in files:
            for batch in read_file(path, fmt, schema):
                drawn.add(batch)
        assert drawn.rows_seen == 3
        return drawn.table()

    everything = sample(10, 0)
    assert everything.schema == schema and everything.column("customer_id").to_pylist() == ["c-1", "c-2", "c-3"]
    drawn = {row["customer_id"] for seed in range(40) for row in sample(1, seed).to_pylist()}
    assert drawn == {"c-1", "c-2", "c-3"}  # the second file's row is drawn too
    assert sample(1, 7).to_pylist() == sample(1, 7).to_pylist()


def test_parquet_is_written_in_row_groups_of_many_batches_not_one_per_batch(tmp_path):
    batches = [
        pa.RecordBatch.from_pylist([{"n": i * 3 + j} for j in range(3)]) for i in range(2 * BATCHES_PER_ROW_GROUP)
    ]
    schema = batches[0].schema
    with TestPipeline() as p:
        _ = (
            p
            | beam.Create(batches).with_output_types(pa.RecordBatch)
            | WriteBatches(str(tmp_path / "part"), "parquet", schema)
        )
    files = sorted(tmp_path.glob("part-*.parquet"))
    groups = [
        pq.ParquetFile(f).metadata.row_group(g).num_rows for f in files for g in range(pq.ParquetFile(f).num_row_groups)
    ]
    assert sum(groups) == 6 * BATCHES_PER_ROW_GROUP and len(groups) < len(batches)  # gathered batches: one group
    assert sorted(pa.concat_tables(pq.read_table(f) for f in files)["n"].to_pylist()) == list(range(sum(groups)))
