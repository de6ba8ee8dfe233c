"""The per-subject tables a policy names: the consent log, the erasure table, the subject key table.

Where their files are and what schema they have is found on the driver (`GateTables.of`), so
a wrong path fails before any data moves (a missing erasure table must never let erased
subjects flow); `GateTables.read` reads them as PCollections of Arrow batches through Beam IO,
inside a transform's `expand()`. `veil run` and the library transforms use this one reader.
"""

from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from veil import _fs
from veil.errors import InputError
from veil.transforms.io import ReadBatches, format_of, match_inputs, read_schema
from veil.transforms.policy import Policy

ERASURE_MARKER = "_veil_erasure_table"
ERASURE_SCHEMA = pa.schema([("subject_ref", pa.string()), ("erased_at", pa.timestamp("us", tz="UTC"))])
SUBJECT_KEY_PATTERN = "keys-*.parquet"
SUBJECT_KEY_SCHEMA = pa.schema(
    [
        ("subject_ref", pa.string()),
        ("key_id", pa.string()),
        ("wrapped", pa.string()),
        ("created", pa.timestamp("us", tz="UTC")),
    ]
)


def erasure_files(table: str) -> list[str]:
    """The Parquet files of an existing erasure table (possibly none)."""
    if not _fs.exists(FileSystems.join(table, ERASURE_MARKER)):
        raise InputError(
            f"erasure table {table} does not exist: create it with 'veil erase POLICY --init' "
            "(a wrong path must not let erased subjects flow)"
        )
    try:
        return match_inputs(FileSystems.join(table, "erased-*.parquet"))
    except InputError:
        return []


def key_files(table: str) -> list[str]:
    """The subject key table's Parquet files (none when the table does not exist yet)."""
    try:
        return match_inputs(FileSystems.join(table, SUBJECT_KEY_PATTERN))
    except InputError:
        return []


@dataclass(frozen=True)
class TableFiles:
    """One table's files, format and schema."""

    files: list[str]
    format: str
    schema: pa.Schema


def _consent_files(policy: Policy) -> TableFiles:
    pattern = policy.consent.table
    files = match_inputs(pattern)
    formats = {format_of(path) for path in files}
    if len(formats) > 1:
        raise InputError(f"consent table {pattern} mixes formats ({', '.join(sorted(formats))}); use one format")
    fmt = formats.pop()
    schema = read_schema(files, fmt)
    names = policy.consent.columns.model_dump()
    missing = [name for name in names.values() if name not in schema.names]
    if missing:
        raise InputError(
            f"consent table {pattern} has no column {', '.join(missing)} "
            "(name yours under consent.columns: subject, purpose, granted, at)"
        )
    for role, allowed in _CONSENT_TYPES.items():
        kind = schema.field(names[role]).type
        if not any(test(kind) for test in allowed):
            raise InputError(f"consent table {pattern}: column {names[role]} ({role}) cannot hold {kind}")
    return TableFiles(files, fmt, schema)


_TEXT = (pa.types.is_string, pa.types.is_large_string, pa.types.is_null)
_CONSENT_TYPES = {  # what each role's column may hold; values are checked as they are read
    "subject": (*_TEXT, pa.types.is_integer),
    "purpose": _TEXT,
    "granted": (*_TEXT, pa.types.is_boolean, pa.types.is_integer),
    "at": (*_TEXT, pa.types.is_timestamp, pa.types.is_date),
}


def _checked(table: str, files: list[str], schema: pa.Schema) -> TableFiles:
    """A veil-made table's files, refused if one of them lost its schema (damaged, or written by hand)."""
    if files:
        found = read_schema(files, "parquet")
        if not all(name in found.names and found.field(name).type == schema.field(name).type for name in schema.names):
            raise InputError(
                f"table {table}: its files do not have the schema veil writes ({', '.join(schema.names)}); "
                "restore them from a backup"
            )
    return TableFiles(files, "parquet", schema)


@dataclass(frozen=True)
class GateTables:
    """The tables of one policy's subject gates, found on the driver (None: the policy names none).

    Attributes:
        consent: the consent log.
        erasure: the erasure table (its files may be none: nobody erased yet).
        subject_keys: the subject key table (its files may be none: no keys made yet).
    """

    consent: TableFiles | None = None
    erasure: TableFiles | None = None
    subject_keys: TableFiles | None = None

    @classmethod
    def of(cls, policy: Policy, skip: frozenset[str] = frozenset()) -> "GateTables":
        """Find the tables `policy` names (but those in `skip`: `consent`, `erasure`, `subject_keys`).

        Raises:
            InputError: a consent log without its columns, or an erasure table that does not exist.
        """
        consent = policy.consent and policy.consent.table and "consent" not in skip
        erasure = policy.erasure and "erasure" not in skip
        keys = policy.subject_keys and "subject_keys" not in skip
        return cls(
            _consent_files(policy) if consent else None,
            _checked(policy.erasure.table, erasure_files(policy.erasure.table), ERASURE_SCHEMA) if erasure else None,
            _checked(policy.subject_keys, key_files(policy.subject_keys), SUBJECT_KEY_SCHEMA) if keys else None,
        )

    def read(self, pipeline: beam.Pipeline, purpose: str) -> dict[str, beam.PCollection | None]:
        """Each table as a PCollection of RecordBatches (`consent`, `erasure`, `subject_keys`; None where
        the policy names no such table)."""
        return {
            name: None if table is None else _read(pipeline, f"Read{label}[{purpose}]", table)
            for name, label, table in (
                ("consent", "Consent", self.consent),
                ("erasure", "Erasures", self.erasure),
                ("subject_keys", "SubjectKeys", self.subject_keys),
            )
        }


def _read(pipeline: beam.Pipeline, label: str, table: TableFiles) -> beam.PCollection:
    if not table.files:
        return pipeline | label >> beam.Create([]).with_output_types(pa.RecordBatch)
    return pipeline | label >> ReadBatches(table.files, table.format, table.schema)
