"""What `veil run` shows on a terminal: progress while the job runs, a summary when it ends."""

import threading
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from veil.pipelines.run import run_job


def run_with_progress(policies, input_pattern: str, output: str, *, show: bool, **options: Any) -> list[dict]:
    """`run_job`, with a live line (rows done of the total where known, elapsed time) when `show`."""
    if not show:
        return run_job(policies, input_pattern, output, **options)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from veil.pipelines.io import format_of, match_inputs
    from veil.pipelines.run import input_rows
    from veil.transforms.beam import progress

    files = match_inputs(input_pattern)
    rows = input_rows(files, format_of(files[0]))
    total = rows * len(policies) if rows is not None else None
    start_rows, done = progress.rows, threading.Event()
    columns = [TextColumn("veil run"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"), TimeElapsedColumn()]
    with Progress(*columns, transient=True) as bar:
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
        dropped = ", ".join(f"{reason} {n}" for reason, n in counts["dropped"].items()) or "0"
        errors = ", ".join(f"{field} {n}" for field, n in counts["field_errors"].items()) or "0"
        table.add_row(manifest["purpose"], str(counts["read"]), str(counts["written"]), dropped, errors,
                      manifest["output"]["folder"])
    return table
