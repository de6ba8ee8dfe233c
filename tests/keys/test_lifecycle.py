"""Key lifecycle: rotation, pinned versions, disable / enable / destroy (veil.keys.keyset, .keyring)."""

import base64
import json
import os
from pathlib import Path

import pytest

from veil.errors import KeyAccessError
from veil.keys.keyring import KeyRing, open_keyring
from veil.keys.keyset import (
    MASTER_KEY_ENV,
    check_status_change,
    destroy_key,
    disable_key,
    enable_key,
    read_keyset,
    rotate_keyset,
    unwrap_keys,
)

INFO = "veil/v1/pseudonymize/analytics/customer"
SIV_INFO = "veil/v1/tokenize-siv/analytics/customer"
ENC_INFO = "veil/v1/encrypt/analytics"
VALUE = b"C0000001"


def _doc(path: str) -> dict:
    return json.loads(Path(path).read_text())


def _statuses(path: str) -> dict[int, str]:
    return {k["version"]: k["status"] for k in _doc(path)["keys"]}


def _wrapped(path: str, version: int) -> str:
    return next(k["wrapped"] for k in _doc(path)["keys"] if k["version"] == version)


@pytest.fixture
def rotated(keyset) -> str:
    """The `keyset` fixture after one rotation: version 1 (old) and 2 (primary)."""
    assert rotate_keyset(keyset) == 2
    return keyset


# --- rotation and pinned versions ---


def test_pinned_version_reproduces_after_rotation_and_unpinned_moves_to_the_primary(keyset):
    before = open_keyring(keyset)
    assert before.resolve_version(None) == 1
    pseudonym = before.prf(INFO, before.resolve_version(None)).compute(VALUE)
    token = before.daead(SIV_INFO, 1).encrypt_deterministically(VALUE, b"ad")
    sealed = before.aead(ENC_INFO, 1).encrypt(VALUE, b"ad")

    rotate_keyset(keyset)
    after = open_keyring(keyset)
    assert after.resolve_version(None) == 2
    assert after.resolve_version(1) == 1
    assert after.prf(INFO, after.resolve_version(1)).compute(VALUE) == pseudonym
    assert after.prf(INFO, after.resolve_version(None)).compute(VALUE) != pseudonym
    assert after.daead(SIV_INFO, 1).encrypt_deterministically(VALUE, b"ad") == token
    assert after.daead(SIV_INFO, 1).decrypt_deterministically(token, b"ad") == VALUE
    assert after.aead(ENC_INFO, 1).decrypt(sealed, b"ad") == VALUE


# --- disable ---


def test_disable_marks_the_key_and_keeps_its_material(rotated):
    wrapped = _wrapped(rotated, 1)
    assert disable_key(rotated, 1) is True
    assert _statuses(rotated) == {1: "disabled", 2: "enabled"}
    assert _wrapped(rotated, 1) == wrapped
    assert disable_key(rotated, 1) is False  # already disabled: nothing changes
    assert _statuses(rotated) == {1: "disabled", 2: "enabled"}


def test_a_disabled_key_can_be_used_neither_to_write_nor_to_read(rotated):
    token = open_keyring(rotated).daead(SIV_INFO, 1).encrypt_deterministically(VALUE, b"ad")
    disable_key(rotated, 1)
    ring = open_keyring(rotated)
    assert ring.versions == (2,)
    expected = r"key version 1 is disabled: enable it with 'veil keys enable --id 1' to read or write with it"
    with pytest.raises(KeyAccessError, match=expected):
        ring.resolve_version(1)  # a policy pinning key_version: 1
    with pytest.raises(KeyAccessError, match="key version 1 is disabled"):
        ring.prf(INFO, 1)
    with pytest.raises(KeyAccessError, match="key version 1 is disabled"):
        ring.daead(SIV_INFO, 1).decrypt_deterministically(token, b"ad")
    with pytest.raises(KeyAccessError, match="key version 1 is disabled"):
        ring.readable_version(1)  # a token carrying version 1
    assert ring.resolve_version(None) == 2


def test_disabled_keys_are_not_even_unwrapped(rotated, master_key):
    disable_key(rotated, 1)

    def damage(doc: dict) -> None:
        doc["keys"][0]["wrapped"] = base64.b64encode(os.urandom(60)).decode()

    doc = _doc(rotated)
    damage(doc)
    Path(rotated).write_text(json.dumps(doc))
    assert open_keyring(rotated).versions == (2,)  # version 1 was never unwrapped
    enable_key(rotated, 1)
    with pytest.raises(KeyAccessError, match="cannot unwrap key version 1"):
        open_keyring(rotated)


def test_enable_restores_identical_outputs(rotated):
    ring = open_keyring(rotated)
    pseudonym = ring.prf(INFO, 1).compute(VALUE)
    token = ring.daead(SIV_INFO, 1).encrypt_deterministically(VALUE, b"ad")
    sealed = ring.aead(ENC_INFO, 1).encrypt(VALUE, b"ad")
    disable_key(rotated, 1)
    assert enable_key(rotated, 1) is True
    assert enable_key(rotated, 1) is False  # already enabled
    assert _statuses(rotated) == {1: "enabled", 2: "enabled"}
    again = open_keyring(rotated)
    assert again.versions == (1, 2)
    assert again.prf(INFO, 1).compute(VALUE) == pseudonym
    assert again.daead(SIV_INFO, 1).encrypt_deterministically(VALUE, b"ad") == token
    assert again.aead(ENC_INFO, 1).decrypt(sealed, b"ad") == VALUE


@pytest.mark.parametrize("change", [disable_key, destroy_key], ids=["disable", "destroy"])
def test_the_primary_can_be_neither_disabled_nor_destroyed(rotated, change):
    before = Path(rotated).read_bytes()
    with pytest.raises(KeyAccessError, match="key version 2 is the primary") as info:
        change(rotated, 2)
    assert "veil keys rotate" in str(info.value)
    assert Path(rotated).read_bytes() == before


@pytest.mark.parametrize("change", [disable_key, enable_key, destroy_key], ids=["disable", "enable", "destroy"])
def test_an_unknown_version_is_refused(rotated, change):
    before = Path(rotated).read_bytes()
    with pytest.raises(KeyAccessError, match=r"has no key version 7 \(versions: 1, 2\)"):
        change(rotated, 7)
    assert Path(rotated).read_bytes() == before


def test_status_changes_need_no_master_key(rotated, monkeypatch):
    monkeypatch.delenv(MASTER_KEY_ENV)
    assert disable_key(rotated, 1) and enable_key(rotated, 1) and destroy_key(rotated, 1)
    assert _statuses(rotated) == {1: "destroyed", 2: "enabled"}


# --- destroy ---


def test_destroy_removes_the_material_for_good_and_keeps_the_row(rotated, master_key):
    old_root = unwrap_keys(read_keyset(rotated), master_key)[1]
    wrapped = _wrapped(rotated, 1)
    assert destroy_key(rotated, 1) is True
    text = Path(rotated).read_text()
    assert wrapped not in text
    row = _doc(rotated)["keys"][0]
    assert row["version"] == 1 and row["status"] == "destroyed" and "wrapped" not in row
    assert {1, 2} == {i.version for i in read_keyset(rotated).infos}
    assert 1 not in unwrap_keys(read_keyset(rotated), master_key)
    assert base64.b64encode(old_root).decode() not in text and old_root.hex() not in text
    assert destroy_key(rotated, 1) is False  # already destroyed


def test_a_destroyed_key_cannot_come_back(rotated):
    destroy_key(rotated, 1)
    before = Path(rotated).read_bytes()
    for change, verb in ((enable_key, "enabled"), (disable_key, "disabled")):
        with pytest.raises(KeyAccessError, match=f"key version 1 of keyset .* is destroyed.*cannot be {verb} again"):
            change(rotated, 1)
    assert Path(rotated).read_bytes() == before


def test_a_destroyed_key_is_refused_and_the_others_still_work(rotated):
    ring = open_keyring(rotated)
    v2 = ring.prf(INFO, 2).compute(VALUE)
    destroy_key(rotated, 1)
    after = open_keyring(rotated)
    assert after.versions == (2,)
    assert after.prf(INFO, 2).compute(VALUE) == v2
    with pytest.raises(KeyAccessError, match="key version 1 is destroyed"):
        after.resolve_version(1)
    with pytest.raises(KeyAccessError, match="key version 1 is destroyed"):
        after.prf(INFO, 1)
    with pytest.raises(KeyAccessError, match="key version 1 is destroyed"):
        after.readable_version(1)


def test_versions_are_never_reused_after_destroy(rotated):
    destroy_key(rotated, 1)
    assert rotate_keyset(rotated) == 3
    destroy_key(rotated, 2)
    assert rotate_keyset(rotated) == 4
    assert _statuses(rotated) == {1: "destroyed", 2: "destroyed", 3: "enabled", 4: "enabled"}
    assert open_keyring(rotated).versions == (3, 4)


def test_check_status_change_without_writing(rotated):
    keyset = read_keyset(rotated)
    assert check_status_change(keyset, 1, "destroyed").status == "enabled"
    with pytest.raises(KeyAccessError, match="primary"):
        check_status_change(keyset, 2, "destroyed")
    assert _statuses(rotated) == {1: "enabled", 2: "enabled"}


# --- files and KeyRings made by hand ---


def test_a_keyset_without_a_master_field_is_read_as_env_and_keeps_working(rotated):
    doc = _doc(rotated)
    assert doc["master"] == {"source": "env"}
    del doc["master"]
    Path(rotated).write_text(json.dumps(doc))
    assert open_keyring(rotated).versions == (1, 2)
    disable_key(rotated, 1)
    assert _doc(rotated)["master"] == {"source": "env"}
    assert open_keyring(rotated).versions == (2,)


@pytest.mark.parametrize("status", ["revoked", "", "ENABLED"])
def test_an_unknown_status_makes_the_keyset_corrupt(rotated, status):
    doc = _doc(rotated)
    doc["keys"][0]["status"] = status
    Path(rotated).write_text(json.dumps(doc))
    with pytest.raises(KeyAccessError, match="corrupt"):
        open_keyring(rotated)


def test_keyring_statuses_name_the_version_and_what_to_do():
    ring = KeyRing({2: bytes([2]) * 32}, 2, {1: "disabled", 3: "destroyed"})
    with pytest.raises(KeyAccessError, match="key version 1 is disabled: enable it with 'veil keys enable --id 1'"):
        ring.resolve_version(1)
    with pytest.raises(KeyAccessError, match="key version 3 is destroyed"):
        ring.resolve_version(3)
    with pytest.raises(KeyAccessError, match="key version 4 is not in the keyset"):
        ring.resolve_version(4)
    assert repr(ring) == "KeyRing(versions=[2], primary=2)"
