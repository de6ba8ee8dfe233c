"""Run on Dataflow without packaging veil by hand: veil stages its own wheel and pinned dependencies.

A Dataflow worker starts from Beam's SDK container, which has Beam but not veil. Unless the
user packages the job themselves (`--sdk_container_image`, `--setup_file`,
`--requirements_file` or `--extra_package(s)`), `veil run ... --runner DataflowRunner` adds:

* `--extra_package <veil wheel>`: built once per version and source digest from the checkout
  veil runs from, cached under `$XDG_CACHE_HOME/veil/wheels` (default `~/.cache`);
* `--requirements_file <pins>` with `--requirements_cache skip`: veil's runtime dependencies
  (and theirs) pinned to the versions this driver runs with, so workers run what the driver
  tested; Beam itself comes with the container. `skip` stages the file as it is (nothing is
  downloaded at submission); workers install the pins when they start.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from veil.errors import ConfigError

PACKAGING_OPTIONS = ("--sdk_container_image", "--setup_file", "--requirements_file", "--extra_package")
DATAFLOW_RUNNERS = ("DataflowRunner", "dataflow")
_SOURCES = ("pyproject.toml", "veil", "keys", "transforms", "pipelines", "configs")
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
_PROVIDED = {"apache-beam"}  # in the SDK container, at the driver's version


def _option(beam_args: Sequence[str], name: str) -> str | None:
    for index, arg in enumerate(beam_args):
        if arg == name and index + 1 < len(beam_args):
            return beam_args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def runs_on_dataflow(beam_args: Sequence[str]) -> bool:
    """Whether the Beam options pick the Dataflow runner."""
    runner = _option(beam_args, "--runner") or ""
    return runner.rsplit(".", 1)[-1] in DATAFLOW_RUNNERS


def user_packages(beam_args: Sequence[str]) -> bool:
    """Whether the user packaged the job (a container image, setup file, requirements or extra packages)."""
    return any(arg.split("=", 1)[0].startswith(PACKAGING_OPTIONS) for arg in beam_args)


def source_root() -> Path:
    """The checkout veil runs from (with its pyproject.toml); `ConfigError` when it is installed without one."""
    import veil

    root = Path(veil.__file__).resolve().parents[1]
    project = root / "pyproject.toml"
    if not project.is_file() or not re.search(r'(?m)^name = "veil"$', project.read_text()):
        raise ConfigError(
            "cannot build veil's wheel for Dataflow: veil is not running from its source checkout; "
            "pass --extra_package path/to/veil-*.whl or --sdk_container_image (see deploy/dataflow/)"
        )
    return root


def source_digest(root: Path) -> str:
    """sha256 (first 12 hex digits) over the files that go into the wheel, so a changed checkout gets a new wheel."""
    digest = hashlib.sha256()
    for top in _SOURCES:
        path = root / top
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def cache_dir() -> Path:
    """Where built wheels are kept: `$XDG_CACHE_HOME/veil/wheels`, default `~/.cache/veil/wheels`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "veil" / "wheels"


def veil_wheel(cache: Path | None = None) -> Path:
    """veil's wheel for this version and source, built on first use (from a copy of the checkout) and cached."""
    root = source_root()
    version = metadata.version("veil")
    target = (cache or cache_dir()) / f"{version}-{source_digest(root)}"
    built = sorted(target.glob("veil-*.whl"))
    if built:
        return built[0]
    with tempfile.TemporaryDirectory() as work:
        copy = Path(work) / "src"
        copy.mkdir()
        for top in _SOURCES:
            source = root / top
            if source.is_dir():
                shutil.copytree(source, copy / top, ignore=_COPY_IGNORE)
            elif source.is_file():
                shutil.copy2(source, copy / top)
        shutil.copy2(root / "README.md", copy / "README.md")
        command = [sys.executable, "-m", "pip", "wheel", str(copy), "--no-deps", "--no-build-isolation", "-q"]
        done = subprocess.run([*command, "-w", str(Path(work) / "dist")], capture_output=True, text=True)
        if done.returncode != 0:
            raise ConfigError(
                "cannot build veil's wheel for Dataflow (pip wheel failed; setuptools and wheel must be installed): "
                "pass --extra_package path/to/veil-*.whl instead"
            )
        target.mkdir(parents=True, exist_ok=True)
        wheel = next((Path(work) / "dist").glob("veil-*.whl"))
        shutil.copy2(wheel, target / wheel.name)
    return target / wheel.name


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_requirements(distribution: str = "veil") -> list[str]:
    """`name==version` for every runtime dependency of `distribution` (and theirs), as installed here.

    Extras are not followed, except veil's `gcp` when it is installed (workers need Cloud KMS to
    open a KMS-wrapped keyset). Beam and what only Beam needs come with the worker container.
    """
    from packaging.requirements import Requirement  # here: a local run never needs it (15 ms to import)

    pins: dict[str, str] = {}
    pending = [(distribution, ("gcp",))]
    while pending:
        name, extras = pending.pop()
        requires = metadata.distribution(name).requires or []
        for line in requires:
            requirement = Requirement(line)
            environment = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environment):
                continue
            key = _canonical(requirement.name)
            if key in _PROVIDED or key in pins:
                continue
            try:
                pins[key] = f"{requirement.name}=={metadata.version(requirement.name)}"
            except metadata.PackageNotFoundError:
                continue  # an optional extra that is not installed
            pending.append((requirement.name, ()))
    return sorted(pins.values(), key=str.lower)


def staging_args(beam_args: Sequence[str], *, cache: Path | None = None) -> list[str]:
    """`beam_args`, plus veil's wheel and pinned requirements when the job runs on Dataflow unpackaged.

    Raises:
        ConfigError: veil's wheel cannot be built (the message says how to package it instead).
    """
    args = list(beam_args)
    if not runs_on_dataflow(args) or user_packages(args):
        return args
    wheel = veil_wheel(cache)
    requirements = wheel.with_name("requirements.txt")  # this environment's pins, written each time
    requirements.write_text("".join(pin + "\n" for pin in pinned_requirements()))
    return [
        *args,
        "--extra_package",
        str(wheel),
        "--requirements_file",
        str(requirements),
        "--requirements_cache",
        "skip",
    ]
