"""`veil` on bad input: one `error:` line naming the culprit, exit 2, no traceback, no personal value.

Most cases fail before any data moves and run in-process; the data error (`on_error: fail`) runs
through Beam, once in-process and once as a real `veil` subprocess.
"""

import base64
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import Result, cli

from veil.keys import init_keyset
from veil.pipelines.synthetic import CUSTOMER_SCHEMA, synthetic_customers, write_customers

ROOT = Path(__file__).resolve().parents[2]
ANALYTICS = ROOT / "configs" / "analytics.yaml"
VEIL = Path(sys.prefix) / "bin" / "veil"
ROWS = 200
ACTIONS = (
    "keep",
    "drop",
    "redact",
    "replace",
    "mask",
    "pseudonymize",
    "tokenize",
    "encrypt",
    "generalize",
    "date_shift",
    "fake",
)
BAD_DATE = "not-a-date"


@dataclass
class World:
    root: Path
    parquet: Path
    keyset: Path
    personal: set[str]  # raw personal values of the input, none of which may reach a message


def veil_process(*args, cwd: Path) -> Result:
    assert VEIL.exists(), VEIL
    process = subprocess.run(
        [str(VEIL), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=dict(os.environ), timeout=180
    )
    return Result(process.returncode, process.stdout, process.stderr)


def personal_values(table: pa.Table) -> set[str]:
    columns = ("customer_id", "first_name", "last_name", "email", "phone", "street", "city", "card_number", "notes")
    return {v.strip() for c in columns for v in table.column(c).to_pylist() if v and len(v.strip()) >= 6}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-errors")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
        mp.delenv("VEIL_KEYSET", raising=False)
        init_keyset(str(root / "keyset.json"))
        write_customers(str(root / "in.parquet"), ROWS)
        yield World(root, root / "in.parquet", root / "keyset.json", personal_values(synthetic_customers(ROWS)))


def assert_refused(result: Result, *culprits: str, personal=()) -> str:
    """Exit 2, one `error:` message naming every culprit, no traceback, no personal value."""
    assert result.code == 2, (result.code, result.err)
    assert result.err.startswith("error: "), result.err
    assert "Traceback" not in result.err and "Traceback" not in result.out
    message = " ".join(result.err.split())  # undo any line wrapping
    for culprit in culprits:
        assert culprit in message, (culprit, message)
    for value in personal:
        assert value not in result.err and value not in result.out, "a personal value reached the console"
    return message


def write_policy(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(text)
    return path


def run(world: World, policy, output: Path, *extra, input=None) -> Result:
    return cli("run", policy, "--input", input or world.parquet, "--output", output, "--keyset", world.keyset, *extra)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_personal_values_are_there_to_find(world):
    """The checks below compare against real values of the input."""
    assert len(world.personal) > 5 * ROWS
    assert any("@" in v for v in world.personal)


def test_unknown_action(world):
    policy = write_policy(
        world.root,
        "scramble.yaml",
        (
            "version: 1\n"
            "purpose: analytics\n"
            "fields:\n"
            "  customer_id: {action: pseudonymize, domain: customer}\n"
            "  email: {action: scramble}\n"
        ),
    )
    for result in (cli("validate", policy), run(world, policy, world.root / "out-scramble")):
        message = assert_refused(result, "scramble.yaml", "email", "scramble", "line 5", *ACTIONS)
        assert "keep" in message.split("scramble", 2)[-1]  # the allowed actions come after the culprit
    assert not (world.root / "out-scramble").exists()


def test_policy_field_missing_from_the_input(world):
    policy = write_policy(
        world.root,
        "loyalty.yaml",
        (
            "version: 1\n"
            "purpose: analytics\n"
            "fields:\n"
            "  customer_id: {action: pseudonymize, domain: customer}\n"
            "  loyalty_tier: {action: keep}\n"
        ),
    )
    assert_refused(cli("validate", policy, "--input", world.parquet), "loyalty.yaml", "loyalty_tier")
    assert_refused(cli("plan", policy, "--input", world.parquet), "loyalty_tier")
    assert_refused(
        run(world, policy, world.root / "out-loyalty"), "loyalty.yaml", "loyalty_tier", personal=world.personal
    )
    assert files_under(world.root / "out-loyalty") == []


def test_default_error_names_every_unlisted_field(world):
    policy = write_policy(
        world.root,
        "strict.yaml",
        (
            "version: 1\n"
            "purpose: analytics\n"
            "default: error\n"
            "fields:\n"
            "  customer_id: {action: pseudonymize, domain: customer}\n"
            "  email: {action: drop}\n"
        ),
    )
    unlisted = [n for n in CUSTOMER_SCHEMA.names if n not in ("customer_id", "email")]
    assert len(unlisted) == 14
    message = assert_refused(
        run(world, policy, world.root / "out-strict"),
        "strict.yaml",
        "default: error",
        *unlisted,
        personal=world.personal,
    )
    assert "email," not in message and "customer_id," not in message  # listed fields are not blamed
    assert files_under(world.root / "out-strict") == []


def test_wrong_master_key(world, monkeypatch):
    monkeypatch.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    result = run(world, ANALYTICS, world.root / "out-wrong-key")
    message = assert_refused(result, str(world.keyset), "master key", personal=world.personal)
    assert os.environ["VEIL_MASTER_KEY"] not in message
    assert files_under(world.root / "out-wrong-key") == []


def test_missing_master_key(world, monkeypatch):
    monkeypatch.delenv("VEIL_MASTER_KEY")
    assert_refused(
        run(world, ANALYTICS, world.root / "out-no-key"), str(world.keyset), "VEIL_MASTER_KEY", personal=world.personal
    )


def test_missing_keyset(world):
    missing = world.root / "no-such-keyset.json"
    result = cli(
        "run", ANALYTICS, "--input", world.parquet, "--output", world.root / "out-no-keyset", "--keyset", missing
    )
    assert_refused(result, str(missing), "veil keys init", personal=world.personal)
    assert not missing.exists()
    assert files_under(world.root / "out-no-keyset") == []


def test_corrupt_parquet_input(world):
    corrupt = world.root / "x.parquet"
    corrupt.write_bytes(os.urandom(4096))
    assert_refused(run(world, ANALYTICS, world.root / "out-corrupt", input=corrupt), str(corrupt), "Parquet")
    assert files_under(world.root / "out-corrupt") == []


def test_input_that_matches_nothing(world):
    pattern = str(world.root / "nothing-*.parquet")
    assert_refused(run(world, ANALYTICS, world.root / "out-nothing", input=pattern), pattern, "matches no files")


def test_existing_output_names_overwrite(world):
    out = world.root / "out-existing"
    out.mkdir()
    (out / "part-00000-of-00001.parquet").write_bytes(b"previous")
    assert_refused(run(world, ANALYTICS, out), str(out), "--overwrite")
    assert (out / "part-00000-of-00001.parquet").read_bytes() == b"previous"


def test_unknown_output_format(world):
    assert_refused(run(world, ANALYTICS, world.root / "out-xml", "--format", "xml"), "xml", "parquet")


# ---------------------------------------------------------------- a value the policy refuses (through Beam)

WHEN_POLICY = (
    "version: 1\n"
    "purpose: analytics\n"
    "fields:\n"
    "  id: {action: keep}\n"
    "  when: {action: generalize, date: month, on_error: fail}\n"
)
WHEN_ROWS = [("r1", "2024-03-05"), ("r2", "2024-03-19"), ("r3", BAD_DATE), ("r4", "2024-04-01")]


def write_when_input(folder: Path, fmt: str) -> Path:
    path = folder / f"when.{fmt}"
    if fmt == "csv":
        path.write_text("id,when\n" + "".join(f"{i},{w}\n" for i, w in WHEN_ROWS))
    else:
        path.write_text("".join(f'{{"id": "{i}", "when": "{w}"}}\n' for i, w in WHEN_ROWS))
    return path


@pytest.mark.parametrize("fmt,where", [("csv", "in-process"), ("jsonl", "subprocess")])
def test_on_error_fail_stops_the_run_without_the_value(world, tmp_path, fmt, where):
    policy = write_policy(tmp_path, "when.yaml", WHEN_POLICY)
    data = write_when_input(tmp_path, fmt)
    out = tmp_path / "out"
    args = ["run", policy, "--input", data, "--output", out, "--keyset", world.keyset]
    result = cli(*args) if where == "in-process" else veil_process(*args, cwd=tmp_path)
    message = assert_refused(result, "'when'", "on_error: fail", personal=[BAD_DATE])
    assert "2024-03" not in message
    assert files_under(out) == []  # no manifest, no part files, no staging folder


def test_failed_overwrite_keeps_the_previous_output(world, tmp_path):
    policy = write_policy(tmp_path, "when.yaml", WHEN_POLICY)
    data = write_when_input(tmp_path, "jsonl")
    out = tmp_path / "out"
    out.mkdir()
    previous = {"_manifest.json": b'{"run_id": "previous"}\n', "part-00000-of-00001.parquet": b"previous"}
    for name, content in previous.items():
        (out / name).write_bytes(content)
    result = cli("run", policy, "--input", data, "--output", out, "--keyset", world.keyset, "--overwrite")
    assert_refused(result, "'when'", personal=[BAD_DATE])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == previous  # untouched, no staging left


def test_an_output_folder_holding_only_subfolders_is_not_empty(world, tmp_path):
    out = tmp_path / "out"
    (out / "analytics").mkdir(parents=True)
    assert_refused(run(world, ROOT / "configs" / "analytics.yaml", out), str(out), "--overwrite")
    assert files_under(out) == ["analytics"]
    foreign = run(world, ROOT / "configs" / "analytics.yaml", out, "--overwrite")
    assert_refused(foreign, "analytics", "did not write")
