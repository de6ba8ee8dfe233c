"""What `veil run` shows on a terminal: progress while the job runs, a summary when it ends."""

import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from rich.table import Table

from veil.pipelines.run import run_job


@contextmanager
def beam_chatter_hidden(hidden: bool) -> Iterator[TextIO]:
    """While a job runs, send what Beam and its worker processes write to stderr to a scratch file.

    Worker processes (`--direct_running_mode multi_processing`, SDK harnesses) log and print
    tracebacks on the inherited file descriptor 2, which no logging setting of ours reaches.
    Yields a stream on the real stderr for what veil itself shows (progress).
    """
    if not hidden:
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch, os.fdopen(os.dup(saved), "w") as terminal:
        os.dup2(scratch.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def run_with_progress(
    policies, input_pattern: str, output: str, *, show: bool, terminal: TextIO, **options: Any
) -> list[dict]:
    """`run_job`, with a live line on `terminal` (a spinner and the time elapsed) when `show`.

    Rows done are not polled while the job runs: the counts are the runner's (Beam metrics,
    which the DirectRunner reports when the job ends, and a Dataflow job in its console), and
    the summary table shows them.
    """
    if not show:
        return run_job(policies, input_pattern, output, **options)
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn("veil run"), TimeElapsedColumn()]

    with Progress(*columns, transient=True, console=Console(file=terminal)) as bar:
        bar.add_task("run", total=None)  # rows done come from the run's counters when it ends (summary)
        return run_job(policies, input_pattern, output, **options)


def summary_table(manifests: Sequence[dict]) -> Table:
    """Per purpose: read, written, dropped by reason, field errors, output folder."""
    table = Table("purpose", "read", "written", "dropped", "field errors", "output", title="veil run")
    for manifest in manifests:
        counts = manifest["counts"]
        if "aggregates" in manifest:  # DP tables: exact record counts are withheld (see pipelines/aggregates.py)
            tables = ", ".join(t["name"] for t in manifest["aggregates"]["tables"])
            table.add_row(manifest["purpose"], "withheld", f"tables: {tables}", "-", "-", manifest["output"]["folder"])
            continue
        dropped = "\n".join(f"{reason} {n}" for reason, n in counts["dropped"].items()) or "0"
        errors = "\n".join(f"{field} {n}" for field, n in counts["field_errors"].items()) or "0"
        table.add_row(
            manifest["purpose"],
            str(counts["read"]),
            str(counts["written"]),
            dropped,
            errors,
            manifest["output"]["folder"],
        )
    return table
