"""`veil keys ...`: create, rotate, list, disable, enable and destroy keys (never showing key material)."""

import os
from typing import Annotated, Optional

import typer
from rich.markup import escape

from veil.errors import ConfigError
from veil.pipelines.terminal import stderr_console, stdout_console

keys_app = typer.Typer(no_args_is_help=True, help="Manage a keyset (versioned root keys wrapped by a master key).")

DEFAULT_KEYSET = ".veil/keyset.json"


def _keyset_option(value: Optional[str]) -> str:
    return value or os.environ.get("VEIL_KEYSET") or DEFAULT_KEYSET


KeysetOpt = Annotated[
    Optional[str], typer.Option("--keyset", help=f"Keyset path (default: $VEIL_KEYSET or {DEFAULT_KEYSET}).")
]
VersionOpt = Annotated[int, typer.Option("--id", min=1, help="The key version (see 'veil keys list').")]


@keys_app.command("init")
def keys_init(
    keyset: KeysetOpt = None,
    kms: Annotated[
        Optional[str],
        typer.Option(
            "--kms",
            help="Wrap the master key with this KMS key, e.g. gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K "
            "(needs pip install 'veil[gcp]').",
        ),
    ] = None,
) -> None:
    """Create a keyset with one primary key.

    The master key comes from --kms if given, else VEIL_MASTER_KEY, else VEIL_MASTER_PASSPHRASE,
    else a development key file written beside the keyset.
    """
    from veil.keys import init_keyset
    from veil.keys.keyset import describe_master, dev_master_key_path, read_keyset

    path = _keyset_option(keyset)
    wrote_dev_key = init_keyset(path, kms_uri=kms)
    master = describe_master(read_keyset(path))
    stdout_console().print(escape(f"created keyset {path} (key version 1, primary); master key: {master}"))
    if wrote_dev_key:
        stderr_console().print(
            f"[bold yellow]WARNING:[/] wrote a DEVELOPMENT master key to {escape(dev_master_key_path(path))} "
            "(mode 0600). It is for development only: in production set VEIL_MASTER_KEY "
            "from your secret manager (or use --kms) and keep no key file beside the keyset."
        )


@keys_app.command("rotate")
def keys_rotate(keyset: KeysetOpt = None) -> None:
    """Add a new primary key; older keys stay readable."""
    from veil.keys import rotate_keyset

    path = _keyset_option(keyset)
    version = rotate_keyset(path)
    stdout_console().print(
        escape(
            f"keyset {path}: key version {version} is the new primary; policies without key_version now write with it"
        )
    )


@keys_app.command("list")
def keys_list(keyset: KeysetOpt = None) -> None:
    """List key versions, status and creation time, and the master key source (never key material)."""
    from rich.table import Table

    from veil.keys import read_keyset
    from veil.keys.keyset import describe_master

    path = _keyset_option(keyset)
    keyset_file = read_keyset(path)
    table = Table("version", "status", "created", "primary", title=escape(f"keyset {path}"))
    for info in keyset_file.infos:
        primary = "yes" if info.version == keyset_file.primary else ""
        table.add_row(str(info.version), info.status, info.created, primary)
    console = stdout_console()
    console.print(table)
    console.print(escape(f"master key: {describe_master(keyset_file)}"))


@keys_app.command("disable")
def keys_disable(version: VersionOpt, keyset: KeysetOpt = None) -> None:
    """Stop reading and writing with a key version until it is enabled again."""
    from veil.keys.keyset import disable_key

    path = _keyset_option(keyset)
    if disable_key(path, version):
        message = (
            f"keyset {path}: key version {version} is disabled; veil will neither read nor write with it "
            f"(undo with 'veil keys enable --id {version}')"
        )
    else:
        message = f"keyset {path}: key version {version} was already disabled"
    stdout_console().print(escape(message))


@keys_app.command("enable")
def keys_enable(version: VersionOpt, keyset: KeysetOpt = None) -> None:
    """Make a disabled key version usable again."""
    from veil.keys.keyset import enable_key

    path = _keyset_option(keyset)
    if enable_key(path, version):
        message = f"keyset {path}: key version {version} is enabled again; it can read and write as before"
    else:
        message = f"keyset {path}: key version {version} was already enabled"
    stdout_console().print(escape(message))


@keys_app.command("destroy")
def keys_destroy(
    version: VersionOpt,
    keyset: KeysetOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: destroying a key cannot be undone.")] = False,
) -> None:
    """Remove a key version's material for good (irreversible; needs --yes)."""
    from veil.keys.keyset import check_status_change, destroy_key, read_keyset

    path = _keyset_option(keyset)
    info = check_status_change(read_keyset(path), version, "destroyed")
    if info.status != "destroyed" and not yes:
        raise ConfigError(
            f"destroying key version {version} is irreversible: data made with it can no longer be read "
            "or reproduced; pass --yes to destroy it"
        )
    if destroy_key(path, version):
        stdout_console().print(
            escape(
                f"keyset {path}: key version {version} is destroyed; its material is gone from the keyset. "
                "Older copies of the keyset (backups, object versions) still hold it wrapped: delete them too."
            )
        )
    else:
        stdout_console().print(escape(f"keyset {path}: key version {version} was already destroyed"))


@keys_app.command("export-tink")
def keys_export_tink(
    policy: Annotated[str, typer.Argument(help="The policy that made the data.")],
    field: Annotated[str, typer.Option("--field", help="The output field (a tokenize siv or encrypt field).")],
    output: Annotated[
        Optional[str], typer.Option("--output", help="Keyset file to write (default: <purpose>.<field>.tink[.json]).")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="binary (Tink's protobuf keyset) or json.")] = "binary",
    kms: Annotated[
        Optional[str],
        typer.Option("--kms", help="Wrap the keyset with this KMS key, for BigQuery's KEYS.KEYSET_CHAIN."),
    ] = None,
    keyset: KeysetOpt = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the keyset can decrypt every value of the field.")
    ] = False,
) -> None:
    """Export a Tink keyset that decrypts one field (BigQuery AEAD functions); audited, needs --yes."""
    from veil.pipelines.export_tink import export_field_keyset
    from veil.transforms.policy import load_policy

    summary = export_field_keyset(
        load_policy(policy), field, confirmed=yes, keyset=keyset, output=output, fmt=format, kms_uri=kms
    )
    wrapped = f", wrapped by {summary['kms']}" if summary["kms"] else ""
    stdout_console().print(
        escape(
            f"wrote {summary['output']}: Tink {summary['primitive']} keyset for '{field}' (purpose "
            f"{summary['purpose']}; key versions {', '.join(map(str, summary['key_versions']))}, primary "
            f"{summary['primary']}{wrapped}; audited)\n"
            f"associated data: {summary['associated_data']}\n"
            f"BigQuery: {summary['bigquery_function']}(keyset, <token bytes>, '{summary['associated_data']}')"
        ),
        soft_wrap=True,
    )
    stderr_console().print(
        f"[bold yellow]WARNING:[/] {escape(summary['output'])} holds cleartext keys unless wrapped: "
        "keep it like a password and delete it when it is no longer needed."
        if not summary["kms"]
        else f"{escape(summary['output'])} is wrapped: only identities that may decrypt with the KMS key can use it."
    )
