"""Google Cloud KMS as a veil KMS plugin (`gcp-kms://projects/.../cryptoKeys/<key>`).

Needs the optional extra: `pip install 'veil[gcp]'` (google-cloud-kms). The client uses
Application Default Credentials; the identity that opens the keyset (each Dataflow worker's
service account) needs `roles/cloudkms.cryptoKeyDecrypter` on the key, and the one that runs
`veil keys init --kms` also needs `roles/cloudkms.cryptoKeyEncrypter`.

The key must be a symmetric ENCRYPT_DECRYPT CryptoKey; Cloud KMS encrypts with its primary
version and finds the right version when decrypting, so rotating the Cloud KMS key keeps
existing keysets readable.
"""

from __future__ import annotations

import re
from typing import Any

from veil.errors import KeyAccessError

SCHEME = "gcp-kms"
_KEY_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")


def key_name_from_uri(uri: str) -> str:
    """The Cloud KMS CryptoKey resource name in a `gcp-kms://` URI.

    Raises:
        KeyAccessError: the URI does not name a CryptoKey.
    """
    prefix = f"{SCHEME}://"
    name = uri[len(prefix) :] if uri.startswith(prefix) else ""
    if not _KEY_NAME.match(name):
        raise KeyAccessError(
            f"'{uri}' is not a Google Cloud KMS key URI: expected "
            f"{prefix}projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>"
        )
    return name


def _default_client() -> Any:
    try:
        from google.cloud import kms  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise KeyAccessError(
            "Google Cloud KMS support is not installed: pip install 'veil[gcp]' (google-cloud-kms)"
        ) from None
    return kms.KeyManagementServiceClient()


class GcpKms:
    """Wraps and unwraps with one Cloud KMS CryptoKey (a `veil.keys.kms.KmsClient`).

    Args:
        key_name: `projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>`.
        client: a `google.cloud.kms.KeyManagementServiceClient` or an object with the same
            `encrypt(request=...)` / `decrypt(request=...)`; by default a new client.

    Security: the wrapped bytes are Cloud KMS ciphertexts bound to the associated data
    (`additional_authenticated_data`); only identities allowed to decrypt with the key can
    unwrap them. The plaintext passes through Cloud KMS over TLS.
    """

    def __init__(self, key_name: str, client: Any = None):
        self.key_name = key_name
        self._client = client if client is not None else _default_client()

    @classmethod
    def from_uri(cls, uri: str, client: Any = None) -> GcpKms:
        """A GcpKms for `gcp-kms://<key name>`."""
        return cls(key_name_from_uri(uri), client)

    def __repr__(self) -> str:
        return f"GcpKms({self.key_name!r})"

    def wrap(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """Cloud KMS `Encrypt` of `plaintext` with `associated_data` as its AAD."""
        request = {
            "name": self.key_name,
            "plaintext": plaintext,
            "additional_authenticated_data": associated_data,
        }
        try:
            response = self._client.encrypt(request=request)
        except Exception as error:
            raise self._failure("encrypt with", error) from None
        return bytes(response.ciphertext)

    def unwrap(self, wrapped: bytes, associated_data: bytes) -> bytes:
        """Cloud KMS `Decrypt` of `wrapped`; fails unless `associated_data` matches."""
        request = {
            "name": self.key_name,
            "ciphertext": wrapped,
            "additional_authenticated_data": associated_data,
        }
        try:
            response = self._client.decrypt(request=request)
        except Exception as error:
            raise self._failure("decrypt with", error) from None
        return bytes(response.plaintext)

    def _failure(self, what: str, error: Exception) -> KeyAccessError:
        # The type names the cause (PermissionDenied, NotFound, InvalidArgument, ...); the
        # service's own message is left out: it is not needed to act and is not ours to vet.
        return KeyAccessError(
            f"Cloud KMS could not {what} {SCHEME}://{self.key_name} ({type(error).__name__}): check that "
            "the key exists and is enabled and that these credentials may use it"
        )
