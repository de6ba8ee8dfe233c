"""Synthetic customers: determinism, schema, formats, null shares and the file writers."""

import collections
import json
import os
import re
import subprocess
import sys
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest

from veil.pipelines import synthetic
from veil.pipelines.synthetic import CUSTOMER_SCHEMA, synthetic_customers, write_customers

ROWS = 2000
CONSENTS = ("analytics", "marketing", "support")


@pytest.fixture(scope="module")
def customers() -> pa.Table:
    return synthetic_customers(ROWS)


def column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist()


def luhn_valid(number: str) -> bool:
    """The Luhn mod-10 check over the digits of `number` (dashes ignored)."""
    total = 0
    for position, ch in enumerate(reversed(number.replace("-", ""))):
        digit = int(ch)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def null_share(table: pa.Table, name: str) -> float:
    return table.column(name).null_count / table.num_rows


def test_luhn_helper_known_answers():
    assert luhn_valid("4111-1111-1111-1111")
    assert luhn_valid("5555-5555-5555-4444")
    assert not luhn_valid("4111-1111-1111-1112")


def test_same_seed_gives_identical_table():
    assert synthetic_customers(300, seed=11).equals(synthetic_customers(300, seed=11))


def test_same_seed_is_identical_in_a_fresh_process(tmp_path):
    """No cached pools and another string-hash seed: only the seed may decide the table."""
    out = tmp_path / "table.arrow"
    script = (
        "import importlib.util, sys, pyarrow as pa\n"
        "spec = importlib.util.spec_from_file_location('synthetic_copy', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "table = module.synthetic_customers(300, seed=11)\n"
        "with pa.ipc.new_file(sys.argv[2], table.schema) as writer:\n"
        "    writer.write_table(table)\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, synthetic.__file__, str(out)], check=True, env=env)
    with pa.ipc.open_file(str(out)) as reader:
        assert reader.read_all().equals(synthetic_customers(300, seed=11))


def test_other_seed_gives_different_table():
    a, b = synthetic_customers(300, seed=11), synthetic_customers(300, seed=12)
    assert not a.equals(b)
    assert column(a, "email") != column(b, "email")


def test_shorter_table_is_prefix_of_longer(customers):
    assert synthetic_customers(150).equals(customers.slice(0, 150))


def test_schema_and_row_count(customers):
    assert customers.schema.equals(CUSTOMER_SCHEMA)
    assert customers.num_rows == ROWS
    assert synthetic_customers(0).schema.equals(CUSTOMER_SCHEMA)
    assert synthetic_customers(0).num_rows == 0


def test_negative_rows_rejected():
    with pytest.raises(ValueError):
        synthetic_customers(-1)


def test_customer_ids_unique_and_formatted(customers):
    ids = column(customers, "customer_id")
    assert len(set(ids)) == ROWS
    assert all(re.fullmatch(r"C\d{7}", i) for i in ids)
    assert ids[41] == "C0000042"


def test_card_numbers_grouped_and_luhn_valid(customers):
    cards = column(customers, "card_number")
    assert all(re.fullmatch(r"\d{4}-\d{4}-\d{4}-\d{4}", c) for c in cards)
    assert all(luhn_valid(c) for c in cards)


def test_emails_plausible_unique_and_need_normalizing(customers):
    raw = column(customers, "email")
    normalized = [e.strip().lower() for e in raw]
    assert all(re.fullmatch(r"[a-z0-9._]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}", e) for e in normalized)
    assert len(set(normalized)) == ROWS
    assert any(e != e.strip() for e in raw)
    assert any(e.strip() != e.strip().lower() for e in raw)
    assert sum(e != n for e, n in zip(raw, normalized)) < ROWS * 0.2


def test_emails_derive_from_names(customers):
    def slug(name: str) -> str:
        return re.sub(r"[^a-z0-9]", "", name.lower())

    for first, last, email in zip(
        column(customers, "first_name"), column(customers, "last_name"), column(customers, "email")
    ):
        local = email.strip().lower().split("@")[0]
        assert slug(first) in local or slug(last) in local


def test_phone_format(customers):
    assert all(re.fullmatch(r"\+1-\d{3}-\d{3}-\d{4}", p) for p in column(customers, "phone"))


def test_zips_come_from_a_small_skewed_pool(customers):
    zips = column(customers, "zip")
    assert all(re.fullmatch(r"\d{5}", z) for z in zips)
    counts = collections.Counter(zips)
    prefixes = {z[:3] for z in counts}
    assert 100 <= len(counts) <= 220
    assert len(prefixes) <= len(counts) / 3
    assert max(counts.values()) >= ROWS * 0.02
    assert min(counts.values()) < 5


def test_each_zip_has_one_city(customers):
    cities_by_zip = collections.defaultdict(set)
    for zip_code, city in zip(column(customers, "zip"), column(customers, "city")):
        cities_by_zip[zip_code].add(city)
    assert all(len(cities) == 1 for cities in cities_by_zip.values())


def test_country_skew(customers):
    countries = column(customers, "country")
    shares = {c: n / ROWS for c, n in collections.Counter(countries).items()}
    assert all(re.fullmatch(r"[A-Z]{2}", c) for c in shares)
    assert 0.65 <= shares["US"] <= 0.75
    assert {"CA", "GB", "DE", "FR", "MX"} <= shares.keys()
    assert len(shares) > 6


def test_gender_shares(customers):
    shares = {g: n / ROWS for g, n in collections.Counter(column(customers, "gender")).items()}
    assert shares.keys() == {"female", "male", "nonbinary", "unknown"}
    assert 0.43 <= shares["female"] <= 0.53
    assert 0.43 <= shares["male"] <= 0.53
    assert 0.015 <= shares["nonbinary"] <= 0.05
    assert 0.002 <= shares["unknown"] <= 0.025


def test_birth_dates_give_ages_16_to_90(customers):
    reference = date(2026, 1, 1)
    for born in column(customers, "birth_date"):
        if born is not None:
            age = reference.year - born.year - ((reference.month, reference.day) < (born.month, born.day))
            assert 16 <= age <= 90


def test_income_range(customers):
    incomes = [i for i in column(customers, "income") if i is not None]
    assert all(15_000 <= i <= 400_000 for i in incomes)
    assert len(set(incomes)) > 100


def test_signup_timestamps_2019_to_2025(customers):
    start, end = datetime(2019, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert all(start <= ts < end for ts in column(customers, "signup_ts"))


def test_consents_are_subsets(customers):
    lists = [c for c in column(customers, "consents") if c is not None]
    assert all(set(c) <= set(CONSENTS) and len(set(c)) == len(c) for c in lists)
    assert 0.06 <= sum(not c for c in lists) / ROWS <= 0.14
    assert {tuple(c) for c in lists} >= {(name,) for name in CONSENTS}


def test_notes_mention_first_name_and_sometimes_phone(customers):
    rows = zip(column(customers, "first_name"), column(customers, "phone"), column(customers, "notes"))
    notes = [(first, phone, note) for first, phone, note in rows if note is not None]
    assert all(first in note for first, _, note in notes)
    with_phone = sum(phone in note for _, phone, note in notes)
    assert 0.1 * len(notes) <= with_phone <= 0.7 * len(notes)


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("birth_date", 0.002, 0.025), ("income", 0.008, 0.035), ("consents", 0.012, 0.05), ("notes", 0.16, 0.24)],
)
def test_null_shares(customers, name, low, high):
    assert low <= null_share(customers, name) <= high


@pytest.mark.parametrize(
    "name", ["customer_id", "first_name", "last_name", "email", "phone", "zip", "country", "card_number"]
)
def test_identity_columns_never_null(customers, name):
    assert customers.column(name).null_count == 0


@pytest.mark.parametrize(
    ("suffix", "read"),
    [(".parquet", pq.read_table), (".csv", pa_csv.read_csv), (".jsonl", pa_json.read_json)],
)
def test_write_customers_round_trips_row_count(tmp_path, suffix, read):
    path = str(tmp_path / f"customers{suffix}")
    assert write_customers(path, 250) == 250
    assert read(path).num_rows == 250


def test_parquet_keeps_the_schema(tmp_path):
    path = str(tmp_path / "customers.parquet")
    write_customers(path, 50)
    assert pq.read_table(path).equals(synthetic_customers(50))


def test_csv_consents_are_semicolon_joined(tmp_path):
    path = str(tmp_path / "customers.csv")
    write_customers(path, 250)
    convert = pa_csv.ConvertOptions(
        column_types={"consents": pa.string()}, strings_can_be_null=True, quoted_strings_can_be_null=False
    )
    written = pa_csv.read_csv(path, convert_options=convert).column("consents").to_pylist()
    expected = [None if c is None else ";".join(c) for c in column(synthetic_customers(250), "consents")]
    assert written == expected
    assert any(c and ";" in c for c in written)
    assert "" in written and None in written


def test_jsonl_has_one_object_per_line_with_iso_dates(tmp_path):
    path = tmp_path / "customers.jsonl"
    write_customers(str(path), 20)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["customer_id"] for r in records] == column(synthetic_customers(20), "customer_id")
    assert list(records[0]) == CUSTOMER_SCHEMA.names
    for record in records:
        if record["birth_date"] is not None:
            assert date.fromisoformat(record["birth_date"])
        assert datetime.fromisoformat(record["signup_ts"]).utcoffset().total_seconds() == 0


def test_unknown_extension_rejected(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        write_customers(str(tmp_path / "customers.xlsx"), 10)
