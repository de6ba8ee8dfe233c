"""`veil diff` and `veil lint`: review policies and their changes before they run.

Both exit 0 when all is well, 3 when a change needs review (diff: something is more exposed;
lint: an error-severity finding), and 2 on a policy that does not load, so a CI job can tell
"look at this" from "this is broken".
"""

import json
from datetime import date
from typing import Annotated, Optional

import typer
from rich.markup import escape

from veil.pipelines.terminal import stdout_console

NEEDS_REVIEW = 3

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def diff(
    old: Annotated[str, typer.Argument(help="The policy as it was.")],
    new: Annotated[str, typer.Argument(help="The policy as it would be.")],
    as_json: JsonOption = False,
) -> None:
    """What a policy change does to exposure, field by field; exit 3 if anything is more exposed."""
    from rich.table import Table

    from veil.pipelines.governance.diff import MORE, diff_policies, text_of
    from veil.transforms.policy import load_policy

    result = diff_policies(load_policy(old), load_policy(new))
    console = stdout_console()
    if as_json:
        console.print_json(json.dumps(result.to_json()))
    else:
        table = Table("input field or setting", "old", "new", "verdict", "reason", title=escape(f"{old} -> {new}"))
        rows = [*result.fields.items(), *result.policy]
        for name, entry in rows:
            verdict = f"[bold red]{entry.verdict}[/]" if entry.verdict == MORE else entry.verdict
            old_text, new_text = escape(text_of(entry.old)), escape(text_of(entry.new))
            table.add_row(escape(name), old_text, new_text, verdict, escape(entry.reason))
        console.print(table)
        more = sum(entry.verdict == MORE for _, entry in rows)
        console.print(f"{more} more exposed" if more else "nothing is more exposed")
    if result.more_exposed:
        raise SystemExit(NEEDS_REVIEW)


def lint(
    policies: Annotated[list[str], typer.Argument(help="Policy YAML files.")],
    as_json: JsonOption = False,
    now: Annotated[
        Optional[str], typer.Option("--now", help="Judge review dates as of this ISO 8601 date (default: today, UTC).")
    ] = None,
) -> None:
    """Governance findings (rule, severity, fix) over policies; exit 3 on any error-severity finding."""
    from rich.table import Table

    from veil.pipelines.governance.lint import lint_policy
    from veil.pipelines.governance.times import parse_time, today_utc
    from veil.transforms.policy import load_policy

    today: date = parse_time(now, "--now").date() if now else today_utc()
    loaded = [load_policy(path) for path in policies]  # every policy loads, or nothing is judged
    findings = [finding for policy in loaded for finding in lint_policy(policy, today)]
    errors = sum(finding.severity == "error" for finding in findings)
    console = stdout_console()
    if as_json:
        console.print_json(json.dumps({"findings": [f.to_json() for f in findings], "errors": errors}))
    else:
        table = Table("policy", "rule", "severity", "where", "finding", "fix")
        for f in findings:
            severity = f"[bold red]{f.severity}[/]" if f.severity == "error" else f.severity
            table.add_row(*map(escape, (f.policy, f.rule)), severity, *map(escape, (f.where, f.message, f.fix)))
        if findings:
            console.print(table)
        warnings = len(findings) - errors
        console.print(
            f"{len(loaded)} polic{'ies' if len(loaded) != 1 else 'y'}: "
            f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
        )
    if errors:
        raise SystemExit(NEEDS_REVIEW)


def register_review(app: typer.Typer) -> None:
    """Add `veil diff` and `veil lint` to the `veil` app."""
    app.command("diff")(diff)
    app.command("lint")(lint)
