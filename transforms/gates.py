"""Record gates on facts kept per subject: a consent table and an erasure table, in Beam.

Records and table entries are keyed by the partition of their subject reference and met with
a CoGroupByKey, so a worker holds one partition's consent decisions and erased references at a
time, never a whole table: a consent log of tens of millions of subjects is split `PARTITIONS`
ways instead of being loaded into every worker as a side input. Records stay Arrow batches
(split per partition), so the join adds little per-record cost.
"""

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from veil.errors import InputError
from veil.keys import open_keyring
from veil.transforms.counting import CountingFn
from veil.transforms.policy import Policy
from veil.transforms.subjects import (
    PARTITIONS,
    REF_COLUMN,
    latest_consent,
    partition_of,
    split_by_partition,
    subject_refs,
)

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
    if not (pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind)):
        raise InputError(f"consent table column {granted} must hold true/false, not {kind}")
    return batch


class _ErasedRefs(beam.DoFn):
    """Erasure table batches -> (partition, [ref])."""

    def __init__(self, partitions: int):
        self._partitions = partitions

    def process(self, batch: pa.RecordBatch) -> Iterable[tuple[int, list]]:
        by_part: dict[int, list] = {}
        for ref in batch.column("subject_ref").to_pylist():
            if ref:
                by_part.setdefault(partition_of(ref, self._partitions), []).append(ref)
        yield from by_part.items()


class _ApplyGates(CountingFn):
    """One partition: drop records of erased subjects, then of subjects without consent."""

    def __init__(self, purpose: str, consent: bool, erasure: bool):
        super().__init__(purpose)
        self._consent, self._erasure = consent, erasure

    def process(self, element: tuple[int, dict]) -> Iterable[pa.RecordBatch]:
        _, groups = element
        granted = latest_consent(e for chunk in groups.get("consent", ()) for e in chunk) if self._consent else None
        erased = {ref for chunk in groups.get("erasure", ()) for ref in chunk} if self._erasure else set()
        for batch in groups["records"]:
            refs = batch.column(REF_COLUMN).to_pylist()
            is_erased = [ref in erased for ref in refs]
            allowed = [granted is None or ref in granted for ref in refs]
            keep = [a and not e for a, e in zip(allowed, is_erased)]
            self._count(
                {
                    READ: len(refs),
                    ERASED: sum(is_erased),
                    NO_CONSENT: sum(1 for a, e in zip(allowed, is_erased) if not a and not e),
                }
            )
            kept = batch.filter(pa.array(keep, pa.bool_())).drop_columns([REF_COLUMN])
            if kept.num_rows:
                yield kept


class SubjectGates(beam.PTransform):
    """Record batches -> the batches whose subjects are not erased and consented (per the tables).

    Counts `read`, `dropped.erased` and `dropped.no_consent` under the purpose's namespace.

    Args:
        policy: a policy with `consent.table` and/or `erasure`.
        keyset: the keyset path (its subject key makes the references).
        consent_rows: the consent table as RecordBatches (None without a consent table).
        erased_rows: the erasure table as RecordBatches (None without an erasure table).
        partitions: how many hash partitions the join uses.
    """

    def __init__(
        self,
        policy: Policy,
        keyset: str,
        *,
        consent_rows=None,
        erased_rows=None,
        partitions: int = PARTITIONS,
        label: str | None = None,
    ):
        super().__init__(label or f"SubjectGates[{policy.purpose}]")
        self._policy, self._keyset, self._partitions = policy, keyset, partitions
        self._consent_rows, self._erased_rows = consent_rows, erased_rows

    def expand(self, batches):
        policy, parts = self._policy, self._partitions
        groups = {
            "records": batches | "KeyRecords" >> beam.ParDo(_KeyedByPartition(self._keyset, policy.subject, parts))
        }
        if self._consent_rows is not None:
            groups["consent"] = self._consent_rows | "KeyConsent" >> beam.ParDo(
                _ConsentEntries(self._keyset, policy, parts)
            )
        if self._erased_rows is not None:
            groups["erasure"] = self._erased_rows | "KeyErasures" >> beam.ParDo(_ErasedRefs(parts))
        gate = _ApplyGates(policy.purpose, self._consent_rows is not None, self._erased_rows is not None)
        return groups | "Join" >> beam.CoGroupByKey() | "Gate" >> beam.ParDo(gate).with_output_types(pa.RecordBatch)
