"""The keyset file: versioned 256-bit root keys, each wrapped by a master key.

Format (JSON)::

    {"veil_keyset": 1, "primary": 2,
     "keys": [{"version": 1, "status": "enabled", "created": "2026-01-01T00:00:00Z",
               "wrapped": "<base64 of nonce || AES-256-GCM(master, root key, ad)>"}, ...]}

The associated data of each wrapped key is `veil/v1/keyset/version=<N>`, so a wrapped key
cannot be moved to another version. Root keys never appear in clear in the file.
"""

import base64
import binascii
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone

from veil.errors import KeyAccessError
from veil.keys import _primitives, storage

FORMAT = 1
ROOT_KEY_BYTES = 32
MASTER_KEY_ENV = "VEIL_MASTER_KEY"
DEV_MASTER_SUFFIX = ".dev-master-key"


@dataclass(frozen=True)
class KeyInfo:
    """Public facts about one root key: never its material."""

    version: int
    status: str
    created: str


@dataclass(frozen=True)
class _WrappedKey:
    info: KeyInfo
    wrapped: bytes


@dataclass(frozen=True)
class KeysetFile:
    """A parsed keyset file: the primary version and the wrapped keys."""

    path: str
    primary: int
    keys: tuple[_WrappedKey, ...]

    @property
    def infos(self) -> tuple[KeyInfo, ...]:
        """Public facts about every key, in version order."""
        return tuple(k.info for k in self.keys)


def _wrap_ad(version: int) -> bytes:
    return f"veil/v1/keyset/version={version}".encode()


def dev_master_key_path(keyset_path: str) -> str:
    """Where `veil keys init` keeps a development master key when no other source is set."""
    return keyset_path + DEV_MASTER_SUFFIX


def resolve_master_key(keyset_path: str) -> bytes:
    """The master key: `VEIL_MASTER_KEY` (base64 of 32 bytes), else the development key file."""
    encoded = os.environ.get(MASTER_KEY_ENV)
    if encoded:
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            key = b""
        if len(key) != ROOT_KEY_BYTES:
            raise KeyAccessError(
                f"{MASTER_KEY_ENV} must be the base64 of 32 bytes; "
                'generate one with: python -c "import os,base64;'
                'print(base64.b64encode(os.urandom(32)).decode())"'
            )
        return key
    dev_path = dev_master_key_path(keyset_path)
    try:
        key = base64.b64decode(storage.read_bytes(dev_path).strip(), validate=True)
    except FileNotFoundError:
        raise KeyAccessError(
            f"no master key for keyset {keyset_path}: set {MASTER_KEY_ENV} "
            f"(base64 of 32 bytes) or create a development keyset with "
            f"'veil keys init --keyset {keyset_path}'"
        ) from None
    except binascii.Error:
        key = b""
    if len(key) != ROOT_KEY_BYTES:
        raise KeyAccessError(f"development master key file {dev_path} is corrupt")
    return key


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_keyset(path: str) -> KeysetFile:
    """Parse the keyset at `path`; a clear `KeyAccessError` if it is missing or malformed."""
    try:
        raw = storage.read_bytes(path)
    except FileNotFoundError:
        raise KeyAccessError(
            f"keyset {path} not found: create one with "
            f"'veil keys init --keyset {path}', or point the policy's "
            "'keyset', --keyset or VEIL_KEYSET at an existing one"
        ) from None
    except OSError as exc:
        raise KeyAccessError(f"keyset {path} cannot be read: {exc.strerror}") from None
    try:
        doc = json.loads(raw)
        if doc.get("veil_keyset") != FORMAT:
            raise ValueError
        keys = tuple(
            _WrappedKey(
                KeyInfo(int(k["version"]), str(k["status"]), str(k["created"])),
                base64.b64decode(k["wrapped"], validate=True),
            )
            for k in doc["keys"]
        )
        primary = int(doc["primary"])
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise KeyAccessError(f"keyset {path} is corrupt or not a veil keyset") from None
    if primary not in {k.info.version for k in keys}:
        raise KeyAccessError(f"keyset {path} is corrupt: its primary version {primary} is missing")
    return KeysetFile(path, primary, keys)


def _serialize(keyset: KeysetFile) -> bytes:
    doc = {
        "veil_keyset": FORMAT,
        "primary": keyset.primary,
        "keys": [
            {
                "version": k.info.version,
                "status": k.info.status,
                "created": k.info.created,
                "wrapped": base64.b64encode(k.wrapped).decode(),
            }
            for k in keyset.keys
        ],
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def unwrap_keys(keyset: KeysetFile, master_key: bytes) -> dict[int, bytes]:
    """Root keys by version. A wrong master key or an altered file is a `KeyAccessError`."""
    wrapper = _primitives.Aead(master_key)
    roots = {}
    for key in keyset.keys:
        if key.info.status == "destroyed":
            continue
        try:
            roots[key.info.version] = wrapper.decrypt(key.wrapped, _wrap_ad(key.info.version))
        except Exception:
            raise KeyAccessError(
                f"cannot unwrap key version {key.info.version} of keyset "
                f"{keyset.path}: wrong master key ({MASTER_KEY_ENV}) or the "
                "keyset was altered"
            ) from None
    return roots


def _new_key(master_key: bytes, version: int) -> _WrappedKey:
    wrapped = _primitives.Aead(master_key).encrypt(_primitives.random_key(ROOT_KEY_BYTES), _wrap_ad(version))
    return _WrappedKey(KeyInfo(version, "enabled", _now()), wrapped)


def init_keyset(path: str) -> bool:
    """Create a keyset with one primary key. Returns True if a development master key was written.

    Without `VEIL_MASTER_KEY`, a random development master key is written beside the keyset
    with mode 0600; it is for development only.
    """
    if storage.exists(path):
        raise KeyAccessError(f"keyset {path} already exists; use 'veil keys rotate' to add a key")
    wrote_dev_key = False
    if not os.environ.get(MASTER_KEY_ENV):
        dev_path = dev_master_key_path(path)
        if not storage.exists(dev_path):
            storage.write_bytes(dev_path, base64.b64encode(_primitives.random_key()) + b"\n", private=True)
            wrote_dev_key = True
    master = resolve_master_key(path)
    storage.write_bytes(path, _serialize(KeysetFile(path, 1, (_new_key(master, 1),))))
    return wrote_dev_key


def rotate_keyset(path: str) -> int:
    """Add a new root key and make it the primary; older keys stay readable. Returns its version."""
    keyset = read_keyset(path)
    master = resolve_master_key(path)
    unwrap_keys(keyset, master)  # refuse to extend a keyset we cannot read
    version = max(k.info.version for k in keyset.keys) + 1
    updated = KeysetFile(path, version, (*keyset.keys, _new_key(master, version)))
    storage.write_bytes(path, _serialize(updated))
    return version
