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
import pyarrow.compute as pc
from numpy.lib.stride_tricks import sliding_window_view

from veil.keys._primitives import AesBlocks, _Unpicklable, random_key

BLOCK = 16
_PREFIX_MASKS = np.zeros((BLOCK + 1, 2), dtype=np.uint64)  # row r: the first r bytes of a block kept
for _kept in range(BLOCK + 1):
    _PREFIX_MASKS[_kept] = np.frombuffer(bytes([0xFF] * _kept + [0] * (BLOCK - _kept)), dtype=np.uint64)


def string_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start offsets, byte lengths, data bytes) of a string or binary array, without copying the data."""
    count = len(array)
    lengths = pc.binary_length(array).to_numpy(zero_copy_only=False)
    wide = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64 if wide else np.int32)
    starts = offsets[array.offset : array.offset + count].astype(np.int64)
    data_buffer = array.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return starts, np.nan_to_num(lengths).astype(np.int64), data


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

    def hash_array(self, array: pa.Array) -> np.ndarray:
        """The uint64 hash of each string of `array` (string, large_string or binary; no nulls).

        Equal strings give equal hashes; the order is the array's.
        """
        if array.null_count:
            raise ValueError("hash_array takes an array without nulls")
        count = len(array)
        if not count:
            return np.zeros(0, dtype=np.uint64)
        starts, lengths, data = string_buffers(array)
        windows = sliding_window_view(np.concatenate([data, np.zeros(BLOCK, dtype=np.uint8)]), BLOCK)
        blocks = (lengths + BLOCK - 1) // BLOCK
        order = np.argsort(-blocks.astype(np.int32), kind="stable")  # most blocks first: a shrinking prefix
        lengths, starts, blocks = lengths[order], starts[order], blocks[order]
        state = np.zeros((count, 2), dtype=np.uint64)
        state[:, 0] = lengths.astype(np.uint64)
        state = self._encrypt(state).copy()
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
