"""Parquet and Avro files read in ranges spread over the workers, a damaged file refused with its name.

Beam's file sources do the reading (a range reads the row groups or Avro blocks that start in
it, as `ReadAllFromParquetBatched` and `ReadAllFromAvro` do), but here each range is read
inside veil's own step, so a corrupt or truncated file ends the run with one `InputError`
naming the file, not an exception from deep inside a reader library.

The ranges are the units of work the runner deals out to its workers (Beam's FnApiRunner
gives them out in turn, by count, not by size), so they should be many and of equal work: a
Parquet file is split at its row groups, one range each (`row_group_ranges`), never a fixed
number of bytes that would give one worker three row groups and another two; an Avro file (small
blocks) in byte ranges of a few megabytes, many to a file.
"""

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.avroio import _FastAvroSource  # Beam's readers, private names: pinned in constraints.txt
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import _ParquetSource, _ParquetUtils
from apache_beam.io.range_trackers import OffsetRangeTracker

from veil.errors import InputError, VeilError

ByteRange = tuple[str, int, int]


def byte_ranges(files: list[str], unit: int) -> list[ByteRange]:
    """(path, start, end) ranges of at most `unit` bytes covering every file."""
    ranges = []
    for result in FileSystems.match(files):
        for metadata in result.metadata_list:
            size = metadata.size_in_bytes
            ranges.extend((metadata.path, start, min(start + unit, size)) for start in range(0, max(size, 1), unit))
    return ranges


def row_group_ranges(path: str, min_bytes: int = 0) -> list[ByteRange]:
    """(path, start, end) ranges of one Parquet file at its row groups: one row group per range, or
    consecutive ones together until they hold `min_bytes` (compressed, as stored).

    A range holds exactly the row groups Beam's Parquet source reads in it, those whose first
    page starts in it (`_ParquetUtils.get_offset`, the reader's own test). A footer whose row
    groups do not start in increasing order gives one range, the whole file.

    Raises:
        InputError: the footer cannot be read.
    """
    try:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            parquet = pq.ParquetFile(handle)
            starts = [_ParquetUtils.get_offset(parquet, index) for index in range(parquet.metadata.num_row_groups)]
            end = handle.seek(0, os.SEEK_END)
    except (pa.ArrowException, OSError, UnicodeDecodeError):
        raise InputError(f"input {path} is not a readable Parquet file (corrupt or truncated?)") from None
    bounds = [*starts, end]
    if any(a >= b for a, b in zip(bounds, bounds[1:])):
        return [(path, 0, end)]
    cuts = [0]
    for start in starts[1:]:
        if start - cuts[-1] >= min_bytes:
            cuts.append(start)
    return [(path, start, stop) for start, stop in zip(cuts, [*cuts[1:], end])]


def parquet_source(path: str, columns: list[str]) -> _ParquetSource:
    """Beam's Parquet source for `path` (yields one Arrow table per row group)."""
    return _ParquetSource(path, validate=False, columns=columns)


def avro_source(path: str) -> _FastAvroSource:
    """Beam's Avro source for `path` (yields one dict per record)."""
    return _FastAvroSource(path, validate=False)


def read_range(source: Any, byte_range: ByteRange) -> Iterator[Any]:
    """What `source` reads in one byte range; `InputError` naming the file if it cannot be read.

    A decoder can fail in many ways on damaged bytes (Arrow errors, EOF, zlib, a bad varint):
    every one of them is the file's fault, said without any of its content.
    """
    path, start, end = byte_range
    try:
        yield from source.read_records(path, OffsetRangeTracker(start, end))
    except (VeilError, MemoryError):
        raise
    except Exception as error:
        raise InputError(
            f"input {path} cannot be read from byte {start} ({type(error).__name__}): the file is corrupt or "
            "truncated; replace it"
        ) from None


class ReadRanges(beam.PTransform):
    """Files -> what `read(byte_range)` yields for each range `split(path)` cuts a file into, spread over the workers.

    The files are split on the workers, then the ranges reshuffled: the runner deals the ranges
    out to its workers, and each worker reads its ranges in the stage that goes on with the
    batches read (sanitize, write), so a range's batches never leave the worker that read them.
    """

    def __init__(
        self,
        files: list[str],
        split: Callable[[str], Iterable[ByteRange]],
        read: Callable[[ByteRange], Iterable[Any]],
        output_type: type,
    ):
        super().__init__()
        self._files, self._split, self._read, self._type = files, split, read, output_type

    def expand(self, pbegin):
        return (
            pbegin
            | "Files" >> beam.Create(self._files)
            | "Split" >> beam.FlatMap(self._split).with_output_types(tuple[str, int, int])
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.FlatMap(self._read).with_output_types(self._type)
        )
