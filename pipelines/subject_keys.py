"""The subject key table: one wrapped data key per subject, for `encrypt: {per_subject: true}`.

A folder of Parquet files of (subject_ref, key_id, wrapped, created) that runs append to (a
run adds the keys it made, only once it succeeded) and `veil erase` rewrites without the
erased subjects' rows: deleting a row shreds every ciphertext made with that key, in every
copy and backup of every output. Subjects appear only as keyed references.
"""

import posixpath

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from veil import _fs
from veil.pipelines.outputs import discard, pause_point
from veil.transforms.tables import key_files


def publish_new_keys(staging: str, table: str, run_id: str) -> int:
    """Move the key files a run staged into the table; returns how many files were added.

    Each file is renamed into place whole (readers see it entirely or not at all), and the
    run publishes its data only after this returned, so no published ciphertext depends on a
    key that was not kept. A kill in between leaves keys no data uses yet: harmless.
    """
    staged = sorted(m.path for m in FileSystems.match([FileSystems.join(staging, "keys-*")])[0].metadata_list)
    for path in staged:
        FileSystems.rename([path], [FileSystems.join(table, f"keys-{run_id}-{posixpath.basename(path)[5:]}")])
        pause_point("keys-published")
    discard(staging)
    return len(staged)


def delete_subject_keys(table: str, refs: set[str]) -> int:
    """Rewrite the table without the rows of `refs`; returns how many keys were deleted.

    Each file is replaced in one atomic step under its own name, so a kill leaves every file
    either as it was or without the rows, never torn and never doubled. Idempotent: deleting
    again what is already gone deletes nothing. Callers serialise rewrites (`veil erase` holds
    the table's lock), since two rewrites of one file at once would lose one of them.
    """
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
        _fs.write_bytes(path, sink.getvalue().to_pybytes())  # written aside, renamed over: never torn
        deleted += hits
        pause_point("keys-shredded")
    return deleted
