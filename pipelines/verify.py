"""Verification in veil's jobs: the stage `veil run` adds before publishing, its manifest entry and
gate, what it prints, and `veil verify` (the same check on an existing output).

The check itself is `veil.transforms.verify.Verify`; its findings flow to the driver as data
(`collect`), go into the view's manifest (`verify`), and in `fail` mode a finding in a field that
is not kept as it is stops the run before anything is published.
"""

import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from veil.errors import ConfigError, DataRefusedError
from veil.pipelines import outputs
from veil.pipelines.job import Collected, StagedJob, collect, open_input
from veil.pipelines.manifest import output_files, output_schema, read_manifest
from veil.transforms.io import ReadBatches, read_schema
from veil.transforms.plan import Plan, compile_plan, declared_types
from veil.transforms.policy import Policy
from veil.transforms.verification import VerifySpec
from veil.transforms.verify import Verify, findings_message, findings_text, refused_fields

MODES = ("fail", "warn", "off")


def check_mode(mode: str) -> None:
    """Refuse an unknown `--verify` mode."""
    if mode not in MODES:
        raise ConfigError(f"unknown --verify mode '{mode}'; use {', '.join(MODES)}")


class VerifyStage(NamedTuple):
    """What the stage gives back.

    Attributes:
        findings: the PCollection of the one findings dict (what a publishing stage is gated on).
        collected: the same, readable on the driver once the pipeline has run.
    """

    findings: beam.PCollection
    collected: Collected


def verify_stage(raw: beam.PCollection, view: beam.PCollection, plan: Plan, staging: str) -> VerifyStage:
    """Add the check of `view` (the batches written) against `raw` (the batches read); its findings
    are also collected into `staging` for the driver."""
    purpose = plan.policy.purpose
    findings = (raw, view) | f"Verify[{purpose}]" >> Verify(plan, temp_location=staging)
    return VerifyStage(findings, collect(findings, staging, "verify", label=f"VerifyFindings[{purpose}]"))


def manifest_entry(mode: str, plan: Plan | None = None, findings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest's `verify` entry: the mode, and unless it is `off` the findings, with the fields
    whose findings refuse the view (`refused`) and those kept as they are (`warnings`)."""
    if mode == "off" or plan is None or findings is None:
        return {"mode": "off"}
    spec = VerifySpec.of(plan)
    refused = refused_fields(spec, findings)
    warnings = {f: n for f, n in _totals(findings).items() if f not in refused}
    return {"mode": mode, **findings, "refused": refused, "warnings": warnings}


def _totals(findings: dict[str, Any]) -> dict[str, int]:
    totals: dict[str, int] = dict(findings["raw_values"])
    for name, entities in findings["patterns"].items():
        totals[name] = totals.get(name, 0) + sum(entities.values())
    return totals


def refuse_failed(manifests: Sequence[dict[str, Any]]) -> None:
    """In `fail` mode, stop when a view's verification refused it (before anything is published).

    Raises:
        DataRefusedError: naming each refused view's fields and counts, never a value.
    """
    failed = [m for m in manifests if m.get("verify", {}).get("mode") == "fail" and m["verify"]["refused"]]
    if failed:
        reasons = "; ".join(findings_message(m["purpose"], refused_findings(m["verify"])) for m in failed)
        raise DataRefusedError(
            f"{reasons}; nothing was published (fix the policy, or run with --verify warn to publish "
            "with the findings in the manifest)"
        )


def refused_findings(entry: dict[str, Any]) -> dict[str, Any]:
    """A `verify` entry's findings in the fields that refuse the view only."""
    refused = entry["refused"]
    return {
        "raw_values": {f: n for f, n in entry["raw_values"].items() if f in refused},
        "patterns": {f: e for f, e in entry["patterns"].items() if f in refused},
    }


def verify_lines(manifests: Sequence[dict[str, Any]]) -> list[str]:
    """One line per view on its verification (what `veil run`, `veil demo` and `veil verify` print)."""
    lines = []
    for manifest in manifests:
        entry = manifest.get("verify")
        if entry is None:  # an aggregates view: statistics with noise, no rows to compare
            continue
        purpose = manifest["purpose"]
        if entry["mode"] == "off":
            lines.append(f"{purpose}: verification off")
            continue
        found = findings_text(entry)
        head = f"{purpose}: verified {entry['cells_checked']:,} cells"
        if not found:
            lines.append(f"{head}: no raw input values, no personal-data patterns")
            continue
        published = " (published: --verify warn)" if entry["mode"] == "warn" and entry["refused"] else ""
        lines.append(f"{head}: {found}{published}")
        if entry["warnings"]:
            kept = ", ".join(f"{f} {n}" for f, n in entry["warnings"].items())
            lines.append(f"warning: {purpose}: findings in fields kept as they are (by the policy's choice): {kept}")
    return lines


def verify_job(
    output: str,
    input_pattern: str,
    policy: Policy,
    *,
    beam_args: list[str] | None = None,
    warn: Callable[[str], None] = outputs.warn_on_stderr,
) -> dict[str, Any]:
    """`veil verify`: check an existing output (a veil output folder, read through its manifest)
    against the raw input it was made from; returns a manifest-like `{purpose, verify}`.

    Raises:
        VeilError: a bad policy, input or output.
    """
    source = open_input(input_pattern, types=declared_types([policy]))
    plan = compile_plan(policy, source.schema)
    manifest = read_manifest(output)
    files, fmt = output_files(output, manifest)
    declared = {name: kind for name, kind in output_schema(manifest).items() if kind is not None}
    written = read_schema(files, fmt, declared)
    missing = [op.output for op in plan.ops if op.output not in written.names]
    if missing:
        raise ConfigError(
            f"output {output} has no field {', '.join(missing)} of policy '{policy.purpose}'; "
            "name the policy that made it"
        )
    fields = pa.schema([written.field(op.output) for op in plan.ops])
    remote = PipelineOptions(beam_args or []).view_as(GoogleCloudOptions).temp_location
    scratch = remote or tempfile.mkdtemp(prefix="veil-verify-")  # the findings come back through it
    try:
        with StagedJob([], False, warn=warn) as job:  # nothing to publish
            staging = job.stage(scratch)
            collected: dict[str, VerifyStage] = {}

            def build(pipeline: beam.Pipeline) -> None:
                needed = sorted(VerifySpec.of(plan).input_fields) or None
                raw = pipeline | "ReadInput" >> ReadBatches(source.files, source.format, source.schema, needed)
                view = pipeline | "ReadOutput" >> ReadBatches(files, fmt, written, fields.names)
                collected["verify"] = verify_stage(raw, view, plan, staging)

            job.run(build, beam_args)
            findings = collected["verify"].collected.value()
            job.discard()
    finally:
        if not remote:  # a local scratch folder of its own
            shutil.rmtree(scratch, ignore_errors=True)
    return {"purpose": policy.purpose, "output": output, "verify": manifest_entry("fail", plan, findings)}
