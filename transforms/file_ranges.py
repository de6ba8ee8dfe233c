"""Parquet and Avro files read in byte ranges, a damaged file refused with its name.

Beam's file sources do the reading and the splitting (a range reads the row groups or Avro
blocks that start in it, as `ReadAllFromParquetBatched` and `ReadAllFromAvro` do), but here each
range is read inside veil's own step, so a corrupt or truncated file ends the run with one
`InputError` naming the file, not an exception from deep inside a reader library.
"""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.avroio import _FastAvroSource  # Beam's readers, private names: pinned in constraints.txt
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import _ParquetSource
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
    """Files -> what `read(byte_range)` yields for each range of `unit` bytes, spread over the workers."""

    def __init__(self, files: list[str], unit: int, read: Callable[[ByteRange], Iterable[Any]], output_type: type):
        super().__init__()
        self._files, self._unit, self._read, self._type = files, unit, read, output_type

    def expand(self, pbegin):
        return (
            pbegin
            | "Ranges" >> beam.Create(byte_ranges(self._files, self._unit))
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.FlatMap(self._read).with_output_types(self._type)
        )
