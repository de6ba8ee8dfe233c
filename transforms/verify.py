"""`Verify`: check a written view against the input it came from, in the pipeline that made it.

Both sides are read one Arrow batch at a time (`veil.transforms.verification`): the input side
makes keyed hashes of the raw values of the fields compared by hash, by shard, and which policy
labels are raw values; the output side the keyed hashes of the cells, the format and pattern
counts. The hashes are spilled to files in a temporary folder, a file per shard every
`SPILL_BYTES` of them (only numbers: hashes under the run's key and counts, never values), and the
file names are joined per shard (a GroupByKey over 16 keys): the runner moves names, not hashes,
and a shard's join reads one sixteenth of them, so memory stays flat however large the input.
Everything is summed into one findings dict: data a publish step can be gated on. The hash key is
drawn at random inside the pipeline (a one-element side input), so it is neither in the job graph
nor kept after the run.
"""

import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, StandardOptions
from apache_beam.transforms.window import GlobalWindows

from veil._fs import is_remote
from veil.errors import ConfigError, DataRefusedError
from veil.keys.value_hash import ValueHasher, new_run_key
from veil.transforms.plan import Plan
from veil.transforms.verification import (
    Findings,
    Part,
    VerifySpec,
    input_counts,
    input_parts,
    join_shard,
    output_counts,
    output_parts,
)

__all__ = ["Verify", "findings_message", "findings_text", "refused_fields", "spill_folder"]

COUNTS = "counts"
GROUP_ROWS = 16_384  # rows checked together (a table of the batches, not a copy): fewer, larger Arrow calls
SPILL_BYTES = 32 << 20  # a side's hashes held before they are written out, a file per shard
LOCAL_RUNNERS = {"DirectRunner", "FnApiRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner", "TestDirectRunner"}


MODES = ("fail", "warn")


class _HashingFn(beam.DoFn):
    """One side's batches -> (shard, file of its hashes) and, tagged, its counts; the hasher is built
    from the run's key (a side input) on first use.

    Batches are checked `GROUP_ROWS` rows at a time, as one table of them (its columns chunked,
    nothing copied), the rest at the end of the bundle: the side's work is a few Arrow calls per
    group, in the stage that reads or writes the batches, with no stage or copy of its own. The
    groups' parts are held by shard until they reach `SPILL_BYTES`, then each shard's are written
    to one file in `folder` (a name of its own: a retried bundle's files are never joined).
    """

    def __init__(self, spec: VerifySpec, side: str, folder: str):
        self._spec, self._side, self._folder = spec, side, folder
        self._hasher: ValueHasher | None = None

    def start_bundle(self) -> None:
        self._pending: list[pa.RecordBatch] = []
        self._rows = 0
        self._held: dict[int, list[Part]] = {}
        self._held_bytes = 0

    def process(self, batch: pa.RecordBatch, key: bytes) -> Iterable[Any]:
        if self._hasher is None:
            self._hasher = ValueHasher(key)
        if not batch.num_rows:  # nothing to count or compare
            return
        if self._pending and not batch.schema.equals(self._pending[0].schema):
            yield from self._check()  # a group is one table: one schema
        self._pending.append(batch)
        self._rows += batch.num_rows
        if self._rows >= GROUP_ROWS:
            yield from self._check()

    def finish_bundle(self) -> Iterable[Any]:
        for output in [*self._check(), *self._spill()]:
            tag, value = (output.tag, output.value) if isinstance(output, pvalue.TaggedOutput) else (None, output)
            windowed = GlobalWindows.windowed_value(value)
            yield windowed if tag is None else pvalue.TaggedOutput(tag, windowed)

    def _check(self) -> Iterator[Any]:
        """The counts of the pending batches; their parts are held (and spilled when there are enough)."""
        if not self._pending:
            return
        group = pa.Table.from_batches(self._pending)
        self._pending, self._rows = [], 0
        spec, hasher = self._spec, self._hasher
        if self._side == "input":
            parts, counts = input_parts(group, spec, hasher), input_counts(group, spec)
        else:
            parts, counts = output_parts(group, spec, hasher), output_counts(group, spec)
        for shard, part in parts:
            self._held.setdefault(shard, []).append(part)
            self._held_bytes += part.nbytes
        if counts:
            yield pvalue.TaggedOutput(COUNTS, dict(counts))
        if self._held_bytes >= SPILL_BYTES:
            yield from self._spill()

    def _spill(self) -> Iterator[tuple[int, str]]:
        """Write each shard's held parts to a file of their own; (shard, its path)."""
        held, self._held, self._held_bytes = self._held, {}, 0
        for shard, parts in sorted(held.items()):
            path = FileSystems.join(self._folder, f"{self._side}-{shard:02d}-{uuid.uuid4().hex}.bin")
            with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as out:
                out.write(Part.merged(parts).to_bytes())
            yield shard, path


def _read_part(path: str) -> Part:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return Part.from_bytes(handle.read())


def _remove_spilled(findings: dict, folder: str) -> dict:
    """Delete the folder the hashes were spilled to, with its files (the findings pass through): a
    step after the sum, so a retried join still finds them."""
    try:  # an object store deletes a prefix with a trailing slash, recursively
        FileSystems.delete([f"{folder}/" if is_remote(folder) else folder])
    except BeamIOError:  # gone already (a retried step), or nothing was spilled
        pass
    return findings


def spill_folder(pipeline: beam.Pipeline, temp_location: str | None) -> str:
    """Where a `Verify` spills its hashes: a new folder in `temp_location`, else in the pipeline's
    `--temp_location`, else (a local runner only) in the system's temporary folder.

    Raises:
        ConfigError: a runner that is not local and no temporary location: its workers could not
            read each other's files.
    """
    options = pipeline.options
    base = temp_location or options.view_as(GoogleCloudOptions).temp_location
    if base is None:
        runner = options.view_as(StandardOptions).runner
        name = runner if isinstance(runner, str) or runner is None else type(runner).__name__
        if name is not None and name.rsplit(".", 1)[-1] not in LOCAL_RUNNERS:
            raise ConfigError(
                f"veil.Verify on {name} needs a folder every worker can read for its hashes: "
                "pass temp_location= or --temp_location (e.g. gs://bucket/tmp)"
            )
        base = tempfile.gettempdir()
    name = f"veil-verify-{uuid.uuid4().hex}"
    return f"{base.rstrip('/')}/{name}" if is_remote(base) else os.path.join(base, name)


class _SumFindings(beam.CombineFn):
    """Counts dicts -> the findings dict (`Findings.result`)."""

    def __init__(self, spec: VerifySpec):
        self._spec = spec

    def create_accumulator(self) -> Findings:
        return Findings()

    def add_input(self, accumulator: Findings, counts: dict) -> Findings:
        return accumulator.add(counts)

    def merge_accumulators(self, accumulators) -> Findings:
        merged = Findings()
        for accumulator in accumulators:
            merged.add(accumulator.counts)
        return merged

    def extract_output(self, accumulator: Findings) -> dict:
        return accumulator.result(self._spec)


def refused_fields(spec: VerifySpec, findings: dict[str, Any]) -> dict[str, int]:
    """Output fields not kept as they are with findings -> how many (raw values and pattern spans)."""
    visible = {c.output for c in spec.fields if c.visible}
    counts: dict[str, int] = {}
    for name, n in findings["raw_values"].items():
        counts[name] = counts.get(name, 0) + n
    for name, entities in findings["patterns"].items():
        counts[name] = counts.get(name, 0) + sum(entities.values())
    return {name: n for name, n in counts.items() if name not in visible}


def findings_text(findings: dict[str, Any]) -> str:
    """The findings in words (`raw values in email (3); patterns in notes (card 2)`), never a value;
    empty when there are none."""
    parts = [f"raw values in {name} ({n})" for name, n in findings["raw_values"].items()]
    for name, entities in findings["patterns"].items():
        found = ", ".join(f"{entity} {n}" for entity, n in entities.items())
        parts.append(f"patterns in {name} ({found})")
    return "; ".join(parts)


def findings_message(purpose: str, findings: dict[str, Any]) -> str:
    """The findings of a purpose's view in one line of an error."""
    return f"policy '{purpose}': verification found {findings_text(findings)}"


class _Refuse(beam.DoFn):
    """Fail the pipeline when the findings name a field that is not kept as it is."""

    def __init__(self, spec: VerifySpec):
        self._spec = spec

    def process(self, findings: dict) -> Iterable[dict]:
        if refused_fields(self._spec, findings):
            raise DataRefusedError(findings_message(self._spec.purpose, findings) + " (fields not kept as they are)")
        yield findings


class Verify(beam.PTransform):
    """(input batches, output batches) -> a PCollection of one findings dict.

    The findings are `{cells_checked, raw_values: {output field: n}, patterns: {output field:
    {entity: n}}, checked: {raw_values: [fields], patterns: [fields]}}` (nonzero counts only);
    `veil run` writes them into the manifest's `verify` entry.

    Args:
        plan: the compiled plan that made the view (its input schema is the input's).
        fail: raise `DataRefusedError` in the pipeline when a field that is not `keep` has
            findings (findings in kept fields never fail). Write the view aside and publish it
            only when the pipeline succeeded, as `veil run` does, or a refused view is out already.
        label: the transform label (default `Verify[<purpose>]`).
        temp_location: where the hashes are spilled while the sides are read (`spill_folder`): a
            folder every worker can read; the files are deleted once the findings are summed
            (a failed pipeline's are left, as Beam leaves its own temporary files).

    Apply it to a pair: `(raw_batches, view_batches) | veil.Verify(plan)`; the input batches need
    the plan's input fields (more columns are fine), the output batches the plan's output schema.
    The other fields of the plan's input schema (`spec.input_fields`: labels and free text are
    compared with every field that is not kept) are compared where the input batches have them.
    """

    def __init__(self, plan: Plan, *, fail: bool = False, label: str | None = None, temp_location: str | None = None):
        super().__init__(label or f"Verify[{plan.policy.purpose}]")
        self.spec, self._fail, self._temp_location = VerifySpec.of(plan), fail, temp_location

    def expand(self, pcolls):
        raw, out = pcolls
        spec = self.spec
        folder = spill_folder(raw.pipeline, self._temp_location)
        drawn = raw.pipeline | "Key" >> beam.Impulse() | "Draw" >> beam.Map(lambda _: new_run_key())
        key = pvalue.AsSingleton(drawn)
        sides = []
        for name, batches in (("input", raw), ("output", out)):
            if name == "input" and not spec.input_fields:
                continue
            sides.append(
                batches
                | f"Hash{name.title()}"
                >> beam.ParDo(_HashingFn(spec, name, folder), key)
                .with_output_types(tuple[int, str])
                .with_outputs(COUNTS, main="parts")
            )
        grouped = [side.parts for side in sides] | "Parts" >> beam.Flatten() | "ByShard" >> beam.GroupByKey()
        joined = grouped | "Join" >> beam.MapTuple(lambda _shard, paths: dict(join_shard(spec, map(_read_part, paths))))
        findings = (
            [joined, drawn | "NoCounts" >> beam.Map(lambda _: {}), *(side[COUNTS] for side in sides)]
            | "AllCounts" >> beam.Flatten()
            | "Sum" >> beam.CombineGlobally(_SumFindings(spec)).without_defaults()  # one input at least
            | "Clean" >> beam.Map(_remove_spilled, folder)
        )
        if self._fail:
            findings = findings | "Refuse" >> beam.ParDo(_Refuse(spec))
        return findings
