"""A keyed hash of many values at once, for comparing values without keeping them (verification).

`ValueHasher` maps each byte string of an Arrow array to 64 bits: AES-256 CBC-MAC over the
string's blocks (zero-padded), its byte length in the first block, so the encoding is
prefix-free and CBC-MAC is a PRF over it (Bellare, Kilian, Rogaway). The key is drawn at random
for one run (`new_run_key`) and never stored: the hashes can be compared with each other during
the run, and mean nothing after it. The work is vectorised: one AES call per block position
over every value of the array, so the cost is a few numpy passes per 16 bytes of text.
"""

import numpy as np
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view

from veil.keys._primitives import AesBlocks, _Unpicklable, random_key

BLOCK = 16
_PREFIX_MASKS = np.zeros((BLOCK + 1, 2), dtype=np.uint64)  # row r: the first r bytes of a block kept
for _kept in range(BLOCK + 1):
    _PREFIX_MASKS[_kept] = np.frombuffer(bytes([0xFF] * _kept + [0] * (BLOCK - _kept)), dtype=np.uint64)


def string_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start offsets, byte lengths, data bytes) of a string or binary array, without copying the data
    (a null cell's length is that of the bytes under it, usually none)."""
    count = len(array)
    wide = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    offsets_buffer, data_buffer = array.buffers()[1], array.buffers()[2]
    if offsets_buffer is None:
        return np.zeros(count, np.int64), np.zeros(count, np.int64), np.zeros(0, np.uint8)
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64 if wide else np.int32)
    bounds = offsets[array.offset : array.offset + count + 1].astype(np.int64)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return bounds[:-1], np.diff(bounds), data


def new_run_key() -> bytes:
    """A fresh 32-byte key for one run's `ValueHasher` (from the OS CSPRNG)."""
    return random_key(32)


class ValueHasher(_Unpicklable):
    """64-bit keyed hashes of the strings of Arrow arrays.

    Security: deterministic per (key, value); a PRF, so without the key a hash says nothing
    about its value (not even whether it is in a dictionary of guesses); 64 bits, so two of n
    distinct values collide with probability about n^2 / 2^65.
    """

    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ValueError("a value hash key is 32 bytes")
        self._aes = AesBlocks(key)

    def _encrypt(self, words: np.ndarray) -> np.ndarray:
        return np.frombuffer(self._aes.encrypt_blocks(words.tobytes()), dtype=np.uint64).reshape(-1, 2)

    def _length_blocks(self, lengths: np.ndarray) -> np.ndarray:
        """The CBC-MAC state after each value's first block (its byte length): one AES block per distinct length."""
        distinct, inverse = np.unique(lengths, return_inverse=True)
        first = np.zeros((len(distinct), 2), dtype=np.uint64)
        first[:, 0] = distinct.astype(np.uint64)
        return self._encrypt(first)[inverse.reshape(-1)]

    def hash_array(self, array: pa.Array) -> np.ndarray:
        """The uint64 hash of each string of `array` (string, large_string or binary; no nulls).

        Equal strings give equal hashes; the order is the array's. Values of one byte length (keys,
        tokens, card numbers) are chained as one zero-padded matrix, with no sorting or masking.
        """
        if array.null_count:
            raise ValueError("hash_array takes an array without nulls")
        count = len(array)
        if not count:
            return np.zeros(0, dtype=np.uint64)
        starts, lengths, data = string_buffers(array)
        low = int(starts[0])
        data, starts = data[low : int(starts[-1] + lengths[-1])], starts - low  # the bytes of these values only
        if (lengths == lengths[0]).all():
            return self._chain_uniform(data, count, int(lengths[0]))
        state = self._length_blocks(lengths)
        windows = sliding_window_view(np.concatenate([data, np.zeros(BLOCK, dtype=np.uint8)]), BLOCK)
        blocks = (lengths + BLOCK - 1) // BLOCK
        order = np.argsort(-blocks.astype(np.int32), kind="stable")  # most blocks first: a shrinking prefix
        lengths, starts, blocks, state = lengths[order], starts[order], blocks[order], state[order]
        # rows still going at block b: those with more than b blocks (a prefix, since sorted)
        going = np.searchsorted(-blocks, -np.arange(int(blocks[0]) + 2), side="left")
        for b in range(int(blocks[0])):
            rows, full = int(going[b]), int(going[b + 1])
            block = windows[starts[:rows] + BLOCK * b].view(np.uint64)
            block[full:rows] &= _PREFIX_MASKS[lengths[full:rows] - BLOCK * b]  # each row's last block: zero-padded
            state[:rows] = self._encrypt(state[:rows] ^ block)
        hashes = np.empty(count, dtype=np.uint64)
        hashes[order] = state[:, 0]
        return hashes

    def _chain_uniform(self, data: np.ndarray, count: int, length: int) -> np.ndarray:
        """`hash_array` of `count` values of `length` bytes each, `data` their bytes back to back."""
        state = np.repeat(self._length_blocks(np.array([length])), count, axis=0)
        width = -(-length // BLOCK) * BLOCK
        padded = np.zeros((count, width), dtype=np.uint8)
        padded[:, :length] = data.reshape(count, length)
        words = padded.view(np.uint64)  # (count, width / 8): two words a block
        for b in range(width // BLOCK):
            state = self._encrypt(state ^ words[:, 2 * b : 2 * b + 2])
        return state[:, 0].copy()
