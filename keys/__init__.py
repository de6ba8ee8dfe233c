"""veil's key floor: keysets, master keys and HKDF-derived working keys.

This package is the only place that touches key material or imports `cryptography`.
"""

from veil.keys.keyring import KeyRing, open_keyring
from veil.keys.keyset import KeyInfo, init_keyset, read_keyset, rotate_keyset

__all__ = ["KeyInfo", "KeyRing", "init_keyset", "open_keyring", "read_keyset", "rotate_keyset"]
