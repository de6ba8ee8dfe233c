"""What `veil run` shows on a terminal: progress while the job runs, a summary when it ends."""

import os
import sys
import tempfile
import threading
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
    """`run_job`, with a live line on `terminal` (rows done of the total where known, elapsed) when `show`."""
    if not show:
        return run_job(policies, input_pattern, output, **options)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from veil.pipelines.run import input_rows
    from veil.transforms.beam import progress
    from veil.transforms.io import format_of, match_inputs

    files = match_inputs(input_pattern)
    rows = input_rows(files, format_of(files[0]))
    total = rows * len(policies) if rows is not None else None
    start_rows, done = progress.rows, threading.Event()
    columns = [TextColumn("veil run"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"), TimeElapsedColumn()]
    with Progress(*columns, transient=True, console=Console(file=terminal)) as bar:
        task = bar.add_task("run", total=total)

        def poll() -> None:
            while not done.wait(0.2):
                bar.update(task, completed=progress.rows - start_rows)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            return run_job(policies, input_pattern, output, **options)
        finally:
            done.set()
            poller.join()


def summary_table(manifests: Sequence[dict]) -> Table:
    """Per purpose: read, written, dropped by reason, field errors, output folder."""
    table = Table("purpose", "read", "written", "dropped", "field errors", "output", title="veil run")
    for manifest in manifests:
        counts = manifest["counts"]
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
