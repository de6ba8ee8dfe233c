"""Known-answer and contract tests for veil.keys._primitives (HMAC, HKDF, AES-SIV, AES-GCM)."""

import json
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import IntegrityError
from veil.keys import _primitives


def _vectors(name: str) -> list[dict]:
    return json.loads((Path(__file__).parents[1] / "vectors" / f"{name}.json").read_text())["vectors"]


def _vector_id(vector: dict) -> str:
    return vector["id"]


HMAC_VECTORS = _vectors("hmac_sha256")
HKDF_VECTORS = _vectors("hkdf_sha256")

# Daead's contract is AES-SIV with a 512-bit key and exactly ONE associated-data component.
# RFC 5297 A.1/A.2, the AES-192-SIV vector and the derived tampered A.1 vector use 256- or
# 384-bit keys (A.2 also has three AD components), so they cannot go through Daead.
SIV_VECTORS = [v for v in _vectors("aes_siv") if len(v["key_hex"]) * 4 == 512 and len(v["ad_hex"]) == 1]

# Aead's contract is AES-256-GCM with a 96-bit nonce; GCM spec cases 17/18 use 64- and
# 480-bit IVs, which Aead (nonce = first 12 bytes of the token) cannot express.
GCM_VECTORS = [v for v in _vectors("aes_gcm") if len(v["key_hex"]) * 4 == 256 and len(v["iv_hex"]) * 4 == 96]

PLAINTEXT = b"alice.smith@example.com"
AD = b"veil/test/field=email"


@pytest.mark.parametrize("vectors", [SIV_VECTORS, GCM_VECTORS], ids=["aes_siv", "aes_gcm"])
def test_filtered_vector_sets_keep_valid_and_invalid_cases(vectors):
    assert {v["result"] for v in vectors} == {"valid", "invalid"}


# --- HMAC-SHA256 (Prf) ---


@pytest.mark.parametrize("vector", HMAC_VECTORS, ids=_vector_id)
def test_prf_hmac_sha256_known_answers(vector):
    key, msg = bytes.fromhex(vector["key_hex"]), bytes.fromhex(vector["msg_hex"])
    expected = bytes.fromhex(vector["mac_hex"])
    assert len(expected) * 8 == vector["mac_bits"]
    prf = _primitives.Prf(key)
    output = prf.compute(msg)
    assert len(output) == 32
    assert prf.compute_many([msg, b"", msg]) == [output, prf.compute(b""), output]
    if vector["result"] == "valid":
        assert output[: len(expected)] == expected
    else:
        assert output[: len(expected)] != expected


def test_prf_is_reusable_and_deterministic():
    prf = _primitives.Prf(bytes(32))
    first = prf.compute(b"a")
    assert prf.compute(b"b") != first
    assert prf.compute(b"a") == first
    assert _primitives.Prf(bytes(32)).compute(b"a") == first
    assert _primitives.Prf(bytes([1]) * 32).compute(b"a") != first


# --- HKDF-SHA256 ---


@pytest.mark.parametrize("vector", HKDF_VECTORS, ids=_vector_id)
def test_hkdf_sha256_known_answers(vector):
    ikm, info = bytes.fromhex(vector["ikm_hex"]), bytes.fromhex(vector["info_hex"])
    salt = bytes.fromhex(vector["salt_hex"])
    if vector["result"] == "valid":
        okm = _primitives.hkdf_sha256(ikm, info, vector["length"], salt)
        assert okm == bytes.fromhex(vector["okm_hex"])
    else:
        with pytest.raises(ValueError):
            _primitives.hkdf_sha256(ikm, info, vector["length"], salt)


def test_hkdf_without_salt_equals_zero_salt():
    # RFC 5869 sec. 2.2: a missing salt is HashLen zero bytes; veil derives working keys this way.
    ikm, info = bytes(range(32)), b"veil/v1/test"
    assert _primitives.hkdf_sha256(ikm, info, 32) == _primitives.hkdf_sha256(ikm, info, 32, bytes(32))
    assert _primitives.hkdf_sha256(ikm, info, 32) != _primitives.hkdf_sha256(ikm, b"veil/v1/other", 32)


# --- AES-SIV (Daead) ---


@pytest.mark.parametrize("vector", SIV_VECTORS, ids=_vector_id)
def test_daead_aes_siv_known_answers(vector):
    daead = _primitives.Daead(bytes.fromhex(vector["key_hex"]))
    ad = bytes.fromhex(vector["ad_hex"][0])
    output = bytes.fromhex(vector["output_hex"])
    if vector["result"] == "valid":
        plaintext = bytes.fromhex(vector["plaintext_hex"])
        assert daead.encrypt_deterministically(plaintext, ad) == output
        assert daead.encrypt_deterministically_many([plaintext, plaintext], ad) == [output, output]
        assert daead.decrypt_deterministically(output, ad) == plaintext
    else:
        with pytest.raises(IntegrityError):
            daead.decrypt_deterministically(output, ad)
        if "plaintext_hex" in vector:
            assert daead.encrypt_deterministically(bytes.fromhex(vector["plaintext_hex"]), ad) != output


def test_daead_is_deterministic_and_bound_to_its_associated_data():
    daead = _primitives.Daead(bytes(range(64)))
    token = daead.encrypt_deterministically(PLAINTEXT, AD)
    assert daead.encrypt_deterministically(PLAINTEXT, AD) == token
    assert daead.encrypt_deterministically(PLAINTEXT, AD + b"x") != token
    with pytest.raises(IntegrityError):
        daead.decrypt_deterministically(token, AD + b"x")
    with pytest.raises(IntegrityError):
        _primitives.Daead(bytes(64)).decrypt_deterministically(token, AD)
    with pytest.raises(IntegrityError):
        daead.decrypt_deterministically(token[:10], AD)


# --- AES-256-GCM (Aead) ---


@pytest.mark.parametrize("vector", GCM_VECTORS, ids=_vector_id)
def test_aead_aes_gcm_known_answers(vector):
    aead = _primitives.Aead(bytes.fromhex(vector["key_hex"]))
    nonce, aad = bytes.fromhex(vector["iv_hex"]), bytes.fromhex(vector["aad_hex"])
    plaintext = bytes.fromhex(vector["plaintext_hex"])
    sealed = nonce + bytes.fromhex(vector["ciphertext_hex"]) + bytes.fromhex(vector["tag_hex"])
    if vector["result"] == "valid":
        assert aead._encrypt_with_nonce(nonce, plaintext, aad) == sealed
        assert aead._encrypt_many_with_nonces(nonce, [plaintext], aad) == [sealed]
        assert aead.decrypt(sealed, aad) == plaintext
    else:
        assert aead._encrypt_with_nonce(nonce, plaintext, aad) != sealed
        assert aead._encrypt_many_with_nonces(nonce, [plaintext], aad) != [sealed]
        with pytest.raises(IntegrityError):
            aead.decrypt(sealed, aad)


def test_aead_encrypt_is_randomised_and_round_trips():
    aead = _primitives.Aead(bytes(range(32)))
    first, second = aead.encrypt(PLAINTEXT, AD), aead.encrypt(PLAINTEXT, AD)
    assert first != second
    assert first[: _primitives.NONCE_BYTES] != second[: _primitives.NONCE_BYTES]
    assert len(first) == _primitives.NONCE_BYTES + len(PLAINTEXT) + 16
    assert aead.decrypt(first, AD) == aead.decrypt(second, AD) == PLAINTEXT


def test_aead_rejects_wrong_associated_data_and_wrong_key():
    sealed = _primitives.Aead(bytes(range(32))).encrypt(PLAINTEXT, AD)
    with pytest.raises(IntegrityError):
        _primitives.Aead(bytes(range(32))).decrypt(sealed, AD + b"x")
    with pytest.raises(IntegrityError):
        _primitives.Aead(bytes(32)).decrypt(sealed, AD)


@pytest.mark.parametrize("position", [0, _primitives.NONCE_BYTES, -1], ids=["nonce", "ciphertext", "tag"])
def test_aead_rejects_any_flipped_bit(position):
    aead = _primitives.Aead(bytes(range(32)))
    sealed = bytearray(aead.encrypt(PLAINTEXT, AD))
    sealed[position] ^= 0x01
    with pytest.raises(IntegrityError):
        aead.decrypt(bytes(sealed), AD)


@pytest.mark.parametrize("length", [0, _primitives.NONCE_BYTES, _primitives.NONCE_BYTES + 15])
def test_aead_rejects_truncated_input(length):
    aead = _primitives.Aead(bytes(range(32)))
    with pytest.raises(IntegrityError):
        aead.decrypt(aead.encrypt(b"", AD)[:length], AD)


# --- Errors and pickling ---


def _failures():
    aead, daead = _primitives.Aead(bytes(range(32))), _primitives.Daead(bytes(range(64)))
    yield lambda: aead.decrypt(aead.encrypt(PLAINTEXT, AD), b"wrong")
    yield lambda: daead.decrypt_deterministically(daead.encrypt_deterministically(PLAINTEXT, AD), b"wrong")


@pytest.mark.parametrize("failure", list(_failures()), ids=["aead", "daead"])
def test_integrity_errors_say_nothing_about_the_plaintext(failure):
    with pytest.raises(IntegrityError) as info:
        failure()
    text = f"{info.value} {info.value!r}"
    for leak in (PLAINTEXT.decode(), PLAINTEXT.hex(), str(PLAINTEXT), AD.decode()):
        assert leak not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize(
    "make",
    [
        lambda: _primitives.Prf(bytes(range(32))),
        lambda: _primitives.Daead(bytes(range(64))),
        lambda: _primitives.Aead(bytes(range(32))),
    ],
    ids=["prf", "daead", "aead"],
)
def test_primitives_refuse_pickling(make):
    primitive = make()
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(primitive, protocol=protocol)


def test_random_key_is_fresh():
    assert len(_primitives.random_key()) == 32
    assert len(_primitives.random_key(64)) == 64
    assert _primitives.random_key() != _primitives.random_key()


# --- Batched calls: equal to one call per value ---

MESSAGES = st.lists(st.binary(max_size=80), max_size=20)


@given(MESSAGES)
@settings(max_examples=50, deadline=None)
def test_prf_compute_many_equals_compute_per_message(messages):
    prf = _primitives.Prf(bytes(range(32)))
    assert prf.compute_many(messages) == [prf.compute(m) for m in messages]


@given(MESSAGES)
@settings(max_examples=50, deadline=None)
def test_daead_encrypt_many_equals_one_at_a_time(plaintexts):
    daead = _primitives.Daead(bytes(range(64)))
    assert daead.encrypt_deterministically_many(plaintexts, AD) == [
        daead.encrypt_deterministically(p, AD) for p in plaintexts
    ]


def test_aead_batch_seam_uses_one_slice_of_the_nonces_per_plaintext():
    aead = _primitives.Aead(bytes(range(32)))
    nonces = bytes(range(36))
    plaintexts = [b"a", b"", PLAINTEXT]
    expected = [aead._encrypt_with_nonce(nonces[12 * i : 12 * i + 12], p, AD) for i, p in enumerate(plaintexts)]
    assert aead._encrypt_many_with_nonces(nonces, plaintexts, AD) == expected
    with pytest.raises(ValueError, match="one 12-byte nonce per plaintext"):
        aead._encrypt_many_with_nonces(nonces[:24], plaintexts, AD)


@given(MESSAGES)
@settings(max_examples=50, deadline=None)
def test_aead_encrypt_many_decrypts_back_with_distinct_nonces(plaintexts):
    aead = _primitives.Aead(bytes(range(32)))
    sealed = aead.encrypt_many(plaintexts, AD)
    assert [aead.decrypt(s, AD) for s in sealed] == plaintexts
    assert [len(s) for s in sealed] == [_primitives.NONCE_BYTES + len(p) + 16 for p in plaintexts]
    nonces = {s[: _primitives.NONCE_BYTES] for s in sealed}
    assert len(nonces) == len(sealed)


def test_aead_encrypt_many_draws_fresh_nonces_per_call():
    aead = _primitives.Aead(bytes(range(32)))
    first, second = aead.encrypt_many([PLAINTEXT] * 4, AD), aead.encrypt_many([PLAINTEXT] * 4, AD)
    assert len({s[: _primitives.NONCE_BYTES] for s in first + second}) == 8
    assert aead.encrypt_many([], AD) == []
