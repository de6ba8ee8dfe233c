"""`veil keys ...`: init, rotate, list, disable, enable, destroy; exit codes, messages, and no key material."""

import json
import re
import sys
from pathlib import Path
from types import MappingProxyType

import pytest
from helpers import assert_no_secret

from veil.keys import keyset as keyset_module
from veil.keys import kms
from veil.keys.keyset import (
    MASTER_KEY_ENV,
    PASSPHRASE_ENV,
    ScryptParams,
    master_key_for,
    read_keyset,
    rotate_keyset,
    unwrap_keys,
)
from veil.pipelines.cli import main

PASSPHRASE = "correct horse battery staple"
FAKE_URI = "fake-kms://tests/cli-key"


class Run:
    """One in-process `veil` run: exit code and whitespace-normalized stdout / stderr."""

    def __init__(self, capsys, *args):
        self.code = main([str(a) for a in args])
        captured = capsys.readouterr()
        self.raw = captured.out + captured.err
        self.out, self.err = " ".join(captured.out.split()), " ".join(captured.err.split())


@pytest.fixture
def veil(capsys):
    """`veil(*args)` runs the CLI in-process; every run is kept in `veil.runs`."""
    runs: list[Run] = []

    def run(*args) -> Run:
        runs.append(Run(capsys, *args))
        return runs[-1]

    run.runs = runs
    return run


def _statuses(path: str) -> dict[int, str]:
    return {k["version"]: k["status"] for k in json.loads(Path(path).read_text())["keys"]}


def _table_rows(out: str) -> dict[str, str]:
    """version -> status from `veil keys list` (normalized)."""
    return dict(re.findall(r"│ (\d+) │ (enabled|disabled|destroyed) │", out))


def test_list_shows_versions_statuses_and_the_master_source(veil, keyset):
    rotate_keyset(keyset)
    result = veil("keys", "list", "--keyset", keyset)
    assert result.code == 0, result.err
    assert _table_rows(result.out) == {"1": "enabled", "2": "enabled"}
    assert "│ 2 │ enabled │" in result.out and "│ yes │" in result.out
    assert f"master key: {MASTER_KEY_ENV}" in result.out


def test_disable_and_enable(veil, keyset):
    rotate_keyset(keyset)
    disabled = veil("keys", "disable", "--id", 1, "--keyset", keyset)
    assert disabled.code == 0, disabled.err
    assert disabled.out == (
        f"keyset {keyset}: key version 1 is disabled; veil will neither read nor write with it "
        "(undo with 'veil keys enable --id 1')"
    )
    assert _statuses(keyset) == {1: "disabled", 2: "enabled"}
    assert _table_rows(veil("keys", "list", "--keyset", keyset).out) == {"1": "disabled", "2": "enabled"}
    again = veil("keys", "disable", "--id", 1, "--keyset", keyset)
    assert again.code == 0 and again.out == f"keyset {keyset}: key version 1 was already disabled"

    enabled = veil("keys", "enable", "--id", 1, "--keyset", keyset)
    assert enabled.code == 0, enabled.err
    assert enabled.out == f"keyset {keyset}: key version 1 is enabled again; it can read and write as before"
    assert _statuses(keyset) == {1: "enabled", 2: "enabled"}
    assert veil("keys", "enable", "--id", 1, "--keyset", keyset).out.endswith("was already enabled")


def test_disabling_the_primary_is_an_error_line_and_exit_2(veil, keyset):
    before = Path(keyset).read_bytes()
    result = veil("keys", "disable", "--id", 1, "--keyset", keyset)
    assert result.code == 2
    assert result.err == (
        f"error: key version 1 is the primary of keyset {keyset}: make a new primary with "
        f"'veil keys rotate --keyset {keyset}' first, then disable version 1"
    )
    assert result.out == ""
    assert Path(keyset).read_bytes() == before


def test_destroy_needs_yes(veil, keyset):
    rotate_keyset(keyset)
    wrapped = json.loads(Path(keyset).read_text())["keys"][0]["wrapped"]
    before = Path(keyset).read_bytes()
    refused = veil("keys", "destroy", "--id", 1, "--keyset", keyset)
    assert refused.code == 2
    assert refused.err == (
        "error: destroying key version 1 is irreversible: data made with it can no longer be read "
        "or reproduced; pass --yes to destroy it"
    )
    assert Path(keyset).read_bytes() == before

    destroyed = veil("keys", "destroy", "--id", 1, "--yes", "--keyset", keyset)
    assert destroyed.code == 0, destroyed.err
    assert destroyed.out.startswith(f"keyset {keyset}: key version 1 is destroyed; its material is gone")
    assert "Older copies of the keyset" in destroyed.out
    assert wrapped not in Path(keyset).read_text()
    assert _statuses(keyset) == {1: "destroyed", 2: "enabled"}
    assert _table_rows(veil("keys", "list", "--keyset", keyset).out) == {"1": "destroyed", "2": "enabled"}

    again = veil("keys", "destroy", "--id", 1, "--keyset", keyset)  # nothing left to confirm
    assert again.code == 0 and again.out == f"keyset {keyset}: key version 1 was already destroyed"
    back = veil("keys", "enable", "--id", 1, "--keyset", keyset)
    assert back.code == 2
    assert back.err == (
        f"error: key version 1 of keyset {keyset} is destroyed: its material is gone, so it cannot be enabled again"
    )


@pytest.mark.parametrize("yes", [[], ["--yes"]], ids=["without-yes", "with-yes"])
def test_destroy_checks_the_version_before_asking_for_yes(veil, keyset, yes):
    primary = veil("keys", "destroy", "--id", 1, *yes, "--keyset", keyset)
    assert primary.code == 2 and primary.err.startswith("error: key version 1 is the primary")
    unknown = veil("keys", "destroy", "--id", 9, *yes, "--keyset", keyset)
    assert unknown.code == 2 and unknown.err == f"error: keyset {keyset} has no key version 9 (versions: 1)"
    assert _statuses(keyset) == {1: "enabled"}


@pytest.mark.parametrize("command", ["disable", "enable", "destroy"])
def test_id_is_required_and_positive(veil, keyset, command):
    missing = veil("keys", command, "--keyset", keyset)
    assert missing.code == 2 and "Missing option '--id'" in missing.err
    zero = veil("keys", command, "--id", 0, "--keyset", keyset)
    assert zero.code == 2 and "--id" in zero.err


def test_commands_on_a_missing_keyset_fail_cleanly(veil, tmp_path):
    path = str(tmp_path / "none.json")
    for args in (["list"], ["disable", "--id", 1], ["enable", "--id", 1], ["destroy", "--id", 1, "--yes"]):
        result = veil("keys", *args, "--keyset", path)
        assert result.code == 2
        assert result.err.startswith(f"error: keyset {path} not found")


def test_init_with_a_passphrase(veil, tmp_path, monkeypatch):
    monkeypatch.setattr(keyset_module, "SCRYPT_PARAMS", ScryptParams(n=2**4, r=8, p=1))
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    path = str(tmp_path / "keyset.json")
    created = veil("keys", "init", "--keyset", path)
    assert created.code == 0, created.err
    assert created.out == (
        f"created keyset {path} (key version 1, primary); master key: passphrase from {PASSPHRASE_ENV} "
        "(scrypt n=16, r=8, p=1)"
    )
    assert created.err == ""  # no development key warning
    assert "master key: passphrase from VEIL_MASTER_PASSPHRASE" in veil("keys", "list", "--keyset", path).out
    assert veil("keys", "rotate", "--keyset", path).code == 0

    monkeypatch.setenv(PASSPHRASE_ENV, "not the passphrase")
    wrong = veil("keys", "rotate", "--keyset", path)
    assert wrong.code == 2
    assert wrong.err == (
        f"error: cannot unwrap key version 1 of keyset {path}: wrong passphrase ({PASSPHRASE_ENV}) "
        "or the keyset was altered"
    )
    monkeypatch.delenv(PASSPHRASE_ENV)
    missing = veil("keys", "rotate", "--keyset", path)
    assert missing.code == 2
    assert missing.err == f"error: keyset {path} is wrapped with a passphrase: set {PASSPHRASE_ENV}"
    for run in veil.runs:
        assert PASSPHRASE not in run.raw and "not the passphrase" not in run.raw


def test_init_with_a_kms_key(veil, tmp_path, monkeypatch, master_key):
    monkeypatch.setattr(kms, "SCHEMES", MappingProxyType({**kms.SCHEMES, "fake-kms": kms.FakeKms}))
    path = str(tmp_path / "keyset.json")
    created = veil("keys", "init", "--kms", FAKE_URI, "--keyset", path)
    assert created.code == 0, created.err
    assert f"master key: KMS key {FAKE_URI} (envelope" in created.out
    assert f"master key: KMS key {FAKE_URI}" in veil("keys", "list", "--keyset", path).out
    unknown = veil("keys", "init", "--kms", "nope-kms://k", "--keyset", str(tmp_path / "other.json"))
    assert unknown.code == 2 and unknown.err.startswith("error: keyset ") and "unknown KMS scheme" in unknown.err
    assert not (tmp_path / "other.json").exists()


def test_init_with_gcp_kms_without_the_extra(veil, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.cloud", None)
    uri = "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k"
    path = str(tmp_path / "keyset.json")
    result = veil("keys", "init", "--kms", uri, "--keyset", path)
    assert result.code == 2
    assert result.err == (
        f"error: keyset {path}: Google Cloud KMS support is not installed: pip install 'veil[gcp]' (google-cloud-kms)"
    )
    assert not Path(path).exists()


def test_no_key_material_appears_in_any_output(veil, tmp_path, master_key, monkeypatch):
    path = str(tmp_path / "keyset.json")
    for args in (["init"], ["rotate"], ["rotate"]):
        veil("keys", *args, "--keyset", path)
    keyset = read_keyset(path)
    roots = unwrap_keys(keyset, master_key_for(keyset))
    assert set(roots) == {1, 2, 3}
    wrapped = [k["wrapped"] for k in json.loads(Path(path).read_text())["keys"]]
    for args in (
        ["list"],
        ["disable", "--id", 1],
        ["list"],
        ["enable", "--id", 1],
        ["destroy", "--id", 2],
        ["destroy", "--id", 1, "--yes"],
        ["enable", "--id", 1],
        ["disable", "--id", 3],
        ["list"],
    ):
        veil("keys", *args, "--keyset", path)
    assert _statuses(path) == {1: "destroyed", 2: "enabled", 3: "enabled"}
    assert [run.code for run in veil.runs] == [0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 2, 0]
    for run in veil.runs:
        assert_no_secret(run.raw, master_key, *roots.values())
        assert not any(w in run.raw for w in wrapped)
