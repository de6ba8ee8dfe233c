"""`veil scan`: read a sample of an input through `veil run`'s readers and scan every column.

The figures (`transforms/detect/scan.py`) and the suggested actions (`transforms/detect/suggest.py`)
never hold a value of the data; neither does the JSON document made here.
"""

from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa

from veil.transforms.detect.scan import ColumnScan, scan_table
from veil.transforms.detect.suggest import Suggestion, suggest_all
from veil.transforms.io import format_of, match_inputs, read_head, read_schema

DEFAULT_SAMPLE = 10_000


@dataclass(frozen=True)
class InputScan:
    """A scanned sample of an input.

    Attributes:
        input: the input as given (a path, folder or glob).
        rows_sampled: the rows read (the first ones, in file order).
        schema: the input's schema, as `veil run` reads it.
        columns: one `ColumnScan` per column, in schema order.
        subject: the column chosen as the data subject, if any.
        suggestions: column name -> its suggested action.
        sample: the sampled rows themselves, for figures computed later over them (consent
            shares); never printed or written.
    """

    input: str
    rows_sampled: int
    schema: pa.Schema
    columns: list[ColumnScan]
    subject: str | None
    suggestions: dict[str, Suggestion]
    sample: pa.Table


def scan_input(pattern: str, sample: int = DEFAULT_SAMPLE, at: date | None = None) -> InputScan:
    """Scan the first `sample` rows of the input `pattern` names (`at`: the date age bands count on).

    Raises:
        InputError: the input matches no file, or a file cannot be read.
    """
    files = match_inputs(pattern)
    fmt = format_of(files[0])
    schema = read_schema(files, fmt)
    table = read_head(files, fmt, schema, sample)
    columns = scan_table(table)
    subject, suggestions = suggest_all(columns, at or date.today())
    return InputScan(pattern, table.num_rows, schema, columns, subject, suggestions, table)


def scan_document(scan: InputScan) -> dict[str, Any]:
    """The `--json` document: `{"rows_sampled": N, "columns": {NAME: {type, entities, free_text, suggested}}}`."""
    return {
        "rows_sampled": scan.rows_sampled,
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
