"""`veil keys export-tink`: Tink, alone, decrypts what `veil run` wrote; one field per keyset; audited.

The independent check is the `tink` package: given only the exported keyset and the associated
data the command documents, it must decrypt every value of the field (nothing of veil's
decryption code is used), before and after `veil keys rotate`.
"""

import base64
import json
import os
from pathlib import Path
from types import MappingProxyType

import pyarrow.parquet as pq
import pytest
import tink
from helpers import assert_no_secret, cli
from tink import aead, daead, json_proto_keyset_format, proto_keyset_format, secret_key_access
from tink.proto import aes_gcm_pb2, aes_siv_pb2, tink_pb2

from veil.errors import ConfigError, KeyAccessError
from veil.keys import init_keyset, kms, rotate_keyset
from veil.keys.testing import fake_keyring
from veil.keys.tink_export import SECRET_ACCESS, SecretAccess, TinkKeySpec, export_tink_keyset
from veil.pipelines.synthetic import synthetic_customers, write_customers

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "configs" / "support.yaml"
ROWS = 60
SIV_AD = b"veil/v1/tokenize-siv/support/email"
CUSTOMER_AD = b"veil/v1/tokenize-siv/support/customer_id"
NOTES_AD = b"veil/v1/encrypt/support/notes"
FAKE_URI = "fake-kms://tests/bigquery-keyset-chain"

daead.register()
aead.register()


def token_bytes(token: str) -> bytes:
    """What the README's SQL does to a `v<N>.<base64url>` token: the part after the dot, to BYTES."""
    payload = token[token.index(".") + 1 :].translate(str.maketrans("-_", "+/"))
    return base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)


def run(world: Path, output: str) -> None:
    result = cli("run", SUPPORT, "--input", world / "in.parquet", "--output", world / output, "--keyset", world / "k")
    assert result.code == 0, result.err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_tink")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
        mp.delenv("VEIL_KEYSET", raising=False)
        mp.chdir(root)
        init_keyset(str(root / "k"))
        write_customers(str(root / "in.parquet"), ROWS)
        run(root, "v1")
        rotate_keyset(str(root / "k"))
        run(root, "v2")
        yield root


def export(world: Path, field: str, *extra, policy=SUPPORT):
    return cli("keys", "export-tink", policy, "--field", field, "--keyset", world / "k", *extra)


def keyset_handle(path: Path) -> tink.KeysetHandle:
    return proto_keyset_format.parse(path.read_bytes(), secret_key_access.TOKEN)


def consenting_inputs() -> dict[str, dict]:
    rows = synthetic_customers(ROWS).to_pylist()
    return {r["customer_id"]: r for r in rows if r["consents"] and "support" in r["consents"]}


def view(world: Path, name: str) -> list[dict]:
    return pq.read_table(world / name).to_pylist()


def test_tink_alone_decrypts_every_siv_token_of_the_field_before_and_after_rotation(world, tmp_path):
    out = tmp_path / "email.tink"
    result = export(world, "email_token", "--output", out, "--yes")
    assert result.code == 0, result.err
    assert SIV_AD.decode() in result.out  # the command says which associated data to use
    primitive = keyset_handle(out).primitive(daead.DeterministicAead)
    raw = consenting_inputs()
    customers = {}  # customer_token -> customer_id, from the encrypt field's twin below
    for name, version in (("v1", "v1."), ("v2", "v2.")):
        rows = view(world, name)
        assert len(rows) == len(raw) > 10
        tokens = [r["email_token"] for r in rows]
        assert all(t.startswith(version) for t in tokens)
        emails = {primitive.decrypt_deterministically(token_bytes(t), SIV_AD).decode() for t in tokens}
        assert emails == {r["email"].strip().lower() for r in raw.values()}
        customers[name] = {r["customer_token"] for r in rows}
    assert customers["v1"].isdisjoint(customers["v2"])  # rotation changed the tokens: both versions were read


def test_the_primary_is_the_version_the_policy_writes_with(world, tmp_path):
    out = tmp_path / "email.tink"
    assert export(world, "email_token", "--output", out, "--yes").code == 0
    info = keyset_handle(out).keyset_info()
    assert info.primary_key_id == 2
    assert sorted((k.key_id, k.output_prefix_type, k.status) for k in info.key_info) == [
        (1, tink_pb2.RAW, tink_pb2.ENABLED),
        (2, tink_pb2.RAW, tink_pb2.ENABLED),
    ]
    primitive = keyset_handle(out).primitive(daead.DeterministicAead)
    for token in [r["email_token"] for r in view(world, "v2")]:
        plaintext = primitive.decrypt_deterministically(token_bytes(token), SIV_AD)
        assert primitive.encrypt_deterministically(plaintext, SIV_AD) == token_bytes(token)  # Tink writes veil's v2


def test_tink_alone_decrypts_every_ciphertext_of_an_encrypt_field(world, tmp_path):
    out = tmp_path / "notes.tink"
    result = export(world, "notes", "--output", out, "--yes")
    assert result.code == 0, result.err
    assert NOTES_AD.decode() in result.out
    keyset = tink_pb2.Keyset.FromString(out.read_bytes())
    assert [k.key_data.type_url for k in keyset.key] == ["type.googleapis.com/google.crypto.tink.AesGcmKey"] * 2
    assert {len(aes_gcm_pb2.AesGcmKey.FromString(k.key_data.value).key_value) for k in keyset.key} == {32}
    primitive = keyset_handle(out).primitive(aead.Aead)
    raw = consenting_inputs()
    expected = sorted(r["notes"] for r in raw.values() if r["notes"] is not None)
    assert len(expected) > 10
    for name in ("v1", "v2"):
        sealed = [r["notes"] for r in view(world, name) if r["notes"] is not None]
        assert sorted(primitive.decrypt(token_bytes(t), NOTES_AD).decode() for t in sealed) == expected


def test_a_keyset_for_one_field_cannot_decrypt_another_fields_values(world, tmp_path):
    email, customer, notes = tmp_path / "email", tmp_path / "customer", tmp_path / "notes"
    for field, out in (("email_token", email), ("customer_token", customer), ("notes", notes)):
        assert export(world, field, "--output", out, "--yes").code == 0
    rows = view(world, "v2")
    email_daead = keyset_handle(email).primitive(daead.DeterministicAead)
    customer_daead = keyset_handle(customer).primitive(daead.DeterministicAead)
    sealed_note = next(r["notes"] for r in rows if r["notes"] is not None)
    for row in rows[:10]:
        for ad in (SIV_AD, CUSTOMER_AD):
            with pytest.raises(tink.TinkError):
                email_daead.decrypt_deterministically(token_bytes(row["customer_token"]), ad)
            with pytest.raises(tink.TinkError):
                customer_daead.decrypt_deterministically(token_bytes(row["email_token"]), ad)
        with pytest.raises(tink.TinkError):  # an AES-SIV key is no AES-GCM key, whatever the data says
            email_daead.decrypt_deterministically(token_bytes(sealed_note), NOTES_AD)
        assert customer_daead.decrypt_deterministically(token_bytes(row["customer_token"]), CUSTOMER_AD)
    notes_aead = keyset_handle(notes).primitive(aead.Aead)
    sealed = next(r["notes"] for r in rows if r["notes"] is not None)
    with pytest.raises(tink.TinkError):
        notes_aead.decrypt(token_bytes(rows[0]["email_token"]), SIV_AD)
    with pytest.raises(tink.TinkError):  # the associated data binds the field: another one fails
        notes_aead.decrypt(token_bytes(sealed), SIV_AD)


def test_json_format_is_tinks_json_keyset(world, tmp_path):
    out = tmp_path / "email.json"
    assert export(world, "email_token", "--output", out, "--format", "json", "--yes").code == 0
    document = json.loads(out.read_text())
    assert document["primaryKeyId"] == 2 and {k["outputPrefixType"] for k in document["key"]} == {"RAW"}
    handle = json_proto_keyset_format.parse(out.read_text(), secret_key_access.TOKEN)
    token = view(world, "v1")[0]["email_token"]
    assert handle.primitive(daead.DeterministicAead).decrypt_deterministically(token_bytes(token), SIV_AD)


def test_kms_wraps_the_binary_keyset_with_a_plain_encrypt(world, tmp_path, monkeypatch):
    monkeypatch.setattr(kms, "SCHEMES", MappingProxyType({**kms.SCHEMES, "fake-kms": kms.FakeKms}))
    out = tmp_path / "wrapped"
    result = export(world, "email_token", "--output", out, "--kms", FAKE_URI, "--yes")
    assert result.code == 0, result.err
    with pytest.raises(tink.TinkError):  # not a cleartext keyset
        proto_keyset_format.parse(out.read_bytes(), secret_key_access.TOKEN)
    plain = kms.FakeKms(FAKE_URI).unwrap(out.read_bytes(), b"")  # what KEYS.KEYSET_CHAIN does with Cloud KMS
    handle = proto_keyset_format.parse(plain, secret_key_access.TOKEN)
    token = view(world, "v2")[3]["email_token"]
    assert handle.primitive(daead.DeterministicAead).decrypt_deterministically(token_bytes(token), SIV_AD)
    refused = export(world, "email_token", "--output", tmp_path / "j", "--kms", FAKE_URI, "--format", "json", "--yes")
    assert refused.code == 2 and "binary" in refused.err and not (tmp_path / "j").exists()


def _audit(world: Path) -> list[dict]:
    path = world / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_every_export_is_audited_and_shows_no_key_material(world, tmp_path):
    before = len(_audit(world))
    out = tmp_path / "email.tink"
    result = export(world, "email_token", "--output", out, "--yes")
    assert result.code == 0 and os.stat(out).st_mode & 0o777 == 0o600
    lines = _audit(world)[before:]
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "export-tink" and line["purpose"] == "support" and line["field"] == "email_token"
    assert line["key_versions"] == [1, 2] and line["primary"] == 2 and line["output"] == str(out)
    assert line["associated_data"] == SIV_AD.decode() and line["policy_sha256"]
    keys = [
        aes_siv_pb2.AesSivKey.FromString(k.key_data.value).key_value
        for k in tink_pb2.Keyset.FromString(out.read_bytes()).key
    ]
    assert {len(k) for k in keys} == {64}
    assert_no_secret(result.out + result.err + (world / "audit.jsonl").read_text(), *keys)


def test_without_yes_nothing_is_exported_or_audited(world, tmp_path):
    before = len(_audit(world))
    result = export(world, "email_token", "--output", tmp_path / "x")
    assert result.code == 2 and "--yes" in result.err
    assert not (tmp_path / "x").exists() and len(_audit(world)) == before


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("card_number", "ff1"),
        ("phone", "one-way"),
        ("signup_ts", "one-way"),
        ("no_such", "not an output field"),
    ],
)
def test_fields_tink_cannot_read_are_refused_with_the_reason(world, tmp_path, field, reason):
    before = len(_audit(world))
    result = export(world, field, "--output", tmp_path / "x", "--yes")
    assert result.code == 2 and reason in result.err and "Traceback" not in result.err
    assert not (tmp_path / "x").exists() and len(_audit(world)) == before


POLICY = """\
version: 1
purpose: crm
subject: customer_id
subject_keys: subject-keys
fields:
  customer_id: {action: tokenize, domain: customer}
  email: {action: tokenize, domain: customer, as: email_token}
  notes: {action: encrypt, per_subject: true}
  street: {action: encrypt}
  city: {action: encrypt}
  zip: {action: encrypt, as: zip_sealed}
"""


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("notes", "per subject"),
        ("customer_id", "also protects email_token"),
        ("street", "also protects city, zip_sealed"),
    ],
)
def test_keys_that_would_hand_out_more_than_the_field_are_refused(world, tmp_path, field, reason):
    (tmp_path / "p.yaml").write_text(POLICY)
    result = export(world, field, "--output", tmp_path / "x", "--yes", policy=tmp_path / "p.yaml")
    assert result.code == 2 and reason in result.err
    assert not (tmp_path / "x").exists()


def test_the_library_export_needs_the_access_token_and_a_usable_primary():
    spec = TinkKeySpec("deterministic_aead", "veil/v1/tokenize-siv/p/d", b"veil/v1/tokenize-siv/p/d")
    with pytest.raises(KeyAccessError, match="SECRET_ACCESS"):
        export_tink_keyset(fake_keyring(2), spec, primary=2, access=SecretAccess())
    with pytest.raises(KeyAccessError, match="version 3"):
        export_tink_keyset(fake_keyring(2), spec, primary=3, access=SECRET_ACCESS)
    with pytest.raises(ConfigError, match="format"):
        export_tink_keyset(fake_keyring(2), spec, primary=2, access=SECRET_ACCESS, fmt="xml")
