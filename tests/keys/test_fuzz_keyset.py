"""Fuzzing the keyset loader: bit flips, truncation, wrong types.

A damaged keyset opens (the damage missed everything that matters) or is refused with one
`KeyAccessError` that shows no key material; `veil keys list` prints one `error:` line, exit 2.
"""

import base64
import json
import os
from pathlib import Path

import pytest
from fuzzing import assert_clean, assert_no_value, budget, fuzz, mutated
from helpers import cli
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import KeyAccessError
from veil.keys import init_keyset, open_keyring, rotate_keyset

MASTER = base64.b64encode(os.urandom(32)).decode()
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["enabled", "disabled", "destroyed", "env", "passphrase", "kms", "AAAA", 1, 2]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> tuple[Path, bytes]:
    """A keyset with two versions (one disabled) and a subject key, and its bytes."""
    path = tmp_path_factory.mktemp("keyset") / "keyset.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MASTER_KEY", MASTER)
        init_keyset(str(path))
        rotate_keyset(str(path))
    return path, path.read_bytes()


def secrets(data: bytes) -> list[str]:
    """The key material of a keyset file: its wrapped keys, and the master key."""
    doc = json.loads(data)
    return [MASTER, doc["subject_key"], *(k["wrapped"] for k in doc["keys"] if "wrapped" in k)]


def open_or_refuse(path: Path, original: bytes) -> None:
    try:
        open_keyring(str(path))
    except KeyAccessError as error:
        assert "\n" not in str(error)
        assert_no_value(str(error), secrets(original))


def replace_node(document, path, value):
    """`document` with the node at `path` (keys and indexes) set to `value`, or deleted if value is ...."""
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if value is ...:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


def node_paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from node_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from node_paths(value, (*prefix, index))


@st.composite
def wrong_types(draw, data: bytes) -> bytes:
    """The keyset document with one to three nodes replaced by other JSON values, or removed."""
    document = json.loads(data)
    for _ in range(draw(st.integers(1, 3))):
        targets = list(node_paths(document))
        if not targets:
            break
        replace_node(document, draw(st.sampled_from(targets)), draw(JSON_VALUES | st.just(...)))
    return json.dumps(document).encode()


@st.composite
def damaged(draw, data: bytes) -> bytes:
    return draw(mutated(data) | wrong_types(data))


def damaged_copy(original: bytes, folder: Path, data) -> Path:
    """A keyset file in `folder` holding a damaged copy of `original`."""
    target = folder / "keyset.json"
    target.write_bytes(data.draw(damaged(original)))
    return target


@fuzz
@given(st.data())
@budget(40)
def test_damaged_keysets_open_or_are_refused(original, tmp_path_factory, monkeypatch, data):
    monkeypatch.setenv("VEIL_MASTER_KEY", MASTER)
    raw = original[1]
    open_or_refuse(damaged_copy(raw, tmp_path_factory.mktemp("damaged"), data), raw)


@fuzz
@given(st.data())
@budget(10)
def test_veil_keys_list_on_a_damaged_keyset_prints_one_error_line(original, tmp_path_factory, monkeypatch, data):
    monkeypatch.setenv("VEIL_MASTER_KEY", MASTER)
    raw = original[1]
    target = damaged_copy(raw, tmp_path_factory.mktemp("damaged"), data)
    assert_clean(cli("keys", "list", "--keyset", target), secrets(raw))
