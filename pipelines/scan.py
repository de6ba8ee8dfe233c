"""`veil scan`: a uniform random sample of an input, read through `veil run`'s readers, and every column scanned.

The whole input is read (every file, every row group), on this process and one batch at a
time: the sample (`transforms/sample.py`) holds at most twice its rows, beside one batch.

The figures (`transforms/detect/scan.py`) and the suggested actions (`transforms/detect/suggest.py`)
never hold a value of the data; neither does the JSON document made here.
"""

from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa

from veil.pipelines.job import open_input
from veil.transforms.detect import DEFAULT_REGIONS
from veil.transforms.detect.scan import ColumnScan, scan_table
from veil.transforms.detect.suggest import Suggestion, suggest_all
from veil.transforms.io import read_file
from veil.transforms.sample import RowSample

DEFAULT_SAMPLE = 10_000


@dataclass(frozen=True)
class InputScan:
    """A scanned sample of an input.

    Attributes:
        input: the input as given (a path, folder or glob).
        rows_sampled: the rows sampled: min(sample size, rows_read), drawn uniformly at random.
        rows_read: the rows of the whole input.
        schema: the input's schema, as `veil run` reads it.
        columns: one `ColumnScan` per column, in schema order.
        regions: the phone regions national numbers were read in.
        subject: the column chosen as the data subject, if any.
        suggestions: column name -> its suggested action.
        sample: the sampled rows themselves, for figures computed later over them (consent
            shares); never printed or written.
    """

    input: str
    rows_sampled: int
    rows_read: int
    regions: tuple[str, ...]
    schema: pa.Schema
    columns: list[ColumnScan]
    subject: str | None
    suggestions: dict[str, Suggestion]
    sample: pa.Table


def scan_input(
    pattern: str,
    sample: int = DEFAULT_SAMPLE,
    at: date | None = None,
    *,
    regions: tuple[str, ...] = DEFAULT_REGIONS,
    seed: int | None = 0,
) -> InputScan:
    """Scan a uniform random sample of `sample` rows of the input `pattern` names.

    Args:
        at: the date age bands count on (default today).
        regions: the phone regions national numbers are read in (checked by the caller).
        seed: seeds the sample (the same seed over the same input gives the same rows).

    Raises:
        InputError: the input matches no file, mixes formats, or a file cannot be read.
    """
    source = open_input(pattern)
    schema = source.schema
    drawn = RowSample(sample, schema, seed)
    for path in source.files:
        for batch in read_file(path, source.format, schema):
            drawn.add(batch)
    table = drawn.table()
    columns = scan_table(table, regions)
    subject, suggestions = suggest_all(columns, at or date.today(), regions)
    return InputScan(pattern, table.num_rows, drawn.rows_seen, regions, schema, columns, subject, suggestions, table)


def scan_document(scan: InputScan) -> dict[str, Any]:
    """The `--json` document: `{"rows_sampled", "rows_read", "columns": {NAME: {type, entities, free_text,
    suggested}}}` (see the README, Scan an input)."""
    return {
        "rows_sampled": scan.rows_sampled,
        "rows_read": scan.rows_read,
        "columns": {
            column.name: {
                "type": column.type,
                "entities": dict(column.entities),
                "free_text": column.free_text,
                "suggested": scan.suggestions[column.name].settings,
            }
            for column in scan.columns
        },
    }
