"""The `veil run` job: read an input once, write one protected view per policy, publish them.

Arrow batches flow end to end (read -> SanitizeBatches -> [k-anonymity] -> write); the counts,
the written files' names and the k-anonymity summaries flow as data to the pipeline's last
stage, which publishes every view (`veil.pipelines.publish`). `veil run` waits for the job;
a Flex Template launcher builds the same pipeline and returns once it is submitted.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from veil.errors import ConfigError, OutputError
from veil.keys import open_keyring
from veil.pipelines import aggregates, outputs
from veil.pipelines.job import StagedJob, check_output_format, open_input
from veil.pipelines.k_anonymity import enforce_k_anonymity
from veil.pipelines.manifest import read_manifest
from veil.pipelines.publish import COUNTS, FILES, KEYS, SUMMARY, VERIFY, Publish, Release, ViewRelease, tagged
from veil.pipelines.verify import check_mode
from veil.transforms.beam import SanitizeBatches
from veil.transforms.io import ReadBatches, WriteBatches
from veil.transforms.plan import Plan, compile_plan, declared_types, subject_gates
from veil.transforms.policy import Policy, resolve_keyset
from veil.transforms.tables import SUBJECT_KEY_SCHEMA, GateTables
from veil.transforms.verification import VerifySpec
from veil.transforms.verify import Verify


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


class RunJob:
    """One `veil run`, prepared: the input matched, every policy compiled against it and its keys
    opened, the output folders claimed (`job`, a `StagedJob`: use it as a context manager).
    `build(pipeline)` adds the run's steps, the publish stage last. `verify` (fail, warn, off)
    checks each view against the input inside the pipeline (`veil.transforms.verify.Verify`); its
    findings gate the publish stage: in `fail` mode a finding in a field that is not kept as it is
    publishes nothing.

    Raises:
        VeilError: a bad policy, input, key or output.
    """

    def __init__(
        self,
        policies: list[Policy],
        input_pattern: str,
        output: str,
        *,
        output_format: str = "parquet",
        keyset: str | None = None,
        overwrite: bool = False,
        warn: Callable[[str], None] = outputs.warn_on_stderr,
        verify: str = "fail",
    ):
        check_output_format(output_format)
        check_mode(verify)
        self.output_format, self.verify = output_format, verify
        self.source = open_input(input_pattern, types=declared_types(policies))
        self.views = plan_views(policies, self.source.schema, output, keyset)
        self.job = StagedJob([view.folder for view in self.views], overwrite, warn=warn)

    def build(self, pipeline: beam.Pipeline) -> None:
        """Add the run's steps to `pipeline`: read, one view per policy, publish."""
        job, source, facts, releases, key_tables = self.job, self.source, [], [], {}
        needed = {name for view in self.views for name in view.plan.input_fields}
        if self.verify != "off":  # verification compares a view with input fields it drops too
            rows = [view.plan for view in self.views if view.plan.policy.aggregates is None]
            needed.update(name for plan in rows for name in VerifySpec.of(plan).input_fields)
        batches = pipeline | "Read" >> ReadBatches(source.files, source.format, source.schema, sorted(needed) or None)
        for view in self.views:
            policy, staging = view.plan.policy, job.stage(view.folder)
            purpose = policy.purpose
            if policy.aggregates is not None:  # DP tables, never rows
                released = aggregates.release_aggregates(
                    batches, view.plan, staging, keyset=view.keyset, key_version=view.key_version, tables=view.tables
                )
                facts.append(tagged(released.counts, COUNTS, purpose, label=f"Counts[{purpose}]"))
                facts.append(tagged(released.files, FILES, purpose, label=f"Files[{purpose}]"))
                release = ViewRelease(
                    view.plan, view.folder, staging, view.keyset, view.key_version, aggregates=released.stage
                )
                releases.append(release)
                continue
            generalize = policy.k_anonymity is not None and policy.k_anonymity.on_violation == "generalize"
            sanitize = SanitizeBatches(
                view.plan, keyset=view.keyset, key_version=view.key_version, tables=view.tables, levels=generalize
            )
            result = batches | f"Sanitize[{purpose}]" >> sanitize
            sanitized = result.output
            facts.append(tagged(result.counts, COUNTS, purpose, label=f"Counts[{purpose}]"))
            if policy.subject_keys:  # appended to the key table by the publish stage, before any view
                key_tables[policy.subject_keys] = job.stage(policy.subject_keys)
                keys = result.new_subject_keys | f"WriteKeys[{purpose}]" >> WriteBatches(
                    FileSystems.join(key_tables[policy.subject_keys], "keys"), "parquet", SUBJECT_KEY_SCHEMA
                )
                facts.append(tagged(keys, KEYS, policy.subject_keys, label=f"KeyFiles[{purpose}]"))
            if policy.k_anonymity is not None:  # dataset gate: suppress (or refuse) small classes
                enforced = enforce_k_anonymity(sanitized, policy)
                sanitized = enforced.batches
                facts.append(tagged(enforced.counts, COUNTS, purpose, label=f"KAnonymityCounts[{purpose}]"))
                facts.append(tagged(enforced.summary, SUMMARY, purpose, label=f"KAnonymitySummary[{purpose}]"))
            write = WriteBatches(FileSystems.join(staging, "part"), self.output_format, view.plan.output_schema)
            written = sanitized | f"Write[{purpose}]" >> write
            facts.append(tagged(written, FILES, purpose, label=f"Files[{purpose}]"))
            if self.verify != "off":  # the batches written, against the batches read: gates the publish stage
                findings = (batches, sanitized) | f"Verify[{purpose}]" >> Verify(view.plan, temp_location=staging)
                facts.append(tagged(findings, VERIFY, purpose, label=f"Findings[{purpose}]"))
            release = ViewRelease(view.plan, view.folder, staging, view.keyset, view.key_version, self.verify)
            releases.append(release)
        release = Release(
            job.run_id, job.started, job.runner, source.describe(), self.output_format, tuple(releases), key_tables
        )
        _ = tuple(facts) | "Publish" >> Publish(release)

    def manifests(self) -> list[dict[str, Any]]:
        """Each view's manifest, once the pipeline has run (its publish stage wrote them)."""
        manifests = [read_manifest(view.folder) for view in self.views]
        unpublished = [v.folder for v, m in zip(self.views, manifests) if (m or {}).get("run_id") != self.job.run_id]
        if unpublished:
            raise OutputError(f"run {self.job.run_id} finished without publishing {', '.join(unpublished)}")
        return manifests


def run_job(
    policies: list[Policy], input_pattern: str, output: str, *, beam_args: list[str] | None = None, **options: Any
) -> list[dict[str, Any]]:
    """Run every policy over the input and wait for the job to publish; returns one manifest per view.

    `options` are `RunJob`'s (output_format, keyset, overwrite, warn). The output folders are
    locked for the run (see `StagedJob`); `warn` gets one line when a dead run's lock or staging
    folders are cleaned up.

    Raises:
        VeilError: a bad policy, input, key or output, or data refused by the policy.
    """
    run = RunJob(policies, input_pattern, output, **options)
    with run.job:  # a failure from here on removes every staging folder not yet published
        run.job.run(run.build, beam_args)
        return run.manifests()
