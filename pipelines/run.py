"""The `veil run` job: read an input once, write one protected view per policy.

Arrow batches flow end to end (read -> SanitizeBatches -> write); counts come back from Beam
Metrics into each view's manifest.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from veil.errors import ConfigError, InputError
from veil.keys import open_keyring
from veil.pipelines import outputs
from veil.pipelines.job import InputSet, StagedJob, check_output_format, open_input
from veil.pipelines.k_anonymity import enforce_k_anonymity, manifest_entry
from veil.pipelines.manifest import build_manifest, schema_fields
from veil.pipelines.report import report_job
from veil.pipelines.rights import ERASURE_SCHEMA, erasure_files
from veil.pipelines.subject_keys import key_files, publish_new_keys
from veil.transforms.beam import SanitizeBatches
from veil.transforms.gates import SUBJECT_KEY_SCHEMA
from veil.transforms.io import ReadBatches, WriteBatches
from veil.transforms.plan import Plan, compile_plan, subject_gates
from veil.transforms.policy import Policy, resolve_keyset


@dataclass(frozen=True)
class View:
    """One policy's output in a run.

    Attributes:
        plan: the compiled plan.
        folder: where its files and manifest go.
        keyset: the keyset path (None when nothing is keyed).
        key_version: the root key version used (None when nothing is keyed).
    """

    plan: Plan
    folder: str
    keyset: str | None
    key_version: int | None
    consent_table: InputSet | None = None
    erasure_files: list[str] | None = None
    subject_key_files: list[str] | None = None

    def gate_tables(self, pipeline: beam.Pipeline) -> dict[str, Any]:
        """The consent and erasure tables this view's policy gates on, as PCollections of batches."""
        purpose, tables = self.plan.policy.purpose, {}
        if self.consent_table is not None:
            table = self.consent_table
            tables["consent_rows"] = pipeline | f"ReadConsent[{purpose}]" >> ReadBatches(
                table.files, table.format, table.schema
            )
        if self.erasure_files is not None:
            label = f"ReadErasures[{purpose}]"
            tables["erased_rows"] = (
                pipeline | label >> ReadBatches(self.erasure_files, "parquet", ERASURE_SCHEMA)
                if self.erasure_files
                else pipeline | label >> beam.Create([]).with_output_types(pa.RecordBatch)
            )
        if self.subject_key_files is not None:
            label = f"ReadSubjectKeys[{purpose}]"
            tables["subject_key_rows"] = (
                pipeline | label >> ReadBatches(self.subject_key_files, "parquet", SUBJECT_KEY_SCHEMA)
                if self.subject_key_files
                else pipeline | label >> beam.Create([]).with_output_types(pa.RecordBatch)
            )
        return tables


def input_rows(files: list[str], fmt: str) -> int | None:
    """Rows in the input when cheap to know (Parquet footers), else None."""
    if fmt != "parquet":
        return None
    import pyarrow.parquet as pq

    total = 0
    for path in files:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            total += pq.ParquetFile(handle).metadata.num_rows
    return total


def _consent_table(policy: Policy) -> InputSet | None:
    if not (policy.consent and policy.consent.table):
        return None
    table = open_input(policy.consent.table)
    wanted = policy.consent.columns.model_dump().values()
    missing = [name for name in wanted if name not in table.schema.names]
    if missing:
        raise InputError(
            f"consent table {policy.consent.table} has no column {', '.join(missing)} "
            "(name yours under consent.columns: subject, purpose, granted, at)"
        )
    return table


def _erasure(policy: Policy) -> list[str] | None:
    return erasure_files(policy.erasure.table) if policy.erasure else None


def plan_views(policies: list[Policy], schema, output: str, keyset: str | None) -> list[View]:
    """Compile each policy against the input and open its keys on the driver (fails early)."""
    purposes = [p.purpose for p in policies]
    duplicates = sorted({p for p in purposes if purposes.count(p) > 1})
    if duplicates:
        raise ConfigError(
            f"several policies share the purpose {', '.join(duplicates)}; "
            "run them separately or give each its own purpose"
        )
    tables = [p.subject_keys for p in policies if p.subject_keys]
    if len(tables) != len(set(tables)):
        raise ConfigError(
            "several policies in this run share a subject key table; run them one after the other, "
            "so that every subject gets exactly one key"
        )
    views = []
    for policy in policies:
        plan = compile_plan(policy, schema)
        folder = output if len(policies) == 1 else FileSystems.join(output, policy.purpose)
        path = version = None
        if plan.keyed or subject_gates(policy):
            path = resolve_keyset(policy, keyset)
            keyring = open_keyring(path)
            version = keyring.resolve_version(policy.key_version) if plan.keyed else None
            if subject_gates(policy):
                keyring.subject_prf()  # a keyset without a subject key fails here, not on the workers
        key_files_ = key_files(policy.subject_keys) if policy.subject_keys else None
        views.append(View(plan, folder, path, version, _consent_table(policy), _erasure(policy), key_files_))
    return views


def run_job(
    policies: list[Policy],
    input_pattern: str,
    output: str,
    *,
    output_format: str = "parquet",
    keyset: str | None = None,
    overwrite: bool = False,
    beam_args: list[str] | None = None,
    warn: Callable[[str], None] = outputs.warn_on_stderr,
) -> list[dict[str, Any]]:
    """Run every policy over the input; returns one manifest per view.

    The output folders are locked for the run (see `StagedJob`); `warn` gets one line when a
    dead run's lock or staging folders are cleaned up.

    Raises:
        VeilError: a bad policy, input, key or output, or data refused by the policy.
    """
    check_output_format(output_format)
    source = open_input(input_pattern)
    views = plan_views(policies, source.schema, output, keyset)
    job = StagedJob([view.folder for view in views], overwrite, warn=warn)
    key_tables = sorted({view.plan.policy.subject_keys for view in views if view.plan.policy.subject_keys})
    summaries = {}  # purpose -> the k-anonymity stage's summary

    def build(pipeline: beam.Pipeline) -> None:
        needed = {name for view in views for name in view.plan.input_fields}
        batches = pipeline | "Read" >> ReadBatches(source.files, source.format, source.schema, sorted(needed) or None)
        for view in views:
            purpose, policy, staging = view.plan.policy.purpose, view.plan.policy, job.stage(view.folder)
            sanitize = SanitizeBatches(
                policy,
                schema=source.schema,
                keyset=view.keyset,
                key_version=view.key_version,
                **view.gate_tables(pipeline),
            )
            write = WriteBatches(FileSystems.join(staging, "part"), output_format, view.plan.output_schema)
            sanitized = batches | f"Sanitize[{purpose}]" >> sanitize
            if sanitize.new_subject_keys is not None:  # appended to the key table only if the run succeeds
                key_prefix = FileSystems.join(job.stage(policy.subject_keys), "keys")
                _ = sanitize.new_subject_keys | f"WriteKeys[{purpose}]" >> WriteBatches(
                    key_prefix, "parquet", SUBJECT_KEY_SCHEMA
                )
            if policy.k_anonymity is not None:  # dataset gate: suppress (or refuse) small classes
                sanitized, summaries[purpose] = enforce_k_anonymity(sanitized, policy, staging)
            _ = sanitized | f"Write[{purpose}]" >> write

    with job:  # a failure from here on removes every staging folder not yet committed
        job.run(build, beam_args)
        for table in key_tables:
            publish_new_keys(job.stage(table), table, job.run_id)
        manifests = []
        for view in views:
            policy = view.plan.policy
            manifest = build_manifest(
                plan=view.plan,
                run_id=job.run_id,
                started=job.started,
                finished=job.finished,
                inputs=source.describe(),
                output={
                    "folder": view.folder,
                    "format": output_format,
                    "files": job.staged_files(view.folder),
                    "schema": schema_fields(view.plan.output_schema),
                },
                runner=job.runner,
                keyset=view.keyset,
                key_version=view.key_version,
                counts=job.counts(policy.purpose),
            )
            if policy.k_anonymity is not None:
                manifest["k_anonymity"] = manifest_entry(policy, summaries[policy.purpose].value())
            job.commit(view.folder, manifest)
            if policy.k_anonymity is not None:
                report_job(view.folder)
            manifests.append(manifest)
    return manifests
