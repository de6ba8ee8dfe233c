"""`veil run` with k_anonymity and `veil report`: figures, fairness, fail mode, the HTML in a browser.

Every expected figure is computed here with plain Python over the output's Parquet files (and, for
figures before suppression, over the input put through the policy's field actions), never with
`veil.transforms.anonymity`.
"""

import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from helpers import CHROMIUM, NO_CHROMIUM, Result, chromium_screenshot, cli, pixels_near

from veil.pipelines.synthetic import synthetic_customers
from veil.transforms.engine import BoundPlan
from veil.transforms.plan import compile_plan
from veil.transforms.policy import parse_policy

ROWS, K, L = 900, 3, 2
QIS = ["age_band", "zip3", "gender"]
PROTECTED = ["gender", "country"]
POLICY = {
    "version": 1,
    "purpose": "analytics",
    "consent": {"field": "consents"},
    "fields": {
        "customer_id": {"action": "drop"},
        "birth_date": {
            "action": "generalize",
            "age_bins": [0, 18, 25, 35, 50, 65],
            "at": "2026-01-01",
            "as": "age_band",
        },
        "zip": {"action": "generalize", "prefix": 3, "as": "zip3"},
        "gender": {"action": "keep"},
        "country": {"action": "keep"},
        "income": {"action": "generalize", "width": 10000, "as": "income_band"},
    },
    "k_anonymity": {"k": K, "quasi_identifiers": QIS, "protected": PROTECTED},
    "l_diversity": {"l": L, "sensitive": ["income_band"]},
}


def write_policy(path: Path, **changes) -> Path:
    path.write_text(yaml.safe_dump({**POLICY, **changes}, sort_keys=False))
    return path


def key(row: dict, qis=QIS) -> tuple:
    return tuple(row[q] for q in qis)


def output_rows(folder: Path) -> list[dict]:
    return [row for part in sorted(folder.glob("part-*.parquet")) for row in pq.read_table(part).to_pylist()]


@dataclass
class World:
    root: Path
    policy: Path
    out: Path
    run: Result
    sanitized: list[dict]  # the input after the field actions and the consent gate, before suppression


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("report")
    table = synthetic_customers(ROWS)
    pq.write_table(table, root / "in.parquet")
    policy = write_policy(root / "analytics.yaml")
    sanitized = (
        BoundPlan(compile_plan(parse_policy(policy.read_text()), table.schema), None)
        .apply_records(table.to_pylist())
        .records
    )
    out = root / "out"
    run = cli("run", policy, "--input", root / "in.parquet", "--output", out)
    assert run.code == 0, run.err
    return World(root, policy, out, run, sanitized)


def expected_release(rows: list[dict]) -> tuple[list[dict], int, int]:
    """(kept rows, records suppressed for k, for l), the plain way."""
    classes: dict[tuple, list[dict]] = {}
    for row in rows:
        classes.setdefault(key(row), []).append(row)
    kept, small, undiverse = [], 0, 0
    for members in classes.values():
        if len(members) < K:
            small += len(members)
        elif len({m["income_band"] for m in members}) < L:
            undiverse += len(members)
        else:
            kept += members
    return kept, small, undiverse


def report_of(folder: Path) -> dict:
    return json.loads((folder / "_report.json").read_text())


# ---------------------------------------------------------------- veil run


def test_the_run_suppresses_exactly_the_violating_records_and_counts_them(world):
    kept, small, undiverse = expected_release(world.sanitized)
    assert 0 < small + undiverse < len(world.sanitized) // 2
    got = output_rows(world.out)
    assert sorted(map(repr, got)) == sorted(map(repr, kept))
    counts = json.loads((world.out / "_manifest.json").read_text())["counts"]
    assert counts["dropped"]["k_anonymity"] == small
    assert counts["dropped"].get("l_diversity", 0) == undiverse
    assert counts["written"] == len(got)
    assert counts["read"] == ROWS == counts["written"] + sum(counts["dropped"].values())


def test_report_figures_equal_an_independent_count(world):
    report = report_of(world.out)
    rows = output_rows(world.out)
    sizes = Counter(key(r) for r in rows)
    assert report["records"] == len(rows)
    assert report["equivalence_classes"] == len(sizes)
    assert report["smallest_class"] == min(sizes.values()) >= K
    assert report["records_below_k"]["after"] == 0
    before = Counter(key(r) for r in world.sanitized)
    assert report["records_below_k"]["before"] == sum(n for n in before.values() if n < K) > 0
    assert report["unique_share"] == pytest.approx(sum(1 for r in rows if sizes[key(r)] == 1) / len(rows))
    risks = [1 / sizes[key(r)] for r in rows]
    assert report["prosecutor_risk_max"] == pytest.approx(max(risks))
    assert report["prosecutor_risk_mean"] == pytest.approx(sum(risks) / len(risks))
    assert report["distinct_values"] == {q: len({r[q] for r in rows}) for q in QIS}
    incomes: dict[tuple, set] = {}
    for row in rows:
        incomes.setdefault(key(row), set()).add(row["income_band"])
    assert report["l_diversity"] == {"income_band": min(len(v) for v in incomes.values())}
    bars = report["class_size_histogram"]
    assert sum(b["classes"] for b in bars) == len(sizes) and sum(b["records"] for b in bars) == len(rows)
    for bar in bars:
        assert bar["records"] == sum(n for n in sizes.values() if bar["min"] <= n <= bar["max"])
        assert bar["records_before"] == sum(n for n in before.values() if bar["min"] <= n <= bar["max"])
    assert report["before"]["equivalence_classes"] == len(before)


def test_fairness_shares_and_warnings_equal_an_independent_count(world):
    report = report_of(world.out)
    kept = Counter((name, r[name]) for r in output_rows(world.out) for name in PROTECTED)
    before = Counter((name, r[name]) for r in world.sanitized for name in PROTECTED)
    overall = 1 - sum(kept.values()) / sum(before.values())
    flagged = set()
    for entry in report["fairness"]:
        group = (entry["field"], entry["value"])
        lost = before[group] - kept[group]
        assert entry["records_before"] == before[group] and entry["records_after"] == kept[group]
        assert entry["share_suppressed"] == pytest.approx(lost / before[group])
        total_before = sum(n for (f, _), n in before.items() if f == entry["field"])
        total_after = sum(n for (f, _), n in kept.items() if f == entry["field"])
        assert entry["share_before"] == pytest.approx(before[group] / total_before)
        assert entry["share_after"] == pytest.approx(kept[group] / total_after)
        if lost / before[group] > 2 * overall:
            flagged.add(group)
        assert entry["warning"] == (group in flagged)
    assert {(e["field"], e["value"]) for e in report["fairness"]} == set(before)
    assert flagged, "the skewed data should make some rare group lose more than twice the overall rate"
    assert len(report["fairness_warnings"]) == len(flagged)
    manifest = json.loads((world.out / "_manifest.json").read_text())
    assert manifest["k_anonymity"]["warnings"] == report["fairness_warnings"]
    warned = [line for line in world.run.err.splitlines() if line.startswith("warning: analytics: ")]
    assert len(warned) == len(flagged)
    for field, value in flagged:
        assert any(f"{field}={value}:" in line for line in warned)


def test_the_run_prints_where_the_report_is(world):
    assert f"risk report {world.out / '_report.html'}" in world.run.err
    assert (world.out / "_report.json").is_file() and (world.out / "_report.html").is_file()


def test_the_fairness_warning_fires_when_and_only_when_twice_the_overall_rate_is_crossed(tmp_path):
    # k=2 over a: the lone a=3 record goes, 1 of 5 (20%). Group g=x loses 1 of 3 (33%: more than
    # the overall rate, not twice it), g=y and h=p lose nothing, h=q loses 1 of 1 (100% > 40%).
    rows = [(1, "x", "p"), (1, "y", "p"), (2, "x", "p"), (2, "y", "p"), (3, "x", "q")]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"a": a, "g": g, "h": h}) + "\n" for a, g, h in rows))
    policy = {
        "version": 1,
        "purpose": "cohorts",
        "fields": {name: {"action": "keep"} for name in ("a", "g", "h")},
        "k_anonymity": {"k": 2, "quasi_identifiers": ["a"], "protected": ["g", "h"]},
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(policy))
    result = cli("run", tmp_path / "p.yaml", "--input", tmp_path / "in.jsonl", "--output", tmp_path / "out")
    assert result.code == 0, result.err
    entries = {(e["field"], e["value"]): e for e in report_of(tmp_path / "out")["fairness"]}
    assert entries[("g", "x")]["share_suppressed"] == pytest.approx(1 / 3)
    assert entries[("h", "q")]["share_suppressed"] == 1.0 and entries[("h", "q")]["share_after"] == 0.0
    assert {group for group, e in entries.items() if e["warning"]} == {("h", "q")}
    warned = [line for line in result.err.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "h=q: 100.0% of its 1 records suppressed" in warned[0]


# ---------------------------------------------------------------- on_violation: fail


def test_fail_mode_exits_2_with_the_counts_and_writes_no_data(world, tmp_path):
    spec = {**POLICY["k_anonymity"], "on_violation": "fail"}
    policy = write_policy(tmp_path / "fail.yaml", k_anonymity=spec)
    out = tmp_path / "out"
    result = cli("run", policy, "--input", world.root / "in.parquet", "--output", out)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    before = Counter(key(r) for r in world.sanitized)
    small = {c: n for c, n in before.items() if n < K}
    assert f"{len(small)} equivalence classes with {sum(small.values())} records are smaller than k={K}" in lines[0]
    assert "on_violation: fail" in lines[0]
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))  # no data, manifest or report


# ---------------------------------------------------------------- veil report


def test_veil_report_recomputes_what_the_run_wrote(world, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(world.out, copy)
    (copy / "_report.json").unlink()
    (copy / "_report.html").unlink()
    result = cli("report", copy)
    assert result.code == 0, result.err
    again, first = report_of(copy), report_of(world.out)
    for report in (again, first):
        report.pop("generated"), report.pop("folder")
    assert again == first
    assert "hint: zip3: with prefix: 2 instead of prefix: 3" in result.out
    assert f"report: {copy / '_report.html'}" in result.out


def test_veil_report_with_other_quasi_identifiers_measures_the_output(world, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(world.out, copy)
    result = cli("report", copy, "--quasi-identifiers", "age_band,country", "--k", "5")
    assert result.code == 0, result.err
    report = report_of(copy)
    sizes = Counter(key(r, ["age_band", "country"]) for r in output_rows(copy))
    assert report["quasi_identifiers"] == ["age_band", "country"] and report["k"] == 5
    assert report["equivalence_classes"] == len(sizes)
    assert report["records_below_k"] == {"before": None, "after": sum(n for n in sizes.values() if n < 5)}
    coarser = Counter((r["age_band"], r["country"]) for r in output_rows(copy))
    assert report["hints"][1]["records_below_k_without"] == sum(
        n for n in Counter(r["age_band"] for r in output_rows(copy)).values() if n < 5
    )
    assert len(coarser) == len(sizes)


def test_veil_report_needs_quasi_identifiers(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    (tmp_path / "p.yaml").write_text("version: 1\npurpose: cohorts\nfields: {a: {action: keep}}\n")
    assert cli("run", tmp_path / "p.yaml", "--input", tmp_path / "in.jsonl", "--output", tmp_path / "out").code == 0
    assert not (tmp_path / "out" / "_report.json").exists()
    result = cli("report", tmp_path / "out")
    assert result.code == 2 and "--quasi-identifiers" in result.err
    result = cli("report", tmp_path / "out", "--quasi-identifiers", "a", "--k", "2")
    assert result.code == 0, result.err
    assert report_of(tmp_path / "out")["records_below_k"] == {"before": None, "after": 2}


def test_a_view_with_every_record_suppressed_still_gets_its_report(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    policy = "version: 1\npurpose: cohorts\nfields: {a: {action: keep}}\nk_anonymity: {k: 2, quasi_identifiers: [a]}\n"
    (tmp_path / "p.yaml").write_text(policy)
    out = tmp_path / "out"
    result = cli("run", tmp_path / "p.yaml", "--input", tmp_path / "in.jsonl", "--output", out, "--format", "jsonl")
    assert result.code == 0, result.err
    report = report_of(out)
    assert report["records"] == 0 and report["records_below_k"] == {"before": 2, "after": 0}
    assert report["suppressed"]["share"] == 1.0


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_the_report_reads_text_outputs_with_their_types(world, tmp_path, fmt):
    out = tmp_path / fmt
    result = cli("run", world.policy, "--input", world.root / "in.parquet", "--output", out, "--format", fmt)
    assert result.code == 0, result.err
    text, parquet = report_of(out), report_of(world.out)
    for name in ("records", "equivalence_classes", "distinct_values", "l_diversity", "class_size_histogram"):
        assert text[name] == parquet[name], name  # zip3 "010" stays text, not the number 10


# ---------------------------------------------------------------- the HTML, in a browser


def test_the_html_is_self_contained(world):
    page = (world.out / "_report.html").read_text()
    assert "<svg" in page and "<script" not in page.lower()
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page)) - {"http://www.w3.org/2000/svg"}
    assert urls == set()
    assert not re.search(r"\b(src|href)\s*=", page)


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_the_html_report_renders_its_histogram_in_headless_chromium(world, tmp_path):
    from veil.pipelines.report_html import AFTER_COLOR, BEFORE_COLOR

    pixels = chromium_screenshot(world.out / "_report.html", tmp_path / "report.png")
    assert pixels_near(pixels, AFTER_COLOR) > 2000, "no histogram bars for the output"
    assert pixels_near(pixels, BEFORE_COLOR) > 2000, "no histogram bars for before suppression"
