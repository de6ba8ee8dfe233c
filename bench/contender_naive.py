"""Contender 2, naive Beam: what an engineer writes without veil.

`ReadFromParquet` (one dict per record) -> a per-record `DoFn` applying the 12 fields of
bench/policy.yaml with the same primitives as veil (`bench/workload.py`: keys derived once in
`setup`, cipher objects built there) -> `WriteToParquet` (from dicts), on the DirectRunner.

Run by bench/run.py: `python bench/contender_naive.py --input F --output DIR --keyset K [beam options]`.
Prints one JSON line {"read": n, "written": m}.
"""

import json
import logging
import os
import sys

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload import OUTPUT_SCHEMA, Primitives, contender_args, protect_record, working_keys  # noqa: E402

NAMESPACE = "bench"


class ProtectRecord(beam.DoFn):
    """The whole policy on one dict record; records without consent are dropped."""

    def __init__(self, keyset: str):
        self._keyset = keyset
        self._read = Metrics.counter(NAMESPACE, "read")
        self._written = Metrics.counter(NAMESPACE, "written")

    def setup(self):
        self._primitives = Primitives(working_keys(self._keyset))

    def process(self, record):
        self._read.inc()
        out = protect_record(self._primitives, record)
        if out is not None:
            self._written.inc()
            yield out


def counts(result) -> dict[str, int]:
    """The bench counters of a finished pipeline."""
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    totals = {"read": 0, "written": 0}
    for counter in found:
        totals[counter.key.metric.name] += counter.committed or counter.attempted or 0
    return totals


def parse(description: str):
    """The contender command line (see `workload.contender_args`), with Beam's logging quiet."""
    args, beam_args = contender_args(description)
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    return args, beam_args


def run_records(description: str, protect: type[beam.DoFn]) -> None:
    """The naive job: ReadFromParquet -> `protect(keyset)` per dict record -> WriteToParquet; prints the counts."""
    args, beam_args = parse(description)
    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    (
        pipeline
        | "Read" >> beam.io.ReadFromParquet(args.input)
        | "Protect" >> beam.ParDo(protect(args.keyset))
        | "Write"
        >> beam.io.WriteToParquet(
            os.path.join(args.output, "part"), OUTPUT_SCHEMA, codec="snappy", file_name_suffix=".parquet"
        )
    )
    result = pipeline.run()
    result.wait_until_finish()
    print(json.dumps(counts(result)))


if __name__ == "__main__":
    run_records(__doc__.splitlines()[0], ProtectRecord)
