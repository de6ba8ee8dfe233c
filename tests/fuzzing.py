"""What the fuzz tests share: example budgets, byte mutations, and the one check every case must pass.

Budgets: `make test` runs each target's small default; `make fuzz` sets VEIL_FUZZ_EXAMPLES=10000
for every target. Targets that run a Beam pipeline per example (a whole `veil run` or `veil
detokenize` in this process, about a second each) take at most VEIL_FUZZ_PIPELINE_EXAMPLES
(default 100) even then; the library-level targets behind them cover the same parsers at the
full budget.
"""

import os
import re
from collections.abc import Iterable

import pytest
from helpers import Result
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_EXAMPLES = int(os.environ.get("VEIL_FUZZ_EXAMPLES", "0"))
_PIPELINE_EXAMPLES = int(os.environ.get("VEIL_FUZZ_PIPELINE_EXAMPLES", "100"))

fuzz = pytest.mark.fuzz


def budget(default: int, *, pipeline: bool = False) -> settings:
    """Hypothesis settings for one fuzz target: `default` examples, or the `make fuzz` budget."""
    examples = _EXAMPLES or default
    if pipeline and _EXAMPLES:
        examples = min(examples, _PIPELINE_EXAMPLES)
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    )


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """`data` truncated, bit-flipped, with bytes overwritten, inserted or deleted (one to four edits)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "delete"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "truncate":
            del out[at:]
        elif kind == "flip" and out:
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite" and out:
            chunk = draw(st.binary(min_size=1, max_size=16))
            out[at : at + len(chunk)] = chunk
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete" and out:
            del out[at : at + draw(st.integers(1, 16))]
    return bytes(out)


def assert_clean(result: Result, personal: Iterable[str] = ()) -> None:
    """Success, or exactly one `error:` line and exit 2: no traceback, no bug exit, no personal value."""
    assert result.code in (0, 2), (result.code, result.err[-2000:])
    assert "Traceback" not in result.err, result.err[-2000:]
    if result.code == 2:
        lines = [line for line in result.err.splitlines() if line.strip() and not line.startswith("warning: ")]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert_no_value(result.err + result.out, personal)


def assert_no_value(text: str, personal: Iterable[str]) -> None:
    """None of the `personal` values (six characters or more) shows in `text`."""
    leaked = [value for value in personal if len(value) >= 6 and value in text]
    assert not leaked, f"a value shows in: {text[-500:]}"


def words(text: str) -> set[str]:
    """The runs of six or more word characters in `text` (the values a corrupt file may still hold)."""
    return set(re.findall(r"[\w@.+-]{6,}", text))
