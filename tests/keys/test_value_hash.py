"""The keyed value hash verification joins on: equal strings alike, different ones apart, any layout."""

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.keys.value_hash import ValueHasher, new_run_key

KEY = bytes(range(32))


def reference(key: bytes, text: str) -> int:
    """CBC-MAC the plain way: AES(length block), then each zero-padded 16-byte block chained in."""
    data = text.encode("utf-8")
    aes = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    state = aes.update(len(data).to_bytes(8, "little") + bytes(8))
    for start in range(0, len(data), 16):
        block = data[start : start + 16].ljust(16, b"\0")
        state = aes.update(bytes(a ^ b for a, b in zip(state, block)))
    return int.from_bytes(state[:8], "little")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=70), max_size=40))
def test_equals_the_plain_cbc_mac_of_each_value(texts):
    array = pa.array(texts, pa.string())
    assert ValueHasher(KEY).hash_array(array).tolist() == [reference(KEY, t) for t in texts]


def test_slices_and_large_strings_hash_like_the_values():
    texts = ["abcd", "abcd", "abcd\x00", "x" * 16, "x" * 17, "", "é" * 20]
    hasher = ValueHasher(KEY)
    whole = hasher.hash_array(pa.array(texts)).tolist()
    assert whole[0] == whole[1] and len(set(whole)) == len(texts) - 1
    assert hasher.hash_array(pa.array(texts).slice(2, 3)).tolist() == whole[2:5]
    assert hasher.hash_array(pa.array(texts, pa.large_string()).slice(3)).tolist() == whole[3:]


def test_keys_separate_and_runs_draw_fresh_keys():
    array = pa.array(["jane@example.com"])
    assert ValueHasher(KEY).hash_array(array) != ValueHasher(bytes(32)).hash_array(array)
    assert new_run_key() != new_run_key() and len(new_run_key()) == 32


def test_refuses_nulls_short_keys_and_pickling():
    import pickle

    with pytest.raises(ValueError):
        ValueHasher(KEY).hash_array(pa.array(["a", None]))
    with pytest.raises(ValueError):
        ValueHasher(bytes(16))
    with pytest.raises(TypeError):
        pickle.dumps(ValueHasher(KEY))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 70), st.lists(st.integers(0, 255), max_size=30), st.integers(0, 3))
def test_values_of_one_length_hash_as_the_plain_cbc_mac(length, seeds, skip):
    """Keys, tokens and card numbers: every value as long as the others (the matrix path), sliced too."""
    texts = [("".join(chr(97 + (seed + i) % 26) for i in range(length))) for seed in seeds]
    array = pa.array(texts, pa.string())
    assert ValueHasher(KEY).hash_array(array).tolist() == [reference(KEY, t) for t in texts]
    assert ValueHasher(KEY).hash_array(array.slice(skip)).tolist() == [reference(KEY, t) for t in texts[skip:]]
