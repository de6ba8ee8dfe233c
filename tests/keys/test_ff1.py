"""FF1 (NIST SP 800-38G) for veil.keys.ff1: known answers, a reference transcription, properties.

The vectors are tests/vectors/ff1.json (NIST samples and Wycheproof). The reference below is
Algorithm 7 written out step by step on numeral lists, with no caching or batching, so that
the optimised paths (one or several CBC-MAC blocks per round, more than 16 output bytes) are
checked against the standard's own formulation as well as against the vectors.
"""

import json
import pickle
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veil.keys import _primitives
from veil.keys.ff1 import ALPHABETS, FF1, MAX_LEN, MAX_TWEAK_BYTES, MIN_DOMAIN, FF1Alphabet, FF1Error, FF1Layout
from veil.keys.testing import fake_keyring

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "ff1.json").read_text())["vectors"]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = bytes(range(32))
TWEAK = b"veil/v1/ff1/analytics/card_number"


def _vector_id(vector: dict) -> str:
    return vector["id"]


def _rejected_by_rev1(vector: dict) -> bool:
    return vector.get("rev1_expected", "").startswith("reject")


def _alphabet(vector: dict) -> str:
    """The vector's alphabet; the numeral-only Wycheproof radix-10 vectors use the digits."""
    return vector.get("alphabet") or ALPHABETS["digits"][: vector["radix"]]


def _numerals(vector: dict, which: str) -> list[int]:
    if f"{which}_digits" in vector:
        return vector[f"{which}_digits"]
    return [_alphabet(vector).index(char) for char in vector[which]]


def _text(vector: dict, which: str) -> str:
    if which in vector:
        return vector[which]
    return "".join(_alphabet(vector)[numeral] for numeral in vector[f"{which}_digits"])


VALID = [v for v in VECTORS if v["result"] == "valid" and not _rejected_by_rev1(v)]
REJECTED = [v for v in VECTORS if v["result"] == "invalid" or _rejected_by_rev1(v)]


def test_vector_file_has_the_expected_cases():
    assert len([v for v in VECTORS if v["id"].startswith("nist-ff1-sample")]) == 9
    assert len(VECTORS) == 34
    assert (len(VALID), len(REJECTED)) == (27, 7)
    assert len([v for v in VECTORS if _rejected_by_rev1(v)]) == 3
    assert {v["key_bits"] for v in VALID} == {128, 192, 256}
    assert all(len(v["key_hex"]) * 4 == v["key_bits"] for v in VECTORS)


# ---------------------------------------------------------------- known answers


@pytest.mark.parametrize("vector", VALID, ids=_vector_id)
def test_valid_vectors_through_the_alphabet_api(vector):
    ff1 = FF1Alphabet(bytes.fromhex(vector["key_hex"]), _alphabet(vector))
    tweak = bytes.fromhex(vector["tweak_hex"])
    plaintext, ciphertext = _text(vector, "plaintext"), _text(vector, "ciphertext")
    assert ff1.encrypt(plaintext, tweak) == ciphertext
    assert ff1.decrypt(ciphertext, tweak) == plaintext
    assert ff1.encrypt_many([plaintext, plaintext], tweak) == [ciphertext, ciphertext]
    assert ff1.decrypt_many([ciphertext], tweak) == [plaintext]


@pytest.mark.parametrize("vector", VALID, ids=_vector_id)
def test_valid_vectors_through_the_numeral_api(vector):
    ff1 = FF1(bytes.fromhex(vector["key_hex"]), vector["radix"])
    tweak = bytes.fromhex(vector["tweak_hex"])
    plaintext, ciphertext = _numerals(vector, "plaintext"), _numerals(vector, "ciphertext")
    assert ff1.encrypt(plaintext, tweak) == ciphertext
    assert ff1.decrypt(ciphertext, tweak) == plaintext
    assert ff1.encrypt_many([plaintext, tuple(plaintext)], tweak) == [ciphertext, ciphertext]
    assert ff1.decrypt_many([ciphertext], tweak) == [plaintext]
    assert _reference_encrypt(bytes.fromhex(vector["key_hex"]), vector["radix"], tweak, plaintext) == ciphertext


@pytest.mark.parametrize("vector", REJECTED, ids=_vector_id)
def test_invalid_and_rev1_rejected_vectors_raise(vector):
    ff1 = FF1Alphabet(bytes.fromhex(vector["key_hex"]), _alphabet(vector))
    tweak = bytes.fromhex(vector["tweak_hex"])
    plaintext = _text(vector, "plaintext")
    attempts = [lambda: ff1.encrypt(plaintext, tweak), lambda: ff1.encrypt_many([plaintext], tweak)]
    length_problem = all(char in _alphabet(vector) for char in plaintext)  # else a bad character
    if length_problem:  # then the ciphertext is just as short: decryption refuses it too
        attempts.append(lambda: ff1.decrypt(_text(vector, "ciphertext"), tweak))
        numerals = _numerals(vector, "plaintext")
        attempts.append(lambda: FF1(bytes.fromhex(vector["key_hex"]), vector["radix"]).encrypt(numerals, tweak))
    for attempt in attempts:
        with pytest.raises(FF1Error) as info:
            attempt()
        if len(plaintext) >= 2:
            assert plaintext not in f"{info.value} {info.value!r}"


# ---------------------------------------------------------------- reference transcription (SP 800-38G Alg. 7)


def _num(numerals: list[int], radix: int) -> int:
    x = 0
    for numeral in numerals:
        x = x * radix + numeral
    return x


def _str(x: int, radix: int, m: int) -> list[int]:
    return [(x // radix**i) % radix for i in range(m - 1, -1, -1)]


def _reference_encrypt(key: bytes, radix: int, tweak: bytes, x: list[int]) -> list[int]:
    aes = _primitives.AesBlocks(key)

    def prf(data: bytes) -> bytes:  # CBC-MAC with a zero IV
        y = bytes(16)
        for offset in range(0, len(data), 16):
            y = aes.encrypt_blocks(bytes(p ^ q for p, q in zip(y, data[offset : offset + 16])))
        return y

    n, t = len(x), len(tweak)
    u, v = n // 2, n - n // 2  # 1
    a, b = list(x[:u]), list(x[u:])  # 2
    beta = -(-(radix**v - 1).bit_length() // 8)  # 3: ceil(ceil(v * log2(radix)) / 8), exactly
    d = 4 * -(-beta // 4) + 4  # 4
    p = bytes([1, 2, 1]) + radix.to_bytes(3, "big") + bytes([10, u % 256]) + n.to_bytes(4, "big")
    p += t.to_bytes(4, "big")  # 5
    for i in range(10):  # 6
        q = tweak + bytes((-t - beta - 1) % 16) + bytes([i]) + _num(b, radix).to_bytes(beta, "big")  # i
        r = prf(p + q)  # ii
        s = r  # iii
        for j in range(1, -(-d // 16)):
            s += aes.encrypt_blocks(bytes(c ^ k for c, k in zip(r, j.to_bytes(16, "big"))))
        y = int.from_bytes(s[:d], "big")  # iv
        m = u if i % 2 == 0 else v  # v
        c = (_num(a, radix) + y) % radix**m  # vi
        a, b = b, _str(c, radix, m)  # vii - ix
    return a + b  # 7


def _min_len(radix: int) -> int:
    n = 2
    while radix**n < MIN_DOMAIN:
        n += 1
    return n


@st.composite
def _numeral_cases(draw):
    radix = draw(st.sampled_from([2, 3, 10, 26, 36, 62, 255, 256, 1000, 2**16]) | st.integers(2, 2**16))
    n = draw(st.integers(_min_len(radix), _min_len(radix) + 60))
    value = draw(st.lists(st.integers(0, radix - 1), min_size=n, max_size=n))
    tweak = draw(st.binary(max_size=40))
    return radix, value, tweak


@FAST
@given(_numeral_cases())
def test_ff1_matches_the_reference_transcription(case):
    radix, value, tweak = case
    ff1 = FF1(KEY, radix)
    expected = _reference_encrypt(KEY, radix, tweak, value)
    assert ff1.encrypt(value, tweak) == expected
    assert ff1.encrypt_many([value, value], tweak) == [expected, expected]
    assert ff1.decrypt(expected, tweak) == value
    assert ff1.decrypt_many([expected], tweak) == [value]


# (radix, length, tweak length): the plan shapes FF1 computes differently. A half in the last
# CBC-MAC block and at most 8 bytes (the array fast path); 9-12 bytes (still one block); a
# half that spills into a second block with more than 16 output bytes (b >= 13).
SHAPES = [(10, 16, 0), (10, 40, 0), (10, 60, 13), (10, 100, 0), (62, 400, 200), (2**16, 7, 3)]


@pytest.mark.parametrize(("radix", "n", "t"), SHAPES, ids=[f"r{r}-n{n}-t{t}" for r, n, t in SHAPES])
def test_every_round_function_path_matches_the_reference(radix, n, t):
    ff1, tweak = FF1(KEY, radix), bytes(range(t))
    values = [[(i * 7 + j) % radix for j in range(n)] for i in range(3)]
    expected = [_reference_encrypt(KEY, radix, tweak, value) for value in values]
    assert ff1.encrypt_many(values, tweak) == expected
    assert [ff1.encrypt(value, tweak) for value in values] == expected
    assert ff1.decrypt_many(expected, tweak) == values


def test_shapes_cover_every_path():
    shapes = set()
    for radix, n, t in SHAPES:
        plan = FF1(KEY, radix)._plan(bytes(t), n)
        shapes.add((plan.fast, plan.tail_blocks > 1, plan.d > 16))
    assert shapes == {(True, False, False), (False, False, False), (False, False, True), (False, True, True)}


# ---------------------------------------------------------------- properties over alphabets

ALPHABET_CASES = {
    "digits": ALPHABETS["digits"],
    "alnum": ALPHABETS["alnum"],
    "lower": ALPHABETS["lower"],
    "upper-hex": "0123456789ABCDEF",
    "binary": "01",
    "dna": "ACGT",
    "shuffled-36": "qwertyuiopasdfghjklzxcvbnm9876543210",
    "symbols": "!#$%&*+-=?@^_~ .,;:",
    "cjk-1000": "".join(chr(0x4E00 + i) for i in range(1000)),
    "plane2-65536": "".join(chr(0x20000 + i) for i in range(2**16)),
}
CIPHERS = {name: FF1Alphabet(KEY, alphabet) for name, alphabet in ALPHABET_CASES.items()}
OTHER_KEY_CIPHERS = {name: FF1Alphabet(bytes(32), alphabet) for name, alphabet in ALPHABET_CASES.items()}


@st.composite
def _texts(draw, min_domain: int = MIN_DOMAIN, extra: int = 30):
    name = draw(st.sampled_from(sorted(ALPHABET_CASES)))
    alphabet = ALPHABET_CASES[name]
    shortest = max(_min_len(len(alphabet)), next(n for n in range(2, 200) if len(alphabet) ** n >= min_domain))
    n = draw(st.integers(shortest, shortest + extra))
    return name, draw(st.text(alphabet=alphabet, min_size=n, max_size=n))


@FAST
@given(_texts(), st.binary(max_size=MAX_TWEAK_BYTES))
def test_round_trip_keeps_length_and_alphabet(case, tweak):
    name, text = case
    ff1 = CIPHERS[name]
    token = ff1.encrypt(text, tweak)
    assert len(token) == len(text)
    assert set(token) <= set(ALPHABET_CASES[name])
    assert ff1.decrypt(token, tweak) == text
    assert ff1.encrypt(text, tweak) == token  # deterministic


@FAST
@given(_texts(min_domain=10**12), st.binary(max_size=16), st.binary(max_size=16))
def test_different_tweaks_give_different_outputs(case, tweak, other):
    name, text = case
    if tweak != other:
        assert CIPHERS[name].encrypt(text, tweak) != CIPHERS[name].encrypt(text, other)


@FAST
@given(_texts(min_domain=10**12))
def test_different_keys_give_different_outputs(case):
    name, text = case
    assert CIPHERS[name].encrypt(text, TWEAK) != OTHER_KEY_CIPHERS[name].encrypt(text, TWEAK)


@FAST
@given(st.sampled_from(sorted(ALPHABET_CASES)).flatmap(lambda name: st.tuples(st.just(name), st.data())))
def test_batch_equals_per_value(case):
    name, data = case
    alphabet = ALPHABET_CASES[name]
    shortest = _min_len(len(alphabet))
    texts = data.draw(
        st.lists(
            st.integers(shortest, shortest + 12).flatmap(lambda n: st.text(alphabet=alphabet, min_size=n, max_size=n)),
            max_size=12,
        )
    )
    ff1 = CIPHERS[name]
    tokens = ff1.encrypt_many(texts, TWEAK)
    assert tokens == [ff1.encrypt(text, TWEAK) for text in texts]
    assert ff1.decrypt_many(tokens, TWEAK) == texts == [ff1.decrypt(token, TWEAK) for token in tokens]
    numerals = [[alphabet.index(char) for char in text] for text in texts]
    raw = FF1(KEY, len(alphabet))
    assert raw.encrypt_many(numerals, TWEAK) == [raw.encrypt(value, TWEAK) for value in numerals]
    assert raw.encrypt_many(numerals, TWEAK) == [[alphabet.index(char) for char in token] for token in tokens]


def test_empty_batches():
    assert CIPHERS["digits"].encrypt_many([], TWEAK) == []
    assert FF1(KEY, 10).decrypt_many([], TWEAK) == []


# ---------------------------------------------------------------- domain, length and input checks


@pytest.mark.parametrize(
    ("name", "text"),
    [("digits", "12345"), ("digits", "7"), ("digits", ""), ("alnum", "aZ9"), ("binary", "1" * 19), ("dna", "ACGTACG")],
)
def test_too_short_domains_are_refused(name, text):
    with pytest.raises(FF1Error):
        CIPHERS[name].encrypt(text, TWEAK)
    with pytest.raises(FF1Error):
        CIPHERS[name].decrypt_many([text], TWEAK)


@pytest.mark.parametrize(("name", "n"), [("digits", 6), ("alnum", 4), ("binary", 20), ("dna", 10)])
def test_the_shortest_allowed_domain_works(name, n):
    text = ALPHABET_CASES[name][-1] * n
    assert CIPHERS[name].decrypt(CIPHERS[name].encrypt(text, TWEAK), TWEAK) == text


def test_length_limits():
    longest = "9" * MAX_LEN
    assert CIPHERS["digits"].decrypt(CIPHERS["digits"].encrypt(longest, TWEAK), TWEAK) == longest
    with pytest.raises(FF1Error):
        CIPHERS["digits"].encrypt(longest + "9", TWEAK)


def test_tweak_limits():
    assert CIPHERS["digits"].encrypt("4111111111111111", bytes(MAX_TWEAK_BYTES))
    with pytest.raises(FF1Error):
        CIPHERS["digits"].encrypt("4111111111111111", bytes(MAX_TWEAK_BYTES + 1))
    with pytest.raises(TypeError):
        CIPHERS["digits"].encrypt("4111111111111111", "not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("numerals", [[1, 2, 3, 4, 5, 10], [1, 2, 3, 4, 5, -1], [1, 2, 3, 4, 5, 1.0], [True] * 6])
def test_numerals_outside_the_radix_are_refused(numerals):
    with pytest.raises(FF1Error):
        FF1(KEY, 10).encrypt(numerals, TWEAK)
    with pytest.raises(FF1Error):
        FF1(KEY, 10).encrypt_many([[0] * 6, numerals], TWEAK)


@pytest.mark.parametrize("key", [b"", bytes(15), bytes(17), bytes(33), bytes(64), "k" * 32])
def test_bad_keys_are_refused(key):
    with pytest.raises(FF1Error):
        FF1(key, 10)
    with pytest.raises(FF1Error):
        FF1Alphabet(key, ALPHABETS["digits"])


@pytest.mark.parametrize("radix", [0, 1, 2**16 + 1, True, 10.0])
def test_bad_radixes_are_refused(radix):
    with pytest.raises(FF1Error):
        FF1(KEY, radix)


@pytest.mark.parametrize(
    "alphabet", ["", "a", "0123456789 0", "aa", "".join(chr(0x20000 + i) for i in range(2**16 + 1))]
)
def test_bad_alphabets_are_refused(alphabet):
    with pytest.raises(FF1Error):
        FF1Alphabet(KEY, alphabet)


def test_characters_outside_the_alphabet_are_refused():
    for text in ("4111-1111-1111-1111", "411111111111111a", "4111111111111111\n", "٤١١١١١١١١١١١١١١١"):
        with pytest.raises(FF1Error):
            CIPHERS["digits"].encrypt(text, TWEAK)
        with pytest.raises(FF1Error):
            CIPHERS["digits"].encrypt_many(["4111111111111111", text], TWEAK)
    with pytest.raises(TypeError):
        CIPHERS["digits"].encrypt_many(["4111111111111111", 4111111111111111], TWEAK)  # type: ignore[list-item]


@FAST
@given(
    st.one_of(
        st.text(alphabet="0123456789", min_size=4, max_size=5),  # too short
        st.text(alphabet="0123456789", min_size=8, max_size=20).map(lambda s: s[:4] + "-" + s[4:]),  # bad char
        st.text(alphabet="0123456789 -/x", min_size=8, max_size=20).filter(lambda s: not s.isdigit()),
    )
)
def test_errors_never_contain_the_value(text):
    with pytest.raises(FF1Error) as info:
        CIPHERS["digits"].encrypt_many(["4111111111111111", text], TWEAK)
    message = f"{info.value} {info.value!r} {info.value.args}"
    assert text not in message
    assert info.value.__cause__ is None
    # The message depends on the kind of problem only, never on the value itself.
    with pytest.raises(FF1Error) as same_kind:
        CIPHERS["digits"].encrypt("0" * len(text) if text.isdigit() else "0000-0000", TWEAK)
    assert str(info.value) == str(same_kind.value)


# ---------------------------------------------------------------- key material: pickling, threads


@pytest.mark.parametrize(
    "make",
    [lambda: FF1(KEY, 10), lambda: FF1Alphabet(KEY, ALPHABETS["alnum"]), lambda: _primitives.AesBlocks(KEY)],
    ids=["ff1", "ff1-alphabet", "aes-blocks"],
)
def test_key_holders_refuse_pickling_and_hide_the_key(make):
    holder = make()
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(holder)
    assert KEY.hex() not in repr(holder) and str(KEY) not in repr(holder)


def test_aes_blocks_known_answer_and_whole_blocks_only():
    # FIPS-197 Appendix C.1 (AES-128) and C.3 (AES-256).
    plaintext = bytes.fromhex("00112233445566778899aabbccddeeff")
    aes128 = _primitives.AesBlocks(bytes(range(16)))
    assert aes128.encrypt_blocks(plaintext * 2) == bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a") * 2
    assert _primitives.AesBlocks(bytes(range(32))).encrypt_blocks(plaintext) == bytes.fromhex(
        "8ea2b7ca516745bfeafc49904b496089"
    )
    assert aes128.encrypt_blocks(b"") == b""
    with pytest.raises(ValueError):
        aes128.encrypt_blocks(plaintext[:15])
    assert aes128.encrypt_blocks(plaintext) == bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")  # nothing buffered
    with pytest.raises(ValueError):
        _primitives.AesBlocks(bytes(20))


def test_one_instance_is_safe_to_share_between_threads():
    # cryptography releases the GIL in `update`; one shared context raised "Already borrowed".
    ff1 = FF1Alphabet(KEY, ALPHABETS["digits"])
    values = [f"{i:016d}" for i in range(20_000)]
    expected = ff1.encrypt_many(values, TWEAK)
    failures: list[str] = []

    def work() -> None:
        try:
            for _ in range(3):
                if ff1.encrypt_many(values, TWEAK) != expected:
                    failures.append("wrong output")
        except Exception as exc:  # reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# ---------------------------------------------------------------- KeyRing.ff1 and named alphabets


def test_keyring_ff1_is_deterministic_per_info_and_version():
    info, card = "veil/v1/ff1/analytics/card_number", "4111111111111111"
    ring = fake_keyring(versions=2)
    ff1 = ring.ff1(info, 1, ALPHABETS["digits"])
    assert isinstance(ff1, FF1Alphabet)
    assert ring.ff1(info, 1, ALPHABETS["digits"]) is ff1  # cached
    token = ff1.encrypt(card, TWEAK)
    assert fake_keyring(versions=2).ff1(info, 1, ALPHABETS["digits"]).encrypt(card, TWEAK) == token
    assert ring.ff1(info + "x", 1, ALPHABETS["digits"]).encrypt(card, TWEAK) != token
    assert ring.ff1(info, 2, ALPHABETS["digits"]).encrypt(card, TWEAK) != token
    assert ff1.decrypt(token, TWEAK) == card


def test_keyring_ff1_cache_includes_the_alphabet():
    ring, info = fake_keyring(), "veil/v1/ff1/analytics/ref"
    digits, alnum = ring.ff1(info, 1, ALPHABETS["digits"]), ring.ff1(info, 1, ALPHABETS["alnum"])
    assert digits is not alnum
    assert (digits.alphabet, alnum.alphabet) == (ALPHABETS["digits"], ALPHABETS["alnum"])
    assert set(alnum.encrypt("Ab3dEf", TWEAK)) <= set(ALPHABETS["alnum"])
    with pytest.raises(FF1Error):
        ring.ff1(info, 1, "aa")


def test_named_alphabets_and_their_order():
    assert ALPHABETS["digits"] == "0123456789"
    assert ALPHABETS["upper"] == ALPHABETS["lower"].upper() == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert ALPHABETS["alnum"] == ALPHABETS["digits"] + ALPHABETS["upper"] + ALPHABETS["lower"]
    with pytest.raises(TypeError):
        ALPHABETS["hex"] = "0123456789abcdef"  # type: ignore[index]


def test_plan_cache_is_bounded_when_tweaks_vary():
    ff1 = FF1Alphabet(KEY, ALPHABETS["digits"])
    for i in range(600):
        ff1.encrypt("4111111111111111", i.to_bytes(2, "big"))
    assert len(ff1._ff1._plans) <= 256


def test_ff1_layout_crypts_the_middle_alphabet_characters_and_keeps_the_rest():
    cipher = FF1Alphabet(KEY, ALPHABETS["digits"])
    layout = FF1Layout(cipher, b"t", keep_first=2, keep_last=4)
    card = "4111-1111-1111-1234"
    token = layout.crypt(card)
    assert token[:2] == "41" and token[-4:] == "1234" and token[4::5] == "---"
    assert token != card
    middle = "".join(ch for ch in card if ch.isdigit())[2:-4]
    assert "".join(ch for ch in token if ch.isdigit())[2:-4] == cipher.encrypt(middle, b"t")
    inverse = FF1Layout(cipher, b"t", keep_first=2, keep_last=4, decrypt=True)
    assert inverse.crypt(token) == card


def test_ff1_layout_batch_equals_one_by_one_and_refuses_short_texts():
    layout = FF1Layout(FF1Alphabet(KEY, ALPHABETS["digits"]), b"t", keep_last=2, refusal=lambda: KeyError("short"))
    texts = [f"{i:04d}-{i * 7 % 10000:04d}" for i in range(30)] + ["12-3", "99"] + [f"{i:09d}" for i in range(9)]
    out, failed, error = layout.crypt_texts(texts)
    assert failed == [30, 31] and isinstance(error, KeyError)
    assert [o for i, o in enumerate(out) if i not in failed] == [
        layout.crypt(t) for i, t in enumerate(texts) if i not in failed
    ]
    with pytest.raises(KeyError):
        layout.crypt("12-3")
