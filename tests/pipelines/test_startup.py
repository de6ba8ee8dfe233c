"""A `veil` job command starts without importing pandas and leaves the garbage collector as it found it.

Each case runs in a fresh interpreter: in the test process Beam and pandas are long imported.
"""

import subprocess
import sys
import textwrap


def fresh(code: str) -> list[str]:
    """Run `code` in a new interpreter; its printed lines."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


def test_beam_and_pyarrow_start_without_pandas_which_stays_importable():
    lines = fresh(
        """
        import gc, importlib.util, sys
        assert importlib.util.find_spec("pandas") is not None  # installed (the test extra)
        from veil.pipelines.startup import import_beam

        import_beam()
        import pyarrow as pa

        pa.array(["a", "b"])  # pyarrow's first conversion would import pandas
        print("apache_beam" in sys.modules, "pandas" in sys.modules, gc.isenabled(), gc.get_freeze_count() > 0)
        print(pa.table({"a": [1, 2]}).to_pandas()["a"].sum(), "pandas" in sys.modules)
        """
    )
    assert lines == ["True", "False", "True", "True", "3", "True"]


def test_an_imported_pandas_is_left_to_beam():
    lines = fresh(
        """
        import sys
        import pandas
        from veil.pipelines.startup import import_beam

        import_beam()
        print("apache_beam.typehints.pandas_type_compatibility" in sys.modules)
        """
    )
    assert lines == ["True"]


def test_veil_run_imports_beam_without_pandas(tmp_path):
    lines = fresh(
        f"""
        import sys
        from veil.pipelines.cli import main

        code = main(["run", "{tmp_path / "missing.yaml"}", "--input", "x.parquet", "--output", "{tmp_path / "out"}"])
        print(code, "apache_beam" in sys.modules, "pandas" in sys.modules)
        """
    )
    assert lines == ["2", "True", "False"]  # the policy is missing: Beam was imported first
