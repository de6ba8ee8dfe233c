"""The `veil detokenize` job: restore tokenized and encrypted fields of a veil output, audited.

It reads an output folder (its `_manifest.json` says which purpose made it and, for ff1
tokens, which key version), restores the named fields under their input names, and writes
a new folder. Values that fail authentication make the job fail, with how many per field,
unless `on_error` is `null`, when they become null and are counted. Every attempt, failed or
not, appends one line to the audit log.
"""

from collections.abc import Callable
from typing import Any

from apache_beam.io.filesystems import FileSystems

from veil.errors import ConfigError, IntegrityError, KeyShreddedError, VeilError
from veil.keys import open_keyring
from veil.pipelines import outputs
from veil.pipelines.job import StagedJob, check_output_format, open_input
from veil.pipelines.manifest import describe_governance, output_files, output_schema, read_manifest
from veil.transforms.audit import append_audit, audit_line
from veil.transforms.beam import DetokenizeBatches
from veil.transforms.io import ReadBatches, WriteBatches
from veil.transforms.policy import Policy, resolve_audit_log, resolve_keyset
from veil.transforms.reverse import restore_counts, restored_schema, reverse_ops

ON_ERROR = ("fail", "null")


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
    source = open_input(
        input_dir,
        output_files(input_dir, manifest)[0] if manifest else None,  # what it lists
        {name: kind for name, kind in output_schema(manifest).items() if kind is not None},  # text parsed back
    )
    missing = [op.output for op in ops if op.output not in source.schema.names]
    if missing:
        raise ConfigError(f"input {input_dir} has no field {', '.join(missing)}")
    schema = restored_schema(source.schema, ops)
    keyset_path = resolve_keyset(policy, keyset)
    version = policy.recorded_key_version([op.output for op in ops], (manifest or {}).get("fields", {}), key_version)
    open_keyring(keyset_path)  # a wrong master key or keyset fails here, before any data moves
    job = StagedJob([output], overwrite, warn=warn)  # locks `output` until the `with job` block ends
    facts = {"input": input_dir, "output": output, "run_id": job.run_id}
    detokenize = DetokenizeBatches(
        policy, fields, keyset=keyset_path, key_version=version, audit_facts=facts, on_error=on_error
    )  # the pipeline appends the run's one audit line once the restore has run

    def build(pipeline) -> None:
        _ = (
            pipeline
            | "Read" >> ReadBatches(source.files, source.format, source.schema)
            | "Detokenize" >> detokenize
            | "Write" >> WriteBatches(FileSystems.join(job.stage(output), "part"), output_format, schema)
        )

    with job:  # a failure from here on (the pipeline, a refusal after counting) removes the staging folder
        try:
            job.run(build, beam_args)
        except (IntegrityError, KeyShreddedError):  # the refusal of the audit stage: its line is written
            raise
        except VeilError as error:  # the pipeline stopped before its audit stage: this attempt's line
            line = audit_line("detokenize", **detokenize.audit_facts, outcome="failed", error=type(error).__name__)
            append_audit(resolve_audit_log(policy, keyset_path), line)
            raise
        counts = restore_counts(job.counts(policy.purpose))
        summary = {
            "kind": "detokenize",
            "run_id": job.run_id,
            "started": job.started,
            "finished": job.finished,
            "purpose": policy.purpose,
            "policy": {"path": policy.source, "sha256": policy.sha256},
            "governance": describe_governance(policy),  # a restored copy expires as the policy's outputs do
            "inputs": source.describe(),
            "output": {"folder": output, "format": output_format, "files": job.staged_files(output)},
            "runner": job.runner,
            "keys": {"keyset": keyset_path, "ff1_key_version": version},
            "fields": {op.output: {"restored_as": op.source, "action": op.action} for op in ops},
            "counts": counts,
        }
        job.commit(output, summary)
    return summary
