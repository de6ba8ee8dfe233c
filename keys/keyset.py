"""The keyset file: versioned 256-bit root keys, each wrapped by a master key.

Format (JSON)::

    {"veil_keyset": 1, "primary": 2,
     "master": {"source": "env"},
     "keys": [{"version": 1, "status": "destroyed", "created": "2026-01-01T00:00:00Z"},
              {"version": 2, "status": "enabled", "created": "2026-02-01T00:00:00Z",
               "wrapped": "<base64 of nonce || AES-256-GCM(master, root key, ad)>"}]}

The associated data of each wrapped key is `veil/v1/keyset/version=<N>`, so a wrapped key
cannot be moved to another version. Root keys never appear in clear in the file.

`master` records where the 32-byte master key comes from (a keyset without it is `env`):

* `{"source": "env"}`: `VEIL_MASTER_KEY` (base64), else the development key file beside the
  keyset;
* `{"source": "passphrase", "scrypt": {"salt": "<base64>", "n": 32768, "r": 8, "p": 1}}`:
  scrypt of `VEIL_MASTER_PASSPHRASE` (UTF-8, NFC) with that salt and cost;
* `{"source": "kms", "uri": "gcp-kms://...", "wrapped": "<base64>"}`: envelope encryption, a
  random master key wrapped once by the KMS key (associated data `veil/v1/keyset/master`) and
  unwrapped by it when the keyset is opened.

A key's status is `enabled` (usable), `disabled` (kept, but neither read nor written with until
enabled again) or `destroyed` (its wrapped material removed for good; the row stays so that
its version is never reused and errors can say what happened to it).
"""

import base64
import binascii
import json
import os
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from veil import _fs
from veil.errors import KeyAccessError
from veil.keys import _primitives, kms

FORMAT = 1
ROOT_KEY_BYTES = 32
MASTER_KEY_ENV = "VEIL_MASTER_KEY"
PASSPHRASE_ENV = "VEIL_MASTER_PASSPHRASE"
DEV_MASTER_SUFFIX = ".dev-master-key"
STATUSES = ("enabled", "disabled", "destroyed")
SALT_BYTES = 16
KMS_MASTER_AD = b"veil/v1/keyset/master"
SUBJECT_KEY_AD = b"veil/v1/keyset/subject-key"


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost parameters (RFC 7914): `n` CPU/memory cost, `r` block size, `p` parallelism."""

    n: int
    r: int
    p: int


SCRYPT_PARAMS = ScryptParams(n=2**15, r=8, p=1)
"""Cost for new passphrase keysets (about 32 MiB and 0.1 s per derivation); tests lower it."""

_MAX_SCRYPT_MEMORY = 2**30  # 128 * n * r bytes; refuse files asking for more than 1 GiB


@dataclass(frozen=True)
class MasterSource:
    """Where a keyset's master key comes from: never the key itself.

    Attributes:
        source: `env`, `passphrase` or `kms`.
        salt: `passphrase` only: the scrypt salt (public).
        scrypt: `passphrase` only: the scrypt cost.
        kms_uri: `kms` only: the KMS key that wraps the master key.
        kms_wrapped: `kms` only: the master key as wrapped by that KMS key.
    """

    source: str = "env"
    salt: bytes = field(default=b"", repr=False)
    scrypt: ScryptParams | None = None
    kms_uri: str = ""
    kms_wrapped: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class KeyInfo:
    """Public facts about one root key: never its material."""

    version: int
    status: str
    created: str


@dataclass(frozen=True)
class _WrappedKey:
    info: KeyInfo
    wrapped: bytes | None  # None once destroyed


@dataclass(frozen=True)
class KeysetFile:
    """A parsed keyset file: the primary version, the master key source and the wrapped keys."""

    path: str
    primary: int
    keys: tuple[_WrappedKey, ...]
    master: MasterSource = MasterSource()
    subject_key: bytes | None = None  # wrapped; never rotated (see `unwrap_subject_key`)

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
    """The `env` master key: `VEIL_MASTER_KEY` (base64 of 32 bytes), else the development key file.

    Security: returns key bytes; callers keep them in memory only.
    """
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
        key = base64.b64decode(_fs.read_bytes(dev_path).strip(), validate=True)
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


def _passphrase_master_key(keyset_path: str, master: MasterSource) -> bytes:
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if not passphrase:
        raise KeyAccessError(f"keyset {keyset_path} is wrapped with a passphrase: set {PASSPHRASE_ENV}")
    assert master.scrypt is not None
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8", "surrogateescape")
    params = master.scrypt
    return _primitives.scrypt(secret, master.salt, n=params.n, r=params.r, p=params.p, length=ROOT_KEY_BYTES)


def _kms_call(keyset_path: str, uri: str, call: str, data: bytes) -> bytes:
    """`wrap` or `unwrap` of `data` by the KMS key `uri`; failures become one-line KeyAccessErrors."""
    try:
        client = kms.client_for(uri)
        return bytes(getattr(client, call)(data, KMS_MASTER_AD))
    except KeyAccessError as error:
        raise KeyAccessError(f"keyset {keyset_path}: {error}") from None
    except Exception as error:  # a plugin's own error: name its type only
        raise KeyAccessError(
            f"keyset {keyset_path}: the KMS key {uri} could not {call} the master key ({type(error).__name__})"
        ) from None


def _kms_master_key(keyset_path: str, master: MasterSource) -> bytes:
    key = _kms_call(keyset_path, master.kms_uri, "unwrap", master.kms_wrapped)
    if len(key) != ROOT_KEY_BYTES:
        raise KeyAccessError(
            f"keyset {keyset_path}: the KMS key {master.kms_uri} did not return a 32-byte master key; "
            "the keyset was altered or names the wrong KMS key"
        )
    return key


def master_key_for(keyset: KeysetFile) -> bytes:
    """The master key of `keyset`, from the source its file records.

    Raises:
        KeyAccessError: the variable the source needs is missing or malformed, or the KMS
            refused; the message names the keyset and the fix, never a key or passphrase.

    Security: returns key bytes; callers keep them in memory only.
    """
    if keyset.master.source == "passphrase":
        return _passphrase_master_key(keyset.path, keyset.master)
    if keyset.master.source == "kms":
        return _kms_master_key(keyset.path, keyset.master)
    return resolve_master_key(keyset.path)


def describe_master(keyset: KeysetFile) -> str:
    """One line saying where `keyset`'s master key comes from (no secrets)."""
    master = keyset.master
    if master.source == "passphrase":
        assert master.scrypt is not None
        cost = master.scrypt
        return f"passphrase from {PASSPHRASE_ENV} (scrypt n={cost.n}, r={cost.r}, p={cost.p})"
    if master.source == "kms":
        return f"KMS key {master.kms_uri} (envelope: a random master key, stored wrapped by the KMS key)"
    return f"{MASTER_KEY_ENV} (while it is unset: the development key file {dev_master_key_path(keyset.path)})"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError
    return base64.b64decode(value, validate=True)


def _positive_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError
    return value


def _parse_master(doc: dict[str, Any]) -> MasterSource:
    raw = doc.get("master", {"source": "env"})
    source = raw["source"]
    if source == "env":
        return MasterSource()
    if source == "passphrase":
        cost = raw["scrypt"]
        salt = _b64(cost["salt"])
        n, r, p = _positive_int(cost["n"]), _positive_int(cost["r"]), _positive_int(cost["p"])
        if len(salt) < SALT_BYTES or n < 2 or n & (n - 1) or 128 * n * r > _MAX_SCRYPT_MEMORY or p > 16:
            raise ValueError
        return MasterSource("passphrase", salt=salt, scrypt=ScryptParams(n, r, p))
    if source == "kms":
        uri = raw["uri"]
        if not isinstance(uri, str) or not uri:
            raise ValueError
        return MasterSource("kms", kms_uri=uri, kms_wrapped=_b64(raw["wrapped"]))
    raise ValueError


def _parse_key(raw: dict[str, Any]) -> _WrappedKey:
    info = KeyInfo(_positive_int(raw["version"]), str(raw["status"]), str(raw["created"]))
    if info.status not in STATUSES:
        raise ValueError
    return _WrappedKey(info, None if info.status == "destroyed" else _b64(raw["wrapped"]))


def read_keyset(path: str) -> KeysetFile:
    """Parse the keyset at `path`; a clear `KeyAccessError` if it is missing or malformed."""
    try:
        raw = _fs.read_bytes(path)
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
        keys = tuple(sorted((_parse_key(k) for k in doc["keys"]), key=lambda k: k.info.version))
        if len({k.info.version for k in keys}) != len(keys):
            raise ValueError
        primary = int(doc["primary"])
        master = _parse_master(doc)
        subject_key = _b64(doc["subject_key"]) if "subject_key" in doc else None
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise KeyAccessError(f"keyset {path} is corrupt or not a veil keyset") from None
    if primary not in {k.info.version for k in keys}:
        raise KeyAccessError(f"keyset {path} is corrupt: its primary version {primary} is missing")
    return KeysetFile(path, primary, keys, master, subject_key)


def _serialize_master(master: MasterSource) -> dict[str, Any]:
    if master.source == "passphrase":
        assert master.scrypt is not None
        cost = master.scrypt
        salt = base64.b64encode(master.salt).decode()
        return {"source": "passphrase", "scrypt": {"salt": salt, "n": cost.n, "r": cost.r, "p": cost.p}}
    if master.source == "kms":
        return {"source": "kms", "uri": master.kms_uri, "wrapped": base64.b64encode(master.kms_wrapped).decode()}
    return {"source": "env"}


def _serialize_key(key: _WrappedKey) -> dict[str, Any]:
    row: dict[str, Any] = {"version": key.info.version, "status": key.info.status, "created": key.info.created}
    if key.wrapped is not None:
        row["wrapped"] = base64.b64encode(key.wrapped).decode()
    return row


def _serialize(keyset: KeysetFile) -> bytes:
    doc = {
        "veil_keyset": FORMAT,
        "primary": keyset.primary,
        "master": _serialize_master(keyset.master),
        "keys": [_serialize_key(k) for k in keyset.keys],
    }
    if keyset.subject_key is not None:
        doc["subject_key"] = base64.b64encode(keyset.subject_key).decode()
    return (json.dumps(doc, indent=2) + "\n").encode()


def _unwrap_hint(keyset: KeysetFile) -> str:
    if keyset.master.source == "passphrase":
        return f"wrong passphrase ({PASSPHRASE_ENV}) or the keyset was altered"
    if keyset.master.source == "kms":
        return f"the keyset was altered (its master key comes from {keyset.master.kms_uri})"
    if os.environ.get(MASTER_KEY_ENV):
        return f"wrong master key ({MASTER_KEY_ENV}) or the keyset was altered"
    return (
        f"wrong master key (the development key file {dev_master_key_path(keyset.path)}, "
        f"as {MASTER_KEY_ENV} is not set) or the keyset was altered"
    )


def unwrap_keys(keyset: KeysetFile, master_key: bytes, versions: Collection[int] | None = None) -> dict[int, bytes]:
    """Root keys by version (all not destroyed, or only `versions`).

    Raises:
        KeyAccessError: a wrong master key or an altered file; the message names the keyset,
            the version and the master key source, never key bytes.

    Security: returns key bytes; callers keep them in memory only.
    """
    wrapper = _primitives.Aead(master_key)
    roots = {}
    for key in keyset.keys:
        if key.wrapped is None or (versions is not None and key.info.version not in versions):
            continue
        try:
            roots[key.info.version] = wrapper.decrypt(key.wrapped, _wrap_ad(key.info.version))
        except Exception:
            raise KeyAccessError(
                f"cannot unwrap key version {key.info.version} of keyset {keyset.path}: {_unwrap_hint(keyset)}"
            ) from None
    return roots


def _new_subject_key(master_key: bytes) -> bytes:
    return _primitives.Aead(master_key).encrypt(_primitives.random_key(ROOT_KEY_BYTES), SUBJECT_KEY_AD)


def unwrap_subject_key(keyset: KeysetFile, master_key: bytes) -> bytes | None:
    """The keyset's subject key: the root of subject references (erasure tables, subject keys).

    Unlike root keys it is never rotated, so a subject's reference stays the same across
    rotations and is the same for every purpose. None for keysets made before it existed
    (`veil keys rotate` adds one).

    Security: returns key bytes; callers keep them in memory only.
    """
    if keyset.subject_key is None:
        return None
    try:
        return _primitives.Aead(master_key).decrypt(keyset.subject_key, SUBJECT_KEY_AD)
    except Exception:
        raise KeyAccessError(f"cannot unwrap the subject key of keyset {keyset.path}: {_unwrap_hint(keyset)}") from None


def _new_key(master_key: bytes, version: int) -> _WrappedKey:
    wrapped = _primitives.Aead(master_key).encrypt(_primitives.random_key(ROOT_KEY_BYTES), _wrap_ad(version))
    return _WrappedKey(KeyInfo(version, "enabled", _now()), wrapped)


def _new_kms_master(path: str, kms_uri: str) -> tuple[MasterSource, bytes]:
    master_key = _primitives.random_key(ROOT_KEY_BYTES)
    wrapped = _kms_call(path, kms_uri, "wrap", master_key)
    if _kms_call(path, kms_uri, "unwrap", wrapped) != master_key:  # can it be read back?
        raise KeyAccessError(f"keyset {path}: the KMS key {kms_uri} did not give back what it wrapped")
    return MasterSource("kms", kms_uri=kms_uri, kms_wrapped=wrapped), master_key


def init_keyset(path: str, *, kms_uri: str | None = None) -> bool:
    """Create a keyset with one primary key. Returns True if a development master key was written.

    The master key source is, in order: the KMS key `kms_uri` if given (a random master key,
    stored wrapped by it); `VEIL_MASTER_KEY` if set; `VEIL_MASTER_PASSPHRASE` if set (scrypt
    with a fresh random salt, stored in the keyset); else a random development master key
    written beside the keyset with mode 0600, for development only.

    Raises:
        KeyAccessError: the keyset exists, or the chosen source is unusable (nothing is written).

    Security: draws a fresh random root key; the file holds it only wrapped.
    """
    if _fs.exists(path):
        raise KeyAccessError(f"keyset {path} already exists; use 'veil keys rotate' to add a key")
    wrote_dev_key = False
    if kms_uri:
        source, master = _new_kms_master(path, kms_uri)
    elif os.environ.get(MASTER_KEY_ENV):
        source, master = MasterSource(), resolve_master_key(path)
    elif os.environ.get(PASSPHRASE_ENV):
        source = MasterSource("passphrase", salt=_primitives.random_key(SALT_BYTES), scrypt=SCRYPT_PARAMS)
        master = _passphrase_master_key(path, source)
    else:
        dev_path = dev_master_key_path(path)
        if not _fs.exists(dev_path):
            _fs.write_bytes(dev_path, base64.b64encode(_primitives.random_key()) + b"\n", private=True)
            wrote_dev_key = True
        source, master = MasterSource(), resolve_master_key(path)
    keyset = KeysetFile(path, 1, (_new_key(master, 1),), source, _new_subject_key(master))
    _fs.write_bytes(path, _serialize(keyset))
    return wrote_dev_key


def rotate_keyset(path: str) -> int:
    """Add a new root key and make it the primary; older keys stay readable. Returns its version.

    Versions are never reused, destroyed ones included. The master key source stays the same.

    Security: draws a fresh random root key; refuses to extend a keyset it cannot unwrap.
    """
    keyset = read_keyset(path)
    master = master_key_for(keyset)
    unwrap_keys(keyset, master)  # refuse to extend a keyset we cannot read
    version = max(k.info.version for k in keyset.keys) + 1
    updated = replace(keyset, primary=version, keys=(*keyset.keys, _new_key(master, version)))
    if keyset.subject_key is None:  # keysets made before subject keys existed get one now
        updated = replace(updated, subject_key=_new_subject_key(master))
    _fs.write_bytes(path, _serialize(updated))
    return version


_VERBS = {"enabled": "enable", "disabled": "disable", "destroyed": "destroy"}


def check_status_change(keyset: KeysetFile, version: int, status: str) -> KeyInfo:
    """The facts of key `version` if it may be given `status`; a `KeyAccessError` saying why not.

    The primary can be neither disabled nor destroyed (rotate first); a destroyed key cannot
    come back. Setting the status a key already has is allowed (and changes nothing).
    """
    if status not in STATUSES:
        raise ValueError(f"unknown key status {status!r}")
    known = {k.info.version: k.info for k in keyset.keys}
    info = known.get(version)
    if info is None:
        raise KeyAccessError(
            f"keyset {keyset.path} has no key version {version} (versions: {', '.join(map(str, sorted(known)))})"
        )
    verb = _VERBS[status]
    if status != "enabled" and version == keyset.primary:
        raise KeyAccessError(
            f"key version {version} is the primary of keyset {keyset.path}: make a new primary with "
            f"'veil keys rotate --keyset {keyset.path}' first, then {verb} version {version}"
        )
    if info.status == "destroyed" and status != "destroyed":
        raise KeyAccessError(
            f"key version {version} of keyset {keyset.path} is destroyed: its material is gone, "
            f"so it cannot be {status} again"
        )
    return info


def _set_status(path: str, version: int, status: str) -> bool:
    keyset = read_keyset(path)
    if check_status_change(keyset, version, status).status == status:
        return False
    keys = tuple(
        _WrappedKey(replace(k.info, status=status), None if status == "destroyed" else k.wrapped)
        if k.info.version == version
        else k
        for k in keyset.keys
    )
    _fs.write_bytes(path, _serialize(replace(keyset, keys=keys)))
    return True


def disable_key(path: str, version: int) -> bool:
    """Stop veil from reading or writing with key `version` until it is enabled again.

    Returns:
        False if it was already disabled.

    Raises:
        KeyAccessError: no such version, it is the primary, or it is destroyed.

    Security: an operational switch recorded in the keyset, not cryptography: the wrapped key
    stays in the file, and anyone who can edit the file can enable it again. Needs no master key.
    """
    return _set_status(path, version, "disabled")


def enable_key(path: str, version: int) -> bool:
    """Make a disabled key `version` usable again (outputs under it are as before).

    Returns:
        False if it was already enabled.

    Raises:
        KeyAccessError: no such version, or it is destroyed.

    Security: needs no master key; the key itself is unchanged.
    """
    return _set_status(path, version, "enabled")


def destroy_key(path: str, version: int) -> bool:
    """Remove key `version`'s wrapped material from the keyset, for good.

    The version keeps its row (status `destroyed`), so it is never reused and errors can
    say what happened to it. Data made with it can no longer be read or reproduced.

    Returns:
        False if it was already destroyed.

    Raises:
        KeyAccessError: no such version, or it is the primary.

    Security: irreversible for this file only: older copies of the keyset (backups, object
    versions) together with the master key can still unwrap the key; destroy those too.
    """
    return _set_status(path, version, "destroyed")
