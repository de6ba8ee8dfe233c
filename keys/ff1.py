"""NIST SP 800-38G FF1 format-preserving encryption, built on `cryptography`'s AES.

FF1 (SP 800-38G, Algorithms 7 and 8) is a ten-round Feistel network over the two halves of
a numeral string. Each round's function is AES-CBC-MAC over a block P that is fixed by
(radix, length, tweak length) and a string Q = tweak || zeros || round || half, followed by
AES in counter style when more than 16 output bytes are needed.

Here the halves are kept as integers for the whole network, and everything that depends
only on (key, tweak, length) is computed once and cached in a `_Plan`: AES(K, P) and the
CBC-MAC blocks of the tweak, radix**u and radix**v, and the byte counts b and d. When the
round's last CBC-MAC block holds the whole half and 16 output bytes suffice (halves below
2**96, e.g. up to 56 digits), a round is one XOR and one AES block per value. The batch
methods run many values of one length in lock-step, so each round is then ONE AES call for
the whole batch (longer values: one call per CBC-MAC block, plus one for the extra output).

The domain rule is that of SP 800-38G Rev.1: radix**length >= 1,000,000 (`MIN_DOMAIN`).
Error messages never contain the value, the tweak or the key.
"""

import sys
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from veil.keys._primitives import AesBlocks, _Unpicklable

__all__ = [
    "ALPHABETS",
    "FF1",
    "MAX_LEN",
    "MAX_TWEAK_BYTES",
    "MIN_DOMAIN",
    "FF1Alphabet",
    "FF1Error",
    "FF1Layout",
]

MIN_DOMAIN = 1_000_000
"""SP 800-38G Rev.1: radix**length must be at least one million for every accepted length."""

MIN_LEN = 2
"""SP 800-38G: a value has at least two numerals (so that both Feistel halves are non-empty)."""

MAX_LEN = 4096
"""Longest value accepted, in numerals (FF1's maxlen; the standard allows up to 2**32 - 1).

Keeps each half under Python's 4300-digit int/str conversion limit.
"""

MAX_TWEAK_BYTES = 256
"""Longest tweak accepted (FF1's maxTlen; a tweak names a context, it need not be long)."""

MIN_RADIX, MAX_RADIX = 2, 2**16
ROUNDS = 10

ALPHABETS: Mapping[str, str] = MappingProxyType(
    {
        "digits": "0123456789",
        "lower": "abcdefghijklmnopqrstuvwxyz",
        "upper": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "alnum": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    }
)
"""Named alphabets. A character's numeral is its index, so the order is part of the format:
`alnum` is digits, then upper case, then lower case (radix 62)."""

_PLAN_CACHE_SIZE = 256  # (tweak, length) plans kept per FF1 instance
_M64 = (1 << 64) - 1
_M128 = (1 << 128) - 1
# The batched fast path packs blocks as pairs of unsigned 64-bit words in an array.
_U64_WORDS = array("Q").itemsize == 8
_SWAP = sys.byteorder == "little"
_STANDARD_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"  # what int(text, radix) reads
_FORMAT_CODES = {2: "b", 8: "o", 10: "d", 16: "x"}  # radixes that format() writes
_CHUNK_TABLE_SIZE = 4096  # largest radix**k table of k-numeral strings used to format


class FF1Error(ValueError):
    """A value, key, radix, alphabet or tweak FF1 cannot use. Never contains the value."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything FF1 needs for one (key, tweak, length), computed once.

    Attributes:
        u: numerals in the left half (n // 2).
        v: numerals in the right half (n - u).
        b: bytes of a half in Q (ceil(ceil(v * log2(radix)) / 8)).
        d: bytes of round output used (4 * ceil(b / 4) + 4).
        mod_u: radix**u.
        mod_v: radix**v.
        chain: CBC-MAC state after the blocks that are the same in every round (P and the
            leading tweak blocks), as an int.
        tail_blocks: how many CBC-MAC blocks each round still has to encrypt per value.
        tails: per round, the remaining blocks as one int, with zeros where the half goes.
        round_keys: per round, `chain ^ tail` (used when `tail_blocks == 1`).
        fast: one tail block, a half fits in 64 bits and d <= 16, so the batched path can
            pack and unpack blocks as arrays of 64-bit words.
    """

    u: int
    v: int
    b: int
    d: int
    mod_u: int
    mod_v: int
    chain: int
    tail_blocks: int
    tails: tuple[int, ...]
    round_keys: tuple[int, ...]
    fast: bool


def _ints(blocks: bytes) -> list[int]:
    """The 16-byte blocks of `blocks` as big-endian ints."""
    view, from_bytes = memoryview(blocks), int.from_bytes
    return [from_bytes(view[o : o + 16], "big") for o in range(0, len(blocks), 16)]


def _words(blocks: bytes) -> "array[int]":  # quoted: array is not subscriptable before 3.12
    """`blocks` as big-endian unsigned 64-bit words (two per block)."""
    words = array("Q", blocks)
    if _SWAP:
        words.byteswap()
    return words


class FF1(_Unpicklable):
    """FF1 (NIST SP 800-38G) over numeral strings of one radix, under one AES key.

    Values are sequences of numerals (ints in [0, radix)). Each value must have
    2 <= length <= `MAX_LEN` numerals and radix**length >= `MIN_DOMAIN`; the output has the
    same length. The tweak is public context (for example the purpose and field), at most
    `MAX_TWEAK_BYTES` bytes; a different tweak gives an unrelated permutation.

    Security: deterministic per (key, tweak, value), so equal values give equal outputs
    (joinable, not semantically secure); reversible with the key; NO integrity or tamper
    detection: every string of the right length and radix decrypts to some value. Outputs
    under different keys or tweaks are unlinkable. Small domains are weak even above the
    floor: prefer long values. Refuses pickling (holds key material).
    """

    def __init__(self, key: bytes, radix: int):
        """Build FF1 for `radix` under an AES-128/192/256 `key`.

        Args:
            key: 16, 24 or 32 bytes.
            radix: numerals per position, 2 <= radix <= 2**16.

        Raises:
            FF1Error: a key of another size or a radix out of range.
        """
        if not isinstance(key, bytes) or len(key) not in (16, 24, 32):
            raise FF1Error("FF1 key must be 16, 24 or 32 bytes")
        if isinstance(radix, bool) or not isinstance(radix, int) or not MIN_RADIX <= radix <= MAX_RADIX:
            raise FF1Error(f"FF1 radix must be an integer from {MIN_RADIX} to {MAX_RADIX}")
        self._aes = AesBlocks(key)
        self._radix = radix
        self._plans: dict[tuple[bytes, int], _Plan] = {}

    def __repr__(self) -> str:
        return f"FF1(radix={self._radix})"

    @property
    def radix(self) -> int:
        """Numerals per position."""
        return self._radix

    # --- public API ---

    def encrypt(self, numerals: Sequence[int], tweak: bytes) -> list[int]:
        """Encrypt one numeral string.

        Args:
            numerals: the value, each numeral in [0, radix).
            tweak: public context bytes, at most `MAX_TWEAK_BYTES`.

        Returns:
            The ciphertext numerals, as many as `numerals`.

        Raises:
            FF1Error: a bad length, domain, numeral or tweak length (the message omits the value).
        """
        return self._numerals_one(numerals, tweak, decrypt=False)

    def decrypt(self, numerals: Sequence[int], tweak: bytes) -> list[int]:
        """Decrypt one numeral string made by `encrypt` with the same key and tweak.

        Args:
            numerals: the ciphertext, each numeral in [0, radix).
            tweak: the tweak it was encrypted with.

        Returns:
            The plaintext numerals. A wrong key or tweak gives a wrong value, not an error.

        Raises:
            FF1Error: a bad length, domain, numeral or tweak length (the message omits the value).
        """
        return self._numerals_one(numerals, tweak, decrypt=True)

    def encrypt_many(self, values: Sequence[Sequence[int]], tweak: bytes) -> list[list[int]]:
        """Encrypt many numeral strings under one tweak; each round is one AES call per length.

        Args:
            values: numeral strings, of any mix of valid lengths.
            tweak: public context bytes, at most `MAX_TWEAK_BYTES`.

        Returns:
            `[self.encrypt(v, tweak) for v in values]`, computed in lock-step.

        Raises:
            FF1Error: any value is invalid (nothing is returned; the message omits the value).
        """
        return self._numerals_many(values, tweak, decrypt=False)

    def decrypt_many(self, values: Sequence[Sequence[int]], tweak: bytes) -> list[list[int]]:
        """Decrypt many numeral strings under one tweak, in lock-step like `encrypt_many`.

        Args:
            values: ciphertext numeral strings.
            tweak: the tweak they were encrypted with.

        Returns:
            `[self.decrypt(v, tweak) for v in values]`.

        Raises:
            FF1Error: any value is invalid (nothing is returned; the message omits the value).
        """
        return self._numerals_many(values, tweak, decrypt=True)

    # --- numerals <-> integers ---

    def _numerals_one(self, numerals: Sequence[int], tweak: bytes, *, decrypt: bool) -> list[int]:
        plan = self._plan(tweak, len(numerals))
        u = plan.u
        left, right = self._crypt_pair(plan, self._num(numerals[:u]), self._num(numerals[u:]), decrypt=decrypt)
        return self._str(left, u) + self._str(right, plan.v)

    def _numerals_many(self, values: Sequence[Sequence[int]], tweak: bytes, *, decrypt: bool) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in values]
        for n, positions in _group_by_length(values).items():
            plan = self._plan(tweak, n)
            lefts = [self._num(values[p][: plan.u]) for p in positions]
            rights = [self._num(values[p][plan.u :]) for p in positions]
            lefts, rights = self._crypt(plan, lefts, rights, decrypt=decrypt)
            for p, left, right in zip(positions, lefts, rights):
                out[p] = self._str(left, plan.u) + self._str(right, plan.v)
        return out

    def _num(self, numerals: Sequence[int]) -> int:
        """NUM_radix: the numerals as one integer, most significant first."""
        radix, x = self._radix, 0
        for numeral in numerals:
            if isinstance(numeral, bool) or not isinstance(numeral, int) or not 0 <= numeral < radix:
                raise FF1Error("FF1 value has a numeral outside [0, radix)")
            x = x * radix + numeral
        return x

    def _str(self, x: int, m: int) -> list[int]:
        """STR^m_radix: `x` as exactly `m` numerals."""
        radix, out = self._radix, [0] * m
        for position in range(m - 1, -1, -1):
            x, out[position] = divmod(x, radix)
        return out

    # --- the cipher on integer halves ---

    def _plan(self, tweak: bytes, n: int) -> _Plan:
        """The cached `_Plan` for (tweak, n), checking the length, domain and tweak."""
        if not isinstance(tweak, bytes):
            raise TypeError("FF1 tweak must be bytes")
        plan = self._plans.get((tweak, n))
        if plan is None:
            plan = self._make_plan(tweak, n)
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                del self._plans[next(iter(self._plans))]  # oldest first; tweaks may vary per call
            self._plans[(tweak, n)] = plan
        return plan

    def _make_plan(self, tweak: bytes, n: int) -> _Plan:
        if len(tweak) > MAX_TWEAK_BYTES:
            raise FF1Error(f"FF1 tweak is longer than {MAX_TWEAK_BYTES} bytes")
        if n < MIN_LEN:
            raise FF1Error("FF1 value is too short: it needs at least two characters")
        if n > MAX_LEN:
            raise FF1Error(f"FF1 value is longer than {MAX_LEN} characters")
        radix = self._radix
        if radix**n < MIN_DOMAIN:
            raise FF1Error(
                "FF1 value is too short for its alphabet: radix**length must be at least one million (SP 800-38G Rev.1)"
            )
        u, v, t = n // 2, n - n // 2, len(tweak)
        mod_u, mod_v = radix**u, radix**v
        # b = ceil(ceil(v * log2(radix)) / 8), exactly: ceil(log2(x)) is (x - 1).bit_length().
        b = ((mod_v - 1).bit_length() + 7) // 8
        d = 4 * ((b + 3) // 4) + 4
        p = bytes([1, 2, 1]) + radix.to_bytes(3, "big") + bytes([10, u % 256]) + n.to_bytes(4, "big")
        p += t.to_bytes(4, "big")
        # P || Q = P || T || 0^pad || [round] || [NUM(half)]^b; only the last two parts vary.
        head = p + tweak + bytes((-t - b - 1) % 16)
        fixed = len(head) // 16 * 16
        chain = 0
        for offset in range(0, fixed, 16):
            chain = self._aes_int(chain ^ int.from_bytes(head[offset : offset + 16], "big"))
        rest = head[fixed:]
        tail_blocks = (len(rest) + 1 + b) // 16
        tails = tuple(int.from_bytes(rest + bytes([i]) + bytes(b), "big") for i in range(ROUNDS))
        return _Plan(
            u=u,
            v=v,
            b=b,
            d=d,
            mod_u=mod_u,
            mod_v=mod_v,
            chain=chain,
            tail_blocks=tail_blocks,
            tails=tails,
            round_keys=tuple(chain ^ tail for tail in tails) if tail_blocks == 1 else (),
            fast=_U64_WORDS and tail_blocks == 1 and b <= 8,
        )

    def _aes_int(self, block: int) -> int:
        return int.from_bytes(self._aes.encrypt_blocks(block.to_bytes(16, "big")), "big")

    def _crypt_pair(self, plan: _Plan, left: int, right: int, *, decrypt: bool) -> tuple[int, int]:
        """The ten Feistel rounds on one value's integer halves (NUM(A), NUM(B))."""
        if not plan.fast:
            (left,), (right,) = self._crypt(plan, [left], [right], decrypt=decrypt)
            return left, right
        # One AES block per round, on plain ints: cheaper than building arrays for one value.
        # `encrypt_block` only ever gets `to_bytes(16)`, one whole block, so it may skip checks.
        encrypt_block, from_bytes = self._aes.unchecked_encryptor(), int.from_bytes
        keys, shift, mods = plan.round_keys, 128 - 8 * plan.d, (plan.mod_u, plan.mod_v)
        if not decrypt:  # Algorithm 7
            for i in range(ROUNDS):
                y = from_bytes(encrypt_block((keys[i] ^ right).to_bytes(16, "big")), "big") >> shift
                left, right = right, (left + y) % mods[i & 1]
        else:  # Algorithm 8
            for i in range(ROUNDS - 1, -1, -1):
                y = from_bytes(encrypt_block((keys[i] ^ left).to_bytes(16, "big")), "big") >> shift
                left, right = (right - y) % mods[i & 1], left
        return left, right

    def _crypt(self, plan: _Plan, lefts: list[int], rights: list[int], *, decrypt: bool) -> tuple[list[int], list[int]]:
        """The ten Feistel rounds on the integer halves of many same-length values, in lock-step."""
        mods = (plan.mod_u, plan.mod_v)
        if not decrypt:  # Algorithm 7
            for i in range(ROUNDS):
                modulus = mods[i & 1]
                ys = self._round_function(plan, i, rights)
                lefts, rights = rights, [(a + y) % modulus for a, y in zip(lefts, ys)]
        else:  # Algorithm 8
            for i in range(ROUNDS - 1, -1, -1):
                modulus = mods[i & 1]
                ys = self._round_function(plan, i, lefts)
                lefts, rights = [(b - y) % modulus for b, y in zip(rights, ys)], lefts
        return lefts, rights

    def _round_function(self, plan: _Plan, i: int, halves: list[int]) -> Sequence[int]:
        """y = NUM(S) of round `i` for each half (steps 6.i to 6.iv); one AES call per CBC-MAC step."""
        if plan.fast:
            # Block = (key >> 64) || (key & M64) ^ half, as big-endian 64-bit word pairs.
            key = plan.round_keys[i]
            words = array("Q", [key >> 64]) * (2 * len(halves))
            low = key & _M64
            words[1::2] = array("Q", [low ^ x for x in halves])
            if _SWAP:
                words.byteswap()
            out = _words(self._aes.encrypt_blocks(words.tobytes()))
            if plan.d == 8:
                return out[::2]
            return [((hi << 64) | lo) >> 32 for hi, lo in zip(out[::2], out[1::2])]  # d == 12

        # General path: several CBC-MAC blocks per value and/or more than 16 output bytes.
        k, tail = plan.tail_blocks, plan.tails[i]
        blocks = [tail | x for x in halves]
        rs = [plan.chain] * len(halves)
        for j in range(k - 1, -1, -1):  # most significant block first
            shift = 128 * j
            data = b"".join([(r ^ ((block >> shift) & _M128)).to_bytes(16, "big") for r, block in zip(rs, blocks)])
            rs = _ints(self._aes.encrypt_blocks(data))
        d = plan.d
        if d <= 16:
            return [r >> (128 - 8 * d) for r in rs]
        # S = R || AES(R ^ [1]^16) || AES(R ^ [2]^16) || ..., first d bytes.
        extra = (d + 15) // 16 - 1
        expanded = self._aes.encrypt_blocks(
            b"".join([(r ^ j).to_bytes(16, "big") for r in rs for j in range(1, extra + 1)])
        )
        width, more, from_bytes = 16 * extra, d - 16, int.from_bytes
        return [(r << (8 * more)) | from_bytes(expanded[p * width : p * width + more], "big") for p, r in enumerate(rs)]


def _group_by_length(values: Sequence[Sequence[object]]) -> dict[int, list[int]]:
    """Positions of `values`, grouped by the values' lengths."""
    groups: dict[int, list[int]] = {}
    for position, value in enumerate(values):
        groups.setdefault(len(value), []).append(position)
    return groups


class FF1Alphabet(_Unpicklable):
    """FF1 over text in one alphabet: each character is the numeral of its index.

    `encrypt("4111111111111111", tweak)` under `ALPHABETS["digits"]` gives another 16-digit
    string. Every character of a value must be in the alphabet; the radix is its size.

    Security: as `FF1`: deterministic per (key, tweak, value); reversible with the key; NO
    integrity or tamper detection; unlinkable across keys and tweaks. Refuses pickling.
    """

    def __init__(self, key: bytes, alphabet: str):
        """Build FF1 over `alphabet` under an AES-128/192/256 `key`.

        Args:
            key: 16, 24 or 32 bytes.
            alphabet: the characters, in numeral order, all different; 2 to 2**16 of them.
                Named alphabets are in `ALPHABETS` (pass `ALPHABETS[name]`).

        Raises:
            FF1Error: a repeated character, an alphabet too small or too large, or a bad key.
        """
        if not isinstance(alphabet, str) or len(set(alphabet)) != len(alphabet):
            raise FF1Error("FF1 alphabet must be a string of distinct characters")
        radix = len(alphabet)
        if not MIN_RADIX <= radix <= MAX_RADIX:
            raise FF1Error(f"FF1 alphabet must have {MIN_RADIX} to {MAX_RADIX} characters")
        self._ff1 = FF1(key, radix)
        self._alphabet = alphabet
        self._chars = frozenset(alphabet)
        standard = _STANDARD_DIGITS[:radix]
        # Parsing: int(text, radix) reads 0-9a-z in any case, so alphabets of up to 36 characters
        # are mapped onto those (unless they already are them); larger ones fold by index.
        self._int_parse = radix <= len(_STANDARD_DIGITS)
        self._to_standard: dict[int, int] | None = None
        if self._int_parse and not (alphabet.isascii() and alphabet.lower() == standard):
            self._to_standard = str.maketrans(alphabet, standard)
        self._index = {} if self._int_parse else {char: i for i, char in enumerate(alphabet)}
        # Formatting: format() writes radix 2/8/10/16 (then mapped onto the alphabet); other
        # radixes divmod by radix**chunk and look the chunk's characters up in a table.
        self._format_code = _FORMAT_CODES.get(radix)
        self._from_standard: dict[int, int] | None = None
        if self._format_code is not None and alphabet != standard:
            self._from_standard = str.maketrans(standard, alphabet)
        self._chunk, self._chunk_table = 1, list(alphabet)
        if self._format_code is None:
            while radix ** (self._chunk + 1) <= _CHUNK_TABLE_SIZE:
                self._chunk += 1
            self._chunk_table = [
                "".join(alphabet[(i // radix**e) % radix] for e in range(self._chunk - 1, -1, -1))
                for i in range(radix**self._chunk)
            ]

    def __repr__(self) -> str:
        return f"FF1Alphabet(radix={self._ff1.radix})"

    @property
    def alphabet(self) -> str:
        """The characters, in numeral order."""
        return self._alphabet

    def encrypt(self, text: str, tweak: bytes) -> str:
        """Encrypt one value: a string of the same length over the same alphabet.

        Args:
            text: the value; every character in the alphabet, radix**len(text) >= `MIN_DOMAIN`.
            tweak: public context bytes, at most `MAX_TWEAK_BYTES`.

        Returns:
            The ciphertext text.

        Raises:
            FF1Error: a character outside the alphabet, a bad length or tweak (never echoes the value).
        """
        return self._crypt_one(text, tweak, decrypt=False)

    def decrypt(self, text: str, tweak: bytes) -> str:
        """Decrypt one value made by `encrypt` with the same key, alphabet and tweak.

        Args:
            text: the ciphertext.
            tweak: the tweak it was encrypted with.

        Returns:
            The plaintext. A wrong key or tweak gives a wrong value, not an error.

        Raises:
            FF1Error: a character outside the alphabet, a bad length or tweak (never echoes the value).
        """
        return self._crypt_one(text, tweak, decrypt=True)

    def encrypt_many(self, texts: Sequence[str], tweak: bytes) -> list[str]:
        """Encrypt many values under one tweak; each round is one AES call per distinct length.

        Args:
            texts: the values, of any mix of valid lengths.
            tweak: public context bytes, at most `MAX_TWEAK_BYTES`.

        Returns:
            `[self.encrypt(t, tweak) for t in texts]`, computed in lock-step.

        Raises:
            FF1Error: any value is invalid (nothing is returned; the message omits the value).
        """
        return self._crypt_many(texts, tweak, decrypt=False)

    def decrypt_many(self, texts: Sequence[str], tweak: bytes) -> list[str]:
        """Decrypt many values under one tweak, in lock-step like `encrypt_many`.

        Args:
            texts: the ciphertexts.
            tweak: the tweak they were encrypted with.

        Returns:
            `[self.decrypt(t, tweak) for t in texts]`.

        Raises:
            FF1Error: any value is invalid (nothing is returned; the message omits the value).
        """
        return self._crypt_many(texts, tweak, decrypt=True)

    # --- internals ---

    def _crypt_one(self, text: str, tweak: bytes, *, decrypt: bool) -> str:
        self._check(text)
        plan = self._ff1._plan(tweak, len(text))
        left, right = divmod(self._parse(text), plan.mod_v)  # NUM(A || B) = NUM(A) * radix**v + NUM(B)
        left, right = self._ff1._crypt_pair(plan, left, right, decrypt=decrypt)
        return self._format(left * plan.mod_v + right, len(text))

    def _crypt_many(self, texts: Sequence[str], tweak: bytes, *, decrypt: bool) -> list[str]:
        try:
            self._check("".join(texts))  # one pass over the whole batch
        except TypeError:
            raise TypeError("FF1Alphabet values must be str") from None
        if len({len(text) for text in texts}) <= 1:  # the usual case: one length, no regrouping
            return self._crypt_group(list(texts), tweak, decrypt=decrypt)
        out = [""] * len(texts)
        for positions in _group_by_length(texts).values():
            group = self._crypt_group([texts[p] for p in positions], tweak, decrypt=decrypt)
            for position, text in zip(positions, group):
                out[position] = text
        return out

    def _crypt_group(self, texts: list[str], tweak: bytes, *, decrypt: bool) -> list[str]:
        """Encrypt or decrypt checked values that all have the same length."""
        if not texts:
            return []
        plan = self._ff1._plan(tweak, len(texts[0]))
        lefts, rights = self._split(texts, plan)
        lefts, rights = self._ff1._crypt(plan, lefts, rights, decrypt=decrypt)
        return self._join(lefts, rights, plan)

    def _check(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError("FF1Alphabet values must be str")
        if not self._chars.issuperset(text):
            raise FF1Error("FF1 value has a character outside its alphabet")

    def _split(self, texts: list[str], plan: _Plan) -> tuple[list[int], list[int]]:
        """NUM_radix of the left and right halves of checked same-length values."""
        if self._int_parse:  # inline `_parse`: int() reads the whole value at C speed
            if self._to_standard is not None:
                texts = [text.translate(self._to_standard) for text in texts]
            radix = self._ff1.radix
            wholes = [int(text, radix) for text in texts]
        else:
            wholes = [self._parse(text) for text in texts]
        mod_v = plan.mod_v  # NUM(A || B) = NUM(A) * radix**v + NUM(B)
        return [x // mod_v for x in wholes], [x % mod_v for x in wholes]

    def _join(self, lefts: list[int], rights: list[int], plan: _Plan) -> list[str]:
        """STR^u(left) || STR^v(right) as text in the alphabet, for each pair."""
        n, mod_v = plan.u + plan.v, plan.mod_v
        if self._format_code is not None:  # inline `_format`
            spec = f"0{n}{self._format_code}"
            texts = [format(a * mod_v + b, spec) for a, b in zip(lefts, rights)]
            if self._from_standard is not None:
                texts = [text.translate(self._from_standard) for text in texts]
            return texts
        return [self._chunks(a * mod_v + b, n) for a, b in zip(lefts, rights)]

    def _parse(self, text: str) -> int:
        """NUM_radix of a checked string."""
        if self._int_parse:
            return int(text if self._to_standard is None else text.translate(self._to_standard), self._ff1.radix)
        radix, index, x = self._ff1.radix, self._index, 0
        for char in text:
            x = x * radix + index[char]
        return x

    def _format(self, x: int, m: int) -> str:
        """STR^m_radix of `x` as text in the alphabet."""
        if self._format_code is None:
            return self._chunks(x, m)
        text = format(x, f"0{m}{self._format_code}")
        return text if self._from_standard is None else text.translate(self._from_standard)

    def _chunks(self, x: int, m: int) -> str:
        """STR^m_radix(x) in the alphabet, `self._chunk` numerals per divmod."""
        chunk, table, parts = self._chunk, self._chunk_table, []
        step = self._ff1.radix**chunk
        for _ in range(m // chunk):
            x, r = divmod(x, step)
            parts.append(table[r])
        rest = m % chunk
        if rest:
            parts.append(table[x][chunk - rest :])
        return "".join(reversed(parts))


_ARRAYS_FROM = 8  # values (of one layout, or for FF1 at all) from which arrays beat a loop
_UTF32 = "utf-32-le"  # one code unit per character, so text positions are array positions
_OTHER = 0xFFFFFFFF  # above any code point: marks an alphabet position in a layout


class FF1Layout:
    """FF1 over the alphabet characters of a text that lie between kept ones; the rest stays in place.

    `4111-1111-1111-1111` under digits, keeping the last 4, encrypts the twelve digits before
    the kept four and leaves the dashes where they are. A text with fewer encryptable
    characters than the domain rule allows (or more than `MAX_LEN`) is refused with the
    exception `refusal()` makes, never passed through.

    The batch method groups texts by layout (length, where the alphabet characters are and what
    the others are): texts that share one are cut and put back together as numpy arrays, and
    every value goes through one batched FF1 call.
    """

    def __init__(
        self,
        cipher: FF1Alphabet,
        tweak: bytes,
        *,
        keep_first: int = 0,
        keep_last: int = 0,
        decrypt: bool = False,
        refusal: Callable[[], Exception] = lambda: FF1Error("FF1 value has too few characters to encrypt"),
    ):
        """Bind the layout rule to a cipher.

        Args:
            cipher: FF1 over the alphabet.
            tweak: the tweak every value uses.
            keep_first: leading alphabet characters left in clear.
            keep_last: trailing alphabet characters left in clear.
            decrypt: run the inverse (texts are tokens).
            refusal: makes the exception raised (or reported) for a text that cannot be crypted.
        """
        self._tweak, self._first, self._last, self._refusal = tweak, keep_first, keep_last, refusal
        self._members = frozenset(cipher.alphabet)
        self._crypt, self._crypt_many = (
            (cipher.decrypt, cipher.decrypt_many) if decrypt else (cipher.encrypt, cipher.encrypt_many)
        )
        self._decrypt = decrypt
        radix = len(cipher.alphabet)
        self._shortest = next(n for n in range(1, 64) if radix**n >= MIN_DOMAIN)
        codes = [ord(ch) for ch in cipher.alphabet]
        self._in_alphabet = np.zeros(max(codes) + 2, dtype=bool)  # code point -> member; last: others
        self._in_alphabet[codes] = True

    def __repr__(self) -> str:
        return f"FF1Layout(keep_first={self._first}, keep_last={self._last}, decrypt={self._decrypt})"

    def _middle_of(self, positions):
        """The alphabet positions FF1 crypts (those between the kept ones); None if too few or too many."""
        middle = positions[self._first : max(len(positions) - self._last, 0)]
        return middle if self._shortest <= len(middle) <= MAX_LEN else None

    def _locate(self, text: str) -> list[int] | None:
        """The positions of a text that FF1 crypts; None for a text it cannot protect."""
        return self._middle_of([i for i, ch in enumerate(text) if ch in self._members])

    @staticmethod
    def _merge(text: str, middle: list[int], secret: str) -> str:
        out = list(text)
        for index, ch in zip(middle, secret):
            out[index] = ch
        return "".join(out)

    def crypt(self, text: str) -> str:
        """One text with its middle alphabet characters crypted; raises `refusal()` if it has too few."""
        middle = self._locate(text)
        if middle is None:
            raise self._refusal()
        return self._merge(text, middle, self._crypt("".join(text[i] for i in middle), self._tweak))

    def _layouts(self, texts: list[str]):
        """Group the texts by layout.

        Returns:
            (blocks, singles, refused): blocks are (rows, characters as a (rows, length)
            uint32 array, middle positions) for layouts shared by `_ARRAYS_FROM` values or more;
            singles are the rows left to do one by one; refused are rows of blocks whose
            layout has too few (or too many) characters to crypt.
        """
        blocks, singles, refused = [], [], []
        if len(texts) < _ARRAYS_FROM:
            return blocks, list(range(len(texts))), refused
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        distinct = np.unique(lengths)
        in_alphabet = self._in_alphabet
        for length in distinct.tolist():
            rows = np.arange(len(texts)) if len(distinct) == 1 else np.flatnonzero(lengths == length)
            if len(rows) < _ARRAYS_FROM or length == 0:
                singles.extend(rows.tolist())
                continue
            group = texts if len(distinct) == 1 else [texts[i] for i in rows.tolist()]
            chars = np.frombuffer("".join(group).encode(_UTF32, "surrogatepass"), dtype="<u4").reshape(-1, length)
            alphabetic = in_alphabet[np.minimum(chars, len(in_alphabet) - 1)]
            shapes = np.where(alphabetic, np.uint32(_OTHER), chars)
            if (shapes == shapes[0]).all():
                found = [(rows, chars, shapes[0])]
            else:
                unique, inverse, counts = np.unique(shapes, axis=0, return_inverse=True, return_counts=True)
                inverse = inverse.reshape(-1)
                singles.extend(rows[counts[inverse] < _ARRAYS_FROM].tolist())
                found = []
                for shape in np.flatnonzero(counts >= _ARRAYS_FROM).tolist():
                    same = np.flatnonzero(inverse == shape)
                    found.append((rows[same], chars[same], unique[shape]))
            for block_rows, block_chars, shape in found:
                middle = self._middle_of(np.flatnonzero(shape == _OTHER))
                if middle is None:
                    refused.extend(block_rows.tolist())
                else:
                    blocks.append((block_rows.tolist(), block_chars, middle))
        return blocks, singles, refused

    def crypt_texts(self, texts: list[str]) -> tuple[list, list[int], Exception | None]:
        """`crypt` over many texts, with one batched FF1 call.

        Returns:
            (outputs, refused positions (their output is None), the first refusal). When
            decrypting, a refused text raises `refusal()` instead: a column holding a value that
            is no token is not guessed at.
        """
        blocks, singles, failed = self._layouts(texts)
        middles, located = [], []
        for _, chars, middle in blocks:
            width, joined = len(middle), chars[:, middle].tobytes().decode(_UTF32, "surrogatepass")
            middles += [joined[o : o + width] for o in range(0, len(joined), width)]
        for row in singles:
            text = texts[row]
            middle = self._locate(text)
            if middle is None:
                failed.append(row)
                continue
            located.append((row, text, middle))
            middles.append("".join(text[i] for i in middle))
        if failed and self._decrypt:
            raise self._refusal()
        tweak = self._tweak
        # A few values are cheaper one by one than in FF1's lock-step arrays.
        secrets = (
            self._crypt_many(middles, tweak)
            if len(middles) >= _ARRAYS_FROM
            else [self._crypt(m, tweak) for m in middles]
        )
        out: list = [None] * len(texts)
        done = 0
        for rows, chars, middle in blocks:
            replaced = chars.copy()
            joined = "".join(secrets[done : done + len(rows)]).encode(_UTF32, "surrogatepass")
            replaced[:, middle] = np.frombuffer(joined, dtype="<u4").reshape(len(rows), -1)
            done += len(rows)
            length, whole = chars.shape[1], replaced.tobytes().decode(_UTF32, "surrogatepass")
            for row, offset in zip(rows, range(0, len(whole), length)):
                out[row] = whole[offset : offset + length]
        for (row, text, middle), secret in zip(located, secrets[done:]):
            out[row] = self._merge(text, middle, secret)
        failed.sort()
        return out, failed, (self._refusal() if failed else None)
