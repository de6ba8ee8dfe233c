"""The `veil run` job: read an input once, write one protected view per policy.

Arrow batches flow end to end (read -> SanitizeBatches -> write); counts come back from Beam
Metrics into each view's manifest.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from veil.errors import ConfigError, InputError
from veil.keys import open_keyring
from veil.pipelines import outputs
from veil.pipelines.io import ReadBatches, WriteBatches, format_of, match_inputs, read_schema
from veil.pipelines.manifest import build_manifest, manifest_json, schema_fields
from veil.transforms.beam import SanitizeBatches, metrics_namespace
from veil.transforms.plan import Plan, compile_plan
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


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def plan_views(policies: list[Policy], schema, output: str, keyset: str | None) -> list[View]:
    """Compile each policy against the input and open its keys on the driver (fails early)."""
    purposes = [p.purpose for p in policies]
    duplicates = sorted({p for p in purposes if purposes.count(p) > 1})
    if duplicates:
        raise ConfigError(
            f"several policies share the purpose {', '.join(duplicates)}; "
            "run them separately or give each its own purpose"
        )
    views = []
    for policy in policies:
        plan = compile_plan(policy, schema)
        folder = output if len(policies) == 1 else FileSystems.join(output, policy.purpose)
        path = version = None
        if plan.keyed:
            path = resolve_keyset(policy, keyset)
            version = open_keyring(path).resolve_version(policy.key_version)
        views.append(View(plan, folder, path, version))
    return views


def _counts(result, purpose: str) -> dict[str, int]:
    query = result.metrics().query(MetricsFilter().with_namespace(metrics_namespace(purpose)))
    counts: dict[str, int] = {}
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[counter.key.metric.name] = counts.get(counter.key.metric.name, 0) + (value or 0)
    return counts


def run_job(
    policies: list[Policy],
    input_pattern: str,
    output: str,
    *,
    output_format: str = "parquet",
    keyset: str | None = None,
    overwrite: bool = False,
    beam_args: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Run every policy over the input; returns one manifest per view.

    Raises:
        VeilError: a bad policy, input, key or output, or data refused by the policy.
    """
    if output_format not in ("parquet", "csv", "jsonl"):
        raise ConfigError(f"unknown output format '{output_format}'; use parquet, csv or jsonl")
    files = match_inputs(input_pattern)
    formats = {format_of(path) for path in files}
    if len(formats) > 1:
        raise InputError(
            f"input {input_pattern} mixes formats ({', '.join(sorted(formats))}); name files of one format"
        )
    in_format = formats.pop()
    schema = read_schema(files, in_format)
    views = plan_views(policies, schema, output, keyset)
    for view in views:
        outputs.check_output(view.folder, overwrite)

    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    options = PipelineOptions(beam_args or [])
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    started = _utc_now()
    stagings = [outputs.staging_dir(v.folder, run_id) for v in views]
    try:
        pipeline = beam.Pipeline(options=options)
        batches = pipeline | "Read" >> ReadBatches(files, in_format, schema)
        for view, staging in zip(views, stagings):
            purpose = view.plan.policy.purpose
            (
                batches
                | f"Sanitize[{purpose}]"
                >> SanitizeBatches(view.plan.policy, schema=schema, keyset=view.keyset, key_version=view.key_version)
                | f"Write[{purpose}]"
                >> WriteBatches(FileSystems.join(staging, "part"), output_format, view.plan.output_schema)
            )
        result = pipeline.run()
        result.wait_until_finish()
    except BaseException:
        for staging in stagings:
            outputs.discard(staging)
        raise
    finished = _utc_now()
    manifests = []
    for view, staging in zip(views, stagings):
        manifest = build_manifest(
            plan=view.plan,
            run_id=run_id,
            started=started,
            finished=finished,
            inputs={"pattern": input_pattern, "format": in_format, "files": files, "schema": schema_fields(schema)},
            output={
                "folder": view.folder,
                "format": output_format,
                "files": [],
                "schema": schema_fields(view.plan.output_schema),
            },
            runner=runner,
            keyset=view.keyset,
            key_version=view.key_version,
            counts=_counts(result, view.plan.policy.purpose),
        )
        staged = [m.path for m in FileSystems.match([FileSystems.join(staging, "part-*")])[0].metadata_list]
        manifest["output"]["files"] = sorted(p.rsplit("/", 1)[-1] for p in staged)
        outputs.commit(view.folder, staging, manifest_json(manifest))
        manifests.append(manifest)
    return manifests
