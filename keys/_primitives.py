"""The only module that imports `cryptography`: HKDF, HMAC, AES-SIV and AES-GCM recipes.

Each primitive is built once from key bytes and then used for many values; the objects
refuse pickling so that key material cannot be shipped inside a Beam job graph by accident.
"""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from veil.errors import IntegrityError

NONCE_BYTES = 12


def hkdf_sha256(ikm: bytes, info: bytes, length: int, salt: bytes | None = None) -> bytes:
    """Derive `length` bytes from `ikm` for the purpose named by `info` (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


class _Unpicklable:
    def __reduce__(self):
        raise TypeError(
            f"{type(self).__name__} holds key material and cannot be pickled; "
            "open the keyring on the worker (DoFn.setup) instead"
        )


class Prf(_Unpicklable):
    """HMAC-SHA256 with its key set once.

    Security: deterministic per (key, message); not reversible; outputs under different keys
    are unlinkable.
    """

    def __init__(self, key: bytes):
        self._mac = hmac.HMAC(key, hashes.SHA256())

    def compute(self, message: bytes) -> bytes:
        """The 32-byte HMAC-SHA256 of `message`."""
        mac = self._mac.copy()
        mac.update(message)
        return mac.finalize()


class Daead(_Unpicklable):
    """Deterministic authenticated encryption, AES-SIV (RFC 5297) with a 512-bit key.

    Security: deterministic (equal plaintexts give equal ciphertexts, so it is joinable but not
    semantically secure); reversible with the key; tampering is detected.
    """

    def __init__(self, key: bytes):
        self._siv = AESSIV(key)

    def encrypt_deterministically(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """SIV || ciphertext of `plaintext`, bound to one associated-data component."""
        return self._siv.encrypt(plaintext, [associated_data])

    def decrypt_deterministically(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        """The plaintext, or `IntegrityError` if the ciphertext or its binding was altered."""
        try:
            return self._siv.decrypt(ciphertext, [associated_data])
        except (InvalidTag, ValueError):
            raise IntegrityError("token failed authentication") from None


class Aead(_Unpicklable):
    """Randomised authenticated encryption, AES-256-GCM with 96-bit random nonces.

    Security: not deterministic (the same plaintext encrypts differently each time), reversible
    with the key, tampering and a wrong associated data are detected.
    """

    def __init__(self, key: bytes):
        self._gcm = AESGCM(key)

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """nonce || ciphertext || tag, with a fresh random nonce."""
        return self._encrypt_with_nonce(os.urandom(NONCE_BYTES), plaintext, associated_data)

    def _encrypt_with_nonce(self, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        """Seam for known-answer tests: encryption with a given nonce. Never reuse a nonce."""
        return nonce + self._gcm.encrypt(nonce, plaintext, associated_data)

    def decrypt(self, sealed: bytes, associated_data: bytes) -> bytes:
        """The plaintext, or `IntegrityError` if anything was altered or bound differently."""
        if len(sealed) < NONCE_BYTES + 16:
            raise IntegrityError("ciphertext failed authentication")
        try:
            return self._gcm.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
        except InvalidTag:
            raise IntegrityError("ciphertext failed authentication") from None


def random_key(length: int = 32) -> bytes:
    """Fresh key bytes from the operating system's CSPRNG."""
    return os.urandom(length)
