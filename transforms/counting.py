"""Outcome counts, twice: in Beam Metrics (one namespace per purpose, stable counter names), for
watching a job, and as data (a tagged output of count dicts), for a stage of the pipeline that
needs them (`veil run`'s publish stage, the audit line of a restore). Metrics are read after
the job by the program that waited for it; the data is there for a launcher that does not wait."""

from collections import Counter

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

COUNTS = "counts"  # the tag of a CountingFn's count dicts


def metrics_namespace(purpose: str) -> str:
    """The Beam Metrics namespace of a purpose's counters."""
    return f"veil.{purpose}"


class CountingFn(beam.DoFn):
    """A DoFn that reports a purpose's outcome counts to Beam Metrics (namespace `veil.<purpose>`)
    and as data: `yield self._count(counts)` emits them under the `COUNTS` tag too."""

    def __init__(self, purpose: str):
        self._namespace = metrics_namespace(purpose)

    def _count(self, counts: Counter) -> pvalue.TaggedOutput:
        counters = self.__dict__.setdefault("_counters", {})
        for name, value in counts.items():
            if value:
                if name not in counters:
                    counters[name] = Metrics.counter(self._namespace, name)
                counters[name].inc(value)
        return pvalue.TaggedOutput(COUNTS, dict(counts))


class SumCounts(beam.CombineFn):
    """Count dicts -> their sum (an empty input gives an empty sum)."""

    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, accumulator: Counter, counts: dict) -> Counter:
        accumulator.update(counts)
        return accumulator

    def merge_accumulators(self, accumulators) -> Counter:
        merged = Counter()
        for accumulator in accumulators:
            merged.update(accumulator)
        return merged

    def extract_output(self, accumulator: Counter) -> dict:
        return dict(accumulator)
