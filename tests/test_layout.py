"""The layout holds: each top-level folder is one `veil` subpackage, and imports flow one way.

`veil.errors`/`veil._fs` <- `keys` <- `transforms` <- `pipelines`; lazy imports inside functions
count as much as those at the top of a module.
"""

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FOLDERS = {"veil.keys": "keys", "veil.transforms": "transforms", "veil.pipelines": "pipelines"}
# folder -> the veil packages its modules must not import
FORBIDDEN = {
    "keys": ("veil.transforms", "veil.pipelines"),
    "transforms": ("veil.pipelines",),
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, absolute, at any depth of the file (lazy imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_pyproject_maps_each_folder_into_the_veil_package():
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[tool.setuptools.package-dir]", 1)[1].split("\n[", 1)[0]
    mapping = dict(re.findall(r'^"([\w.]+)" = "([\w/]+)"', section, re.M))
    for package, folder in FOLDERS.items():
        assert mapping[package] == folder


@pytest.mark.parametrize("package, folder", sorted(FOLDERS.items()))
def test_the_installed_package_resolves_to_the_repository_folder(package, folder):
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve().parent == (ROOT / folder).resolve()


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_flow_one_way(folder):
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in imported_modules(path)
        if name.startswith(FORBIDDEN[folder])
    }
    assert wrong == set()


def test_errors_and_file_io_import_no_veil_layer():
    for name in ("errors.py", "_fs.py"):
        layers = [m for m in imported_modules(ROOT / "veil" / name) if m.startswith(tuple(FOLDERS))]
        assert layers == [], name


def test_the_import_check_sees_lazy_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from veil.pipelines.cli import main\n    import veil.pipelines.run\n")
    assert {"veil.pipelines.cli", "veil.pipelines.run"} <= imported_modules(probe)


def test_deploy_holds_launchers_not_a_package():
    """deploy/ is shipped beside the package, not in it: its Python files only call veil.pipelines."""
    files = sorted((ROOT / "deploy").rglob("*.py"))
    assert files and not list((ROOT / "deploy").rglob("__init__.py"))
    text = (ROOT / "pyproject.toml").read_text()
    assert '"deploy' not in text.split("[tool.setuptools]", 1)[1]  # never mapped into the wheel
    for path in files:
        veil_imports = {name for name in imported_modules(path) if name.split(".")[0] == "veil"}
        assert veil_imports and all(name.startswith("veil.pipelines.") for name in veil_imports), path
