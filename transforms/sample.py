"""A uniform random sample of a fixed number of rows from a stream of Arrow batches, in bounded memory.

Bottom-k sampling: every row read gets an independent uniform random key, and the sample is
the `size` rows with the smallest keys, which is a uniform sample without replacement of the
whole stream (every set of `size` rows equally likely) whatever the stream's length, its order
or its split into batches. Only the candidates are held: rows whose key is below the largest
key of a full sample, buffered until they reach twice `size` and then cut back to `size`, so
memory stays near `size` rows plus one batch and, once the sample is full, a batch costs little
more than its keys (about `size * ln(rows / size)` rows are ever buffered in all).

The keys come from numpy's PCG64 generator seeded with `seed`: the same seed over the same
rows, in the same order, gives the same sample. Pure: no IO, no Beam.
"""

import numpy as np
import pyarrow as pa


class RowSample:
    """A uniform random sample (without replacement) of up to `size` rows of the batches added.

    Args:
        size: the rows to keep (at least 1).
        schema: the batches' schema (the sample's, also when nothing was added).
        seed: seeds the random keys (an integer >= 0): a fixed seed gives a reproducible sample;
            None draws one from the operating system.
    """

    def __init__(self, size: int, schema: pa.Schema, seed: int | None = None):
        if size < 1:
            raise ValueError("a sample holds at least one row")
        self._size, self._schema = size, schema
        self._rng = np.random.default_rng(seed)
        self._batches: list[pa.RecordBatch] = []
        self._keys: list[np.ndarray] = []
        self._buffered = 0
        self._bound = 1.0  # a row whose key is not below it cannot enter the sample
        self.rows_seen = 0

    def add(self, batch: pa.RecordBatch) -> None:
        """Offer every row of `batch` to the sample."""
        keys = self._rng.random(batch.num_rows)
        self.rows_seen += batch.num_rows
        if self._bound < 1.0:
            entering = np.flatnonzero(keys < self._bound)
            if len(entering) == 0:
                return
            batch, keys = batch.take(pa.array(entering)), keys[entering]
        self._batches.append(batch)
        self._keys.append(keys)
        self._buffered += len(keys)
        if self._buffered >= 2 * self._size:
            self._cut()

    def _cut(self) -> None:
        """Keep the `size` buffered rows of smallest keys (in the order they were read)."""
        keys = np.concatenate(self._keys) if self._keys else np.empty(0)
        table = pa.Table.from_batches(self._batches, schema=self._schema)
        if len(keys) > self._size:
            chosen = np.sort(np.argpartition(keys, self._size - 1)[: self._size])
            table, keys = table.take(pa.array(chosen)), keys[chosen]
            self._bound = float(keys.max())
        self._batches = table.combine_chunks().to_batches()
        self._keys, self._buffered = [keys], len(keys)

    def table(self) -> pa.Table:
        """The sample: min(size, rows added) rows, in the order they were read."""
        self._cut()
        return pa.Table.from_batches(self._batches, schema=self._schema)
