"""Smoke test of the benchmark harness (bench/run.py) on 1,000 rows: it runs, prints, writes JSON.

Not a benchmark: no timing is asserted, only that every contender ran and was reported.
"""

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
CONTENDERS = ("veil", "veil_verify", "veil_2w", "limit", "engine", "naive", "presidio")


def test_harness_runs_every_contender_on_1000_rows(tmp_path):
    results = tmp_path / "results.json"
    command = [sys.executable, str(BENCH / "run.py"), "--rows", "1000", "--repeats", "1", "--micro-values", "300"]
    command += ["--data-dir", str(tmp_path / "data"), "--results", str(results), "--detection-notes", "40"]
    command += ["--startup-runs", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    doc = json.loads(results.read_text())
    assert set(doc["contenders"]) == set(CONTENDERS)
    assert doc["data"]["rows"] == 1000 and doc["repeats"] == 1
    assert doc["machine"]["nproc"] >= 1 and doc["machine"]["packages"]["veil"]
    for key, row in doc["contenders"].items():
        if row["skipped"]:  # only Presidio may be, when the bench extra is not installed
            assert key == "presidio" and "presidio-anonymizer" in row["skipped"]
            assert re.search(rf"^{re.escape(row['label'])}\s+skipped", done.stdout, re.M)
            continue
        assert row["records_per_s"] > 0 and row["wall_s"] > 0 and row["peak_rss_mb"] > 0 and row["cpu_s"] > 0
        assert row["read"] == 1000 and 0 < row["written"] < 1000  # the consent gate drops some
        assert "MISMATCH" not in row["output_check"] and "NOT" not in row["output_check"]
        printed = re.search(rf"^{re.escape(row['label'])}\s+([\d,]+)\s", done.stdout, re.M)
        assert printed, f"{row['label']} is not in the printed table"
        assert int(printed.group(1).replace(",", "")) > 0
    speed_ups = {"veil 2 workers / 1 worker, 1M", "veil 2 workers / 1 worker, 4M", "veil peak RSS 10M / 1M rows"}
    assert {"veil / limit", "veil / naive Beam", "veil / Presidio", *speed_ups} <= set(doc["targets"])
    assert doc["targets"]["veil 2 workers / 1 worker, 1M"]["value"] > 0  # measured at --rows
    assert doc["targets"]["veil, verify on / limit"]["value"] > 0  # the default run beside the like-for-like one
    assert "byte-equal" in doc["contenders"]["veil_verify"]["output_check"]  # verification changes no output
    assert re.search(r"^  veil, verify on / limit\s+[\d.]+\s+target -\s+reference", done.stdout, re.M)
    assert re.search(r"^load average \(1, 5, 15 min\) at start [\d.]+, [\d.]+, [\d.]+; at end ", done.stdout, re.M)
    assert doc["micro"]["ff1"]["us_per_value"]["encrypt_many (batched)"]["median"] > 0
    assert all(row["us_per_value"] > 0 and row["column_us"] > 0 for row in doc["micro"]["actions"]["actions"].values())
    startup = doc["startup"]
    assert startup["rows"] == 1000 and startup["runs"] == 2 and len(startup["per_run"]["wall_s"]) == 2
    assert min(startup["per_run"]["cpu_s"]) > 0 and startup["wall_s"] == statistics.median(startup["per_run"]["wall_s"])
    assert doc["targets"]["veil run, 1,000 rows: wall s"]["value"] == startup["wall_s"]
    assert re.search(r"^veil run, 1,000 rows: [\d.]+ s wall \(median of 2\)", done.stdout, re.M)
    assert doc["memory_check"] is None
    assert doc["detection"]["notes"] == 40 and doc["detection"]["veil"]["email"]["planted"] > 0
    assert re.search(r"^detection: 40 notes", done.stdout, re.M)


def test_the_generalize_search_option_writes_two_valid_policies_over_one_lattice(tmp_path):
    sys.path.insert(0, str(BENCH))
    try:
        from generalize_search import LEVELS, write_policies
    finally:
        sys.path.remove(str(BENCH))
    from veil.pipelines.synthetic import CUSTOMER_SCHEMA
    from veil.transforms.plan import compile_plan
    from veil.transforms.policy import load_policy

    paths = write_policies(str(tmp_path))
    suppress, generalize = (load_policy(paths[mode]) for mode in ("suppress", "generalize"))
    assert suppress.fields == generalize.fields == load_policy(BENCH / "policy.yaml").fields  # the same view
    assert suppress.k_anonymity.on_violation == "suppress" and generalize.k_anonymity.on_violation == "generalize"
    assert suppress.k_anonymity.quasi_identifiers == generalize.k_anonymity.quasi_identifiers == tuple(LEVELS)
    counts = [generalize.k_anonymity.level_count(name) for name in LEVELS]
    assert counts == [5, 4, 5, 4]  # 3-4 quasi-identifiers of 4-5 levels each (issue 14): 400 nodes
    for policy in (suppress, generalize):
        compile_plan(policy, CUSTOMER_SCHEMA)
