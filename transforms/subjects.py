"""Facts kept per data subject, joined to records by a keyed subject reference: the pure part.

A subject reference is HMAC-SHA256 under the keyset's subject key (never rotated, the same
for every purpose) of the UTF-8 subject id (integers as decimal text), in hex. Erasure tables
hold references, never ids; consent tables hold ids and are referenced on reading. Records and
facts meet in one of `PARTITIONS` hash partitions of the reference, so no worker ever holds
more than one partition's facts.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from veil.errors import ActionError
from veil.keys import KeyRing
from veil.transforms.actions.base import as_text

PARTITIONS = 32
REF_COLUMN = "__veil_subject_ref"


def subject_ref(keyring: KeyRing, subject: Any) -> str | None:
    """The reference of one subject id (None for a null or unusable id)."""
    if subject is None:
        return None
    try:
        text = as_text(subject)
    except ActionError:
        return None
    return keyring.subject_prf().compute(text.encode("utf-8")).hex()


def subject_refs(keyring: KeyRing, subjects: Sequence[Any]) -> list[str | None]:
    """References of a column of subject ids, each distinct id computed once."""
    memo: dict[tuple[type, Any], str | None] = {}
    out = []
    for subject in subjects:
        key = (type(subject), subject)  # 1, 1.0 and True are equal dict keys but not equal ids
        try:
            ref = memo[key]
        except KeyError:
            ref = memo[key] = subject_ref(keyring, subject)
        except TypeError:
            ref = subject_ref(keyring, subject)
        out.append(ref)
    return out


def partition_of(ref: str | None, partitions: int = PARTITIONS) -> int:
    """The partition a reference belongs to (null references go to partition 0)."""
    return 0 if ref is None else int(ref[:8], 16) % partitions


def split_by_partition(
    table: pa.Table | pa.RecordBatch,
    refs: list[str | None],
    partitions: int = PARTITIONS,
    column: str = REF_COLUMN,
) -> Iterable[tuple[int, pa.Table | pa.RecordBatch]]:
    """(partition, rows of `table` in it, with their hex keys (references) as `column`)."""
    with_refs = table.append_column(column, pa.array(refs, pa.string()))
    parts = pa.array([partition_of(ref, partitions) for ref in refs], pa.int32())
    for part in pc.unique(parts).to_pylist():
        yield part, with_refs.filter(pc.equal(parts, part))


def latest_consent(entries: Iterable[tuple[str, datetime | None, bool | None]]) -> set[str]:
    """References whose latest entry grants consent; on a tie in time the withdrawal wins.

    Entries without a time or a decision are ignored (they cannot be ordered or read).
    """
    latest: dict[str, tuple[datetime, bool]] = {}
    for ref, at, granted in entries:
        if ref is None or at is None or granted is None:
            continue
        seen = latest.get(ref)
        if seen is None or at > seen[0] or (at == seen[0] and not granted):
            latest[ref] = (at, bool(granted))
    return {ref for ref, (_, granted) in latest.items() if granted}
