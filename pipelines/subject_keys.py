"""The subject key table: one wrapped data key per subject, for `encrypt: {per_subject: true}`.

A folder of Parquet files of (subject_ref, key_id, wrapped, created) that runs append to (a
run adds the keys it made, only once it succeeded) and `veil erase` rewrites without the
erased subjects' rows: deleting a row shreds every ciphertext made with that key, in every
copy and backup of every output. Subjects appear only as keyed references.
"""

import posixpath
import uuid

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from veil import _fs
from veil.errors import InputError
from veil.transforms.io import match_inputs

PATTERN = "keys-*.parquet"


def key_files(table: str) -> list[str]:
    """The table's Parquet files (none when the table does not exist yet)."""
    try:
        return match_inputs(FileSystems.join(table, PATTERN))
    except InputError:
        return []


def publish_new_keys(staging: str, table: str, run_id: str) -> int:
    """Move the key files a run staged into the table; returns how many files were added."""
    staged = [m.path for m in FileSystems.match([FileSystems.join(staging, "keys-*")])[0].metadata_list]
    if staged:
        targets = [FileSystems.join(table, f"keys-{run_id}-{posixpath.basename(p)[len('keys-') :]}") for p in staged]
        FileSystems.rename(staged, targets)
    if FileSystems.exists(staging):
        FileSystems.delete([staging])
    return len(staged)


def delete_subject_keys(table: str, refs: set[str]) -> int:
    """Rewrite the table without the rows of `refs`; returns how many keys were deleted."""
    deleted = 0
    for path in key_files(table):
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            rows = pq.read_table(handle)
        doomed = pc.is_in(rows.column("subject_ref"), value_set=pa.array(sorted(refs), pa.string()))
        hits = pc.sum(doomed).as_py() or 0
        if not hits:
            continue
        sink = pa.BufferOutputStream()
        pq.write_table(rows.filter(pc.invert(doomed)), sink)
        replacement = FileSystems.join(table, f"keys-{uuid.uuid4().hex}.parquet")
        _fs.write_bytes(replacement, sink.getvalue().to_pybytes())
        FileSystems.delete([path])
        deleted += hits
    return deleted
