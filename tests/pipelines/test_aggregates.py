"""`veil run` with a policy's `aggregates:`: DP tables published like every output, gates first,
no row and no exact record count released; bad settings are one-line errors."""

import base64
import importlib.util
import json
import os
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import cli

from veil.keys import init_keyset
from veil.pipelines.synthetic import write_customers

ROWS = 300
ERASED = [f"C{n:07d}" for n in range(1, 40)]  # the first customers asked to be forgotten
COUNTRIES = ["US", "CA", "GB", "DE", "FR", "MX", "AU", "NL", "ES", "IT", "JP", "BR", "IE", "NZ"]
# purpose analytics: the synthetic consents name it, so the consent gate has records to keep out
POLICY = f"""
version: 1
purpose: analytics
subject: customer_id
consent: {{field: consents}}
erasure: {{table: erasures}}
fields:
  customer_id: {{action: pseudonymize, domain: customer, as: customer_key}}
  country: {{action: keep}}
  income: {{action: keep}}
aggregates:
  privacy_unit: customer_key
  epsilon: 100000.0
  delta: 1.0e-6
  tables:
    - {{name: by_country, group_by: [country], metrics: [count, sum], value: income, min: 0, max: 1000000,
       public_groups: {json.dumps(COUNTRIES)}}}
    - {{name: countries, group_by: [country], metrics: [count]}}
"""

needs_dp = pytest.mark.skipif(
    importlib.util.find_spec("pipeline_dp") is None,
    reason="pipeline-dp (the dp extra) is published for Linux x86_64 with Python 3.11-3.13 only",
)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """One `veil run` of POLICY over synthetic customers: (input rows, output folder, manifest, result)."""
    base = tmp_path_factory.mktemp("aggregates")
    source, out, keyset = str(base / "customers.parquet"), base / "out", str(base / "keyset.json")
    write_customers(source, ROWS)
    (base / "policy.yaml").write_text(POLICY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
        init_keyset(keyset)
        policy = base / "policy.yaml"
        assert cli("erase", policy, "--init", "--keyset", keyset).code == 0
        for subject in ERASED:
            assert cli("erase", policy, "--subject", subject, "--keyset", keyset).code == 0
        run = ["run", base / "policy.yaml", "--input", source, "--output", out, "--keyset", keyset, "--format", "csv"]
        result = cli(*run)  # --format is for row views: the tables are Parquet
    manifest = json.loads((out / "_manifest.json").read_text()) if result.code == 0 else None
    return pq.read_table(source).to_pylist(), out, manifest, result


@needs_dp
def test_the_run_publishes_one_file_per_table_and_the_manifest(released):
    _, out, manifest, result = released
    assert result.code == 0, result.err
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["_manifest.json", *manifest["output"]["files"]])  # no staging, no lock left behind
    tables = {t["name"]: t for t in manifest["aggregates"]["tables"]}
    assert set(tables) == {"by_country", "countries"}
    assert all(
        t["file"] in manifest["output"]["files"] and t["file"].endswith(f"-{n}.parquet") for n, t in tables.items()
    )
    assert len(manifest["output"]["files"]) == 2
    assert manifest["output"]["format"] == "parquet"  # although the run said --format csv


def _flows(row: dict) -> bool:
    """What the gates let through: consent to analytics, and not erased."""
    return bool(row["consents"]) and "analytics" in row["consents"] and row["customer_id"] not in ERASED


@needs_dp
def test_consent_and_erasure_apply_before_aggregating(released):
    rows, out, manifest, _ = released
    erased = [r for r in rows if r["customer_id"] in ERASED and r["consents"] and "analytics" in r["consents"]]
    assert len(erased) > 5  # the erasure gate has records to keep out
    consenting = Counter(r["country"] for r in rows if _flows(r))
    assert 0 < sum(consenting.values()) < len(rows)
    by_country = {t["name"]: t for t in manifest["aggregates"]["tables"]}["by_country"]
    table = pq.read_table(out / by_country["file"]).to_pylist()
    assert [row["country"] for row in table] == sorted(COUNTRIES)  # every public group, sorted
    # a table with a value reads the records that have one (a null income is left out, count included)
    valued = [r for r in rows if _flows(r) and r["income"] is not None]
    counts, sums = Counter(r["country"] for r in valued), Counter()
    for r in valued:
        sums[r["country"]] += r["income"]
    assert sum(counts.values()) < sum(consenting.values())  # the data has null incomes: the rule is exercised
    for row in table:
        # Laplace noise beyond 8 stddevs: about once in 100,000 draws
        assert abs(row["count"] - counts[row["country"]]) < min(0.5, 8 * row["count_noise_stddev"]), row["country"]
        assert abs(row["sum"] - sums[row["country"]]) < 8 * row["sum_noise_stddev"], row["country"]
        assert row["sum_noise_stddev"] < 0.001 * max(sums.values())  # so the sums are close to the truth
    countries = {t["name"]: t for t in manifest["aggregates"]["tables"]}["countries"]
    selected = {row["country"]: row["count"] for row in pq.read_table(out / countries["file"]).to_pylist()}
    # a huge epsilon selects every group of two units or more; a group of one is kept with
    # probability at most delta, whatever epsilon
    assert set(selected) == {c for c, n in consenting.items() if n >= 2}
    assert all(abs(selected[c] - consenting[c]) < 0.5 for c in selected)


@needs_dp
def test_no_row_and_no_exact_count_is_released(released):
    rows, out, manifest, _ = released
    assert manifest["counts"] == {
        "records": "withheld: exact record counts are not differentially private (the tables' noisy counts are)"
    }
    assert manifest["output"]["schema"] == []
    columns = {t["name"]: [c["name"] for c in t["schema"]] for t in manifest["aggregates"]["tables"]}
    assert columns == {
        "by_country": ["country", "count", "sum", "count_noise_stddev", "sum_noise_stddev"],
        "countries": ["country", "count", "count_noise_stddev"],
    }
    published = b"".join(p.read_bytes() for p in out.iterdir())
    for row in rows[:50]:  # no identifier of any customer, raw or as written
        assert row["customer_id"].encode() not in published
    for name in manifest["output"]["files"]:
        assert pq.read_table(out / name).num_rows <= len(COUNTRIES)


@needs_dp
def test_the_manifest_records_the_guarantee_the_split_and_the_explain_report(released):
    _, _, manifest, _ = released
    entry = manifest["aggregates"]
    assert (entry["privacy_unit"], entry["epsilon"], entry["delta"], entry["noise"]) == (
        "customer_key",
        100000.0,
        1.0e-6,
        "laplace",
    )
    assert sum(m["epsilon"] for m in entry["budget"]) == pytest.approx(100000.0)
    assert sum(m["delta"] for m in entry["budget"]) == pytest.approx(1.0e-6)
    assert {m["table"] for m in entry["budget"]} == {"by_country", "countries"}
    assert any("Laplace mechanism" in line for line in entry["explain"]["by_country"])
    assert any("Partition selection: private partitions" in line for line in entry["explain"]["countries"])
    tables = {t["name"]: t for t in entry["tables"]}
    assert tables["by_country"]["groups"] == "public" and tables["by_country"]["released_groups"] == len(COUNTRIES)
    assert tables["countries"]["groups"] == "selected privately"


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (("epsilon: 100000.0", "epsilon: 0"), "aggregates.epsilon (line 13): Input should be greater than 0"),
        (("delta: 1.0e-6", "delta: 0"), "table countries selects its groups privately, which needs delta > 0"),
        (("min: 0, max: 1000000", "min: 10, max: 1"), "aggregates.tables.0 (line 16): min must be smaller than max"),
        (("value: income, ", ""), "sum, mean and variance need value (the field and its bounds)"),
        (("metrics: [count]}", "metrics: [median]}"), "aggregates.tables.1.metrics.0 (line 18): Input should be"),
        (("group_by: [country], metrics: [count]}", "group_by: [zip], metrics: [count]}"), "'zip' is not an output"),
        (("  income: {action: keep}\n", "  income: {action: keep}\n  zip: {action: keep}\n"), "drop field 'zip'"),
        (
            ("aggregates:", "k_anonymity: {k: 2, quasi_identifiers: [country]}\naggregates:"),
            "releases no rows, so k_an",
        ),
        (  # found by the policy fuzzer: a mapping as a public group crashed on hashing it
            (f"public_groups: {json.dumps(COUNTRIES)}", "public_groups: [{}]"),
            "a public group's values are texts, numbers, booleans or dates",
        ),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, change, message):
    result = cli("validate", _policy(tmp_path, POLICY.replace(*change)))
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: policy ") and message in lines[0], result.err


def test_a_missing_dp_extra_is_one_line_naming_it(tmp_path, monkeypatch, keyset):
    monkeypatch.setitem(sys.modules, "pipeline_dp", None)  # what an install without the extra sees
    source = str(tmp_path / "customers.parquet")
    write_customers(source, 20)
    policy = _policy(tmp_path, POLICY)
    assert cli("erase", policy, "--init", "--keyset", keyset).code == 0
    result = cli("run", policy, "--input", source, "--output", tmp_path / "out", "--keyset", keyset)
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "error: differentially private aggregates need the dp extra: pip install 'veil[dp]' "
        "(pipeline-dp, published for Linux x86_64 with Python 3.11-3.13)"
    ]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@needs_dp
def test_the_terminal_summary_shows_the_tables_and_no_count(released):
    from rich.console import Console

    from veil.pipelines.console import summary_table

    _, out, manifest, _ = released
    console = Console(width=200, record=True)
    console.print(summary_table([manifest]))
    text = console.export_text()
    assert "withheld" in text and "tables: by_country, countries" in text and str(out) in text


@needs_dp
def test_veil_report_refuses_an_aggregates_output(released):
    _, out, _, _ = released
    result = cli("report", out, "--quasi-identifiers", "country", "--k", "2")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"error: {out} holds differentially private aggregates, not rows: there is no re-identification risk "
        "report for them (their manifest's aggregates entry records the guarantee)"
    ]
