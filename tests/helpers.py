"""Helpers shared by the test modules (importable as `helpers`: pytest puts tests/ on the path)."""

import base64
import contextlib
import io
import json
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from itertools import product
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from veil.errors import ErrorCode
from veil.pipelines.cli import main
from veil.transforms.columns import map_column
from veil.transforms.counting import metrics_namespace
from veil.transforms.enforce import EnforceKAnonymity
from veil.transforms.inside_text import MAX_CHARS, MAX_TOKENS, MIN_CHARS, TRIM

CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = "no chromium binary (CI installs Debian's chromium in .ci/run)"


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


def chromium_screenshot(page: Path, png: Path, size: tuple[int, int] = (1000, 800)) -> Counter:
    """Render the HTML file `page` in headless Chromium into `png`; the screenshot's pixel counts by colour.

    Asserts a screenshot of `size` was written and is not blank (callers skip without `CHROMIUM`).
    """
    from PIL import Image  # a dependency of apache-beam

    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={png.parent / (png.stem + '-profile')}",
        f"--screenshot={png}",
        f"--window-size={size[0]},{size[1]}",
        page.resolve().as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert png.is_file() and png.stat().st_size > 0, "chromium wrote no screenshot"
    image = Image.open(png).convert("RGB")
    assert image.size == size
    pixels = Counter(image.getdata())
    assert len(pixels) > 20, "the screenshot is blank"
    return pixels


def pixels_near(pixels: Counter, color: str, tolerance: int = 12) -> int:
    """How many of `pixels` are within `tolerance` (sum of channel differences) of `color` (`#rrggbb`)."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return sum(n for (pr, pg, pb), n in pixels.items() if abs(pr - r) + abs(pg - g) + abs(pb - b) <= tolerance)


def edit_json(path: str, edit) -> None:
    """Rewrite the JSON file at `path` after `edit(document)` changed it in place."""
    doc = json.loads(Path(path).read_text())
    edit(doc)
    Path(path).write_text(json.dumps(doc))


def run_enforce(policy, batches, folder: Path, *options: str):
    """(released rows as sorted JSON lines, the summary, the purpose's counters)."""
    pipeline = TestPipeline(options=PipelineOptions(list(options)))
    result = pipeline | beam.Create(batches).with_output_types(pa.RecordBatch) | EnforceKAnonymity(policy)
    _ = (
        result.batches
        | "Rows" >> beam.FlatMap(lambda b: [json.dumps(r, sort_keys=True, default=str) for r in b.to_pylist()])
        | "WriteRows" >> beam.io.WriteToText(str(folder / "rows"))
    )
    _ = (
        result.summary
        | "Json" >> beam.Map(lambda s: json.dumps(s, sort_keys=True))
        | "WriteSummary" >> beam.io.WriteToText(str(folder / "summary"))
    )
    finished = pipeline.run()
    finished.wait_until_finish()
    query = finished.metrics().query(MetricsFilter().with_namespace(metrics_namespace(policy.purpose)))
    counters = {c.key.metric.name: c.committed for c in query["counters"]}
    rows = sorted(line for f in folder.glob("rows*") for line in f.read_text().splitlines())
    (summary,) = [json.loads(line) for f in folder.glob("summary*") for line in f.read_text().splitlines()]
    return rows, summary, counters


def brute_force(records, key_of, level_counts, rules, *, sensitive=None, protected=()):
    """(best node, its suppressed records) over the whole lattice, the plain way, or None.

    `key_of(record, node)` is a record's class at `node`; the rules are those documented for
    `on_violation: generalize` (loss = mean of level / (levels - 1); ties to fewer suppressed,
    then to the smaller level tuple; a protected group is unfair above 2x the overall rate).
    """
    best = None
    for node in product(*(range(c) for c in level_counts)):
        keys = [key_of(r, node) for r in records]
        sizes = Counter(keys)
        distinct: dict[tuple, set] = {}
        for key, record in zip(keys, records):
            distinct.setdefault(key, set()).add(record[sensitive] if sensitive else None)
        gone = [sizes[key] < rules.k or (rules.l is not None and len(distinct[key]) < rules.l) for key in keys]
        suppressed = sum(gone)
        if suppressed > rules.max_suppression * len(records):
            continue
        if rules.fair and suppressed:
            rate = suppressed / len(records)
            unfair = False
            for name in protected:
                before = Counter(r[name] for r in records)
                lost = Counter(r[name] for r, g in zip(records, gone) if g)
                unfair |= any(lost[v] / before[v] > 2 * rate for v in before)
            if unfair:
                continue
        loss = sum(Fraction(level, c - 1) for level, c in zip(node, level_counts) if c > 1) / len(node)
        candidate = (loss, suppressed, node)
        if best is None or candidate < best:
            best = candidate
    return None if best is None else (best[2], best[1])


def text_places(cell: str) -> list[str]:
    """What verification compares a free-text cell by, the plain way (README "Verification"): each run
    of 1 to MAX_TOKENS whitespace-separated tokens that starts and ends at a token with a character
    outside TRIM, joined by one space, TRIM stripped, of MIN_CHARS to MAX_CHARS characters (one per
    place), and the cell itself (at least 4 characters) unless it is one of those runs."""
    tokens = cell.split()
    wordy = [any(ch not in TRIM for ch in token) for token in tokens]
    ends = [(i, j) for i in range(len(tokens)) for j in range(i, min(i + MAX_TOKENS, len(tokens)))]
    runs = [" ".join(tokens[i : j + 1]).strip(TRIM) for i, j in ends if wordy[i] and wordy[j]]
    places = [run for run in runs if MIN_CHARS <= len(run) <= MAX_CHARS]
    return places + ([cell] if len(cell) >= 4 and cell not in places else [])


def normal_text(value: str) -> str:
    """A raw value as a run of words: its tokens joined by one space, TRIM stripped."""
    return " ".join(value.split()).strip(TRIM)


def count_in_text(cells: list, values: set[str], exempt: set[str]) -> int:
    """The places in `cells` (None skipped) holding one of `values` (or its word form, of MIN_CHARS
    to MAX_CHARS characters) that is not one of `exempt` (nor its word form)."""
    forms = values | {normal_text(v) for v in values if MIN_CHARS <= len(normal_text(v)) <= MAX_CHARS}
    found = forms - exempt - {normal_text(v) for v in exempt}
    return sum(place in found for cell in cells if cell is not None for place in text_places(cell))
