"""What every veil file job shares: inspecting the input, running a pipeline with staged
outputs, handing small results to the driver, and reading the counts back from Beam Metrics."""

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from veil import _fs
from veil.errors import ConfigError, InputError
from veil.pipelines import outputs
from veil.transforms.beam import metrics_namespace
from veil.transforms.io import format_of, match_inputs, read_schema

OUTPUT_FORMATS = ("parquet", "csv", "jsonl")


@dataclass(frozen=True)
class InputSet:
    """The files a job reads.

    Attributes:
        pattern: what the user named.
        files: the matched files.
        format: parquet, csv or jsonl.
        schema: their one Arrow schema.
    """

    pattern: str
    files: list[str]
    format: str
    schema: pa.Schema

    def describe(self) -> dict:
        """The manifest's `inputs` entry."""
        return {
            "pattern": self.pattern,
            "format": self.format,
            "files": self.files,
            "schema": [{"name": f.name, "type": str(f.type)} for f in self.schema],
        }


def open_input(pattern: str) -> InputSet:
    """Match `pattern` and read its schema; `InputError` for nothing, mixed formats or bad files."""
    files = match_inputs(pattern)
    formats = {format_of(path) for path in files}
    if len(formats) > 1:
        raise InputError(f"input {pattern} mixes formats ({', '.join(sorted(formats))}); name files of one format")
    fmt = formats.pop()
    return InputSet(pattern, files, fmt, read_schema(files, fmt))


def check_output_format(output_format: str) -> None:
    """Refuse an output format veil cannot write."""
    if output_format not in OUTPUT_FORMATS:
        raise ConfigError(f"unknown output format '{output_format}'; use {', '.join(OUTPUT_FORMATS)}")


def new_run_id() -> str:
    """A sortable, unique run id."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class Collected:
    """A small result the pipeline hands to the driver: read it with `value()` once the pipeline has run.

    Beam has no portable way to return data from the workers to the program that launched
    them; a JSON file in the run's staging folder works on every runner, and is removed with
    the folder (on success by the commit, on failure by `run_staged`).
    """

    path: str

    def value(self) -> Any:
        """The collected element (after the pipeline finished)."""
        return json.loads(_fs.read_bytes(self.path))


def collect(pcoll: beam.PCollection, staging: str, name: str, *, label: str) -> Collected:
    """Hand the single JSON-able element of `pcoll` to the driver, through `staging/_<name>.json`."""
    path = FileSystems.join(staging, f"_{name}.json")
    _ = pcoll | label >> _WriteJson(path)
    return Collected(path)


class _WriteJson(beam.PTransform):
    """One element -> one JSON file at `path`."""

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def expand(self, pcoll):
        return (
            pcoll
            | "ToJson" >> beam.Map(json.dumps).with_output_types(str)
            | "Write" >> beam.io.WriteToText(self._path, num_shards=1, shard_name_template="")
        )


def run_staged(build: Callable[[beam.Pipeline], None], beam_args: Sequence[str] | None, stagings: Sequence[str]):
    """Build and run a pipeline; on any failure remove the staging folders, then re-raise.

    Returns:
        (the finished PipelineResult, the runner's name).
    """
    options = PipelineOptions(list(beam_args or []))
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    try:
        pipeline = beam.Pipeline(options=options)
        build(pipeline)
        result = pipeline.run()
        result.wait_until_finish()
    except BaseException:
        for staging in stagings:
            outputs.discard(staging)
        raise
    return result, runner


def query_counts(result, purpose: str) -> dict[str, int]:
    """A purpose's counters from a finished pipeline (committed values where the runner has them)."""
    query = result.metrics().query(MetricsFilter().with_namespace(metrics_namespace(purpose)))
    counts: dict[str, int] = {}
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[counter.key.metric.name] = counts.get(counter.key.metric.name, 0) + (value or 0)
    return counts
