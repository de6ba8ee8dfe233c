"""Tests for keyset files, master keys and the KeyRing (veil.keys.keyset, .keyring, .testing)."""

import base64
import hashlib
import hmac
import os
import pickle
import stat
from pathlib import Path

import pytest
from helpers import assert_no_secret, edit_json

from veil.errors import IntegrityError, KeyAccessError
from veil.keys import _primitives
from veil.keys.keyring import KeyRing, open_keyring
from veil.keys.keyset import (
    MASTER_KEY_ENV,
    dev_master_key_path,
    init_keyset,
    read_keyset,
    resolve_master_key,
    rotate_keyset,
    unwrap_keys,
)
from veil.keys.testing import fake_keyring

INFO = "veil/v1/pseudonymize/analytics/customer"


def _roots(path: str, master_key: bytes) -> dict[int, bytes]:
    return unwrap_keys(read_keyset(path), master_key)


# --- init ---


def test_init_keyset_creates_one_enabled_primary_key(tmp_path, master_key):
    path = str(tmp_path / "sub" / "keyset.json")
    assert init_keyset(path) is False  # VEIL_MASTER_KEY is set: no development key
    assert Path(path).is_file()
    assert not Path(dev_master_key_path(path)).exists()
    keyset = read_keyset(path)
    assert keyset.primary == 1
    assert [(i.version, i.status) for i in keyset.infos] == [(1, "enabled")]
    roots = _roots(path, master_key)
    assert list(roots) == [1] and len(roots[1]) == 32


def test_second_init_refuses_and_keeps_the_keyset(keyset):
    before = Path(keyset).read_bytes()
    with pytest.raises(KeyAccessError, match="already exists"):
        init_keyset(keyset)
    assert Path(keyset).read_bytes() == before


def test_each_init_draws_a_new_root_key(tmp_path, master_key):
    paths = [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    for path in paths:
        init_keyset(path)
    assert _roots(paths[0], master_key)[1] != _roots(paths[1], master_key)[1]


def test_keyset_file_holds_no_key_in_clear(keyset, master_key):
    rotate_keyset(keyset)
    raw = Path(keyset).read_bytes().decode("latin-1")
    roots = _roots(keyset, master_key)
    assert set(roots) == {1, 2}
    assert_no_secret(raw, master_key, *roots.values())


def test_wrapped_key_cannot_be_moved_to_another_version(keyset, master_key):
    rotate_keyset(keyset)

    def swap(doc: dict) -> None:
        first, second = doc["keys"]
        first["wrapped"], second["wrapped"] = second["wrapped"], first["wrapped"]

    edit_json(keyset, swap)
    with pytest.raises(KeyAccessError, match="cannot unwrap"):
        open_keyring(keyset)


# --- rotation ---


def test_rotate_adds_a_new_primary_and_keeps_old_versions(keyset, master_key):
    before = _roots(keyset, master_key)
    assert rotate_keyset(keyset) == 2
    ring = open_keyring(keyset)
    assert ring.versions == (1, 2)
    assert ring.primary == 2
    after = _roots(keyset, master_key)
    assert after[1] == before[1]
    assert after[2] != after[1]
    assert rotate_keyset(keyset) == 3
    assert open_keyring(keyset).versions == (1, 2, 3)


def test_rotation_keeps_version_1_outputs_and_old_ciphertexts(keyset):
    ring = open_keyring(keyset)
    pseudonym = ring.prf(INFO, 1).compute(b"C0000001")
    token = ring.daead(INFO, 1).encrypt_deterministically(b"C0000001", b"ad")
    sealed = ring.aead(INFO, 1).encrypt(b"C0000001", b"ad")
    rotate_keyset(keyset)
    rotated = open_keyring(keyset)
    assert rotated.prf(INFO, 1).compute(b"C0000001") == pseudonym
    assert rotated.prf(INFO, 2).compute(b"C0000001") != pseudonym
    assert rotated.daead(INFO, 1).decrypt_deterministically(token, b"ad") == b"C0000001"
    assert rotated.aead(INFO, 1).decrypt(sealed, b"ad") == b"C0000001"


def test_rotate_with_wrong_master_key_refuses_and_keeps_the_keyset(keyset, monkeypatch):
    before = Path(keyset).read_bytes()
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(KeyAccessError):
        rotate_keyset(keyset)
    assert Path(keyset).read_bytes() == before


def test_disabled_keys_are_not_usable(keyset):
    rotate_keyset(keyset)
    edit_json(keyset, lambda d: d["keys"][0].update(status="disabled"))
    ring = open_keyring(keyset)
    assert ring.versions == (2,)
    with pytest.raises(KeyAccessError):
        ring.prf(INFO, 1)
    edit_json(keyset, lambda d: d.update(primary=1))
    with pytest.raises(KeyAccessError, match="primary key version 1 is not enabled"):
        open_keyring(keyset)


# --- master key errors ---


def test_wrong_master_key_is_a_clear_error_without_key_material(keyset, master_key, monkeypatch):
    roots = _roots(keyset, master_key)
    wrong = os.urandom(32)
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(wrong).decode())
    with pytest.raises(KeyAccessError) as info:
        open_keyring(keyset)
    message = str(info.value)
    assert MASTER_KEY_ENV in message
    assert keyset in message
    assert_no_secret(message, master_key, wrong, *roots.values())
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize(
    "value",
    [
        "not base64 at all!",
        base64.b64encode(bytes(16)).decode(),
        base64.b64encode(bytes(33)).decode(),
        base64.b64encode(bytes(32)).decode()[:-2],
    ],
    ids=["not-base64", "16-bytes", "33-bytes", "truncated"],
)
def test_bad_master_key_env_is_refused(keyset, tmp_path, monkeypatch, value):
    monkeypatch.setenv(MASTER_KEY_ENV, value)
    with pytest.raises(KeyAccessError, match=MASTER_KEY_ENV) as info:
        open_keyring(keyset)
    assert value not in str(info.value)
    fresh = str(tmp_path / "fresh.json")
    with pytest.raises(KeyAccessError, match=MASTER_KEY_ENV):
        init_keyset(fresh)
    assert not Path(fresh).exists()
    assert not Path(dev_master_key_path(fresh)).exists()


def test_missing_master_key_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    path = str(tmp_path / "keyset.json")
    with pytest.raises(KeyAccessError, match=MASTER_KEY_ENV) as info:
        resolve_master_key(path)
    assert path in str(info.value)


# --- corrupt keysets ---


def _truncate_wrapped(doc: dict) -> None:
    wrapped = base64.b64decode(doc["keys"][0]["wrapped"])
    doc["keys"][0]["wrapped"] = base64.b64encode(wrapped[:20]).decode()


def _flip_wrapped(doc: dict) -> None:
    wrapped = bytearray(base64.b64decode(doc["keys"][0]["wrapped"]))
    wrapped[-1] ^= 1
    doc["keys"][0]["wrapped"] = base64.b64encode(bytes(wrapped)).decode()


CORRUPTIONS = {
    "garbage-json": lambda p: Path(p).write_text("{not json"),
    "empty-file": lambda p: Path(p).write_bytes(b""),
    "json-list": lambda p: Path(p).write_text("[]"),
    "wrong-format": lambda p: edit_json(p, lambda d: d.update(veil_keyset=99)),
    "no-keys": lambda p: edit_json(p, lambda d: d.pop("keys")),
    "missing-primary": lambda p: edit_json(p, lambda d: d.update(primary=7)),
    "wrapped-not-base64": lambda p: edit_json(p, lambda d: d["keys"][0].update(wrapped="@@@")),
    "wrapped-truncated": lambda p: edit_json(p, _truncate_wrapped),
    "wrapped-flipped": lambda p: edit_json(p, _flip_wrapped),
    "missing-file": lambda p: os.remove(p),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_corrupt_keyset_is_a_key_access_error_naming_the_path(keyset, master_key, corrupt):
    roots = _roots(keyset, master_key)
    corrupt(keyset)
    with pytest.raises(KeyAccessError) as info:
        open_keyring(keyset)
    assert keyset in str(info.value)
    assert_no_secret(str(info.value), master_key, *roots.values())
    with pytest.raises(KeyAccessError):
        rotate_keyset(keyset)


# --- development master key ---


def test_dev_master_key_is_written_private_and_used(tmp_path, monkeypatch):
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    path = str(tmp_path / "keyset.json")
    assert init_keyset(path) is True
    dev_path = Path(dev_master_key_path(path))
    assert dev_path.name == "keyset.json.dev-master-key"
    assert stat.S_IMODE(dev_path.stat().st_mode) == 0o600
    dev_key = base64.b64decode(dev_path.read_bytes().strip(), validate=True)
    assert len(dev_key) == 32
    assert resolve_master_key(path) == dev_key
    ring = open_keyring(path)
    assert ring.versions == (1,)
    assert set(_roots(path, dev_key)) == {1}
    assert rotate_keyset(path) == 2
    assert open_keyring(path).versions == (1, 2)
    assert_no_secret(Path(path).read_bytes().decode("latin-1"), dev_key)


def test_dev_master_key_is_reused_not_overwritten(tmp_path, monkeypatch):
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    path = str(tmp_path / "keyset.json")
    init_keyset(path)
    dev_key = Path(dev_master_key_path(path)).read_bytes()
    os.remove(path)
    assert init_keyset(path) is False
    assert Path(dev_master_key_path(path)).read_bytes() == dev_key
    assert open_keyring(path).versions == (1,)


def test_env_master_key_wins_over_dev_key(tmp_path, monkeypatch):
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    path = str(tmp_path / "keyset.json")
    init_keyset(path)
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(KeyAccessError, match=MASTER_KEY_ENV):
        open_keyring(path)


@pytest.mark.parametrize(
    "content", [b"", b"not base64!", base64.b64encode(bytes(16))], ids=["empty", "not-base64", "16-bytes"]
)
def test_corrupt_dev_master_key_is_refused(tmp_path, monkeypatch, content):
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    path = str(tmp_path / "keyset.json")
    init_keyset(path)
    Path(dev_master_key_path(path)).write_bytes(content)
    with pytest.raises(KeyAccessError, match="corrupt"):
        open_keyring(path)


# --- KeyRing ---


def test_keyring_refuses_pickling_and_its_repr_shows_no_keys(keyset, master_key):
    ring = open_keyring(keyset)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(ring, protocol=protocol)
    with pytest.raises(TypeError):
        pickle.dumps(fake_keyring())
    assert_no_secret(repr(ring), master_key, *_roots(keyset, master_key).values())
    assert repr(ring) == "KeyRing(versions=[1], primary=1)"


def test_resolve_version(keyset):
    rotate_keyset(keyset)
    ring = open_keyring(keyset)
    assert ring.resolve_version(None) == ring.primary == 2
    assert ring.resolve_version(1) == 1
    for unknown in (0, 3, 99):
        with pytest.raises(KeyAccessError, match=f"key version {unknown} is not in the keyset"):
            ring.resolve_version(unknown)
        with pytest.raises(KeyAccessError):
            ring.prf(INFO, unknown)
    pinned = fake_keyring(versions=3, primary=2)
    assert pinned.primary == 2 and pinned.resolve_version(None) == 2
    assert fake_keyring(versions=3).resolve_version(None) == 3


def test_derivation_is_deterministic_and_separated(keyset):
    ring, again = open_keyring(keyset), open_keyring(keyset)
    message = b"C0000001"
    output = ring.prf(INFO, 1).compute(message)
    assert again.prf(INFO, 1).compute(message) == output
    others = {
        "veil/v1/pseudonymize/marketing/customer",
        "veil/v1/pseudonymize/analytics/email",
        "veil/v1/tokenize/analytics/customer",
    }
    outputs = {info: ring.prf(info, 1).compute(message) for info in others}
    assert output not in outputs.values()
    assert len(set(outputs.values())) == len(others)
    daead = ring.daead(INFO, 1)
    token = daead.encrypt_deterministically(message, b"ad")
    assert again.daead(INFO, 1).encrypt_deterministically(message, b"ad") == token
    assert ring.daead("veil/v1/siv/marketing/customer", 1).encrypt_deterministically(message, b"ad") != token
    sealed = ring.aead(INFO, 1).encrypt(message, b"ad")
    assert again.aead(INFO, 1).decrypt(sealed, b"ad") == message
    with pytest.raises(IntegrityError):
        ring.aead("veil/v1/encrypt/marketing/customer", 1).decrypt(sealed, b"ad")


def test_working_keys_differ_between_keysets(tmp_path, master_key):
    paths = [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    for path in paths:
        init_keyset(path)
    a, b = (open_keyring(p).prf(INFO, 1).compute(b"C0000001") for p in paths)
    assert a != b


def test_fake_keyring_is_deterministic():
    first, second = fake_keyring(), fake_keyring()
    assert first.versions == (1,) and first.primary == 1
    assert first.prf(INFO, 1).compute(b"C0000001") == second.prf(INFO, 1).compute(b"C0000001")
    token = first.daead(INFO, 1).encrypt_deterministically(b"C0000001", b"ad")
    assert second.daead(INFO, 1).decrypt_deterministically(token, b"ad") == b"C0000001"
    three = fake_keyring(versions=3)
    assert three.versions == (1, 2, 3) and three.primary == 3
    assert three.prf(INFO, 1).compute(b"C0000001") == first.prf(INFO, 1).compute(b"C0000001")
    assert three.prf(INFO, 3).compute(b"C0000001") != first.prf(INFO, 1).compute(b"C0000001")


def test_keyring_derives_working_keys_with_hkdf_and_caches_them():
    root = os.urandom(32)
    ring = KeyRing({1: root}, 1)
    prf_key = _primitives.hkdf_sha256(root, INFO.encode(), 32)
    siv_key = _primitives.hkdf_sha256(root, INFO.encode(), 64)
    assert ring.prf(INFO, 1).compute(b"x") == _primitives.Prf(prf_key).compute(b"x")
    token = ring.daead(INFO, 1).encrypt_deterministically(b"x", b"ad")
    assert token == _primitives.Daead(siv_key).encrypt_deterministically(b"x", b"ad")
    assert _primitives.Aead(prf_key).decrypt(ring.aead(INFO, 1).encrypt(b"x", b"ad"), b"ad") == b"x"
    assert ring.prf(INFO, 1) is ring.prf(INFO, 1)
    assert ring.prf(INFO, 1) is not ring.aead(INFO, 1)


# --- pinned derivation, recomputed with the standard library only ---


def _stdlib_hkdf_sha256(ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 extract-then-expand with an absent salt (HashLen zero bytes)."""
    prk = hmac.new(bytes(32), ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm, counter = okm + block, counter + 1
    return okm[:length]


def test_pseudonym_derivation_is_pinned_to_hkdf_then_hmac():
    root = bytes([1]) * 32  # fake_keyring's root key for version 1
    working_key = _stdlib_hkdf_sha256(root, INFO.encode(), 32)
    expected = hmac.new(working_key, b"C0000001", hashlib.sha256).digest()
    assert fake_keyring().prf(INFO, 1).compute(b"C0000001") == expected
