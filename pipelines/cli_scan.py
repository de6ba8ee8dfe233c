"""`veil scan` and `veil init`: find personal data in an input, and suggest a policy for it."""

import json
import re
from typing import Annotated, Optional

import typer
from rich.markup import escape

from veil import _fs
from veil.errors import ConfigError
from veil.pipelines.terminal import stdout_console

_PURPOSE = re.compile(r"^[a-z][a-z0-9_]*$")
_DEFAULT_REGIONS = "US,GB,DE,FR,ES,IT,NL,CA"  # the detectors' (a default init writes no regions: tested)
_SAMPLE_HELP = "Rows to sample, uniformly at random over the whole input."
_REGIONS_HELP = "Phone regions national numbers are read in (ISO 3166 codes, comma-separated)."
_SEED_HELP = "Seeds the random sample: the same seed over the same input samples the same rows."


def _regions(text: str) -> tuple[str, ...]:
    """`--regions US,gb, DE` as (`US`, `GB`, `DE`).

    Raises:
        ConfigError: no code, or a code phonenumbers does not know (the message names it).
    """
    from veil.transforms.detect.phone import check_regions

    regions = tuple(dict.fromkeys(code.strip().upper() for code in text.split(",") if code.strip()))
    if not regions:
        raise ConfigError("--regions names no region; give ISO 3166 codes such as US,GB,DE")
    try:
        return check_regions(regions)
    except ValueError as exc:
        raise ConfigError(f"--regions: {exc}") from None


def _found(column) -> str:
    """`email 100% (whole)`, `phone 38%, person 98% (in text)`: shares only, never a value."""
    if not column.entities:
        return "-"
    parts = []
    for entity, share in column.entities.items():
        where = "whole" if column.whole.get(entity, 0.0) >= share / 2 else "in text"
        parts.append(f"{entity} {share:.0%} ({where})")
    return ", ".join(parts)


def _settings(settings: dict) -> str:
    from veil.pipelines.init_policy import yaml_flow

    rest = {key: value for key, value in settings.items() if key != "action"}
    return settings["action"] + (" " + yaml_flow(rest) if rest else "")


def scan(
    input: Annotated[str, typer.Argument(help="Input file, folder or glob (.parquet, .csv, .jsonl, .avro).")],
    sample: Annotated[int, typer.Option("--sample", min=1, help=_SAMPLE_HELP)] = 10_000,
    regions: Annotated[str, typer.Option("--regions", help=_REGIONS_HELP)] = _DEFAULT_REGIONS,
    seed: Annotated[int, typer.Option("--seed", min=0, help=_SEED_HELP)] = 0,
    json_file: Annotated[Optional[str], typer.Option("--json", help="Also write the figures as JSON here.")] = None,
) -> None:
    """Find the columns and free text of an input that hold personal data (never printing a value)."""
    from rich.table import Table

    from veil.pipelines.scan import scan_document, scan_input

    scanned = scan_input(input, sample, regions=_regions(regions), seed=seed)
    title = f"{input}: {scanned.rows_sampled:,} of {scanned.rows_read:,} rows sampled (seed {seed})"
    table = Table(
        "column", "type", "found (share of values)", "free text", "name hints", "suggested", title=escape(title)
    )
    for column in scanned.columns:
        suggestion = scanned.suggestions[column.name]
        table.add_row(
            escape(column.name),
            escape(column.type),
            _found(column),
            "yes" if column.free_text else "",
            ", ".join(column.hints) or "-",
            escape(_settings(suggestion.settings)) + (" (subject)" if suggestion.role == "subject" else ""),
        )
    console = stdout_console()
    console.print(table)
    if json_file:
        _fs.write_bytes(json_file, (json.dumps(scan_document(scanned), indent=2) + "\n").encode())
        console.print(escape(f"wrote {json_file}"), soft_wrap=True)


def init(
    source: Annotated[str, typer.Option("--from", help="The input to scan (file, folder or glob).")],
    purpose: Annotated[str, typer.Option("--purpose", help="The purpose the policy is for (lower case).")],
    output: Annotated[
        Optional[str], typer.Option("--output", help="The policy file to write (default: PURPOSE.yaml).")
    ] = None,
    sample: Annotated[int, typer.Option("--sample", min=1, help=_SAMPLE_HELP)] = 10_000,
    regions: Annotated[str, typer.Option("--regions", help=_REGIONS_HELP)] = _DEFAULT_REGIONS,
    seed: Annotated[int, typer.Option("--seed", min=0, help=_SEED_HELP)] = 0,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a suggested default-deny policy for a purpose from a scan of an input."""
    from veil.pipelines.init_policy import checked_policy_text
    from veil.pipelines.scan import scan_input

    if not _PURPOSE.match(purpose):
        raise ConfigError(f"purpose '{purpose}' is not a purpose name: use lower-case letters, digits and _")
    asked = _regions(regions)
    path = output or f"{purpose}.yaml"
    if _fs.exists(path) and not force:
        raise ConfigError(f"{path} exists; choose another --output or pass --force to overwrite it")
    text = checked_policy_text(scan_input(source, sample, regions=asked, seed=seed), purpose)
    _fs.write_bytes(path, text.encode())
    stdout_console().print(
        escape(f"wrote {path}: a suggested policy for '{purpose}'; review it, then veil validate and veil run"),
        soft_wrap=True,
    )


def register_scan(app: typer.Typer) -> None:
    """Add `scan` and `init` to the `veil` app."""
    app.command()(scan)
    app.command()(init)
