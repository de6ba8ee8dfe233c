"""Record gates on facts kept per subject: a consent table and an erasure table, in Beam.

Records and table entries are keyed by the partition of their subject reference and met with
a CoGroupByKey, so a worker holds one partition's consent decisions and erased references at a
time, never a whole table: a consent log of tens of millions of subjects is split `PARTITIONS`
ways instead of being loaded into every worker as a side input. Records stay Arrow batches
(split per partition), so the join adds little per-record cost.
"""

import base64
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam import pvalue

from veil.errors import InputError
from veil.keys import open_keyring
from veil.transforms.actions.base import SUBJECT_KEY_COLUMN
from veil.transforms.actions.encrypt import subject_key_id
from veil.transforms.counting import COUNTS, CountingFn
from veil.transforms.policy import Policy
from veil.transforms.subjects import (
    PARTITIONS,
    REF_COLUMN,
    latest_consent,
    partition_of,
    split_by_partition,
    subject_refs,
)
from veil.transforms.tables import SUBJECT_KEY_SCHEMA

READ, NO_CONSENT, ERASED = "read", "dropped.no_consent", "dropped.erased"


class _KeyedByPartition(beam.DoFn):
    """Split batches by the partition of their subject references."""

    def __init__(self, keyset: str, subject: str, partitions: int):
        self._keyset, self._subject, self._partitions = keyset, subject, partitions

    def setup(self) -> None:
        self._keyring = open_keyring(self._keyset)

    def process(self, batch: pa.RecordBatch) -> Iterable[tuple[int, Any]]:
        refs = subject_refs(self._keyring, batch.column(self._subject).to_pylist())
        yield from split_by_partition(batch, refs, self._partitions)


class _ConsentEntries(_KeyedByPartition):
    """Consent table batches -> (partition, [(ref, at, granted)]) for this policy's purpose."""

    def __init__(self, keyset: str, policy: Policy, partitions: int):
        columns = policy.consent.columns
        super().__init__(keyset, columns.subject, partitions)
        self._purpose, self._columns = policy.purpose, columns

    def process(self, batch: pa.RecordBatch) -> Iterable[tuple[int, list]]:
        names = self._columns
        mine = batch.filter(pc.equal(batch.column(names.purpose), self._purpose))
        if not mine.num_rows:
            return
        mine = _comparable(mine, names.at, names.granted)
        for part, rows in super().process(mine):
            entries = zip(
                rows.column(REF_COLUMN).to_pylist(),
                rows.column(names.at).to_pylist(),
                rows.column(names.granted).to_pylist(),
            )
            yield part, list(entries)


def _comparable(batch: pa.RecordBatch, at: str, granted: str) -> pa.RecordBatch:
    """`batch` with times that order correctly and decisions that are booleans (or integers).

    Text times (JSON Lines, CSV that did not parse) are parsed as ISO 8601, so that an offset or
    a fraction of a second cannot reorder entries as text would; a text decision ("no") would be
    truthy, so it is refused rather than read as a grant.
    """
    times, decisions = batch.column(at), batch.column(granted)
    if pa.types.is_string(times.type) or pa.types.is_large_string(times.type):
        for target in (pa.timestamp("us", tz="UTC"), pa.timestamp("us")):
            try:
                parsed = times.cast(target)
                break
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        else:
            raise InputError(
                f"consent table column {at}: times must be ISO 8601 timestamps, all with a zone offset "
                "(2025-01-01T10:00:00Z) or all without one"
            )
        batch = batch.set_column(batch.schema.get_field_index(at), at, parsed)
    elif not (pa.types.is_timestamp(times.type) or pa.types.is_date(times.type) or pa.types.is_null(times.type)):
        raise InputError(f"consent table column {at} must hold timestamps, not {times.type}")
    kind = decisions.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):  # CSV text: true/false, 1/0
        try:
            parsed = decisions.cast(pa.bool_())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(f"consent table column {granted} must hold true/false, not other text") from None
        return batch.set_column(batch.schema.get_field_index(granted), granted, parsed)
    if not (pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind)):
        raise InputError(f"consent table column {granted} must hold true/false, not {kind}")
    return batch


_REF = re.compile(r"[0-9a-f]{64}")


def _table_ref(ref: str, table: str) -> str:
    """`ref` if it is a subject reference; a damaged one fails closed (it might be an erased subject's)."""
    if not _REF.fullmatch(ref):
        raise InputError(f"the {table} table holds an entry that is not a subject reference (damaged?): restore it")
    return ref


class _ErasedRefs(beam.DoFn):
    """Erasure table batches -> (partition, [ref])."""

    def __init__(self, partitions: int):
        self._partitions = partitions

    def process(self, batch: pa.RecordBatch) -> Iterable[tuple[int, list]]:
        by_part: dict[int, list] = {}
        for ref in batch.column("subject_ref").to_pylist():
            if ref:
                by_part.setdefault(partition_of(_table_ref(ref, "erasure"), self._partitions), []).append(ref)
        yield from by_part.items()


class _SubjectKeyRows(beam.DoFn):
    """Subject key table batches -> (partition, [(ref, key cell)])."""

    def __init__(self, partitions: int):
        self._partitions = partitions

    def process(self, batch: pa.RecordBatch) -> Iterable[tuple[int, list]]:
        by_part: dict[int, list] = {}
        rows = zip(*(batch.column(n).to_pylist() for n in ("subject_ref", "key_id", "wrapped")))
        for ref, key_id, wrapped in rows:
            if ref and key_id and wrapped:
                part = partition_of(_table_ref(ref, "subject key"), self._partitions)
                by_part.setdefault(part, []).append((ref, f"{key_id}:{wrapped}"))
        yield from by_part.items()


NEW_KEYS = "new_subject_keys"


class GatesResult(NamedTuple):
    """What `SubjectGates` gives back.

    Attributes:
        records: the batches that passed the gates.
        new_keys: RecordBatches of `SUBJECT_KEY_SCHEMA`, the keys made for subjects without one
            (empty without a subject key table).
        counts: count dicts (`read`, `dropped.erased`, `dropped.no_consent`), see `CountingFn`.
    """

    records: beam.PCollection
    new_keys: beam.PCollection
    counts: beam.PCollection


class _ApplyGates(CountingFn):
    """One partition: drop records of erased subjects, then of subjects without consent; attach
    each remaining record's subject key (creating the missing ones) when the policy has a key table."""

    def __init__(self, purpose: str, consent: bool, erasure: bool, keyset: str | None):
        super().__init__(purpose)
        self._consent, self._erasure, self._keyset = consent, erasure, keyset

    def setup(self) -> None:
        self._keyring = open_keyring(self._keyset) if self._keyset else None

    def _attach_keys(self, batch: pa.RecordBatch, refs: list, known: dict) -> Iterable[Any]:
        """Yield new key rows (tagged) for subjects without one; return the batch with key cells."""
        cells, created = [], []
        for ref in refs:
            if ref is None:
                cells.append(None)
                continue
            cell = known.get(ref)
            if cell is None:
                key_id, wrapped = self._keyring.create_subject_dek()
                cell = known[ref] = f"{key_id}:{base64.b64encode(wrapped).decode()}"
                created.append((ref, key_id, cell.partition(":")[2]))
            cells.append(cell)
        if created:
            now = datetime.now(timezone.utc)
            refs_, ids, wrapped = zip(*created)
            rows = pa.RecordBatch.from_arrays(
                [
                    pa.array(refs_),
                    pa.array(ids),
                    pa.array(wrapped),
                    pa.array([now] * len(created), pa.timestamp("us", tz="UTC")),
                ],
                schema=SUBJECT_KEY_SCHEMA,
            )
            yield pvalue.TaggedOutput(NEW_KEYS, rows)
        return batch.append_column(SUBJECT_KEY_COLUMN, pa.array(cells, pa.string()))

    def process(self, element: tuple[int, dict]) -> Iterable[Any]:
        _, groups = element
        granted = latest_consent(e for chunk in groups.get("consent", ()) for e in chunk) if self._consent else None
        erased = {ref for chunk in groups.get("erasure", ()) for ref in chunk} if self._erasure else set()
        known = None
        if self._keyring is not None:  # one key per subject: the smallest key id when a table holds several
            known = {}
            for ref, cell in sorted(pair for chunk in groups.get("keys", ()) for pair in chunk):
                known.setdefault(ref, cell)
        for batch in groups["records"]:
            refs = batch.column(REF_COLUMN).to_pylist()
            is_erased = [ref in erased for ref in refs]
            allowed = [granted is None or ref in granted for ref in refs]
            keep = [a and not e for a, e in zip(allowed, is_erased)]
            yield self._count(
                {
                    READ: len(refs),
                    ERASED: sum(is_erased),
                    NO_CONSENT: sum(1 for a, e in zip(allowed, is_erased) if not a and not e),
                }
            )
            kept = batch.filter(pa.array(keep, pa.bool_()))
            if not kept.num_rows:
                continue
            if known is not None:
                kept = yield from self._attach_keys(kept, kept.column(REF_COLUMN).to_pylist(), known)
            yield kept.drop_columns([REF_COLUMN])


class SubjectGates(beam.PTransform):
    """Record batches -> the batches whose subjects are not erased and consented (per the tables).

    Counts `read`, `dropped.erased` and `dropped.no_consent` under the purpose's namespace.

    Args:
        policy: a policy with `consent.table` and/or `erasure`.
        keyset: the keyset path (its subject key makes the references).
        consent_rows: the consent table as RecordBatches (None without a consent table).
        erased_rows: the erasure table as RecordBatches (None without an erasure table).
        key_rows: the subject key table as RecordBatches (None without one); each record then
            carries its subject's key in `SUBJECT_KEY_COLUMN`, and keys made for subjects
            without one are in the result's `new_keys`, for the caller to append to the table.
        partitions: how many hash partitions the join uses.

    Returns a `GatesResult`.
    """

    def __init__(
        self,
        policy: Policy,
        keyset: str,
        *,
        consent_rows=None,
        erased_rows=None,
        key_rows=None,
        partitions: int = PARTITIONS,
        label: str | None = None,
    ):
        super().__init__(label or f"SubjectGates[{policy.purpose}]")
        self._policy, self._keyset, self._partitions = policy, keyset, partitions
        self._consent_rows, self._erased_rows, self._key_rows = consent_rows, erased_rows, key_rows

    def expand(self, batches):
        policy, parts = self._policy, self._partitions
        groups = {
            "records": batches
            | "KeyRecords"
            >> beam.ParDo(_KeyedByPartition(self._keyset, policy.subject, parts)).with_output_types(
                tuple[int, pa.RecordBatch]
            )
        }
        if self._consent_rows is not None:
            groups["consent"] = self._consent_rows | "KeyConsent" >> beam.ParDo(
                _ConsentEntries(self._keyset, policy, parts)
            )
        if self._erased_rows is not None:
            groups["erasure"] = self._erased_rows | "KeyErasures" >> beam.ParDo(_ErasedRefs(parts))
        if self._key_rows is not None:
            groups["keys"] = self._key_rows | "KeySubjectKeys" >> beam.ParDo(_SubjectKeyRows(parts))
        gate = _ApplyGates(
            policy.purpose,
            self._consent_rows is not None,
            self._erased_rows is not None,
            self._keyset if self._key_rows is not None else None,
        )
        joined = groups | "Join" >> beam.CoGroupByKey()
        outputs = joined | "Gate" >> beam.ParDo(gate).with_output_types(pa.RecordBatch).with_outputs(
            NEW_KEYS, COUNTS, main="records"
        )
        return GatesResult(outputs.records, outputs[NEW_KEYS], outputs[COUNTS])


KEY_ID_COLUMN = "__veil_subject_key_id"


class _KeyedByKeyId(beam.DoFn):
    """Split batches by the partition of the subject key id their per-subject ciphertexts name."""

    def __init__(self, fields: tuple[str, ...], partitions: int):
        self._fields, self._partitions = fields, partitions

    def process(self, batch: pa.RecordBatch) -> Iterable[tuple[int, pa.RecordBatch]]:
        columns = [batch.column(name).to_pylist() for name in self._fields]
        ids = [next((k for k in map(subject_key_id, row) if k), None) for row in zip(*columns)]
        yield from split_by_partition(batch, ids, self._partitions, column=KEY_ID_COLUMN)


class _KeyRowsById(beam.DoFn):
    """Subject key table batches -> (partition of key id, [(key id, key cell)])."""

    def __init__(self, partitions: int):
        self._partitions = partitions

    def process(self, batch: pa.RecordBatch) -> Iterable[tuple[int, list]]:
        by_part: dict[int, list] = {}
        for key_id, wrapped in zip(batch.column("key_id").to_pylist(), batch.column("wrapped").to_pylist()):
            if key_id and wrapped:
                by_part.setdefault(partition_of(key_id, self._partitions), []).append((key_id, f"{key_id}:{wrapped}"))
        yield from by_part.items()


def _attach_by_key_id(element: tuple[int, dict]) -> Iterable[pa.RecordBatch]:
    _, groups = element
    cells = dict(pair for chunk in groups.get("keys", ()) for pair in chunk)
    for batch in groups["records"]:
        ids = batch.column(KEY_ID_COLUMN).to_pylist()
        with_keys = batch.append_column(SUBJECT_KEY_COLUMN, pa.array([cells.get(i) for i in ids], pa.string()))
        yield with_keys.drop_columns([KEY_ID_COLUMN])


class AttachSubjectKeys(beam.PTransform):
    """Batches of per-subject ciphertexts -> the same batches with each row's subject key attached.

    Joins on the key id the ciphertexts name (never the subject), hash-partitioned like the
    record gates. A row whose key is no longer in the table gets none: its subject was erased.

    Args:
        fields: the per-subject encrypted fields (output names).
        key_rows: the subject key table as RecordBatches.
        partitions: how many hash partitions the join uses.
    """

    def __init__(self, fields: Iterable[str], key_rows, *, partitions: int = PARTITIONS):
        super().__init__()
        self._fields, self._key_rows, self._partitions = tuple(fields), key_rows, partitions

    def expand(self, batches):
        parts = self._partitions
        groups = {
            "records": batches
            | "KeyById" >> beam.ParDo(_KeyedByKeyId(self._fields, parts)).with_output_types(tuple[int, pa.RecordBatch]),
            "keys": self._key_rows | "KeyRowsById" >> beam.ParDo(_KeyRowsById(parts)),
        }
        return (
            groups
            | "JoinKeys" >> beam.CoGroupByKey()
            | "Attach" >> beam.FlatMap(_attach_by_key_id).with_output_types(pa.RecordBatch)
        )
