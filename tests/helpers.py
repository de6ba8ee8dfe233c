"""Helpers shared by the test modules (importable as `helpers`: pytest puts tests/ on the path)."""

import contextlib
import io
from dataclasses import dataclass

from veil.pipelines.cli import main


@dataclass
class Result:
    """What a `veil` command did: its exit code and what it printed."""

    code: int
    out: str
    err: str


def cli(*args) -> Result:
    """`veil ARGS` in this process, capturing stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return Result(code, out.getvalue(), err.getvalue())
