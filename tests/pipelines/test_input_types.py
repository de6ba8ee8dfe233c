"""Text inputs keep their text: CSV cells and JSON strings are parsed only where the policy says so."""

import json

import pyarrow.parquet as pq
import yaml
from helpers import cli

ZIPS = ["01234", "00501", "98765"]


def run(tmp_path, policy: dict, text: str, name: str = "in.csv", *extra):
    (tmp_path / name).write_text(text)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"version": 1, "purpose": "analytics", **policy}))
    out = tmp_path / "out"
    return cli("run", tmp_path / "p.yaml", "--input", tmp_path / name, "--output", out, *extra), out


def rows(out) -> list[dict]:
    return [row for part in sorted(out.glob("part-*.parquet")) for row in pq.read_table(part).to_pylist()]


def manifest(out) -> dict:
    return json.loads((out / "_manifest.json").read_text())


def test_csv_zip_codes_keep_their_leading_zeros_and_prefix_cuts_the_text(tmp_path):
    fields = {"zip": {"action": "generalize", "prefix": 3, "as": "zip3"}, "raw": {"action": "keep"}}
    text = "zip,raw\n" + "".join(f"{z},{z}\n" for z in ZIPS)
    result, out = run(tmp_path, {"fields": fields}, text)
    assert result.code == 0, result.err
    assert rows(out) == [{"zip3": z[:3], "raw": z} for z in ZIPS]
    assert rows(out)[0] == {"zip3": "012", "raw": "01234"}


def test_a_number_column_under_width_still_works_from_csv(tmp_path):
    incomes = ["52000", "12000", "7000", "0999"]
    fields = {"income": {"action": "generalize", "width": 10000}}
    result, out = run(tmp_path, {"fields": fields}, "income\n" + "\n".join(incomes) + "\n")
    assert result.code == 0, result.err
    assert [r["income"] for r in rows(out)] == [int(i) // 10000 * 10000 for i in incomes]
    assert pq.read_schema(next(out.glob("part-*.parquet"))).field("income").type == "int64"


def test_text_that_is_no_number_under_width_is_a_counted_field_error_and_never_shown(tmp_path):
    secret = "jane.doe@example.org"
    text = f"id,income\na,52000\nb,{secret}\nc,7000\n"
    fields = {"id": {"action": "keep"}, "income": {"action": "generalize", "width": 10000, "on_error": "drop_record"}}
    result, out = run(tmp_path, {"fields": fields}, text)
    assert result.code == 0, result.err
    assert [r["id"] for r in rows(out)] == ["a", "c"]
    counts = manifest(out)["counts"]
    assert counts["field_errors"] == {"income": 1} and counts["dropped"]["field_error"] == 1
    fail = {**fields, "income": {**fields["income"], "on_error": "fail"}}
    result, _ = run(tmp_path / "..", {"fields": fail}, text, "again.csv")
    assert result.code == 2 and "not a number" in result.err and secret not in result.err + result.out


def test_input_types_parse_named_columns_and_validate_shows_them(tmp_path):
    fields = {"age": {"action": "keep"}, "zip": {"action": "keep"}}
    policy = {"fields": fields, "input_types": {"age": "int64"}}
    result, out = run(tmp_path, policy, "age,zip\n41,01234\n,00501\n")
    assert result.code == 0, result.err
    assert rows(out) == [{"age": 41, "zip": "01234"}, {"age": None, "zip": "00501"}]
    shown = cli("plan", tmp_path / "p.yaml", "--input", tmp_path / "in.csv")
    assert shown.code == 0, shown.err
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in shown.out.splitlines() if "│" in line]
    types = {row[0]: row[1] for row in cells}
    assert types == {"age": "int64", "zip": "string"}


def test_a_declared_type_a_cell_does_not_have_names_the_row_and_column_not_the_value(tmp_path):
    policy = {"fields": {"age": {"action": "keep"}}, "input_types": {"age": "int64"}}
    result, out = run(tmp_path, policy, "age\n41\n42\nforty-three\n")
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "data row 3" in lines[0] and "'age'" in lines[0] and "in.csv" in lines[0]
    assert "forty" not in result.err


def test_a_bad_json_lines_line_is_named_by_its_number(tmp_path):
    text = '{"a": "x"}\n{"a": "y"}\n' + '{"a": "z"}\n' * 5 + '{"a": "w"\n{"a": "v"}\n'
    result, _ = run(tmp_path, {"fields": {"a": {"action": "keep"}}}, text, "in.jsonl")
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "in.jsonl line 8" in lines[0], lines


def test_a_json_lines_line_that_does_not_fit_the_type_is_named_by_its_number(tmp_path):
    text = "".join(json.dumps({"n": i}) + "\n" for i in range(5)) + '{"n": {"nested": 1}}\n'
    (tmp_path / "big.jsonl").write_text(text)
    result, _ = run(tmp_path, {"fields": {"n": {"action": "keep"}}}, text, "in.jsonl")
    assert result.code == 2 and "line 6" in result.err and "'n'" in result.err


def test_json_lines_strings_stay_text_and_numbers_stay_numbers(tmp_path):
    text = '{"zip": "01234", "day": "2024-05-01", "n": 3}\n{"zip": "00501", "day": "2024-06-01", "n": 4}\n'
    fields = {"zip": {"action": "generalize", "prefix": 3}, "day": {"action": "keep"}, "n": {"action": "keep"}}
    result, out = run(tmp_path, {"fields": fields}, text, "in.jsonl")
    assert result.code == 0, result.err
    assert rows(out) == [{"zip": "012", "day": "2024-05-01", "n": 3}, {"zip": "005", "day": "2024-06-01", "n": 4}]


def test_a_line_past_the_schema_sample_that_does_not_fit_is_named_by_its_number(tmp_path):
    import pyarrow as pa
    import pytest

    from veil.errors import InputError
    from veil.transforms.io import _read_text_file

    path = tmp_path / "late.jsonl"
    path.write_text('{"n": 1}\n{"n": 2}\n\n{"n": "three"}\n')
    schema = pa.schema([("n", pa.int64())])  # what the first lines said
    with pytest.raises(InputError) as caught:
        list(_read_text_file(str(path), "jsonl", schema, ["n"]))
    assert "late.jsonl line 4: field 'n' is not int64" in str(caught.value) and "three" not in str(caught.value)
    path.write_text('{"n": 1}\n{"n": "2"}\n')  # text that parses into the declared type
    assert list(_read_text_file(str(path), "jsonl", schema, ["n"]))[0].column("n").to_pylist() == [1, 2]
