"""The only module that imports `cryptography`: HKDF, HMAC, AES-SIV, AES-GCM and AES blocks.

Each primitive is built once from key bytes and then used for many values; the objects
refuse pickling so that key material cannot be shipped inside a Beam job graph by accident.
"""

import os
import threading
from collections.abc import Callable
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from veil.errors import IntegrityError

NONCE_BYTES = 12


def hkdf_sha256(ikm: bytes, info: bytes, length: int, salt: bytes | None = None) -> bytes:
    """Derive `length` bytes from `ikm` for the purpose named by `info` (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


class _Unpicklable:
    def __reduce__(self) -> NoReturn:
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

    def compute_many(self, messages: list[bytes]) -> list[bytes]:
        """`[self.compute(m) for m in messages]`, without a Python frame per message."""
        copy, out = self._mac.copy, []
        append = out.append
        for message in messages:
            mac = copy()
            mac.update(message)
            append(mac.finalize())
        return out


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

    def encrypt_deterministically_many(self, plaintexts: list[bytes], associated_data: bytes) -> list[bytes]:
        """`[self.encrypt_deterministically(p, associated_data) for p in plaintexts]`, in one loop."""
        encrypt, components = self._siv.encrypt, [associated_data]
        return [encrypt(plaintext, components) for plaintext in plaintexts]

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

    def encrypt_many(self, plaintexts: list[bytes], associated_data: bytes) -> list[bytes]:
        """`encrypt` of each plaintext, the nonces sliced from ONE `os.urandom` call.

        Every nonce is still 12 fresh bytes from the operating system's CSPRNG, used once;
        one call for the whole batch costs about a third of one call per value.
        """
        return self._encrypt_many_with_nonces(os.urandom(NONCE_BYTES * len(plaintexts)), plaintexts, associated_data)

    def _encrypt_many_with_nonces(self, nonces: bytes, plaintexts: list[bytes], associated_data: bytes) -> list[bytes]:
        """Seam for known-answer tests: plaintext i under nonce `nonces[12 * i : 12 * i + 12]`. Never reuse a nonce."""
        if len(nonces) != NONCE_BYTES * len(plaintexts):
            raise ValueError("one 12-byte nonce per plaintext is needed")
        encrypt = self._gcm.encrypt
        return [
            nonce + encrypt(nonce, plaintext, associated_data)
            for nonce, plaintext in zip(
                [nonces[o : o + NONCE_BYTES] for o in range(0, len(nonces), NONCE_BYTES)], plaintexts
            )
        ]

    def decrypt(self, sealed: bytes, associated_data: bytes) -> bytes:
        """The plaintext, or `IntegrityError` if anything was altered or bound differently."""
        if len(sealed) < NONCE_BYTES + 16:
            raise IntegrityError("ciphertext failed authentication")
        try:
            return self._gcm.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
        except InvalidTag:
            raise IntegrityError("ciphertext failed authentication") from None


class AesBlocks(_Unpicklable):
    """The raw AES block cipher (AES-128/192/256 by key length), for building FF1 only.

    This is a building block, not a way to encrypt data: it is ECB, so equal blocks give equal
    outputs and nothing is authenticated. `veil.keys.ff1` uses it for FF1's CBC-MAC PRF and
    its output expansion (NIST SP 800-38G), which is what a raw block cipher is for.

    Each thread makes one ECB context on first use and then reuses it: creating a context
    costs about 10 us, a one-block `update` about 0.3 us and each further block about 0.02 us.
    (A context cannot be shared: `cryptography` releases the GIL in `update`, and a second
    thread in the same context gets "RuntimeError: Already borrowed".)

    Security: deterministic per (key, block); reversible with the key; no integrity.
    """

    def __init__(self, key: bytes):
        if len(key) not in (16, 24, 32):
            raise ValueError("AES key must be 16, 24 or 32 bytes")
        self._aes = algorithms.AES(key)
        self._local = threading.local()

    def encrypt_blocks(self, data: bytes) -> bytes:
        """AES-encrypt each 16-byte block of `data` independently, in one call.

        Args:
            data: a whole number of 16-byte blocks (possibly none).

        Returns:
            The encrypted blocks, in order, as many bytes as `data`.

        Raises:
            ValueError: `data` is not a whole number of blocks.
        """
        if len(data) % 16:
            raise ValueError("AES block input must be a multiple of 16 bytes")
        return self.unchecked_encryptor()(data)

    def unchecked_encryptor(self) -> Callable[[bytes], bytes]:
        """This thread's ECB `update` itself, for loops that encrypt one block per call.

        It saves `encrypt_blocks`' Python frame (about a quarter of a one-block round in FF1),
        but checks nothing: pass only whole blocks (such as `int.to_bytes(16, "big")`), since
        a partial block would be buffered and shift every later output of this thread; and
        call it only from the thread that asked for it.
        """
        update: Callable[[bytes], bytes]
        try:
            update = self._local.update
        except AttributeError:
            update = self._local.update = Cipher(self._aes, modes.ECB()).encryptor().update
        return update


def random_key(length: int = 32) -> bytes:
    """Fresh key bytes from the operating system's CSPRNG."""
    return os.urandom(length)


def scrypt(passphrase: bytes, salt: bytes, *, n: int, r: int, p: int, length: int = 32) -> bytes:
    """Derive `length` key bytes from a passphrase with scrypt (RFC 7914).

    Args:
        passphrase: the passphrase, already encoded (UTF-8, NFC).
        salt: a random salt stored beside what the key protects (16 bytes or more).
        n: CPU/memory cost, a power of two greater than 1.
        r: block size.
        p: parallelism.
        length: bytes to derive.

    Returns:
        The derived key.

    Security: deterministic per (passphrase, salt, parameters); not reversible; the cost
    parameters make each guess of the passphrase slow.
    """
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=length, n=n, r=r, p=p).derive(passphrase)


TINK_KEY_TYPES = {
    "deterministic_aead": ("type.googleapis.com/google.crypto.tink.AesSivKey", "aes_siv_pb2", "AesSivKey", 64),
    "aead": ("type.googleapis.com/google.crypto.tink.AesGcmKey", "aes_gcm_pb2", "AesGcmKey", 32),
}
"""Tink key type URL, proto module, proto message and key length per primitive veil can export."""


def tink_keyset(kind: str, keys: dict[int, bytes], primary: int, *, json_format: bool = False) -> bytes:
    """A serialized Tink keyset holding `keys` (by veil version) as RAW-prefix keys of `kind`.

    Each veil key version becomes one enabled Tink key whose key id is the version; the output
    prefix is RAW because veil's tokens carry their version in their text, not in the bytes.
    The keyset is built with `tink`'s own protos and parsed back by `tink` before it is
    returned, so what comes out is a keyset Tink itself accepts.

    Args:
        kind: `deterministic_aead` (AES-SIV, 64-byte keys) or `aead` (AES-GCM, 32-byte keys).
        keys: key bytes by veil key version.
        primary: the version Tink should encrypt with.
        json_format: Tink's JSON keyset format instead of its binary (protobuf) one.

    Raises:
        ImportError: the optional `tink` package is not installed.

    Security: the returned bytes are cleartext key material (Tink's "cleartext keyset");
    whoever holds them can decrypt what the keys protect.
    """
    import importlib

    import tink
    from tink import json_proto_keyset_format, proto_keyset_format, secret_key_access
    from tink.proto import tink_pb2

    type_url, module, message, length = TINK_KEY_TYPES[kind]
    key_proto = getattr(importlib.import_module(f"tink.proto.{module}"), message)
    if primary not in keys or any(len(key) != length for key in keys.values()):
        raise ValueError(f"a {kind} keyset needs {length}-byte keys including the primary")
    keyset = tink_pb2.Keyset(primary_key_id=primary)
    for version, key in sorted(keys.items()):
        keyset.key.add(
            key_data=tink_pb2.KeyData(
                type_url=type_url,
                value=key_proto(version=0, key_value=key).SerializeToString(),
                key_material_type=tink_pb2.KeyData.SYMMETRIC,
            ),
            status=tink_pb2.ENABLED,
            key_id=version,
            output_prefix_type=tink_pb2.RAW,
        )
    try:
        handle = proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)
    except tink.TinkError as error:  # a bug in the building above, never user input
        raise ValueError(f"tink refused the keyset ({type(error).__name__})") from None
    if json_format:
        return json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN).encode("utf-8")
    return proto_keyset_format.serialize(handle, secret_key_access.TOKEN)
