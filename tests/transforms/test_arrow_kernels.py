"""Arrow kernels of field actions (`Action.bind_arrow`) equal their per-value functions.

For each action, variant and input type a kernel takes, the kernel's output over an Arrow
array must equal `bind` applied to each non-null value of `array.to_pylist()`: the same values
(compared with their Python types, so 0 and 0.0, or 0.0 and -0.0, differ), the same failed
indices, the same first error code; nulls stay null; the output type is `output_type`'s.
"""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from helpers import per_value_outcome
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import ErrorCode
from veil.keys.testing import fake_keyring
from veil.transforms.actions.base import BindContext
from veil.transforms.columns import map_column
from veil.transforms.registry import REGISTRY

CONTEXT = BindContext("analytics", "f", None, None)
PROPERTY = settings(max_examples=25, deadline=None)  # per test and input type: the file stays fast
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

AMSTERDAM = pa.timestamp("us", tz="Europe/Amsterdam")
UTC = pa.timestamp("us", tz="UTC")
TEXT_TYPES = [pa.string(), pa.large_string()]
INT_TYPES = [pa.int64(), pa.int32()]
FLOAT_TYPES = [pa.float64(), pa.float32()]
DATE_TYPES = [pa.date32(), pa.timestamp("us"), AMSTERDAM, UTC]


# ---------------------------------------------------------------- helpers


def params(spec: dict[str, Any]):
    """The validated params model of a YAML-like action spec."""
    return REGISTRY[spec["action"]].params.model_validate(spec)


def strict(values: list) -> list:
    """Values compared with their types; repr tells -0.0 from 0.0 and makes NaN equal NaN."""
    return [None if v is None else (type(v).__name__, repr(v)) for v in values]


def per_value(spec: dict[str, Any], values: list) -> tuple[list, list[int], ErrorCode | None]:
    """The reference: the bound per-value function over each non-null value."""
    return per_value_outcome(REGISTRY[spec["action"]].bind(params(spec), CONTEXT), values)


def kernel(spec: dict[str, Any], input_type: pa.DataType):
    action = REGISTRY[spec["action"]]
    assert action.bind_arrow is not None
    return action.bind_arrow(params(spec), CONTEXT, input_type)


def assert_kernel_equals_per_value(spec: dict[str, Any], array: pa.Array) -> tuple[pa.Array, list[int]]:
    fn = kernel(spec, array.type)
    assert fn is not None, f"no kernel for {spec} over {array.type}"
    out, failed, error = fn(array)
    assert isinstance(out, pa.Array) and len(out) == len(array)
    assert out.type == REGISTRY[spec["action"]].output_type(params(spec), array.type)
    expected, expected_failed, expected_code = per_value(spec, array.to_pylist())
    assert strict(out.to_pylist()) == strict(expected)
    assert failed == expected_failed
    assert (error.code if error else None) == expected_code
    return out, failed


def column(elements: st.SearchStrategy, arrow_type: pa.DataType) -> st.SearchStrategy[pa.Array]:
    """Arrays of `arrow_type` with nulls, sometimes a slice (so kernels must honour offsets)."""
    values = st.lists(st.one_of(st.none(), elements), max_size=25)
    return st.builds(lambda vs, cut: pa.array(vs, arrow_type).slice(min(cut, len(vs))), values, st.integers(0, 2))


texts = st.text(max_size=12)  # any code point but surrogates: multi-byte, combining, newlines
int64s = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.integers(-100_000, 100_000),
    st.sampled_from([INT64_MIN, INT64_MIN + 1, INT64_MIN + 9, INT64_MAX, 0, -1]),
)
int32s = st.integers(-(2**31), 2**31 - 1)
floats = st.one_of(st.floats(), st.floats(-1e6, 1e6), st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, -5e-324]))
float32s = st.floats(width=32)
days = st.dates(date(1, 1, 2), date(9999, 12, 30))
moments = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30))
instants = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.just(timezone.utc))

ELEMENTS = {
    pa.string(): texts,
    pa.large_string(): texts,
    pa.int64(): int64s,
    pa.int32(): int32s,
    pa.float64(): floats,
    pa.float32(): float32s,
    pa.date32(): days,
    pa.timestamp("us"): moments,
    AMSTERDAM: instants,
    UTC: instants,
}
ALL_TYPES = list(ELEMENTS)


def columns_of(arrow_type: pa.DataType) -> st.SearchStrategy[pa.Array]:
    return column(ELEMENTS[arrow_type], arrow_type)


# ---------------------------------------------------------------- keep / redact / replace


constants = st.one_of(st.none(), st.text(max_size=5), st.integers(INT64_MIN, INT64_MAX), st.floats(), st.booleans())


@settings(max_examples=100, deadline=None)
@given(data=st.data(), arrow_type=st.sampled_from(ALL_TYPES), constant=constants)
def test_keep_redact_and_replace_kernels_equal_per_value(data, arrow_type, constant):
    array = data.draw(columns_of(arrow_type))
    out, _ = assert_kernel_equals_per_value({"action": "keep"}, array)
    assert out is array
    out, _ = assert_kernel_equals_per_value({"action": "redact"}, array)
    assert out.null_count == len(array)
    assert_kernel_equals_per_value({"action": "replace", "value": constant}, array)


# ---------------------------------------------------------------- mask / prefix

mask_specs = st.builds(
    lambda first, last, char: {"action": "mask", "keep_first": first, "keep_last": last, "char": char},
    st.integers(0, 6),
    st.integers(0, 6),
    st.characters(exclude_categories=["Cs"]),
)


@pytest.mark.parametrize("arrow_type", TEXT_TYPES + INT_TYPES, ids=str)
@PROPERTY
@given(data=st.data(), spec=mask_specs)
def test_mask_kernel_equals_per_value(arrow_type, data, spec):
    assert_kernel_equals_per_value(spec, data.draw(columns_of(arrow_type)))


@pytest.mark.parametrize("arrow_type", TEXT_TYPES + INT_TYPES, ids=str)
@PROPERTY
@given(data=st.data(), prefix=st.one_of(st.integers(1, 8), st.just(2**70)))
def test_prefix_kernel_equals_per_value(arrow_type, data, prefix):
    assert_kernel_equals_per_value({"action": "generalize", "prefix": prefix}, data.draw(columns_of(arrow_type)))


# ---------------------------------------------------------------- width / bins

int_widths = st.one_of(st.integers(1, 1000), st.sampled_from([3, 7, 10_000, 2**31, 2**62, INT64_MAX]))
float_widths = st.one_of(
    st.floats(1e-3, 1e4), st.sampled_from([0.1, 2.5, 1e-300, 5e-324, 1e300]), st.integers(1, 2**53)
)


@pytest.mark.parametrize("arrow_type", INT_TYPES, ids=str)
@PROPERTY
@given(data=st.data(), width=int_widths)
def test_int_width_kernel_over_integers_equals_per_value(arrow_type, data, width):
    assert_kernel_equals_per_value({"action": "generalize", "width": width}, data.draw(columns_of(arrow_type)))


@pytest.mark.parametrize("arrow_type", INT_TYPES + FLOAT_TYPES, ids=str)
@PROPERTY
@given(data=st.data(), width=st.one_of(float_widths, int_widths))
def test_width_kernel_over_floats_or_by_a_float_equals_per_value(arrow_type, data, width):
    if pa.types.is_integer(arrow_type) and isinstance(width, int):
        width = float(width)  # the int-by-int case is the test above
    spec = {"action": "generalize", "width": width}
    if kernel(spec, arrow_type) is None:  # an int width a float cannot hold exactly
        assert isinstance(width, int) and float(width) != width
        return
    assert_kernel_equals_per_value({"action": "generalize", "width": width}, data.draw(columns_of(arrow_type)))


edge_numbers = st.one_of(
    st.integers(-1000, 1000), st.floats(-1000, 1000), st.sampled_from([-(2**70), 2**70, INT64_MIN, INT64_MAX, 0.5])
)
edges = st.lists(edge_numbers, min_size=1, max_size=6).map(lambda es: sorted(set(es)))


@pytest.mark.parametrize("arrow_type", INT_TYPES + FLOAT_TYPES, ids=str)
@PROPERTY
@given(data=st.data(), bins=edges)
def test_bins_kernel_equals_per_value(arrow_type, data, bins):
    spec = {"action": "generalize", "bins": bins}
    if kernel(spec, arrow_type) is None:  # float input, edges a float cannot hold exactly
        assert pa.types.is_floating(arrow_type) and any(isinstance(e, int) and abs(e) > 2**53 for e in bins)
        return
    assert_kernel_equals_per_value(spec, data.draw(columns_of(arrow_type)))


# ---------------------------------------------------------------- date / age_bins


@pytest.mark.parametrize("arrow_type", [*DATE_TYPES, pa.date64(), pa.timestamp("s", tz="+05:30")], ids=str)
@PROPERTY
@given(data=st.data(), period=st.sampled_from(["year", "quarter", "month", "week"]))
def test_date_kernel_equals_per_value(arrow_type, data, period):
    if pa.types.is_date64(arrow_type):
        elements = st.integers(-(10**12), 10**12).map(lambda ms: date(1970, 1, 1) + timedelta(milliseconds=ms))
    elif arrow_type.equals(pa.timestamp("s", tz="+05:30")):
        elements = instants.map(lambda t: t.replace(microsecond=0))
    else:
        elements = ELEMENTS[arrow_type]
    assert_kernel_equals_per_value({"action": "generalize", "date": period}, data.draw(column(elements, arrow_type)))


age_edges = st.lists(st.integers(0, 120), min_size=1, max_size=6, unique=True).map(sorted)


@pytest.mark.parametrize("arrow_type", DATE_TYPES, ids=str)
@PROPERTY
@given(data=st.data(), bins=age_edges, at=days)
def test_age_bins_kernel_equals_per_value(arrow_type, data, bins, at):
    spec = {"action": "generalize", "age_bins": bins, "at": at}
    assert_kernel_equals_per_value(spec, data.draw(columns_of(arrow_type)))


# ---------------------------------------------------------------- map / round

map_keys = st.sampled_from(["M", "F", "", "ë", "7", "x y"])


@pytest.mark.parametrize("arrow_type", TEXT_TYPES, ids=str)
@PROPERTY
@given(
    data=st.data(),
    mapping=st.dictionaries(st.one_of(map_keys, st.integers(0, 9)), st.text(max_size=4), min_size=1),
    other=st.one_of(st.none(), st.text(max_size=4)),
)
def test_map_kernel_over_strings_equals_per_value(arrow_type, data, mapping, other):
    spec = {"action": "generalize", "map": mapping, "other": other}
    assert_kernel_equals_per_value(spec, data.draw(column(st.one_of(map_keys, texts), arrow_type)))


@pytest.mark.parametrize("arrow_type", INT_TYPES, ids=str)
@PROPERTY
@given(data=st.data(), digits=st.integers(0, 5))
def test_round_kernel_over_integers_equals_per_value(arrow_type, data, digits):
    assert_kernel_equals_per_value({"action": "generalize", "round": digits}, data.draw(columns_of(arrow_type)))


# ---------------------------------------------------------------- examples


def run(spec: dict[str, Any], values: list, arrow_type: pa.DataType) -> tuple[list, list[int]]:
    out, failed = assert_kernel_equals_per_value(spec, pa.array(values, arrow_type))
    return out.to_pylist(), failed


def test_int_width_floors_negative_values_like_python():
    out, failed = run({"action": "generalize", "width": 10}, [-1, -10, -11, 9, None, 0], pa.int64())
    assert out == [-10, -10, -20, 0, None, 0] and failed == []


def test_int_width_bucket_below_int64_is_a_not_finite_failure_in_both_paths():
    values = [INT64_MIN, INT64_MIN + 7, INT64_MIN + 8, INT64_MAX]  # -2**63 = -9223372036854775808
    out, failed = run({"action": "generalize", "width": 10}, values, pa.int64())
    assert failed == [0, 1]  # their bucket would start at -9223372036854775810, below int64
    assert out == [None, None, -9223372036854775800, 9223372036854775800]
    error = kernel({"action": "generalize", "width": 10}, pa.int64())(pa.array(values))[2]
    assert error is not None and error.code is ErrorCode.NOT_FINITE


def test_float_width_fails_non_finite_values_and_results():
    values = [float("nan"), float("inf"), -float("inf"), 1e308, -0.0, -0.0005, None]
    out, failed = run({"action": "generalize", "width": 1e-3}, values, pa.float64())
    assert failed == [0, 1, 2, 3]  # 1e308 / 1e-3 overflows
    assert out[4:] == [0.0, -0.001, None] and str(out[4]) == "0.0"  # never -0.0


def test_iso_week_across_a_year_boundary_from_dates_and_zoned_timestamps():
    out, _ = run({"action": "generalize", "date": "week"}, [date(2025, 1, 1), date(2021, 1, 3)], pa.date32())
    assert out == [date(2024, 12, 30), date(2020, 12, 28)]
    late = datetime(2024, 12, 29, 23, 30, tzinfo=timezone.utc)  # a Monday, 2024-12-30, in Amsterdam
    out, _ = run({"action": "generalize", "date": "year"}, [late], AMSTERDAM)
    assert out == [date(2024, 1, 1)]
    out, _ = run({"action": "generalize", "date": "week"}, [late], AMSTERDAM)
    assert out == [date(2024, 12, 30)]


def test_age_bins_count_completed_years_in_the_columns_timezone():
    spec = {"action": "generalize", "age_bins": [0, 18, 65], "at": "2026-05-31"}
    born = datetime(2008, 5, 31, 23, 30, tzinfo=timezone.utc)  # 2008-06-01 in Amsterdam: 17 on `at`
    out, _ = run(spec, [born], AMSTERDAM)
    assert out == ["0-17"]
    out, _ = run(spec, [born], UTC)
    assert out == ["18-64"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [(["", "a", "ab", "abc", "abcd", "東京都港区", None], ["", "*", "**", "a*c", "a**d", "東***区", None])],
)
def test_mask_masks_short_values_whole(values, expected):
    out, _ = run({"action": "mask", "keep_first": 1, "keep_last": 1}, values, pa.string())
    assert out == expected


def test_bins_with_edges_past_int64_over_integers():
    out, _ = run({"action": "generalize", "bins": [-(2**70), 0, 2**70]}, [INT64_MIN, -1, 0, INT64_MAX], pa.int64())
    assert out == [f"{-(2**70)}-{-1}", f"{-(2**70)}-{-1}", f"0-{2**70 - 1}", f"0-{2**70 - 1}"]


def test_bins_fail_non_finite_floats():
    out, failed = run({"action": "generalize", "bins": [0, 1.5]}, [float("nan"), 1.5, -0.0, None], pa.float64())
    assert out == [None, "1.5+", "[0, 1.5)", None] and failed == [0]


def test_map_without_other_fails_unmapped_strings():
    out, failed = run({"action": "generalize", "map": {"M": "male", 3: "three"}}, ["M", "3", None, "x"], pa.string())
    assert out == ["male", None, None, None] and failed == [1, 3]


@pytest.mark.parametrize(
    "spec",
    [
        {"action": "keep"},
        {"action": "redact"},
        {"action": "replace", "value": "x"},
        {"action": "mask", "keep_first": 1},
        {"action": "generalize", "prefix": 2},
        {"action": "generalize", "width": 10},
        {"action": "generalize", "width": 0.5},
        {"action": "generalize", "bins": [0, 10]},
        {"action": "generalize", "date": "month"},
        {"action": "generalize", "age_bins": [0, 18], "at": "2026-01-01"},
    ],
    ids=lambda s: "-".join(map(str, s.values())),
)
def test_empty_and_all_null_arrays(spec):
    for arrow_type in ALL_TYPES:
        if kernel(spec, arrow_type) is None:
            continue
        for nulls in (0, 3):
            out, failed = assert_kernel_equals_per_value(spec, pa.nulls(nulls, arrow_type))
            assert out.null_count == nulls and failed == []


@pytest.mark.parametrize(
    ("spec", "arrow_type"),
    [
        ({"action": "generalize", "date": "month"}, pa.string()),
        ({"action": "generalize", "age_bins": [18], "at": "2026-01-01"}, pa.string()),
        ({"action": "generalize", "width": 10}, pa.decimal128(10, 2)),
        ({"action": "generalize", "width": 10}, pa.uint64()),
        ({"action": "generalize", "width": 2**64}, pa.int64()),
        ({"action": "generalize", "width": 2**60 + 1}, pa.float64()),  # not exact as a float
        ({"action": "generalize", "bins": [0, 10]}, pa.decimal128(10, 2)),
        ({"action": "generalize", "map": {"1": "one"}}, pa.int64()),
        ({"action": "generalize", "round": 1}, pa.float64()),
        ({"action": "generalize", "round": -1}, pa.int64()),
        ({"action": "mask"}, pa.float64()),
        ({"action": "mask"}, pa.dictionary(pa.int32(), pa.string())),
    ],
    ids=str,
)
def test_types_without_an_exact_kernel_fall_back(spec, arrow_type):
    assert kernel(spec, arrow_type) is None


def test_per_value_width_over_a_decimal_still_works_where_the_kernel_falls_back():
    assert REGISTRY["generalize"].bind(params({"action": "generalize", "width": 10}), CONTEXT)(Decimal("25.5")) == 20


# ---------------------------------------------------------------- date_shift (with the subject column)

KEYED = BindContext("analytics", "f", fake_keyring(), 1)
EDGE_DAYS = [date.min, date.min + timedelta(days=3), date(1970, 1, 1), date.max - timedelta(days=3), date.max]
shift_days = st.one_of(st.dates(), st.sampled_from(EDGE_DAYS))
shift_subjects = {
    pa.string(): st.one_of(st.none(), st.sampled_from(["c-1", "c-2", "ë", ""])),
    pa.int64(): st.one_of(st.none(), st.integers(-5, 5)),
}


def shift_column(max_days: int, arrow_type: pa.DataType):
    spec = params({"action": "date_shift", "max_days": max_days})
    return REGISTRY["date_shift"].bind(spec, KEYED), REGISTRY["date_shift"].bind_arrow(spec, KEYED, arrow_type)


@pytest.mark.parametrize(
    "arrow_type", [pa.date32(), pa.timestamp("us"), pa.timestamp("s"), pa.timestamp("us", tz="UTC")], ids=str
)
@PROPERTY
@given(data=st.data(), max_days=st.sampled_from([1, 30, 36500]), subject_type=st.sampled_from(list(shift_subjects)))
def test_date_shift_kernel_equals_per_value(arrow_type, data, max_days, subject_type):
    rows = data.draw(st.lists(st.tuples(st.one_of(st.none(), shift_days), shift_subjects[subject_type]), max_size=25))
    days = [d for d, _ in rows]
    if pa.types.is_timestamp(arrow_type):
        zone = timezone.utc if arrow_type.tz else None
        days = [None if d is None else datetime(d.year, d.month, d.day, 13, 5, 7, tzinfo=zone) for d in days]
    values, subjects = pa.array(days, arrow_type), pa.array([s for _, s in rows], subject_type)
    per_value, kernel = shift_column(max_days, arrow_type)
    expected, expected_failed, expected_error = map_column(per_value, values.to_pylist(), subjects.to_pylist(), False)
    out, failed, error = kernel(values, subjects)
    assert out.type == arrow_type
    assert out.to_pylist() == expected and failed == expected_failed
    assert (error and error.code) == (expected_error and expected_error.code)


def test_date_shift_kernel_moves_a_subjects_dates_together_and_refuses_what_it_cannot():
    per_value, kernel = shift_column(30, pa.date32())
    start = date(2024, 1, 1)
    later = next(f"c-{i}" for i in range(100) if per_value(start, f"c-{i}") > start)  # shifted forward
    values = pa.array([start, date(2024, 3, 1), start, date.max, None], pa.date32())
    out, failed, error = kernel(values, pa.array([later, later, None, later, later]))
    first, second = out.to_pylist()[:2]
    assert first == per_value(start, later) > start
    assert (second - first).days == (date(2024, 3, 1) - start).days  # intervals within a subject survive
    assert out.to_pylist()[2:] == [None, None, None]
    assert failed == [2, 3] and error.code is ErrorCode.NO_SUBJECT  # no subject; past date.max


def test_date_shift_falls_back_for_zoned_timestamps_and_strings():
    for arrow_type in (pa.timestamp("us", tz="Europe/Amsterdam"), pa.string(), pa.timestamp("ns")):
        assert shift_column(30, arrow_type)[1] is None


def test_date_shift_kernel_with_subjects_of_another_type_matches_per_value():
    per_value, kernel = shift_column(30, pa.date32())
    values = pa.array([date(2024, 1, 1), date(2024, 1, 2)], pa.date32())
    subjects = pa.array([1.5, None], pa.float64())  # as_text refuses a float: a wrong type, then no subject
    out, failed, error = kernel(values, subjects)
    assert out.to_pylist() == [None, None] and failed == [0, 1] and error.code is ErrorCode.WRONG_TYPE
