"""The `veil run` job: read an input once, write one protected view per policy.

Arrow batches flow end to end (read -> SanitizeBatches -> write); counts come back from Beam
Metrics into each view's manifest.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from veil.errors import ConfigError
from veil.keys import open_keyring
from veil.pipelines import aggregates, outputs
from veil.pipelines.job import StagedJob, check_output_format, open_input
from veil.pipelines.k_anonymity import enforce_k_anonymity
from veil.pipelines.k_anonymity import manifest_entry as k_anonymity_entry
from veil.pipelines.manifest import build_manifest, schema_fields
from veil.pipelines.report import report_job
from veil.pipelines.subject_keys import publish_new_keys
from veil.pipelines.verify import check_mode, manifest_entry, refuse_failed, verify_stage
from veil.transforms.beam import SanitizeBatches
from veil.transforms.io import ReadBatches, WriteBatches
from veil.transforms.plan import Plan, compile_plan, declared_types, subject_gates
from veil.transforms.policy import Policy, resolve_keyset
from veil.transforms.tables import SUBJECT_KEY_SCHEMA, GateTables


@dataclass(frozen=True)
class View:
    """One policy's output in a run.

    Attributes:
        plan: the compiled plan.
        folder: where its files and manifest go.
        keyset: the keyset path (None when nothing is keyed).
        key_version: the root key version used (None when nothing is keyed).
        tables: the consent, erasure and subject key tables its policy names, found on the driver.
    """

    plan: Plan
    folder: str
    keyset: str | None
    key_version: int | None
    tables: GateTables = GateTables()


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
        views.append(View(plan, folder, path, version, GateTables.of(policy)))
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
    verify: str = "fail",
) -> list[dict[str, Any]]:
    """Run every policy over the input; returns one manifest per view.

    The output folders are locked for the run (see `StagedJob`); `warn` gets one line when a
    dead run's lock or staging folders are cleaned up. `verify` (fail, warn, off) checks each view
    against the input before publishing (`veil.pipelines.verify`): in `fail` mode a finding in a
    field that is not kept as it is publishes nothing.

    Raises:
        VeilError: a bad policy, input, key or output, or data refused by the policy.
    """
    check_output_format(output_format)
    check_mode(verify)
    source = open_input(input_pattern, types=declared_types(policies))
    views = plan_views(policies, source.schema, output, keyset)
    job = StagedJob([view.folder for view in views], overwrite, warn=warn)
    key_tables = sorted({view.plan.policy.subject_keys for view in views if view.plan.policy.subject_keys})
    summaries = {}  # purpose -> the k-anonymity stage's summary
    released = {}  # purpose -> the aggregates stage (a policy with aggregates writes tables, never rows)
    findings = {}  # purpose -> the verification stage (its findings)

    def build(pipeline: beam.Pipeline) -> None:
        needed = {name for view in views for name in view.plan.input_fields}
        batches = pipeline | "Read" >> ReadBatches(source.files, source.format, source.schema, sorted(needed) or None)
        for view in views:
            purpose, policy, staging = view.plan.policy.purpose, view.plan.policy, job.stage(view.folder)
            if policy.aggregates is not None:
                released[purpose] = aggregates.release_aggregates(
                    batches, view.plan, staging, keyset=view.keyset, key_version=view.key_version, tables=view.tables
                )
                continue
            generalize = policy.k_anonymity is not None and policy.k_anonymity.on_violation == "generalize"
            sanitize = SanitizeBatches(
                view.plan, keyset=view.keyset, key_version=view.key_version, tables=view.tables, levels=generalize
            )
            write = WriteBatches(FileSystems.join(staging, "part"), output_format, view.plan.output_schema)
            result = batches | f"Sanitize[{purpose}]" >> sanitize
            sanitized = result.output
            if policy.subject_keys:  # appended to the key table only if the run succeeds
                key_prefix = FileSystems.join(job.stage(policy.subject_keys), "keys")
                _ = result.new_subject_keys | f"WriteKeys[{purpose}]" >> WriteBatches(
                    key_prefix, "parquet", SUBJECT_KEY_SCHEMA
                )
            if policy.k_anonymity is not None:  # dataset gate: suppress (or refuse) small classes
                sanitized, summaries[purpose] = enforce_k_anonymity(sanitized, policy, staging)
            _ = sanitized | f"Write[{purpose}]" >> write
            if verify != "off":  # the batches written, against the batches read
                findings[purpose] = verify_stage(batches, sanitized, view.plan, staging)

    with job:  # a failure from here on removes every staging folder not yet committed
        job.run(build, beam_args)
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
                manifest["k_anonymity"] = k_anonymity_entry(policy, summaries[policy.purpose].value())
            if policy.aggregates is not None:  # tables of noisy statistics, no rows: nothing to verify
                counts = job.counts(policy.purpose)
                files = manifest["output"]["files"]
                manifest["output"]["schema"] = []  # no rows: each table's schema is in its entry
                manifest["output"]["format"] = "parquet"  # tables are Parquet whatever --format says
                manifest["aggregates"] = aggregates.manifest_entry(view.plan, released[policy.purpose], files, counts)
                manifest["counts"] = {"records": aggregates.WITHHELD}
            else:
                stage = findings.get(policy.purpose)
                manifest["verify"] = manifest_entry(verify, view.plan, stage.collected.value() if stage else None)
            manifests.append(manifest)
        refuse_failed(manifests)  # before anything is published: keys, data, manifests
        for table in key_tables:
            publish_new_keys(job.stage(table), table, job.run_id)
        for view, manifest in zip(views, manifests):
            job.commit(view.folder, manifest)
            if view.plan.policy.k_anonymity is not None:
                report_job(view.folder)
    return manifests
