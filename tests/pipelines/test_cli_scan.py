"""`veil scan` and `veil init` on the demo's synthetic customers: what they find, and that no value leaks."""

import json
import re
from datetime import date, datetime

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import yaml
from helpers import cli

from veil.pipelines.synthetic import write_customers

ROWS = 150
PERSONAL = {"email": "email", "phone": "phone", "card_number": "card", "first_name": "person", "birth_date": "date"}


@pytest.fixture(scope="module")
def customers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scan")
    for suffix in ("parquet", "csv"):
        write_customers(str(folder / f"customers.{suffix}"), ROWS)
    return folder


def _texts(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    if isinstance(value, (date, datetime)):
        return [value.isoformat(), str(value)]
    return [str(value)]


def assert_no_value(text: str, rows: list[dict]) -> None:
    """No sampled value shows in `text`: as a substring (4+ characters) or a whole word (shorter ones)."""
    for row in rows:
        for column, value in row.items():
            for shown in _texts(value):
                if len(shown) >= 4:
                    assert shown not in text, f"a value of {column} is in the output"
                else:
                    assert not re.search(rf"(?<!\w){re.escape(shown)}(?!\w)", text), f"a value of {column} shows"


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_scan_finds_the_personal_columns_and_writes_the_json_shape(customers, tmp_path, monkeypatch, suffix):
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping: a value split over lines would escape the check
    out = tmp_path / "scan.json"
    done = cli("scan", customers / f"customers.{suffix}", "--sample", 100, "--json", out)
    assert done.code == 0, done.err
    doc = json.loads(out.read_text())
    assert set(doc) == {"rows_sampled", "rows_read", "columns"} and doc["rows_sampled"] == 100
    assert doc["rows_read"] == ROWS
    columns = doc["columns"]
    assert list(columns) == pq.read_schema(customers / "customers.parquet").names
    for figures in columns.values():
        assert set(figures) == {"type", "entities", "free_text", "suggested"}
        assert all(0 < share <= 1 for share in figures["entities"].values())
        assert "action" in figures["suggested"]
    for column, entity in PERSONAL.items():
        assert columns[column]["entities"][entity] >= 0.9, column
        assert columns[column]["suggested"]["action"] in ("pseudonymize", "generalize")
    assert columns["notes"]["free_text"] and set(columns["notes"]["entities"]) >= {"phone", "person"}
    assert columns["notes"]["suggested"]["action"] == "scrub"
    assert columns["customer_id"]["suggested"] == {"action": "pseudonymize", "domain": "customer"}
    assert columns["last_name"]["suggested"]["action"] == "pseudonymize"  # by its name: last names are not listed
    for plain in ("country", "income", "signup_ts"):
        assert columns[plain]["entities"] == {} and columns[plain]["suggested"] == {"action": "drop"}, plain
    assert "customer_id" in done.out and "scrub" in done.out


def test_scan_shares_are_recounts_of_the_data(customers, tmp_path):
    out = tmp_path / "scan.json"
    assert cli("scan", customers / "customers.parquet", "--json", out).code == 0
    rows = pq.read_table(customers / "customers.parquet").to_pylist()
    notes = [row for row in rows if row["notes"] is not None]
    with_phone = sum(row["phone"] in row["notes"] for row in notes)
    figures = json.loads(out.read_text())
    assert figures["rows_sampled"] == ROWS
    assert figures["columns"]["notes"]["entities"]["phone"] == with_phone / len(notes)
    assert figures["columns"]["email"]["entities"] == {"email": 1.0}


def test_no_sampled_value_appears_in_the_output(customers, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    out = tmp_path / "scan.json"
    done = cli("scan", customers / "customers.parquet", "--json", out)
    assert done.code == 0
    rows = pq.read_table(customers / "customers.parquet").to_pylist()
    assert_no_value(done.out + done.err, rows)
    assert_no_value(out.read_text(), rows)


def test_scan_errors_are_one_line(tmp_path):
    done = cli("scan", tmp_path / "missing.parquet")
    assert done.code == 2 and done.err.startswith("error: input") and len(done.err.splitlines()) == 1
    (tmp_path / "a.csv").write_text("country\nUS\n")  # every file is read now: formats must agree
    pq.write_table(pa.table({"country": ["DE"]}), tmp_path / "b.parquet")
    mixed = cli("scan", tmp_path)
    assert mixed.code == 2 and "mixes formats" in mixed.err and len(mixed.err.splitlines()) == 1, mixed.err


def test_the_value_check_sees_a_leak():
    rows = [{"email": "jane@example.org", "country": "US"}]
    with pytest.raises(AssertionError):
        assert_no_value("found jane@example.org", rows)
    with pytest.raises(AssertionError):
        assert_no_value("in US today", rows)
    assert_no_value("USA, email 100%", rows)


def test_init_writes_a_policy_that_validates_and_runs(customers, tmp_path, keyset, monkeypatch):
    monkeypatch.setenv("VEIL_KEYSET", keyset)
    policy = tmp_path / "analytics.yaml"
    done = cli("init", "--from", customers / "customers.csv", "--purpose", "analytics", "--output", policy)
    assert done.code == 0, done.err
    text = policy.read_text()
    assert "default: drop" in text and "subject: customer_id" in text and "consent: {field: consents}" in text
    fields = dict(re.findall(r"^  (\w+): \{action: (\w+)", text, re.M))
    assert list(fields) == pq.read_schema(customers / "customers.parquet").names  # every column listed
    assert fields["country"] == fields["income"] == "drop" and fields["notes"] == "scrub"
    assert fields["email"] == fields["card_number"] == "pseudonymize" and fields["birth_date"] == "generalize"
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^  \w+: \{action", line):  # every field says why, dropped ones too
            assert lines[number - 1].startswith("  # "), line
    assert cli("validate", policy, "--input", customers / "customers.parquet").code == 0

    out = tmp_path / "view"
    ran = cli("run", policy, "--input", customers / "customers.csv", "--output", out)
    assert ran.code == 0, ran.err
    view = pq.read_table(next(out.glob("part-*.parquet")))
    assert 0 < view.num_rows < ROWS
    assert set(view.column_names) == {name for name, action in fields.items() if action != "drop"}
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["purpose"] == "analytics"
    checked = manifest["verify"]  # the output verification of veil run (fail mode by default) passed
    assert checked["mode"] == "fail" and checked["cells_checked"] > 0 and checked["refused"] == {}
    assert sum(checked["raw_values"].values()) == 0
    assert sum(n for entities in checked["patterns"].values() for n in entities.values()) == 0


def test_init_refuses_to_overwrite_without_force(customers, tmp_path):
    policy = tmp_path / "quality.yaml"
    policy.write_text("mine\n")
    done = cli("init", "--from", customers / "customers.parquet", "--purpose", "quality", "--output", policy)
    assert done.code == 2 and "exists" in done.err and "--force" in done.err
    assert policy.read_text() == "mine\n"
    forced = cli(
        "init", "--from", customers / "customers.parquet", "--purpose", "quality", "--output", policy, "--force"
    )
    assert forced.code == 0 and policy.read_text().startswith("# Suggested by `veil init`")


def test_init_refuses_a_bad_purpose(customers, tmp_path):
    done = cli(
        "init", "--from", customers / "customers.parquet", "--purpose", "Bad Name", "--output", tmp_path / "p.yaml"
    )
    assert done.code == 2 and done.err.startswith("error: purpose") and not (tmp_path / "p.yaml").exists()


def test_init_refuses_an_input_with_nothing_to_protect(tmp_path):
    source = tmp_path / "plain.csv"
    source.write_text("country,income\nUS,52000\nDE,61000\n")
    done = cli("init", "--from", source, "--purpose", "analytics", "--output", tmp_path / "p.yaml")
    assert done.code == 2 and "every column is suggested as drop" in done.err and not (tmp_path / "p.yaml").exists()


def test_init_quotes_column_names_yaml_would_misread(tmp_path):
    source = tmp_path / "odd.csv"
    header = 'e-mail address,yes,Straße,2024,"a: b",notes #1'
    source.write_text(header + '\nx@example.org,1,Hauptstr. 5,7,z,"call +44 20 7946 0958 now"\n')
    policy = tmp_path / "p.yaml"
    assert cli("init", "--from", source, "--purpose", "support", "--output", policy).code == 0
    assert cli("validate", policy, "--input", source).code == 0
    fields = yaml.safe_load(policy.read_text())["fields"]
    assert list(fields) == ["e-mail address", "yes", "Straße", "2024", "a: b", "notes #1"]
    assert fields["e-mail address"]["action"] == "pseudonymize" and fields["notes #1"]["action"] == "scrub"


def _orders(start: int, stop: int, note) -> pa.Table:
    return pa.table({"order_id": [f"o-{i}" for i in range(start, stop)], "note": [note(i) for i in range(start, stop)]})


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_scan_samples_the_whole_input_not_its_first_rows(tmp_path, suffix):
    """Emails sit only in the last 100 of 400 rows (the last Parquet row group; the second CSV file)."""
    plain = _orders(0, 300, lambda i: "parcel left at the door")
    personal = _orders(300, 400, lambda i: f"write to buyer{i}@example.org about it")
    if suffix == "parquet":
        pq.write_table(pa.concat_tables([plain, personal]), tmp_path / "orders.parquet", row_group_size=100)
        source = tmp_path / "orders.parquet"
    else:
        (tmp_path / "orders").mkdir()
        pa_csv.write_csv(plain, tmp_path / "orders" / "part-0.csv")
        pa_csv.write_csv(personal, tmp_path / "orders" / "part-1.csv")
        source = tmp_path / "orders"
    out = tmp_path / "scan.json"
    assert cli("scan", source, "--sample", 50, "--json", out).code == 0
    doc = json.loads(out.read_text())
    assert doc["rows_sampled"] == 50 and doc["rows_read"] == 400
    share = doc["columns"]["note"]["entities"]["email"]  # a quarter of the rows: about 12 of 50 sampled
    assert 0.05 < share < 0.6 and (share * 50).is_integer()
    assert doc["columns"]["note"]["suggested"]["action"] == "scrub"
    assert cli("scan", source, "--sample", 1000, "--json", out).code == 0  # a sample larger than the input
    doc = json.loads(out.read_text())
    assert doc["rows_sampled"] == doc["rows_read"] == 400 and doc["columns"]["note"]["entities"] == {"email": 0.25}


def test_the_same_seed_samples_the_same_rows(tmp_path):
    source = tmp_path / "orders.csv"
    orders = _orders(0, 400, lambda i: f"write to buyer{i}@example.org" if i % 3 else "left at the door")
    pa_csv.write_csv(orders, source)
    shares = []
    for seed in (5, 5, 6):
        assert cli("scan", source, "--sample", 40, "--seed", seed, "--json", tmp_path / "s.json").code == 0
        shares.append(json.loads((tmp_path / "s.json").read_text())["columns"]["note"]["entities"]["email"])
    assert shares[0] == shares[1] and all(0.4 < share < 0.95 for share in shares)
    refused = cli("scan", source, "--seed", -1)  # numpy seeds are not negative
    assert refused.code == 2 and "--seed" in refused.err


def _calls(tmp_path):
    source = tmp_path / "calls.csv"  # Brazilian mobile numbers: valid in BR, in none of the default regions
    pa_csv.write_csv(_orders(0, 40, lambda i: f"please call (11) 96123-45{i:02d} after lunch"), source)
    return source


def test_regions_choose_where_national_phone_numbers_are_found(tmp_path):
    source, out = _calls(tmp_path), tmp_path / "scan.json"
    assert cli("scan", source, "--json", out).code == 0
    assert json.loads(out.read_text())["columns"]["note"]["entities"] == {}
    done = cli("scan", source, "--regions", "br", "--json", out)
    assert done.code == 0, done.err
    doc = json.loads(out.read_text())
    assert doc["columns"]["note"]["entities"] == {"phone": 1.0}
    assert doc["columns"]["note"]["suggested"]["regions"] == ["BR"]


def test_init_writes_the_regions_so_the_policy_scrubs_what_the_scan_found(tmp_path, keyset, monkeypatch):
    monkeypatch.setenv("VEIL_KEYSET", keyset)
    source, policy = _calls(tmp_path), tmp_path / "support.yaml"
    done = cli("init", "--from", source, "--purpose", "support", "--regions", "BR,US", "--output", policy)
    assert done.code == 0, done.err
    assert yaml.safe_load(policy.read_text())["fields"]["note"]["regions"] == ["BR", "US"]
    out = tmp_path / "view"
    ran = cli("run", policy, "--input", source, "--output", out)
    assert ran.code == 0, ran.err
    notes = pq.read_table(next(out.glob("part-*.parquet"))).column("note").to_pylist()
    assert len(notes) == 40 and set(notes) == {"please call [PHONE] after lunch"}


def test_a_default_init_writes_no_regions(customers, tmp_path):
    policy = tmp_path / "p.yaml"
    assert cli("init", "--from", customers / "customers.parquet", "--purpose", "support", "--output", policy).code == 0
    assert "regions" not in yaml.safe_load(policy.read_text())["fields"]["notes"]


@pytest.mark.parametrize("command", ["scan", "init"])
def test_an_unknown_region_is_one_error_line_naming_it(customers, tmp_path, command):
    source = customers / "customers.parquet"
    init = ["--from", source, "--purpose", "support", "--output", tmp_path / "p.yaml"]
    args = [source] if command == "scan" else init
    done = cli(command, *args, "--regions", "US,XX")
    assert done.code == 2 and len(done.err.splitlines()) == 1, done.err
    assert done.err.startswith("error: --regions: unknown phone region(s) XX;"), done.err  # US is known
    assert cli(command, *args, "--regions", " , ").code == 2
