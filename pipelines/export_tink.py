"""`veil keys export-tink`: a Tink keyset for one reversible field, so BigQuery can decrypt it.

The keyset hands out the power to re-identify one field of one purpose: it needs explicit
confirmation, and every export appends a line to the policy's audit log (after the keyset is
written; if the line cannot be written the keyset is removed again).
"""

import os
from typing import Any

from veil import _fs
from veil.errors import ConfigError
from veil.keys import open_keyring
from veil.keys.tink_export import FORMATS, SECRET_ACCESS, export_tink_keyset
from veil.transforms.audit import append_audit, audit_line
from veil.transforms.policy import Policy, resolve_audit_log, resolve_keyset
from veil.transforms.reverse import tink_export

TINK_FUNCTIONS = {"deterministic_aead": "DETERMINISTIC_DECRYPT_STRING", "aead": "AEAD.DECRYPT_STRING"}


def _remove(path: str) -> None:
    if _fs.is_remote(path):
        from apache_beam.io.filesystems import FileSystems

        FileSystems.delete([path])
    else:
        os.remove(path)


def default_output(policy: Policy, field: str, fmt: str, wrapped: bool) -> str:
    """Where a keyset goes without --output: `<purpose>.<field>.tink[.json|.wrapped]` here."""
    suffix = ".json" if fmt == "json" else ".wrapped" if wrapped else ""
    return f"{policy.purpose}.{field}.tink{suffix}"


def export_field_keyset(
    policy: Policy,
    field: str,
    *,
    confirmed: bool,
    keyset: str | None = None,
    output: str | None = None,
    fmt: str = "binary",
    kms_uri: str | None = None,
) -> dict[str, Any]:
    """Write the Tink keyset of output `field`'s key; returns what was exported (no key material).

    Raises:
        ConfigError: the field cannot be exported (why), a bad format, or `confirmed` is False.
        KeyAccessError: the keyset, its master key or the KMS refused.
    """
    export = tink_export(policy, field)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown keyset format '{fmt}'; use binary or json")
    if not confirmed:
        raise ConfigError(
            f"a Tink keyset for '{field}' lets whoever holds it decrypt every value of that field of purpose "
            f"'{policy.purpose}'; pass --yes to export it (the export is audited)"
        )
    keyset_path = resolve_keyset(policy, keyset)
    keyring = open_keyring(keyset_path)
    primary = keyring.resolve_version(policy.key_version)
    serialized = export_tink_keyset(
        keyring, export.spec, primary=primary, access=SECRET_ACCESS, fmt=fmt, kms_uri=kms_uri
    )
    target = output or default_output(policy, field, fmt, kms_uri is not None)
    summary = {
        "policy": policy.source,
        "policy_sha256": policy.sha256,
        "purpose": policy.purpose,
        "field": field,
        "source_field": export.source,
        "primitive": export.spec.kind,
        "bigquery_function": TINK_FUNCTIONS[export.spec.kind],
        "associated_data": export.spec.associated_data.decode("utf-8"),
        "key_versions": list(keyring.versions),
        "primary": primary,
        "format": fmt,
        "kms": kms_uri,
        "keyset": keyset_path,
        "output": target,
    }
    _fs.write_bytes(target, serialized, private=True)
    try:
        append_audit(resolve_audit_log(policy, keyset_path), audit_line("export-tink", **summary))
    except BaseException:
        _remove(target)  # no exported key without its audit line
        raise
    return summary
