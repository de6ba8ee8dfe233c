"""What the kill and concurrency tests share: a small world with per-subject keys, real processes, invariants."""

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from veil.keys import init_keyset
from veil.pipelines.synthetic import write_customers

VEIL = Path(sys.executable).parent / "veil"
ROWS = 40
POLICY = """version: 1
purpose: support
subject: customer_id
keyset: keyset.json
erasure: {table: erasures}
subject_keys: subject-keys
fields:
  customer_id: {action: tokenize, as: customer_token}
  notes: {action: encrypt, per_subject: true}
  email: {action: encrypt, per_subject: true}
"""


@dataclass
class World:
    """A folder with a keyset, an input, a policy with per-subject keys and an erasure table."""

    root: Path
    env: dict

    @property
    def policy(self) -> Path:
        return self.root / "p.yaml"

    @property
    def keys(self) -> Path:
        return self.root / "subject-keys"

    @property
    def erasures(self) -> Path:
        return self.root / "erasures"

    def run_args(self, output: Path, *extra) -> list:
        return ["run", self.policy, "--input", self.root / "in.parquet", "--output", output, *extra]


def make_world(root: Path) -> World:
    """Build the world under `root` (the caller sets VEIL_MASTER_KEY in `env` and the process)."""
    env = {**os.environ, "VEIL_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    env.pop("VEIL_KEYSET", None)
    os.environ["VEIL_MASTER_KEY"] = env["VEIL_MASTER_KEY"]
    init_keyset(str(root / "keyset.json"))
    write_customers(str(root / "in.parquet"), ROWS)
    (root / "p.yaml").write_text(POLICY)
    (root / "erasures").mkdir()
    (root / "erasures" / "_veil_erasure_table").write_text('{"veil_erasure_table": 1}\n')
    return World(root, env)


@contextmanager
def world_env(root: Path) -> Iterator[World]:
    """`make_world(root)`, with its master key set and VEIL_KEYSET unset while the block runs (module fixtures)."""
    with pytest.MonkeyPatch.context() as mp:
        world = make_world(root)
        mp.setenv("VEIL_MASTER_KEY", world.env["VEIL_MASTER_KEY"])
        mp.delenv("VEIL_KEYSET", raising=False)
        yield world


def start(world: World, *args, pause_at: str | None = None) -> tuple[subprocess.Popen, Path]:
    """`veil ARGS` as a real process (optionally pausing at a phase); returns it and its pause marker."""
    marker = world.root / f"paused-{time.monotonic_ns()}"
    env = dict(world.env)
    if pause_at:
        env.update(VEIL_TEST_PAUSE_AT=pause_at, VEIL_TEST_PAUSE_FILE=str(marker))
    process = subprocess.Popen(
        [str(VEIL), *map(str, args)], cwd=world.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    return process, marker


def wait_for(marker: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until `process` reached its pause point."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the process never reached its pause point"
        time.sleep(0.02)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL, then reap (a zombie's pid still answers kill(pid, 0))."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.communicate()


def stagings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".veil-staging-*")) if folder.exists() else []


def published_parts(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("part-*")} if folder.exists() else set()


def journal_names(folder: Path) -> set[str]:
    """Every part name a dead run's publishing journal says it may have added or left."""
    names: set[str] = set()
    for journal in folder.glob(".veil-staging-*/_publishing.json"):
        doc = json.loads(journal.read_text())
        names.update(doc["adds"], doc["replaces"])
    return names


def key_table(world: World) -> list[dict]:
    """The subject key table's rows, each file read whole (a torn file fails here)."""
    return [row for path in sorted(world.keys.glob("keys-*.parquet")) for row in pq.read_table(path).to_pylist()]


def assert_consistent(world: World, folder: Path) -> dict | None:
    """No output that looks complete unless it is: the invariants a kill must never break.

    A visible manifest lists files that are all present and readable, with the rows it counts;
    parts it does not list exist only where a dead run's journal names them (the next run
    removes them); the key table is whole, one key per subject, and holds every key the
    published data is encrypted under. Returns the visible manifest (None if there is none).
    """
    keys = key_table(world)
    refs = [k["subject_ref"] for k in keys]
    assert len(refs) == len(set(refs)), "a subject has two keys"
    manifest_path = folder / "_manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    listed = set(manifest["output"]["files"]) if manifest else set()
    assert not (published_parts(folder) - listed) - journal_names(folder), "parts no manifest or journal accounts for"
    if manifest:
        rows = [row for name in sorted(listed) for row in pq.read_table(folder / name).to_pylist()]
        assert len(rows) == manifest["counts"]["written"] == ROWS
        key_ids = {k["key_id"] for k in keys}
        for row in rows:
            for field in ("notes", "email"):
                if row[field] is not None:
                    assert row[field].split(".")[1] in key_ids, "published data under a key that was not kept"
    return manifest
