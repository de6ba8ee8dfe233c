"""Key management service (KMS) plugins: wrap and unwrap a keyset's master key remotely.

A keyset whose `master` is `{"source": "kms", "uri": "<scheme>://...", "wrapped": "..."}` uses
envelope encryption: `veil keys init --kms URI` draws a random 32-byte master key, has the KMS
wrap it once (`KmsClient.wrap`), and stores only the wrapped form in the keyset. Opening the
keyset asks the KMS to unwrap it (one call per worker, in `DoFn.setup`); the root keys are
then unwrapped locally with AES-256-GCM exactly as for the other master key sources.

A plugin is any object with `wrap` and `unwrap` (see `KmsClient`), built from the URI by a
factory. The URI scheme picks the factory:

* built in: `gcp-kms://projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>` (Google Cloud
  KMS, `pip install 'veil[gcp]'`);
* other packages: an entry point in the group `veil.kms` whose name is the scheme and whose
  object is the factory (`[project.entry-points."veil.kms"] my-kms = "my_pkg:MyKms"`), so it is
  found on Beam workers too.

There is no run-time registration. Tests swap a fake in for the duration of one test with
`monkeypatch.setattr(kms, "SCHEMES", {**kms.SCHEMES, "fake-kms": FakeKms})`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from importlib import metadata
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from veil.errors import IntegrityError, KeyAccessError
from veil.keys import _primitives

ENTRY_POINT_GROUP = "veil.kms"
_URI = re.compile(r"^([a-z][a-z0-9+.-]*)://(.+)$")
_EXAMPLE = "gcp-kms://projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>"


@runtime_checkable
class KmsClient(Protocol):
    """What a KMS plugin provides: authenticated wrap and unwrap of small secrets.

    Implementations raise `KeyAccessError` with a one-line, fixable message (no key bytes)
    when the service refuses or fails; `unwrap` of altered data or with another associated
    data must fail, never return other bytes.
    """

    def wrap(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """The KMS ciphertext of `plaintext`, bound to `associated_data`."""
        ...

    def unwrap(self, wrapped: bytes, associated_data: bytes) -> bytes:
        """The plaintext of `wrapped`; fails unless `associated_data` is the one it was wrapped with."""
        ...


KmsFactory = Callable[[str], KmsClient]


def _gcp(uri: str) -> KmsClient:
    from veil.keys.gcp_kms import GcpKms

    return GcpKms.from_uri(uri)


SCHEMES: Mapping[str, KmsFactory] = MappingProxyType({"gcp-kms": _gcp})
"""Built-in URI schemes and their factories (read-only)."""


def scheme_of(uri: str) -> str:
    """The scheme of a KMS URI (`gcp-kms` for `gcp-kms://...`); `KeyAccessError` if it has none."""
    match = _URI.match(uri)
    if not match:
        raise KeyAccessError(f"'{uri}' is not a KMS URI: expected <scheme>://<key>, e.g. {_EXAMPLE}")
    return match.group(1)


def client_for(uri: str) -> KmsClient:
    """The KMS client for `uri`, from the built-in schemes or a `veil.kms` entry point.

    Raises:
        KeyAccessError: the URI is malformed, its scheme is unknown, or the plugin cannot start.
    """
    scheme = scheme_of(uri)
    factory = SCHEMES.get(scheme)
    if factory is None:
        found = metadata.entry_points(group=ENTRY_POINT_GROUP, name=scheme)
        if not found:
            known = ", ".join(f"{s}://" for s in sorted(SCHEMES))
            raise KeyAccessError(
                f"unknown KMS scheme '{scheme}://' in '{uri}': veil knows {known}; "
                f"other KMSs need a plugin registered under the '{ENTRY_POINT_GROUP}' entry point group"
            )
        factory = next(iter(found)).load()
    return factory(uri)


class FakeKms:
    """A stand-in KMS for tests ONLY: AES-GCM under a key derived from its URI.

    The key is public (anyone can derive it from the URI), so anything it wraps is protected
    by nothing. It exists so that the KMS code path can be tested without a cloud service; it
    is not among `SCHEMES` and is reachable only when a test puts it there.

    Attributes:
        uri: the URI it was built for; two FakeKms with different URIs cannot unwrap each
            other's output.
        calls: ("wrap" | "unwrap", associated data) for each call, for assertions.
    """

    def __init__(self, uri: str):
        self.uri = uri
        self.calls: list[tuple[str, bytes]] = []
        self._aead = _primitives.Aead(
            _primitives.hkdf_sha256(b"veil fake kms: a public test key", uri.encode("utf-8"), 32)
        )

    def __repr__(self) -> str:
        return f"FakeKms({self.uri!r})"

    def wrap(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """AES-GCM of `plaintext` under the fake key (tests only)."""
        self.calls.append(("wrap", associated_data))
        return self._aead.encrypt(plaintext, associated_data)

    def unwrap(self, wrapped: bytes, associated_data: bytes) -> bytes:
        """The plaintext, or `KeyAccessError` if `wrapped` was not made by this fake key."""
        self.calls.append(("unwrap", associated_data))
        try:
            return self._aead.decrypt(wrapped, associated_data)
        except IntegrityError:
            raise KeyAccessError(f"{self.uri}: the KMS could not unwrap the data (wrong key or altered)") from None
