"""Helpers shared by the test modules (importable as `helpers`: pytest puts tests/ on the path)."""

import contextlib
import io
from dataclasses import dataclass

from veil.errors import ErrorCode
from veil.pipelines.cli import main
from veil.transforms.columns import map_column


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


def per_value_outcome(fn, values: list) -> tuple[list, list[int], ErrorCode | None]:
    """The reference a column function or Arrow kernel must equal: `fn` per non-null value.

    Returns (outputs, positions `fn` refused (their output None), the first refusal's code).
    """
    out, failed, error = map_column(fn, values, None, memo=False)
    return out, failed, error.code if error else None
