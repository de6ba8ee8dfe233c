"""A KeyRing: unwrapped root keys and the working keys derived from them.

Working keys are derived with HKDF-SHA256 (no salt) from a root key and an info string that
names what the key is for (`veil/v1/<use>/<purpose>/<domain>`; the strings are built by the
actions and documented in the README). The KeyRing hands out primitives, never bytes.
"""

from collections.abc import Callable, Mapping
from typing import NoReturn, TypeVar, cast

from veil.errors import IntegrityError, KeyAccessError
from veil.keys import _primitives
from veil.keys.ff1 import FF1Alphabet
from veil.keys.keyset import master_key_for, read_keyset, unwrap_keys, unwrap_subject_key

_Primitive = TypeVar("_Primitive")


SUBJECT_KEY_CACHE = 65_536


class KeyRing:
    """Opaque handle on a keyset's usable root keys; refuses pickling.

    Attributes:
        primary: the version new tokens are made with unless a policy pins another.
    """

    def __init__(
        self,
        roots: Mapping[int, bytes],
        primary: int,
        unusable: Mapping[int, str] | None = None,
        subject_root: bytes | None = None,
    ):
        self._roots = dict(roots)
        self._subject_root = subject_root
        self._subject_prf: _primitives.Prf | None = None
        self._dek_wrapper: _primitives.Aead | None = None
        self._subject_aeads: dict[str, _primitives.Aead] = {}
        self.primary = primary
        self._unusable = dict(unusable or {})  # version -> status, for keys in the keyset that cannot be used
        self._cache: dict[tuple[Callable[..., object], str, int, tuple[str, ...]], object] = {}

    def __reduce__(self) -> NoReturn:
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
            status = self._unusable.get(version)
            if status == "disabled":
                raise KeyAccessError(
                    f"key version {version} is disabled: enable it with 'veil keys enable --id {version}' "
                    "to read or write with it"
                )
            if status == "destroyed":
                raise KeyAccessError(
                    f"key version {version} is destroyed: its key is gone, so nothing can be read or "
                    f"written with it (usable versions: {', '.join(map(str, self.versions))})"
                )
            raise KeyAccessError(
                f"key version {version} is not in the keyset (usable versions: {', '.join(map(str, self.versions))})"
            )
        return version

    def readable_version(self, version: int) -> int:
        """`version` (as carried by a token) if its key can be used to read.

        Raises:
            IntegrityError: the keyset never had that version (a forged or foreign token).
            KeyAccessError: the version exists but is disabled or destroyed.
        """
        if version in self._roots:
            return version
        status = self._unusable.get(version)
        if status is None:
            raise IntegrityError("token names a key version this keyset does not have")
        hint = f"enable it with 'veil keys enable --id {version}'" if status == "disabled" else "it cannot come back"
        raise KeyAccessError(f"key version {version} is {status}, so data made with it cannot be read: {hint}")

    def _derive(
        self, make: Callable[..., _Primitive], info: str, version: int, length: int, *params: str
    ) -> _Primitive:
        """`make(HKDF(root[version], info, length), *params)`, built once and cached.

        `params` (FF1's alphabet) shape the primitive, so they are part of the cache key; the
        key itself depends on (root, info, length) only.
        """
        cache_key = (make, info, version, params)
        primitive = self._cache.get(cache_key)
        if primitive is None:
            root = self._roots[self.resolve_version(version)]
            primitive = make(_primitives.hkdf_sha256(root, info.encode("utf-8"), length), *params)
            self._cache[cache_key] = primitive
        return cast(_Primitive, primitive)

    def prf(self, info: str, version: int) -> _primitives.Prf:
        """HMAC-SHA256 under HKDF(root[version], info, 32 bytes)."""
        return self._derive(_primitives.Prf, info, version, 32)

    def daead(self, info: str, version: int) -> _primitives.Daead:
        """AES-SIV under HKDF(root[version], info, 64 bytes)."""
        return self._derive(_primitives.Daead, info, version, 64)

    def aead(self, info: str, version: int) -> _primitives.Aead:
        """AES-256-GCM under HKDF(root[version], info, 32 bytes)."""
        return self._derive(_primitives.Aead, info, version, 32)

    def _working_keys(self, info: str, length: int) -> dict[int, bytes]:
        """HKDF(root[v], info, length) for every usable version v: for `veil.keys.tink_export` only.

        Security: returns key bytes. Nothing outside the keys package may call it; the one
        caller hands them straight to `_primitives.tink_keyset`.
        """
        return {v: _primitives.hkdf_sha256(root, info.encode("utf-8"), length) for v, root in self._roots.items()}

    def subject_prf(self) -> _primitives.Prf:
        """HMAC-SHA256 under HKDF(subject key, "veil/v1/subject-ref", 32 bytes).

        The subject key is never rotated, so references made with it (erasure tables, subject
        key tables) stay valid after `veil keys rotate` and are the same for every purpose.

        Raises:
            KeyAccessError: the keyset predates subject keys.
        """
        if self._subject_root is None:
            raise KeyAccessError("this keyset has no subject key yet: run 'veil keys rotate' once to add one")
        if self._subject_prf is None:
            self._subject_prf = _primitives.Prf(_primitives.hkdf_sha256(self._subject_root, b"veil/v1/subject-ref", 32))
        return self._subject_prf

    def _subject_dek_wrapper(self) -> _primitives.Aead:
        if self._subject_root is None:
            raise KeyAccessError("this keyset has no subject key yet: run 'veil keys rotate' once to add one")
        if self._dek_wrapper is None:
            key = _primitives.hkdf_sha256(self._subject_root, b"veil/v1/subject-dek-wrap", 32)
            self._dek_wrapper = _primitives.Aead(key)
        return self._dek_wrapper

    def create_subject_dek(self) -> tuple[str, bytes]:
        """A new per-subject data key: (its random id, the key wrapped by the keyset's subject key).

        Security: the id is random (it says nothing about the subject); the key leaves only
        wrapped (AES-256-GCM, associated data = the id). Deleting the wrapped key shreds every
        ciphertext made with it.
        """
        key_id = _primitives.random_key(16).hex()
        wrapped = self._subject_dek_wrapper().encrypt(_primitives.random_key(32), key_id.encode())
        return key_id, wrapped

    def subject_aead(self, key_id: str, wrapped: bytes) -> _primitives.Aead:
        """AES-256-GCM under an unwrapped per-subject data key (cached per id).

        Raises:
            IntegrityError: the wrapped key was altered or belongs to another keyset or id.
        """
        aead = self._subject_aeads.get(key_id)
        if aead is None:
            if len(self._subject_aeads) >= SUBJECT_KEY_CACHE:  # one worker may see millions of subjects
                self._subject_aeads.clear()
            aead = self._subject_aeads[key_id] = _primitives.Aead(
                self._subject_dek_wrapper().decrypt(wrapped, key_id.encode())
            )
        return aead

    def ff1(self, info: str, version: int, alphabet: str) -> FF1Alphabet:
        """FF1 over `alphabet` under the AES-256 key HKDF(root[version], info, 32 bytes).

        The alphabet is not part of the derivation, so `info` should name the field: under one
        info, two alphabets of the same size permute numerals identically.

        Args:
            info: what the key is for (`veil/v1/ff1/<purpose>/<field>`, built by the action).
            version: the root key version.
            alphabet: the characters themselves, in numeral order (a name such as "digits"
                is resolved by the caller with `veil.keys.ff1.ALPHABETS`).

        Raises:
            FF1Error: the alphabet repeats a character or has fewer than 2 or more than 2**16.
            KeyAccessError: `version` cannot be used.

        Security: deterministic per (key, tweak, value); reversible with the key; no integrity
        or tamper detection (see `veil.keys.ff1.FF1`).
        """
        return self._derive(FF1Alphabet, info, version, 32, alphabet)


def open_keyring(path: str) -> KeyRing:
    """Read the keyset at `path` (local or any Beam FileSystems URI) and unwrap its enabled keys.

    The master key comes from the source the keyset records (see `veil.keys.keyset`). Disabled
    and destroyed keys are not unwrapped; the KeyRing knows only their status, so that asking
    for one says why it cannot be used.

    Raises:
        KeyAccessError: the keyset or its master key is missing, wrong or corrupt, or its
            primary is not enabled.

    Security: the returned KeyRing holds unwrapped root keys in memory; it refuses pickling.
    """
    keyset = read_keyset(path)
    enabled = {info.version for info in keyset.infos if info.status == "enabled"}
    if keyset.primary not in enabled:
        raise KeyAccessError(f"keyset {path}: primary key version {keyset.primary} is not enabled")
    master = master_key_for(keyset)
    usable = unwrap_keys(keyset, master, versions=enabled)  # disabled keys stay wrapped
    unusable = {info.version: info.status for info in keyset.infos if info.version not in usable}
    return KeyRing(usable, keyset.primary, unusable, unwrap_subject_key(keyset, master))
