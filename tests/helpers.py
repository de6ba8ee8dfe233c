"""Helpers shared by the test modules (importable as `helpers`: pytest puts tests/ on the path)."""

import base64
import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

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


def assert_no_secret(text: str, *secrets: bytes) -> None:
    """Assert no key bytes show in `text`: raw, hex (either case) or base64."""
    for secret in secrets:
        for form in (secret.decode("latin-1"), secret.hex(), secret.hex().upper(), base64.b64encode(secret).decode()):
            assert form not in text


def edit_json(path: str, edit) -> None:
    """Rewrite the JSON file at `path` after `edit(document)` changed it in place."""
    doc = json.loads(Path(path).read_text())
    edit(doc)
    Path(path).write_text(json.dumps(doc))
