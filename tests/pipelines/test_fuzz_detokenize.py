"""Fuzzing token and ciphertext decoding in detokenize: random strings, truncated and bit-flipped
tokens of every kind (siv, ff1 over digits and letters, encrypt, per-subject encrypt, its key cells).

A value restores to what was protected, or counts as failed (or shredded); nothing escapes the
restore, and `veil detokenize` ends in success or one `error:` line, exit 2, showing no value.
"""

import base64
import json
import shutil
import string

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fuzzing import assert_clean, budget, fuzz
from helpers import cli
from hypothesis import given
from hypothesis import strategies as st

from veil.keys.keyring import KeyRing
from veil.transforms.actions.base import SUBJECT_KEY_COLUMN, BindContext
from veil.transforms.policy import parse_policy
from veil.transforms.registry import REGISTRY
from veil.transforms.reverse import FAILED, RESTORED, SHREDDED, BoundReverse, reverse_ops

POLICY = parse_policy(
    """version: 1
purpose: support
subject: customer_id
subject_keys: subject-keys
fields:
  customer_id: {action: tokenize, as: customer_token}
  email: {action: tokenize, method: siv, normalize: [strip, lower], as: email_token}
  card_number: {action: tokenize, method: ff1, alphabet: digits, keep_last: 4}
  code: {action: tokenize, method: ff1, alphabet: alnum}
  notes: {action: encrypt}
  memo: {action: encrypt, per_subject: true}
"""
)
FIELDS = ["customer_token", "email_token", "card_number", "code", "notes", "memo"]
KEYRING = KeyRing({1: bytes([1]) * 32, 2: bytes([2]) * 32}, 2, {}, bytes([9]) * 32)
PLAIN = {
    "customer_id": st.text(max_size=20),
    "email": st.emails().map(str.lower),
    "card_number": st.from_regex(r"\A\d{4}-\d{4}-\d{4}-\d{4}\Z"),
    "code": st.text(string.ascii_letters + string.digits, min_size=6, max_size=20),
    "notes": st.text(max_size=40),
    "memo": st.text(max_size=40),
}
B64 = string.ascii_letters + string.digits + "-_"


def forward(source: str):
    """The protecting function of `source` (per-subject ones take a key cell)."""
    spec = POLICY.fields[source]
    return REGISTRY[spec.action].bind(spec, BindContext("support", source, KEYRING, 2))


def key_cell() -> str:
    key_id, wrapped = KEYRING.create_subject_dek()
    return f"{key_id}:{base64.b64encode(wrapped).decode()}"


CELLS = [key_cell() for _ in range(3)]


@st.composite
def damaged_text(draw, text: str) -> str:
    """`text` truncated, with characters replaced, inserted or swapped in, or its payload bit-flipped."""
    kind = draw(st.sampled_from(["truncate", "replace", "insert", "flip", "prefix", "random"]))
    at = draw(st.integers(0, max(len(text) - 1, 0)))
    if kind == "truncate":
        return text[:at]
    if kind == "replace":
        return text[:at] + draw(st.characters()) + text[at + 1 :]
    if kind == "insert":
        return text[:at] + draw(st.text(min_size=1, max_size=4)) + text[at:]
    if kind == "prefix":
        head = draw(st.sampled_from(["v1.", "v2.", "v0.", "v-1.", "v99999999999999999999.", "s.", "s..", "v.", ""]))
        return head + text.partition(".")[2]
    if kind == "random":
        return draw(st.text(max_size=60) | st.text(B64 + ".:", max_size=60))
    head, dot, body = text.rpartition(".")
    try:
        payload = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return text
    if payload:
        payload[draw(st.integers(0, len(payload) - 1))] ^= 1 << draw(st.integers(0, 7))
    return head + dot + base64.urlsafe_b64encode(bytes(payload)).rstrip(b"=").decode()


@st.composite
def column(draw, source: str):
    """(plaintexts or None where damaged, protected texts, key cells) for one field."""
    protect, per_subject = forward(source), REGISTRY[POLICY.fields[source].action].per_subject(POLICY.fields[source])
    plain, texts, cells = [], [], []
    for _ in range(draw(st.integers(1, 12))):
        value = draw(PLAIN[source])
        cell = draw(st.sampled_from(CELLS)) if per_subject else None
        try:
            text = protect(value, cell) if per_subject else protect(value)
        except Exception:  # refused on protecting (an ff1 value too short): not what this fuzzes
            continue
        if draw(st.booleans()):
            damaged = draw(damaged_text(text))
            plain.append(None)
            texts.append(damaged)
        else:
            plain.append(value.strip().lower() if source == "email" else value)
            texts.append(text)
        if per_subject and draw(st.integers(0, 5)) == 0:
            cell = draw(st.none() | damaged_text(cell))
            plain[-1] = None
        cells.append(cell)
    return plain, texts, cells


@fuzz
@given(st.data())
@budget(80)
def test_damaged_tokens_restore_or_count_as_failed(data):
    field = data.draw(st.sampled_from(FIELDS))
    source = POLICY.outputs[field]
    plain, texts, cells = data.draw(column(source))
    reverse = BoundReverse(POLICY, reverse_ops(POLICY, [field]), KEYRING, 2)
    columns = {field: texts, SUBJECT_KEY_COLUMN: cells}
    restored, counts = reverse.apply_columns(columns)
    assert counts[RESTORED + field] + counts[FAILED + field] + counts[SHREDDED + field] == len(texts)
    for expected, got in zip(plain, restored[source]):
        if expected is not None:
            assert got == expected


WORLD_POLICY = """version: 1
purpose: support
subject: customer_id
keyset: keyset.json
subject_keys: subject-keys
fields:
  customer_id: {action: tokenize, as: customer_token}
  card_number: {action: tokenize, method: ff1, alphabet: digits, keep_last: 4}
  notes: {action: encrypt}
  email: {action: encrypt, per_subject: true}
"""
WORLD_FIELDS = ["customer_token", "card_number", "notes", "email"]


@pytest.fixture(scope="module")
def view(tmp_path_factory):
    """A keyset, a policy, and a view made by `veil run` from 30 synthetic customers."""
    from veil.keys import init_keyset
    from veil.pipelines.synthetic import write_customers

    root = tmp_path_factory.mktemp("fuzz-detokenize")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MASTER_KEY", base64.b64encode(bytes(range(32))).decode())
        mp.delenv("VEIL_KEYSET", raising=False)
        init_keyset(str(root / "keyset.json"))
        write_customers(str(root / "in.parquet"), 30)
        (root / "p.yaml").write_text(WORLD_POLICY)
        result = cli("run", root / "p.yaml", "--input", root / "in.parquet", "--output", root / "view")
        assert result.code == 0, result.err
        yield root, pq.read_table(root / "in.parquet")


@fuzz
@given(st.data())
@budget(1, pipeline=True)
def test_veil_detokenize_of_damaged_tokens_prints_one_error_line(view, tmp_path_factory, monkeypatch, data):
    root, raw = view
    monkeypatch.setenv("VEIL_MASTER_KEY", base64.b64encode(bytes(range(32))).decode())
    copy = tmp_path_factory.mktemp("damaged") / "view"
    shutil.copytree(root / "view", copy)
    part = sorted(copy.glob("part-*"))[0]
    table = pq.read_table(part)
    for field in WORLD_FIELDS:
        values = table.column(field).to_pylist()
        damaged = [data.draw(damaged_text(v)) if v is not None and data.draw(st.booleans()) else v for v in values]
        table = table.set_column(table.schema.get_field_index(field), field, pa.array(damaged, pa.string()))
    pq.write_table(table, part)
    manifest = json.loads((copy / "_manifest.json").read_text())
    manifest.get("output", {}).pop("sha256", None)
    (copy / "_manifest.json").write_text(json.dumps(manifest))
    on_error = data.draw(st.sampled_from(["fail", "null"]))
    out = tmp_path_factory.mktemp("restored") / "out"
    personal = {v for c in ("customer_id", "email", "notes", "card_number") for v in raw.column(c).to_pylist() if v}
    result = cli(
        "detokenize", root / "p.yaml", "--input", copy, "--output", out, "--fields", ",".join(WORLD_FIELDS),
        "--on-error", on_error,
    )  # fmt: skip
    assert_clean(result, personal)


def test_a_truncated_per_subject_ciphertext_or_key_cell_counts_as_failed():
    """Found by fuzzing: a base64 payload of 4n+1 characters raised binascii.Error (exit 1)."""
    text = forward("memo")("hello", CELLS[0])
    head, _, body = text.rpartition(".")
    cut = head + "." + body[: len(body) - (len(body) % 4) - 3]  # 4n+1 characters
    cell_id, _, wrapped = CELLS[1].partition(":")
    reverse = BoundReverse(POLICY, reverse_ops(POLICY, ["memo"]), KEYRING, 2)
    restored, counts = reverse.apply_columns(
        {"memo": [cut, forward("memo")("hi", CELLS[1])], SUBJECT_KEY_COLUMN: [CELLS[0], f"{cell_id}:{wrapped[:-3]}"]}
    )
    assert restored["memo"] == [None, None] and counts[FAILED + "memo"] == 2
