"""Tink keysets of one field's working keys, so BigQuery's AEAD functions can read veil's output.

veil's `tokenize: siv` tokens are AES-SIV (RFC 5297) with one associated-data component and
its `encrypt` ciphertexts are nonce || AES-256-GCM || tag: byte for byte what Tink's
DeterministicAead (AesSivKey) and Aead (AesGcmKey) make under RAW-prefix keys. An export puts
the HKDF working key of each enabled root key version into one Tink keyset; BigQuery's
`DETERMINISTIC_DECRYPT_STRING` / `AEAD.DECRYPT_STRING` (or the `tink` package) then decrypt
with it and the field's associated data.

Exporting hands out the power to re-identify a field, so it takes a capability token, as
Tink's own `proto_keyset_format.serialize(handle, secret_key_access.TOKEN)` does: callers
pass `SECRET_ACCESS` after the user confirmed and an audit line was written.
"""

from dataclasses import dataclass
from typing import Literal

from veil.errors import ConfigError, KeyAccessError
from veil.keys import _primitives, kms
from veil.keys.keyring import KeyRing

TinkKind = Literal["deterministic_aead", "aead"]
TinkFormat = Literal["binary", "json"]
FORMATS: tuple[TinkFormat, ...] = ("binary", "json")


@dataclass(frozen=True)
class TinkKeySpec:
    """Which working key a field uses, as a Tink keyset can hold it (no key material).

    Attributes:
        kind: `deterministic_aead` (AES-SIV) or `aead` (AES-256-GCM).
        info: the HKDF info string of the field's working key.
        associated_data: what each value is bound to; a reader must pass exactly these bytes.
    """

    kind: TinkKind
    info: str
    associated_data: bytes


class SecretAccess:
    """The capability to export key material: only `SECRET_ACCESS` is accepted."""

    def __repr__(self) -> str:
        return "SECRET_ACCESS"


SECRET_ACCESS = SecretAccess()


def export_tink_keyset(
    keyring: KeyRing,
    spec: TinkKeySpec,
    *,
    primary: int,
    access: SecretAccess,
    fmt: TinkFormat = "binary",
    kms_uri: str | None = None,
) -> bytes:
    """The Tink keyset of `spec`'s working key under every usable version of `keyring`.

    One Tink key per enabled veil key version (key id = the version, RAW output prefix), the
    primary being `primary`. With `kms_uri`, the serialized keyset is encrypted by that KMS key
    with no associated data (a plain KMS encrypt), which is what BigQuery's
    `KEYS.KEYSET_CHAIN(kms_uri, wrapped)` unwraps.

    Args:
        keyring: the opened keyset.
        spec: the field's key (see `TinkKeySpec`).
        primary: the version the policy writes with.
        access: must be `SECRET_ACCESS`.
        fmt: `binary` (Tink's protobuf keyset) or `json` (Tink's JSON keyset).
        kms_uri: a KMS key URI to wrap the keyset with.

    Returns:
        The serialized keyset (cleartext, or wrapped by the KMS key).

    Raises:
        KeyAccessError: no access token, `primary` unusable, the KMS refused.
        ConfigError: an unknown format, JSON with `kms_uri`, or the `tink` package is missing.

    Security: without `kms_uri` the bytes are cleartext keys: whoever holds them can decrypt
    every value of the field (and, for `aead`, any value under the same purpose key whose
    associated data they know).
    """
    if access is not SECRET_ACCESS:
        raise KeyAccessError("exporting key material needs veil.keys.tink_export.SECRET_ACCESS")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown keyset format '{fmt}'; use binary or json")
    if kms_uri is not None and fmt != "binary":
        raise ConfigError("--kms wraps the binary keyset (what BigQuery's KEYS.KEYSET_CHAIN takes): drop --format json")
    version = keyring.resolve_version(primary)
    length = _primitives.TINK_KEY_TYPES[spec.kind][3]
    try:
        serialized = _primitives.tink_keyset(
            spec.kind, keyring._working_keys(spec.info, length), version, json_format=fmt == "json"
        )
    except ImportError:
        raise ConfigError("exporting a Tink keyset needs the tink package: pip install 'veil[tink]'") from None
    if kms_uri is None:
        return serialized
    try:
        return bytes(kms.client_for(kms_uri).wrap(serialized, b""))
    except KeyAccessError:
        raise
    except Exception as error:  # a plugin's own error: name its type only
        raise KeyAccessError(f"the KMS key {kms_uri} could not wrap the keyset ({type(error).__name__})") from None
