"""Outcome counts in Beam Metrics: one namespace per purpose, stable counter names."""

from collections import Counter

import apache_beam as beam
from apache_beam.metrics import Metrics


def metrics_namespace(purpose: str) -> str:
    """The Beam Metrics namespace of a purpose's counters."""
    return f"veil.{purpose}"


class CountingFn(beam.DoFn):
    """A DoFn that reports a purpose's outcome counts to Beam Metrics (namespace `veil.<purpose>`)."""

    def __init__(self, purpose: str):
        self._namespace = metrics_namespace(purpose)

    def _count(self, counts: Counter) -> None:
        counters = self.__dict__.setdefault("_counters", {})
        for name, value in counts.items():
            if value:
                if name not in counters:
                    counters[name] = Metrics.counter(self._namespace, name)
                counters[name].inc(value)
