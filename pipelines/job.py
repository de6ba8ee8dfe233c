"""What every veil file job shares: inspecting the input, running a pipeline with staged
outputs (`StagedJob`: check, stage, run, count, commit), handing small results to the driver,
and reading the counts back from Beam Metrics."""

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
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
from veil.pipelines import dataflow, outputs
from veil.pipelines.manifest import manifest_json
from veil.transforms.audit import utc_now
from veil.transforms.beam import metrics_namespace
from veil.transforms.io import format_of, match_inputs, read_schema

OUTPUT_FORMATS = ("parquet", "csv", "jsonl", "avro")


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


def open_input(
    pattern: str, files: list[str] | None = None, types: Mapping[str, pa.DataType] | None = None
) -> InputSet:
    """Match `pattern` (or take its `files`, as a manifest lists them) and read the schema (`types`:
    text columns parsed, see `read_schema`).

    Raises:
        InputError: nothing matched, mixed formats or bad files.
    """
    files = files or match_inputs(pattern)
    formats = {format_of(path) for path in files}
    if len(formats) > 1:
        raise InputError(f"input {pattern} mixes formats ({', '.join(sorted(formats))}); name files of one format")
    fmt = formats.pop()
    return InputSet(pattern, files, fmt, read_schema(files, fmt, types))


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
    the folder (by the commit, or by `StagedJob` when the run fails).
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


class StagedJob:
    """One run of a veil file job, in the steps every job takes: check, stage, run, count, commit.

    Use it as a context manager: a failure at any step (the pipeline, a refusal after counting,
    building a manifest) removes every staging folder not yet committed, so a failed run leaves
    nothing that looks complete::

        with StagedJob([output], overwrite) as job:  # check: each output may be written
            staging = job.stage(output)  # stage: where the pipeline writes for `output`
            job.run(build, beam_args)  # run: build(pipeline) adds the steps
            counts = job.counts(purpose)  # count: from Beam Metrics
            job.commit(output, manifest)  # commit: files into place, manifest last

    Attributes:
        run_id: sortable and unique; names the staging folders.
        started, finished: UTC timestamps (finished once the pipeline has run).
        runner: the Beam runner's name (once the pipeline has run).
    """

    def __init__(
        self, folders: Sequence[str], overwrite: bool, *, warn: Callable[[str], None] = outputs.warn_on_stderr
    ):
        self.run_id, self.started = new_run_id(), utc_now()
        self.finished: str | None = None
        self.runner: str | None = None
        self._result = None
        self._stagings: dict[str, str] = {}
        self._folders, self._warn, self._claim = set(folders), warn, ExitStack()
        self._claim.enter_context(outputs.claim(folders, self.run_id, warn=warn))  # lock, then clean up the dead
        try:
            for folder in folders:
                outputs.check_output(folder, overwrite)
        except BaseException:
            self._claim.close()
            raise

    def __enter__(self) -> "StagedJob":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if kind is not None:
                self.discard()
        finally:
            self._claim.close()  # the output folders' locks

    def stage(self, folder: str) -> str:
        """The staging folder of `folder` in this run (where the pipeline writes what `commit` publishes).

        Folders other than the locked outputs (a subject key table) are first cleaned of dead runs' staging.
        """
        if folder not in self._stagings:
            if folder not in self._folders:
                outputs.remove_stale_staging(folder, self._warn)
            self._stagings[folder] = outputs.open_staging(folder, self.run_id)
        return self._stagings[folder]

    def _start(self, build: Callable[[beam.Pipeline], None], beam_args: Sequence[str] | None):
        options = PipelineOptions(dataflow.staging_args(list(beam_args or [])))
        self.runner = options.view_as(StandardOptions).runner or "DirectRunner"
        pipeline = beam.Pipeline(runner=local_runner(options), options=options)
        build(pipeline)
        self._result = pipeline.run()
        return self._result

    def run(self, build: Callable[[beam.Pipeline], None], beam_args: Sequence[str] | None) -> None:
        """Build the pipeline with `build` (`runner` is known by then) and run it to the end."""
        self._start(build, beam_args).wait_until_finish()
        self.finished = utc_now()

    def launch(self, build: Callable[[beam.Pipeline], None], beam_args: Sequence[str] | None):
        """Build the pipeline and submit it, returning at once with the runner's result (no waiting).

        For a launcher that must not wait (a Dataflow Flex Template): the pipeline must publish
        itself (its last stage), so the staging folders are left to the job, and the output
        folders' locks (local folders only) are released now. A failure to submit removes them.
        """
        try:
            result = self._start(build, beam_args)
        except BaseException:
            self.discard()
            raise
        finally:
            self._claim.close()
        self._stagings.clear()  # the job's now: nothing here may remove them
        return result

    def counts(self, purpose: str) -> dict[str, int]:
        """A purpose's counters from the finished pipeline."""
        return query_counts(self._result, purpose)

    def staged_files(self, folder: str) -> list[str]:
        """Names of the data files staged for `folder` (what its manifest lists)."""
        return outputs.staged_names(self.stage(folder))

    def commit(self, folder: str, manifest: Mapping[str, Any]) -> None:
        """Publish `folder`'s staged files, replacing a previous veil output there; the manifest last."""
        outputs.commit(folder, self._stagings.pop(folder), manifest_json(manifest))

    def discard(self) -> None:
        """Remove every staging folder not yet committed."""
        for staging in self._stagings.values():
            outputs.discard(staging)
        self._stagings.clear()


def local_runner(options: PipelineOptions) -> Any:
    """For a local run (no runner named, or DirectRunner): Beam's FnApiRunner, built as DirectRunner builds it.

    DirectRunner first tries the Prism runner (downloading its binary, then converting the
    pipeline for it) and checks every transform twice before it falls back to the FnApiRunner;
    veil's batch jobs always end there, so they go straight to it. Construction-time type checks
    stay on: they are what gives each PCollection its declared element type, and so its coder
    (Arrow batches get `ArrowBatchCoder`, sized by `nbytes`; without them every batch Beam samples
    for its size is pickled, 1 to 4 s CPU of a 1M-row run), and they cost about 0.05 s. The
    options travel in the provision info, so `--direct_num_workers` worker processes get them.
    None for any other runner (Beam then creates the one named).
    """
    if options.view_as(StandardOptions).runner not in (None, "DirectRunner"):
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(provision))


def query_counts(result, purpose: str) -> dict[str, int]:
    """A purpose's counters from a finished pipeline (committed values where the runner has them)."""
    query = result.metrics().query(MetricsFilter().with_namespace(metrics_namespace(purpose)))
    counts: dict[str, int] = {}
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[counter.key.metric.name] = counts.get(counter.key.metric.name, 0) + (value or 0)
    return counts
