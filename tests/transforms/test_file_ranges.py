"""Parquet files split at their row groups: every row read once, and units of equal work for the workers."""

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.io.parquetio import _ParquetUtils
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from veil.errors import InputError
from veil.transforms.file_ranges import parquet_source, read_range, row_group_ranges
from veil.transforms.io import ReadBatches, read_schema

ROWS, PER_GROUP = 50, 10


def parquet_file(path, rows: int = ROWS, per_group: int = PER_GROUP, first: int = 0) -> str:
    ids = [f"c-{i:04d}" for i in range(first, first + rows)]
    pq.write_table(pa.table({"id": ids, "n": list(range(first, first + rows))}), path, row_group_size=per_group)
    return str(path)


def read_ids(byte_range) -> list[str]:
    return [
        i for table in read_range(parquet_source(byte_range[0], ["id"]), byte_range) for i in table["id"].to_pylist()
    ]


def test_a_parquet_file_splits_into_one_range_per_row_group(tmp_path):
    path = parquet_file(tmp_path / "in.parquet")
    ranges = row_group_ranges(path)
    assert len(ranges) == ROWS // PER_GROUP
    assert ranges[0][1] == 0 and ranges[-1][2] == (tmp_path / "in.parquet").stat().st_size
    assert all(a[2] == b[1] for a, b in zip(ranges, ranges[1:]))  # contiguous, no gap, no overlap
    read = [read_ids(r) for r in ranges]
    assert [len(ids) for ids in read] == [PER_GROUP] * len(ranges)  # one whole row group each
    assert sum(read, []) == [f"c-{i:04d}" for i in range(ROWS)]


def row_group_starts(path: str) -> list[int]:
    with open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        return [_ParquetUtils.get_offset(parquet, i) for i in range(parquet.metadata.num_row_groups)]


@pytest.mark.parametrize("groups", [2, 3])
def test_small_row_groups_are_read_together_up_to_the_minimum(tmp_path, groups):
    path = parquet_file(tmp_path / "in.parquet")
    starts = row_group_starts(path)
    read = [read_ids(r) for r in row_group_ranges(path, min_bytes=starts[groups] - starts[0])]
    assert len(read) < ROWS // PER_GROUP
    assert all(len(ids) >= groups * PER_GROUP for ids in read[:-1])
    assert sum(read, []) == [f"c-{i:04d}" for i in range(ROWS)]


def test_a_minimum_beyond_the_file_gives_one_range(tmp_path):
    path = parquet_file(tmp_path / "in.parquet")
    assert row_group_ranges(path, min_bytes=1 << 30) == [(path, 0, (tmp_path / "in.parquet").stat().st_size)]


def test_row_groups_out_of_order_give_one_range_the_whole_file(tmp_path, monkeypatch):
    path = parquet_file(tmp_path / "in.parquet")
    offsets = iter([400, 300, 200, 100, 4])
    monkeypatch.setattr(_ParquetUtils, "get_offset", staticmethod(lambda pf, i: next(offsets)))
    assert row_group_ranges(path) == [(path, 0, (tmp_path / "in.parquet").stat().st_size)]


def test_a_file_whose_footer_cannot_be_read_is_named(tmp_path):
    path = tmp_path / "in.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    with pytest.raises(InputError) as raised:
        row_group_ranges(str(path))
    assert str(path) in str(raised.value) and "not a readable Parquet file" in str(raised.value)


def test_read_batches_reads_every_row_group_of_every_file_once(tmp_path):
    files = [parquet_file(tmp_path / f"in-{k}.parquet", first=k * ROWS) for k in range(3)]
    schema = read_schema(files, "parquet")
    with TestPipeline() as pipeline:
        ids = pipeline | ReadBatches(files, "parquet", schema) | beam.FlatMap(lambda b: b.column("id").to_pylist())
        assert_that(ids, equal_to([f"c-{i:04d}" for i in range(3 * ROWS)]))
