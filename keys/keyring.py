"""A KeyRing: unwrapped root keys and the working keys derived from them.

Working keys are derived with HKDF-SHA256 (no salt) from a root key and an info string that
names what the key is for (`veil/v1/<use>/<purpose>/<domain>`; the strings are built by the
actions and documented in the README). The KeyRing hands out primitives, never bytes.
"""

from collections.abc import Mapping

from veil.errors import KeyAccessError
from veil.keys import _primitives
from veil.keys.keyset import read_keyset, resolve_master_key, unwrap_keys


class KeyRing:
    """Opaque handle on a keyset's usable root keys; refuses pickling.

    Attributes:
        primary: the version new tokens are made with unless a policy pins another.
    """

    def __init__(self, roots: Mapping[int, bytes], primary: int):
        self._roots = dict(roots)
        self.primary = primary
        self._cache: dict[tuple[str, str, int], object] = {}

    def __reduce__(self):
        raise TypeError("KeyRing holds key material and cannot be pickled; open it on the worker (DoFn.setup) instead")

    def __repr__(self) -> str:
        return f"KeyRing(versions={sorted(self._roots)}, primary={self.primary})"

    @property
    def versions(self) -> tuple[int, ...]:
        """Versions that can be used, ascending."""
        return tuple(sorted(self._roots))

    def resolve_version(self, pinned: int | None) -> int:
        """The version to write with: `pinned` if given (and usable), else the primary."""
        version = self.primary if pinned is None else pinned
        if version not in self._roots:
            raise KeyAccessError(
                f"key version {version} is not in the keyset (usable versions: {', '.join(map(str, self.versions))})"
            )
        return version

    def _derive(self, kind: str, info: str, version: int, length: int):
        cache_key = (kind, info, version)
        primitive = self._cache.get(cache_key)
        if primitive is None:
            root = self._roots[self.resolve_version(version)]
            key = _primitives.hkdf_sha256(root, info.encode("utf-8"), length)
            primitive = {"prf": _primitives.Prf, "daead": _primitives.Daead, "aead": _primitives.Aead}[kind](key)
            self._cache[cache_key] = primitive
        return primitive

    def prf(self, info: str, version: int) -> _primitives.Prf:
        """HMAC-SHA256 under HKDF(root[version], info, 32 bytes)."""
        return self._derive("prf", info, version, 32)

    def daead(self, info: str, version: int) -> _primitives.Daead:
        """AES-SIV under HKDF(root[version], info, 64 bytes)."""
        return self._derive("daead", info, version, 64)

    def aead(self, info: str, version: int) -> _primitives.Aead:
        """AES-256-GCM under HKDF(root[version], info, 32 bytes)."""
        return self._derive("aead", info, version, 32)


def open_keyring(path: str) -> KeyRing:
    """Read the keyset at `path` (local or any Beam FileSystems URI) and unwrap its keys."""
    keyset = read_keyset(path)
    roots = unwrap_keys(keyset, resolve_master_key(path))
    enabled = {info.version for info in keyset.infos if info.status == "enabled"}
    usable = {version: root for version, root in roots.items() if version in enabled}
    if keyset.primary not in usable:
        raise KeyAccessError(f"keyset {path}: primary key version {keyset.primary} is not enabled")
    return KeyRing(usable, keyset.primary)
