"""`veil audit verify|show`: the governance commands of the command line."""

import json
import os
import posixpath
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from veil import _fs
from veil.errors import AuditLogError, ConfigError
from veil.pipelines.cli_keys import DEFAULT_KEYSET
from veil.pipelines.terminal import stdout_console

audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log: verify it, show it.")

LogArg = Annotated[
    Optional[str],
    typer.Argument(help="The audit log (default: audit.jsonl beside $VEIL_KEYSET or .veil/keyset.json)."),
]


def default_audit_log() -> str:
    """`audit.jsonl` beside the keyset `veil keys` uses by default (where detokenize writes then)."""
    keyset = os.environ.get("VEIL_KEYSET") or DEFAULT_KEYSET
    if _fs.is_remote(keyset):
        return posixpath.join(posixpath.dirname(keyset), "audit.jsonl")
    return str(Path(keyset).parent / "audit.jsonl")


def _read_log(log: Optional[str]) -> tuple[str, bytes]:
    path = log or default_audit_log()
    try:
        return path, _fs.read_bytes(path)
    except FileNotFoundError:
        raise ConfigError(f"audit log {path} not found; name one (veil audit verify LOG)") from None
    except IsADirectoryError:
        raise ConfigError(f"audit log {path} is a folder; name the audit.jsonl file") from None


@audit_app.command("verify")
def audit_verify(log: LogArg = None) -> None:
    """Check the audit log's hash chain; exit 2 naming the first line edited, deleted, moved or cut off."""
    from veil.transforms.audit import check_chain

    path, data = _read_log(log)
    check = check_chain(data)
    if not check.intact:
        raise AuditLogError(f"audit log {path}: line {check.broken_line} {check.problem}")
    stdout_console().print(
        escape(f"ok: audit log {path}: {check.lines} lines, chain intact; head sha256 {check.head}"), soft_wrap=True
    )


_SHOWN_APART = ("at", "who", "event", "purpose", "outcome", "prev", "digest", "policy_sha256")


def _details(record: dict[str, Any]) -> str:
    rest = {name: value for name, value in record.items() if name not in _SHOWN_APART}
    return ", ".join(f"{name}={json.dumps(value, sort_keys=True)}" for name, value in sorted(rest.items()))


@audit_app.command("show")
def audit_show(
    log: LogArg = None,
    event: Annotated[Optional[str], typer.Option("--event", help="Only this event (detokenize, erase, ...).")] = None,
    since: Annotated[
        Optional[str], typer.Option("--since", help="Only lines at or after this ISO 8601 date or time (UTC).")
    ] = None,
) -> None:
    """Print the audit log as a table (it does not check the chain: see 'veil audit verify')."""
    from rich.table import Table

    from veil.pipelines.governance.times import parse_time

    path, data = _read_log(log)
    start = parse_time(since, "--since") if since else None
    table = Table("line", "at", "who", "event", "purpose", "outcome", "details", title=escape(f"audit log {path}"))
    shown = 0
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            table.add_row(str(number), "", "", "(unreadable line)", "", "", "run 'veil audit verify'")
            continue
        if event is not None and record.get("event") != event:
            continue
        if start is not None:
            try:
                if parse_time(str(record.get("at")), f"line {number}: at") < start:
                    continue
            except ConfigError:
                pass  # a line whose time cannot be read is shown: better seen than hidden
        cells = [str(record.get(name, "")) for name in ("at", "who", "event", "purpose", "outcome")]
        table.add_row(str(number), *map(escape, cells), escape(_details(record)))
        shown += 1
    console = stdout_console()
    console.print(table)
    console.print(f"{shown} line{'s' if shown != 1 else ''} shown")


def register_governance(app: typer.Typer) -> None:
    """Add the governance commands to the `veil` app."""
    app.add_typer(audit_app, name="audit")
