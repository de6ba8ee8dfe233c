"""Master key sources beside VEIL_MASTER_KEY: a passphrase (scrypt) and KMS plugins (veil.keys.kms, .gcp_kms).

The KMS tests use fakes: `FakeKms` (veil.keys.kms, tests only) and `FakeGcpKmsClient` below,
which stands in for `google.cloud.kms.KeyManagementServiceClient`; the real service is not
reachable from the tests.
"""

import base64
import hashlib
import json
import os
import sys
import unicodedata
from pathlib import Path
from types import MappingProxyType, SimpleNamespace

import pytest
from helpers import assert_no_secret, edit_json

from veil.errors import KeyAccessError
from veil.keys import keyset as keyset_module
from veil.keys import kms
from veil.keys.gcp_kms import GcpKms, key_name_from_uri
from veil.keys.keyring import open_keyring
from veil.keys.keyset import (
    KMS_MASTER_AD,
    MASTER_KEY_ENV,
    PASSPHRASE_ENV,
    SCRYPT_PARAMS,
    ScryptParams,
    dev_master_key_path,
    init_keyset,
    master_key_for,
    read_keyset,
    rotate_keyset,
    unwrap_keys,
)

INFO = "veil/v1/pseudonymize/analytics/customer"
PASSPHRASE = "correct horse battery staple"
FAKE_URI = "fake-kms://tests/key-a"
GCP_KEY = "projects/demo-project/locations/europe-west1/keyRings/veil/cryptoKeys/keyset"
GCP_URI = f"gcp-kms://{GCP_KEY}"
FAST_SCRYPT = ScryptParams(n=2**4, r=8, p=1)


# --- passphrase ---


@pytest.fixture
def fast_scrypt(monkeypatch) -> ScryptParams:
    """Cheap scrypt cost for new keysets in this test (the cost is recorded in the keyset)."""
    monkeypatch.setattr(keyset_module, "SCRYPT_PARAMS", FAST_SCRYPT)
    return FAST_SCRYPT


@pytest.fixture
def passphrase(monkeypatch, fast_scrypt) -> str:
    """VEIL_MASTER_PASSPHRASE set and VEIL_MASTER_KEY unset."""
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    return PASSPHRASE


@pytest.fixture
def passphrase_keyset(tmp_path, passphrase) -> str:
    path = str(tmp_path / "keyset.json")
    assert init_keyset(path) is False  # no development key file
    return path


def test_passphrase_round_trip(passphrase_keyset):
    assert not Path(dev_master_key_path(passphrase_keyset)).exists()
    ring = open_keyring(passphrase_keyset)
    assert ring.versions == (1,)
    pseudonym = ring.prf(INFO, 1).compute(b"C0000001")
    assert open_keyring(passphrase_keyset).prf(INFO, 1).compute(b"C0000001") == pseudonym
    assert rotate_keyset(passphrase_keyset) == 2
    rotated = open_keyring(passphrase_keyset)
    assert rotated.versions == (1, 2)
    assert rotated.prf(INFO, 1).compute(b"C0000001") == pseudonym


def test_passphrase_keyset_records_salt_and_cost_but_no_secret(passphrase_keyset):
    doc = json.loads(Path(passphrase_keyset).read_text())
    master = doc["master"]
    assert master["source"] == "passphrase"
    assert (master["scrypt"]["n"], master["scrypt"]["r"], master["scrypt"]["p"]) == (2**4, 8, 1)
    salt = base64.b64decode(master["scrypt"]["salt"])
    assert len(salt) == 16
    derived = hashlib.scrypt(PASSPHRASE.encode(), salt=salt, n=2**4, r=8, p=1, dklen=32)  # independent of veil
    keyset = read_keyset(passphrase_keyset)
    assert master_key_for(keyset) == derived
    roots = unwrap_keys(keyset, derived)
    assert set(roots) == {1}
    text = Path(passphrase_keyset).read_text()
    assert PASSPHRASE not in text
    assert_no_secret(text, derived, *roots.values())


def test_rotation_keeps_the_salt(passphrase_keyset):
    before = json.loads(Path(passphrase_keyset).read_text())["master"]
    rotate_keyset(passphrase_keyset)
    assert json.loads(Path(passphrase_keyset).read_text())["master"] == before


def test_each_passphrase_keyset_gets_its_own_salt(tmp_path, passphrase):
    paths = [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    for path in paths:
        init_keyset(path)
    salts = {json.loads(Path(p).read_text())["master"]["scrypt"]["salt"] for p in paths}
    assert len(salts) == 2
    assert master_key_for(read_keyset(paths[0])) != master_key_for(read_keyset(paths[1]))


def test_wrong_passphrase_is_a_clear_error_without_secrets(passphrase_keyset, monkeypatch):
    right = master_key_for(read_keyset(passphrase_keyset))
    wrong = "Tr0ub4dor&3 is not it"
    monkeypatch.setenv(PASSPHRASE_ENV, wrong)
    for attempt in (open_keyring, rotate_keyset):
        with pytest.raises(KeyAccessError) as info:
            attempt(passphrase_keyset)
        message = str(info.value)
        assert message == (
            f"cannot unwrap key version 1 of keyset {passphrase_keyset}: "
            f"wrong passphrase ({PASSPHRASE_ENV}) or the keyset was altered"
        )
        assert PASSPHRASE not in message and wrong not in message
        assert_no_secret(message, right)
        assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_passphrase_names_the_variable(passphrase_keyset, monkeypatch):
    monkeypatch.delenv(PASSPHRASE_ENV)
    expected = f"keyset {passphrase_keyset} is wrapped with a passphrase: set {PASSPHRASE_ENV}"
    with pytest.raises(KeyAccessError) as info:
        open_keyring(passphrase_keyset)
    assert str(info.value) == expected
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(os.urandom(32)).decode())  # not used for this keyset
    with pytest.raises(KeyAccessError) as info:
        open_keyring(passphrase_keyset)
    assert str(info.value) == expected


def test_passphrase_is_unicode_normalized(tmp_path, fast_scrypt, monkeypatch):
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    composed = "pässphräse for tests"
    monkeypatch.setenv(PASSPHRASE_ENV, unicodedata.normalize("NFC", composed))
    path = str(tmp_path / "keyset.json")
    init_keyset(path)
    monkeypatch.setenv(PASSPHRASE_ENV, unicodedata.normalize("NFD", composed))
    assert open_keyring(path).versions == (1,)


def test_production_scrypt_cost_is_the_default(tmp_path, monkeypatch):
    assert SCRYPT_PARAMS.n >= 2**15 and SCRYPT_PARAMS.r >= 8 and SCRYPT_PARAMS.p >= 1
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    path = str(tmp_path / "keyset.json")
    init_keyset(path)  # the real cost, once
    assert json.loads(Path(path).read_text())["master"]["scrypt"]["n"] == SCRYPT_PARAMS.n
    assert open_keyring(path).versions == (1,)


def _scrypt_field(name, value):
    return lambda doc: doc["master"]["scrypt"].update({name: value})


BAD_SCRYPT = {
    "n-not-power-of-two": _scrypt_field("n", 1000),
    "n-one": _scrypt_field("n", 1),
    "n-too-costly": _scrypt_field("n", 2**30),
    "n-text": _scrypt_field("n", "16"),
    "r-zero": _scrypt_field("r", 0),
    "short-salt": _scrypt_field("salt", base64.b64encode(bytes(8)).decode()),
    "salt-not-base64": _scrypt_field("salt", "@@@"),
    "no-scrypt": lambda doc: doc["master"].pop("scrypt"),
    "unknown-source": lambda doc: doc["master"].update(source="vault"),
}


@pytest.mark.parametrize("corrupt", BAD_SCRYPT.values(), ids=BAD_SCRYPT.keys())
def test_bad_master_records_make_the_keyset_corrupt(passphrase_keyset, corrupt):
    edit_json(passphrase_keyset, corrupt)
    with pytest.raises(KeyAccessError, match=f"keyset {passphrase_keyset} is corrupt"):
        open_keyring(passphrase_keyset)


def test_master_key_env_wins_over_passphrase_at_init(tmp_path, master_key, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    path = str(tmp_path / "keyset.json")
    init_keyset(path)
    assert json.loads(Path(path).read_text())["master"] == {"source": "env"}
    monkeypatch.delenv(PASSPHRASE_ENV)
    assert set(unwrap_keys(read_keyset(path), master_key)) == {1}


# --- KMS plugins, through FakeKms ---


@pytest.fixture
def fake_kms(monkeypatch) -> list[kms.FakeKms]:
    """Makes `fake-kms://` known for this test; returns the FakeKms instances built, in order."""
    built: list[kms.FakeKms] = []

    def factory(uri: str) -> kms.FakeKms:
        built.append(kms.FakeKms(uri))
        return built[-1]

    monkeypatch.setattr(kms, "SCHEMES", MappingProxyType({**kms.SCHEMES, "fake-kms": factory}))
    return built


def test_fake_kms_is_not_a_built_in_scheme(tmp_path, master_key):
    assert set(kms.SCHEMES) == {"gcp-kms"}
    path = str(tmp_path / "keyset.json")
    with pytest.raises(KeyAccessError, match="unknown KMS scheme 'fake-kms://'"):
        init_keyset(path, kms_uri=FAKE_URI)
    assert not Path(path).exists()


def test_kms_init_open_rotate(tmp_path, fake_kms, master_key, monkeypatch):
    path = str(tmp_path / "keyset.json")
    assert init_keyset(path, kms_uri=FAKE_URI) is False  # the KMS wins over VEIL_MASTER_KEY
    assert [c for k in fake_kms for c in k.calls] == [("wrap", KMS_MASTER_AD), ("unwrap", KMS_MASTER_AD)]
    doc = json.loads(Path(path).read_text())
    assert doc["master"]["source"] == "kms" and doc["master"]["uri"] == FAKE_URI
    wrapped_master = base64.b64decode(doc["master"]["wrapped"])
    master = kms.FakeKms(FAKE_URI).unwrap(wrapped_master, KMS_MASTER_AD)
    assert len(master) == 32 and master != master_key
    roots = unwrap_keys(read_keyset(path), master)
    assert_no_secret(Path(path).read_text(), master, *roots.values())

    monkeypatch.delenv(MASTER_KEY_ENV)  # not needed to open a KMS keyset
    ring = open_keyring(path)
    assert ring.versions == (1,)
    pseudonym = ring.prf(INFO, 1).compute(b"C0000001")
    assert rotate_keyset(path) == 2
    rotated = open_keyring(path)
    assert rotated.versions == (1, 2)
    assert rotated.prf(INFO, 1).compute(b"C0000001") == pseudonym
    assert json.loads(Path(path).read_text())["master"]["wrapped"] == doc["master"]["wrapped"]
    assert not Path(dev_master_key_path(path)).exists()


def test_each_kms_keyset_gets_its_own_master_key(tmp_path, fake_kms):
    paths = [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    for path in paths:
        init_keyset(path, kms_uri=FAKE_URI)
    assert master_key_for(read_keyset(paths[0])) != master_key_for(read_keyset(paths[1]))


def test_another_kms_key_cannot_open_the_keyset(tmp_path, fake_kms):
    path = str(tmp_path / "keyset.json")
    init_keyset(path, kms_uri=FAKE_URI)
    edit_json(path, lambda doc: doc["master"].update(uri="fake-kms://tests/key-b"))
    with pytest.raises(KeyAccessError) as info:
        open_keyring(path)
    assert str(info.value).startswith(f"keyset {path}: fake-kms://tests/key-b: the KMS could not unwrap")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("nope-kms://x/y", "unknown KMS scheme 'nope-kms://'"),
        ("projects/p/cryptoKeys/k", "is not a KMS URI"),
        ("gcp-kms://projects/p/keyRings/r", "is not a Google Cloud KMS key URI"),
    ],
)
def test_bad_kms_uris_are_refused_and_nothing_is_written(tmp_path, fake_kms, uri, message):
    path = str(tmp_path / "keyset.json")
    with pytest.raises(KeyAccessError, match=message) as info:
        init_keyset(path, kms_uri=uri)
    assert str(info.value).startswith(f"keyset {path}: ")
    assert not Path(path).exists() and not Path(dev_master_key_path(path)).exists()


class _BrokenKms:
    def __init__(self, unwrap_result: bytes | None = None):
        self.unwrap_result = unwrap_result

    def wrap(self, plaintext: bytes, associated_data: bytes) -> bytes:
        return b"opaque"

    def unwrap(self, wrapped: bytes, associated_data: bytes) -> bytes:
        if self.unwrap_result is None:
            raise RuntimeError("service detail that must not be shown")
        return self.unwrap_result


def test_plugin_errors_become_one_line_key_access_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(kms, "SCHEMES", {"broken-kms": lambda uri: _BrokenKms()})
    path = str(tmp_path / "keyset.json")
    with pytest.raises(KeyAccessError) as info:
        init_keyset(path, kms_uri="broken-kms://k")
    assert (
        str(info.value) == f"keyset {path}: the KMS key broken-kms://k could not unwrap the master key (RuntimeError)"
    )
    assert not Path(path).exists()


def test_init_refuses_a_kms_that_does_not_give_back_what_it_wrapped(tmp_path, monkeypatch):
    monkeypatch.setattr(kms, "SCHEMES", {"broken-kms": lambda uri: _BrokenKms(bytes(32))})
    path = str(tmp_path / "keyset.json")
    with pytest.raises(KeyAccessError, match="did not give back what it wrapped"):
        init_keyset(path, kms_uri="broken-kms://k")
    assert not Path(path).exists()


def test_a_master_key_of_the_wrong_size_is_refused(tmp_path, fake_kms, monkeypatch):
    path = str(tmp_path / "keyset.json")
    init_keyset(path, kms_uri=FAKE_URI)
    monkeypatch.setattr(kms, "SCHEMES", {"fake-kms": lambda uri: _BrokenKms(bytes(16))})
    with pytest.raises(KeyAccessError, match="did not return a 32-byte master key"):
        open_keyring(path)


def test_entry_point_plugins_are_found(monkeypatch):
    class _EntryPoint:
        def load(self):
            return kms.FakeKms

    def entry_points(*, group, name):
        return [_EntryPoint()] if (group, name) == ("veil.kms", "plugin-kms") else []

    monkeypatch.setattr(kms.metadata, "entry_points", entry_points)
    client = kms.client_for("plugin-kms://some/key")
    assert isinstance(client, kms.FakeKms) and isinstance(client, kms.KmsClient)
    assert client.unwrap(client.wrap(b"secret", b"ad"), b"ad") == b"secret"
    with pytest.raises(KeyAccessError, match="unknown KMS scheme 'other-kms://'"):
        kms.client_for("other-kms://some/key")


# --- Google Cloud KMS, with a fake client ---


class FakeGcpInvalidArgument(Exception):
    """Stands in for google.api_core.exceptions.InvalidArgument."""


class FakeGcpKmsClient:
    """A FAKE `google.cloud.kms.KeyManagementServiceClient`: records requests, encrypts with FakeKms."""

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []

    def _kms(self, name: str) -> kms.FakeKms:
        return kms.FakeKms(f"fake-gcp://{name}")

    def encrypt(self, request: dict):
        self.requests.append(("encrypt", dict(request)))
        sealed = self._kms(request["name"]).wrap(request["plaintext"], request["additional_authenticated_data"])
        return SimpleNamespace(ciphertext=sealed)

    def decrypt(self, request: dict):
        self.requests.append(("decrypt", dict(request)))
        try:
            fake = self._kms(request["name"])
            return SimpleNamespace(
                plaintext=fake.unwrap(request["ciphertext"], request["additional_authenticated_data"])
            )
        except KeyAccessError:
            raise FakeGcpInvalidArgument("400 Decryption failed: the ciphertext is invalid.") from None


def test_gcp_requests_are_shaped_as_cloud_kms_expects():
    client = FakeGcpKmsClient()
    gcp = GcpKms.from_uri(GCP_URI, client=client)
    wrapped = gcp.wrap(b"master key bytes", b"veil/v1/keyset/master")
    assert gcp.unwrap(wrapped, b"veil/v1/keyset/master") == b"master key bytes"
    assert client.requests == [
        (
            "encrypt",
            {
                "name": GCP_KEY,
                "plaintext": b"master key bytes",
                "additional_authenticated_data": b"veil/v1/keyset/master",
            },
        ),
        (
            "decrypt",
            {"name": GCP_KEY, "ciphertext": wrapped, "additional_authenticated_data": b"veil/v1/keyset/master"},
        ),
    ]
    assert repr(gcp) == f"GcpKms('{GCP_KEY}')"


def test_gcp_errors_are_translated_without_the_service_message():
    gcp = GcpKms.from_uri(GCP_URI, client=FakeGcpKmsClient())
    wrapped = gcp.wrap(b"master key bytes", b"ad")
    with pytest.raises(KeyAccessError) as info:
        gcp.unwrap(wrapped, b"other ad")
    message = str(info.value)
    assert message.startswith(f"Cloud KMS could not decrypt with {GCP_URI} (FakeGcpInvalidArgument)")
    assert "Decryption failed" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize(
    "uri",
    [
        "gcp-kms://",
        "gcp-kms://projects/p",
        f"gcp-kms://{GCP_KEY}/cryptoKeyVersions/1",
        f"gcp-kms://{GCP_KEY}/",
        f"aws-kms://{GCP_KEY}",
        "gcp-kms://projects//locations/l/keyRings/r/cryptoKeys/k",
    ],
)
def test_gcp_uris_must_name_a_crypto_key(uri):
    with pytest.raises(KeyAccessError, match="is not a Google Cloud KMS key URI"):
        key_name_from_uri(uri)


def test_gcp_without_the_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.cloud", None)  # as if google-cloud-kms were not installed
    with pytest.raises(KeyAccessError, match=r"pip install 'veil\[gcp\]'"):
        GcpKms.from_uri(GCP_URI)


def test_gcp_keyset_end_to_end_with_the_fake_client(tmp_path, monkeypatch):
    client = FakeGcpKmsClient()
    monkeypatch.setattr(kms, "SCHEMES", {"gcp-kms": lambda uri: GcpKms.from_uri(uri, client=client)})
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    path = str(tmp_path / "keyset.json")
    init_keyset(path, kms_uri=GCP_URI)
    assert json.loads(Path(path).read_text())["master"]["uri"] == GCP_URI
    assert open_keyring(path).versions == (1,)
    assert rotate_keyset(path) == 2
    assert [op for op, _ in client.requests] == ["encrypt", "decrypt", "decrypt", "decrypt"]
    assert {r["name"] for _, r in client.requests} == {GCP_KEY}
    assert {r["additional_authenticated_data"] for _, r in client.requests} == {KMS_MASTER_AD}
