"""The engine's column plumbing: the Arrow consent gate and functions over Arrow columns and lists.

`map_array` must give what `map_column` gives per value (outputs, failed rows, nulls in place),
whether it runs each distinct value once or every value.
"""

from datetime import date

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import ActionError, ErrorCode
from veil.transforms.columns import (
    consent_mask,
    has_consent,
    map_array,
    map_column,
    map_list,
    mostly_distinct,
    per_value,
)

PURPOSE = "analytics"
PROPERTY = settings(max_examples=80, deadline=None)


def shout(value):
    """A stand-in action: fails on values starting with 'x' (as a real one fails on bad input)."""
    if value.startswith("x"):
        raise ActionError(ErrorCode.WRONG_TYPE)
    return value.upper()


consent_lists = st.lists(
    st.one_of(st.none(), st.lists(st.one_of(st.none(), st.sampled_from([PURPOSE, "marketing", "analyticsx", ""])))),
    max_size=30,
)


@PROPERTY
@given(consent_lists, st.integers(0, 5), st.sampled_from([pa.list_(pa.string()), pa.large_list(pa.string())]))
def test_consent_mask_over_list_columns_equals_has_consent(values, offset, list_type):
    array = pa.array(values, list_type).slice(min(offset, len(values)))  # a slice: offsets must be honoured
    expected = [has_consent(v, PURPOSE) for v in array.to_pylist()]
    assert consent_mask(array, PURPOSE).to_pylist() == expected


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (pa.array(["analytics;marketing", " analytics ", "marketing", None, ""]), [True, True, False, False, False]),
        (pa.array([[1, 2], None], pa.list_(pa.int64())), [False, False]),
        (pa.array([], pa.list_(pa.string())), []),
    ],
)
def test_consent_mask_over_other_types(array, expected):
    assert consent_mask(array, PURPOSE).to_pylist() == expected


texts = st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "xa", "ë", "", "b"])), max_size=40)


@PROPERTY
@given(texts, st.booleans())
def test_map_array_equals_map_column_per_value(values, distinct):
    out, failed, error = map_array(per_value(shout), pa.array(values, pa.string()), pa.string(), distinct)
    expected, expected_failed, _ = map_column(shout, values, None, memo=False)
    assert out.type == pa.string()
    assert out.to_pylist() == expected and failed == expected_failed
    assert (error is None) == (not expected_failed)
    assert error is None or error.code is ErrorCode.WRONG_TYPE


def test_map_array_with_distinct_computes_each_distinct_value_once():
    calls: list[str] = []

    def column(values):
        calls.extend(values)
        return [v * 2 for v in values], [], None

    out, failed, _ = map_array(column, pa.array(["a", "b", None, "a", "a"]), pa.string(), distinct=True)
    assert out.to_pylist() == ["aa", "bb", None, "aa", "aa"] and failed == []
    assert sorted(calls) == ["a", "b"]


def test_map_array_without_distinct_sees_every_non_null_value_in_order():
    calls: list[str] = []

    def column(values):
        calls.extend(values)
        return list(values), [], None

    map_array(column, pa.array(["a", None, "a", "b"]), pa.string(), distinct=False)
    assert calls == ["a", "a", "b"]


def test_map_array_over_dictionary_and_date_columns():
    words = pa.array(["a", "xb", None, "a"]).dictionary_encode()
    out, failed, _ = map_array(per_value(shout), words, pa.string(), distinct=True)
    assert out.to_pylist() == ["A", None, None, "A"] and failed == [1]
    days = pa.array([date(2024, 5, 17), None, date(2024, 5, 17)], pa.date32())
    month = per_value(lambda d: d.replace(day=1))
    out = map_array(month, days, pa.date32(), distinct=True)[0]
    assert out.to_pylist() == [date(2024, 5, 1), None, date(2024, 5, 1)]


@PROPERTY
@given(texts)
def test_map_list_keeps_nulls_and_failures_in_place(values):
    out, failed, _ = map_list(per_value(shout), values)
    assert (out, failed) == map_column(shout, values, None, memo=False)[:2]


def test_mostly_distinct_says_whether_distinct_values_would_save_work():
    assert mostly_distinct(pa.array(["a", "b", "c", None, None]))  # nulls do not count
    assert not mostly_distinct(pa.array(["a", "a", "a", "b"]))
    assert mostly_distinct(pa.array(["a", "b", "c", "d", "a"]), share=0.8)
    assert not mostly_distinct(pa.array(["a", "b", "c", "d", "a"]))
    assert mostly_distinct(pa.array(["x", "y"]).dictionary_encode())
    assert not mostly_distinct(pa.array([None, None], pa.string()))  # nothing to compute
    assert not mostly_distinct(pa.array([[1], [2]]))  # lists are never taken distinct
