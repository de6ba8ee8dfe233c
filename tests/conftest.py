"""Shared test helpers: known-answer vector loading and a development keyset."""

import base64
import json
import os
from pathlib import Path

import pytest

VECTORS = Path(__file__).parent / "vectors"


def load_vectors(name: str) -> list[dict]:
    """The `vectors` list of tests/vectors/<name>.json (copied from the verified shared set)."""
    return json.loads((VECTORS / f"{name}.json").read_text())["vectors"]


@pytest.fixture
def master_key(monkeypatch) -> bytes:
    """A fresh master key in VEIL_MASTER_KEY for the test's duration."""
    key = os.urandom(32)
    monkeypatch.setenv("VEIL_MASTER_KEY", base64.b64encode(key).decode())
    return key


@pytest.fixture
def keyset(tmp_path, master_key) -> str:
    """A new keyset file under tmp_path, wrapped by the `master_key` fixture's key."""
    from veil.keys import init_keyset

    path = str(tmp_path / "keyset.json")
    init_keyset(path)
    return path
