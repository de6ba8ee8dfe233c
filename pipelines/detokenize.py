"""The `veil detokenize` job: restore tokenized and encrypted fields of a veil output, audited.

It reads an output folder (its `_manifest.json` says which purpose made it and, for ff1
tokens, which key version), restores the named fields under their input names, and writes
a new folder. Values that fail authentication make the job fail, with how many per field,
unless `on_error` is `null`, when they become null and are counted. Every attempt, failed or
not, appends one line to the audit log.
"""

from collections.abc import Callable
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from veil.errors import ConfigError, IntegrityError, KeyShreddedError, VeilError
from veil.keys import open_keyring
from veil.pipelines import outputs
from veil.pipelines.job import StagedJob, check_output_format, open_input
from veil.pipelines.manifest import output_files, read_manifest
from veil.pipelines.subject_keys import key_files
from veil.transforms.audit import append_audit, audit_line
from veil.transforms.beam import DetokenizeBatches
from veil.transforms.gates import SUBJECT_KEY_SCHEMA
from veil.transforms.io import ReadBatches, WriteBatches
from veil.transforms.policy import Policy, resolve_audit_log, resolve_keyset
from veil.transforms.reverse import FAILED, RESTORED, SHREDDED, restored_schema, reverse_ops

ON_ERROR = ("fail", "null")


def _unrestored(counts: dict[str, int], on_error: str) -> tuple[dict[str, int], dict[str, int]]:
    """(failed, shredded) values per field from a run's counts; with `on_error: fail`, refuse any.

    Raises:
        KeyShreddedError: values were encrypted under deleted subject keys.
        IntegrityError: values failed authentication.
    """
    failed = {name[len(FAILED) :]: n for name, n in counts.items() if name.startswith(FAILED) and n}
    shredded = {name[len(SHREDDED) :]: n for name, n in counts.items() if name.startswith(SHREDDED) and n}
    if shredded and on_error == "fail":
        raise KeyShreddedError(
            "; ".join(f"field '{f}': {n} value{'s' if n > 1 else ''}" for f, n in shredded.items())
            + " were encrypted under subject keys deleted by an erasure (crypto-shredded) and cannot be "
            "restored; nothing was written. Use --on-error null to write them as null"
        )
    if failed and on_error == "fail":
        raise IntegrityError(
            "; ".join(f"field '{f}': {n} value{'s' if n > 1 else ''} failed authentication" for f, n in failed.items())
            + " (tampered, made for another purpose or field, or under an unknown key); nothing was written. "
            "Use --on-error null to write them as null"
        )
    return failed, shredded


def detokenize_job(
    policy: Policy,
    input_dir: str,
    output: str,
    fields: list[str],
    *,
    keyset: str | None = None,
    key_version: int | None = None,
    on_error: str = "fail",
    output_format: str = "parquet",
    overwrite: bool = False,
    beam_args: list[str] | None = None,
    warn: Callable[[str], None] = outputs.warn_on_stderr,
) -> dict[str, Any]:
    """Restore `fields` of the veil output in `input_dir` into `output`; returns the run's summary.

    Raises:
        IntegrityError: values failed authentication and `on_error` is `fail`.
        VeilError: a bad policy, input, key or output.
    """
    if on_error not in ON_ERROR:
        raise ConfigError(f"unknown --on-error '{on_error}'; use fail or null")
    check_output_format(output_format)
    ops = reverse_ops(policy, fields)
    manifest = read_manifest(input_dir)
    if manifest and manifest.get("purpose") != policy.purpose:
        raise ConfigError(
            f"input {input_dir} was made for purpose '{manifest.get('purpose')}', not '{policy.purpose}': "
            "only the policy that made the data can detokenize it"
        )
    source = open_input(input_dir, output_files(input_dir, manifest)[0] if manifest else None)  # what it lists
    missing = [op.output for op in ops if op.output not in source.schema.names]
    if missing:
        raise ConfigError(f"input {input_dir} has no field {', '.join(missing)}")
    schema = restored_schema(source.schema, ops)
    keyset_path = resolve_keyset(policy, keyset)
    version = policy.recorded_key_version([op.output for op in ops], (manifest or {}).get("fields", {}), key_version)
    open_keyring(keyset_path)  # a wrong master key or keyset fails here, before any data moves
    audit_path = resolve_audit_log(policy, keyset_path)
    job = StagedJob([output], overwrite, warn=warn)  # locks `output` until the `with job` block ends
    audit = {
        "policy": policy.source,
        "policy_sha256": policy.sha256,
        "purpose": policy.purpose,
        "fields": [op.output for op in ops],
        "input": input_dir,
        "output": output,
        "run_id": job.run_id,
    }

    def key_rows(pipeline):
        if not policy.subject_keys:
            return None
        files = key_files(policy.subject_keys)
        if not files:
            return pipeline | "NoSubjectKeys" >> beam.Create([]).with_output_types(pa.RecordBatch)
        return pipeline | "ReadSubjectKeys" >> ReadBatches(files, "parquet", SUBJECT_KEY_SCHEMA)

    def build(pipeline) -> None:
        _ = (
            pipeline
            | "Read" >> ReadBatches(source.files, source.format, source.schema)
            | "Detokenize"
            >> DetokenizeBatches(
                policy, fields, keyset=keyset_path, key_version=version, subject_key_rows=key_rows(pipeline)
            )
            | "Write" >> WriteBatches(FileSystems.join(job.stage(output), "part"), output_format, schema)
        )

    with job:  # a failure from here on (the pipeline, a refusal after counting) removes the staging folder
        try:
            job.run(build, beam_args)
            counts = job.counts(policy.purpose)
            failed, shredded = _unrestored(counts, on_error)
        except VeilError as error:
            append_audit(audit_path, audit_line("detokenize", **audit, outcome="failed", error=type(error).__name__))
            raise
        summary = {
            "kind": "detokenize",
            "run_id": job.run_id,
            "started": job.started,
            "finished": job.finished,
            "purpose": policy.purpose,
            "policy": {"path": policy.source, "sha256": policy.sha256},
            "inputs": source.describe(),
            "output": {"folder": output, "format": output_format, "files": job.staged_files(output)},
            "runner": job.runner,
            "keys": {"keyset": keyset_path, "ff1_key_version": version},
            "fields": {op.output: {"restored_as": op.source, "action": op.action} for op in ops},
            "counts": {
                "restored": {n[len(RESTORED) :]: v for n, v in counts.items() if n.startswith(RESTORED)},
                "failed": failed,
                "shredded": shredded,
            },
        }
        job.commit(output, summary)
    append_audit(audit_path, audit_line("detokenize", **audit, outcome="ok", counts=summary["counts"]))
    return summary
