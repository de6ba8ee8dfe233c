"""Packaging guard-rails: the wheel holds only `veil/...`, and the installed `veil` works anywhere."""

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SKIP = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*cache", "veil-demo", ".hypothesis", "bench"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("pkg")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(work / "dist"),
        ],
        check=True,
        capture_output=True,
    )
    return next((work / "dist").glob("veil-*.whl"))


def test_the_wheel_contains_only_veil(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert names
    outside = [n for n in names if not n.startswith(("veil/", "veil-"))]
    assert outside == []
    for expected in (
        "veil/__init__.py",
        "veil/keys/_primitives.py",
        "veil/transforms/actions/mask.py",
        "veil/pipelines/cli.py",
        "veil/configs/analytics.yaml",
        "veil/configs/policy.schema.json",
        "veil/py.typed",
    ):
        assert expected in names
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)


def test_the_installed_command_works_outside_the_repository(wheel, tmp_path):
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    site = next(env_dir.glob("lib/python*/site-packages"))
    # dependencies come from this environment; veil itself only from the wheel
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run(
        [env_dir / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [python, "-c", "import veil, veil.pipelines.cli as c; print(veil.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(site) in where.stdout
    helped = subprocess.run(
        [env_dir / "bin" / "veil", "--help"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert helped.returncode == 0, helped.stderr
    assert "run" in helped.stdout and "validate" in helped.stdout
    shipped = site / "veil" / "configs" / "marketing.yaml"
    checked = subprocess.run(
        [env_dir / "bin" / "veil", "validate", shipped], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert "purpose marketing" in checked.stdout
