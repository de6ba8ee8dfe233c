"""`veil expire`: delete veil outputs past their policy's retention, one audit line per deletion."""

from datetime import datetime, timezone
from typing import Annotated, Optional

import typer
from rich.markup import escape

from veil.errors import OutputError
from veil.pipelines.terminal import stdout_console


def expire(
    root: Annotated[str, typer.Argument(help="The folder holding veil outputs (searched at any depth).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    now: Annotated[
        Optional[str], typer.Option("--now", help="Judge ages as of this ISO 8601 date or time (default: now, UTC).")
    ] = None,
    audit_log: Annotated[
        Optional[str],
        typer.Option("--audit-log", help="Audit every deletion here (default: each output's policy's audit log)."),
    ] = None,
) -> None:
    """Delete every veil output under ROOT older than its policy's retention (outputs without one stay)."""
    from rich.table import Table

    from veil.pipelines.governance.expire import expire_outputs
    from veil.pipelines.governance.times import parse_time
    from veil.pipelines.outputs import warn_on_stderr

    at = parse_time(now, "--now") if now else datetime.now(timezone.utc)
    results = expire_outputs(root, at, dry_run=dry_run, audit_log=audit_log, warn=warn_on_stderr)
    table = Table("output", "purpose", "finished", "retention", "expires", "status", "files", title=escape(root))
    for r in results:
        when = [moment.strftime("%Y-%m-%d %H:%M") if moment else "" for moment in (r.finished, r.expires)]
        cells = [r.folder, r.purpose or "", when[0], r.retention or "-", when[1], r.problem or r.status]
        table.add_row(*map(escape, cells), str(r.files) if r.files else "")
    console = stdout_console()
    console.print(table)
    count = {status: sum(r.status == status for r in results) for status in {r.status for r in results}}
    done = "would delete" if dry_run else "deleted"
    console.print(
        f"{len(results)} output{'s' if len(results) != 1 else ''}: {count.get(done, 0)} {done}, "
        f"{count.get('kept', 0)} kept, {count.get('no retention', 0)} without retention"
    )
    failed = [r for r in results if r.problem]
    if failed:
        raise OutputError(f"{len(failed)} output{'s' if len(failed) != 1 else ''} not deleted: {failed[0].problem}")


def register_expire(app: typer.Typer) -> None:
    """Add `veil expire` to the `veil` app."""
    app.command("expire")(expire)
