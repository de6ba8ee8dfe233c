"""The spans of free text verification compares with raw values, against the documented rule in plain Python."""

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from veil.transforms.inside_text import MAX_CHARS, MAX_TOKENS, MIN_CHARS, TRIM, is_span, normal_forms, spans

CELLS = [
    "Call Dr. Ann Lee-Smith, today",
    "  - C00012 -  ",
    "Paid (555) 123-4567.\nThanks",
    "",
    "short",
    "one two three four five six seven eight",
    "«Müller» wrote — see “Okonkwo”…",
]


def rule(cell: str) -> set[str]:
    """Runs of 1 to MAX_TOKENS whitespace-separated tokens, joined by one space, TRIM stripped, of
    MIN_CHARS to MAX_CHARS characters."""
    tokens = cell.split()
    runs = {" ".join(tokens[i:j]).strip(TRIM) for i in range(len(tokens)) for j in range(i + 1, i + MAX_TOKENS + 1)}
    return {run for run in runs if MIN_CHARS <= len(run) <= MAX_CHARS}


def spans_by_cell(cells: list[str]) -> list[set[str]]:
    found, owners = spans(pa.array(cells, pa.string()))
    by_cell: list[set[str]] = [set() for _ in cells]
    for text, owner in zip(found.to_pylist(), owners.tolist()):
        by_cell[owner].add(text)
    return by_cell


def test_spans_follow_the_rule():
    assert spans_by_cell(CELLS) == [rule(cell) for cell in CELLS]


def test_what_is_and_is_not_found():
    call, ticket, paid, _, _, long, quoted = spans_by_cell(CELLS)
    assert {"Ann Lee-Smith", "Lee-Smith", "Dr. Ann Lee-Smith"} <= call
    assert "Smith" not in call and "Lee" not in call  # glued inside a token; shorter than MIN_CHARS
    assert ticket == {"C00012"}
    assert {"555) 123-4567", "123-4567", "Paid (555) 123-4567"} <= paid  # across a line break: one space
    assert "one two three four five six" in long and "one two three four five six seven" not in long
    assert {"Müller", "Okonkwo"} <= quoted  # Unicode quotes trimmed


def test_normal_forms_are_the_spans_a_value_would_be():
    values = ["(555) 123-4567", "Ann   Lee", "plain", "C00012", " Lindqvist.", "x" * (MAX_CHARS + 5) + " y"]
    assert normal_forms(pa.array(values)).to_pylist() == ["555) 123-4567", "Ann Lee", "Lindqvist"]
    for value in values:  # a value inside a cell is found as its normal form (or itself)
        normal = " ".join(value.split()).strip(TRIM)
        if MIN_CHARS <= len(normal) <= MAX_CHARS:
            assert normal in rule(f"see {value}, thanks")


def test_a_cell_is_one_of_its_spans_only_in_normal_form():
    cells = ["C00012", "Case of X9", " C00012", "C00012.", "a1 b2 c3 d4 e5 f6", "a1 b2 c3 d4 e5 f6 g7", "Ann  Lee"]
    assert is_span(pa.array(cells)).to_pylist() == [cell in rule(cell) for cell in cells]
    assert is_span(pa.array(cells)).to_pylist() == [True, True, False, False, True, False, False]


@given(st.lists(st.text(alphabet=st.sampled_from("ab1 -.,(\n"), max_size=40), max_size=6))
def test_spans_equal_the_rule_on_any_text(cells):
    assert spans_by_cell(cells) == [rule(cell) for cell in cells]
