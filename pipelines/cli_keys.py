"""`veil keys ...`: create, rotate and list keysets (never showing key material)."""

import os
from typing import Annotated, Optional

import typer

from veil.pipelines.terminal import stderr_console, stdout_console

keys_app = typer.Typer(no_args_is_help=True, help="Manage a keyset (versioned root keys wrapped by a master key).")

DEFAULT_KEYSET = ".veil/keyset.json"


def _keyset_option(value: Optional[str]) -> str:
    return value or os.environ.get("VEIL_KEYSET") or DEFAULT_KEYSET


KeysetOpt = Annotated[
    Optional[str], typer.Option("--keyset", help=f"Keyset path (default: $VEIL_KEYSET or {DEFAULT_KEYSET}).")
]


@keys_app.command("init")
def keys_init(keyset: KeysetOpt = None) -> None:
    """Create a keyset with one primary key."""
    from veil.keys import init_keyset
    from veil.keys.keyset import dev_master_key_path

    path = _keyset_option(keyset)
    wrote_dev_key = init_keyset(path)
    stdout_console().print(f"created keyset {path} (key version 1, primary)")
    if wrote_dev_key:
        stderr_console().print(
            f"[bold yellow]WARNING:[/] wrote a DEVELOPMENT master key to {dev_master_key_path(path)} "
            "(mode 0600). It is for development only: in production set VEIL_MASTER_KEY "
            "from your secret manager and keep no key file beside the keyset."
        )


@keys_app.command("rotate")
def keys_rotate(keyset: KeysetOpt = None) -> None:
    """Add a new primary key; older keys stay readable."""
    from veil.keys import rotate_keyset

    path = _keyset_option(keyset)
    version = rotate_keyset(path)
    stdout_console().print(
        f"keyset {path}: key version {version} is the new primary; policies without key_version now write with it"
    )


@keys_app.command("list")
def keys_list(keyset: KeysetOpt = None) -> None:
    """List key versions, status and creation time (never key material)."""
    from rich.table import Table

    from veil.keys import read_keyset

    keyset_file = read_keyset(_keyset_option(keyset))
    table = Table("version", "status", "created", "primary")
    for info in keyset_file.infos:
        primary = "yes" if info.version == keyset_file.primary else ""
        table.add_row(str(info.version), info.status, info.created, primary)
    stdout_console().print(table)
