"""The row sample of `veil scan`: its size, its rows, its uniformity over the whole stream, its seed."""

import pyarrow as pa
import pytest

from veil.transforms.sample import RowSample

SCHEMA = pa.schema([("row", pa.int64()), ("text", pa.string())])


def _batches(sizes: list[int]) -> list[pa.RecordBatch]:
    batches, start = [], 0
    for size in sizes:
        rows = list(range(start, start + size))
        batches.append(pa.record_batch([pa.array(rows, pa.int64()), pa.array([f"t{r}" for r in rows])], schema=SCHEMA))
        start += size
    return batches


def _sample(size: int, sizes: list[int], seed: int | None) -> RowSample:
    drawn = RowSample(size, SCHEMA, seed)
    for batch in _batches(sizes):
        drawn.add(batch)
    return drawn


@pytest.mark.parametrize(
    "size, sizes", [(10, [100]), (10, [3, 3, 94]), (100, [60, 40]), (150, [60, 40]), (5, []), (1, [1]), (7, [0, 7])]
)
def test_the_sample_holds_min_size_rows_distinct_and_whole_in_reading_order(size, sizes):
    drawn = _sample(size, sizes, seed=3)
    table = drawn.table()
    assert drawn.rows_seen == sum(sizes)
    assert table.num_rows == min(size, sum(sizes)) and table.schema == SCHEMA
    rows = table.column("row").to_pylist()
    assert rows == sorted(set(rows)) and all(0 <= r < sum(sizes) for r in rows)
    assert table.column("text").to_pylist() == [f"t{r}" for r in rows]  # each row's cells stay together


def test_every_row_is_equally_likely_wherever_it_sits_in_the_stream():
    """Row inclusion counted over many seeds: each of 100 rows is in a sample of 10 with probability 0.1.

    A sample of the first rows, or one favouring a batch, puts some rows far outside the bounds
    (binomial, 2,000 draws: mean 200, sd 13.4; the bounds are 5 sd wide).
    """
    counts = [0] * 100
    for seed in range(2000):
        for row in _sample(10, [1, 9, 30, 60], seed).table().column("row").to_pylist():
            counts[row] += 1
    assert all(200 - 67 <= count <= 200 + 67 for count in counts), (min(counts), max(counts))
    assert sum(counts[90:]) > 0 and sum(counts[:50]) == pytest.approx(sum(counts[50:]), rel=0.1)


def test_a_seed_gives_one_sample_whatever_the_batches():
    one = _sample(10, [1000], seed=11).table()
    assert _sample(10, [1, 99, 400, 500], seed=11).table() == one  # the keys follow the rows, not the batches
    assert _sample(10, [1000], seed=12).table() != one
    assert _sample(10, [1000], seed=None).table().num_rows == 10


def test_a_sample_of_no_row_is_refused():
    with pytest.raises(ValueError):
        RowSample(0, SCHEMA)
