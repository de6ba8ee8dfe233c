"""Test helpers: a KeyRing from fixed, public root keys. Never use outside tests."""

from veil.keys.keyring import KeyRing


def fake_keyring(versions: int = 1, primary: int | None = None) -> KeyRing:
    """A KeyRing whose root key N is the 32 bytes `bytes([N]) * 32` (publicly known: tests only)."""
    roots = {v: bytes([v]) * 32 for v in range(1, versions + 1)}
    return KeyRing(roots, primary or versions)
