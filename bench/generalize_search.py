"""The generalization search against plain suppression (issue 14): `bench/run.py --generalize-search`.

Two policies over the bench table, both bench/policy.yaml's 12 fields plus k-anonymity (k=5)
over four quasi-identifiers: `suppress` (classes below k dropped at the finest level) and
`generalize` (each quasi-identifier with 4-5 levels, a lattice of 400 nodes; at most 2% of the
records still suppressed). Each runs as a `veil run` process, interleaved with the other, and
the median of the rounds counts. The target: the search (counting the finest classes, the
lattice search, applying the chosen levels) costs at most 1.3x the time of the suppress run.
"""

import json
import os
import statistics
from collections.abc import Callable

import yaml

BENCH = os.path.dirname(os.path.abspath(__file__))
POLICY = os.path.join(BENCH, "policy.yaml")
TARGET = 1.3
K, MAX_SUPPRESSION = 5, 0.02
LEVELS = {  # output field -> levels, finest (the field's own action in bench/policy.yaml) first
    "age_band": [
        {"age_bins": [0, 18, 25, 35, 50, 65]},
        {"age_bins": [0, 25, 35, 50, 65]},
        {"age_bins": [0, 25, 50, 65]},
        {"age_bins": [0, 50]},
        "suppress",
    ],
    "zip3": [{"prefix": 3}, {"prefix": 2}, {"prefix": 1}, "suppress"],
    "income_band": [{"width": 10000}, {"width": 20000}, {"width": 40000}, {"width": 80000}, "suppress"],
    "signup_month": [{"date": "month"}, {"date": "quarter"}, {"date": "year"}, "suppress"],
}


def write_policies(folder: str) -> dict[str, str]:
    """The two policies (`suppress`, `generalize`) as files in `folder`: mode -> path."""
    with open(POLICY) as source:
        base = yaml.safe_load(source)
    rules = {
        "suppress": {"k": K, "quasi_identifiers": list(LEVELS), "on_violation": "suppress"},
        "generalize": {
            "k": K,
            "quasi_identifiers": {name: {"levels": levels} for name, levels in LEVELS.items()},
            "on_violation": "generalize",
            "max_suppression": MAX_SUPPRESSION,
        },
    }
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for mode, rule in rules.items():
        paths[mode] = os.path.join(folder, f"generalize_search_{mode}.yaml")
        with open(paths[mode], "w") as out:
            yaml.safe_dump({**base, "k_anonymity": rule}, out, sort_keys=False)
    return paths


def measure_search(
    *,
    data: str,
    keyset: str,
    env: dict[str, str],
    logs: str,
    outputs: str,
    repeats: int,
    veil_command: list[str],
    contender: Callable[..., object],
    run_once: Callable[..., object],
) -> dict:
    """Time both policies (`repeats` interleaved rounds); the ratio, the search's figures and the verdict.

    `contender(key, label, description, command, veil)` and `run_once(contender, output, env, logs)`
    are bench/run.py's, so both runs are measured exactly as every other contender is.
    """
    paths = write_policies(os.path.join(outputs, "generalize_search_policies"))
    io = ["--input", data, "--output", "{output}", "--keyset", keyset, "--quiet"]
    runs: dict[str, list] = {mode: [] for mode in paths}
    for round_ in range(repeats):
        for mode, path in paths.items():
            job = contender(f"search_{mode}", f"k-anonymity {mode}", mode, [*veil_command, "run", path, *io], True)
            print(f"generalize search, round {round_ + 1}/{repeats}: {mode} ...", end=" ", flush=True)
            runs[mode].append(run_once(job, os.path.join(outputs, f"search_{mode}"), env, logs))
            print(f"{runs[mode][-1].wall_s:.1f} s", flush=True)
    entries = {}
    for mode in paths:
        with open(os.path.join(outputs, f"search_{mode}", "_manifest.json")) as manifest:
            entries[mode] = json.load(manifest)["k_anonymity"]
    wall = {mode: statistics.median(run.wall_s for run in runs[mode]) for mode in paths}
    ratio = wall["generalize"] / wall["suppress"]
    search = entries["generalize"]["generalization"]
    return {
        "policies": {mode: os.path.basename(path) for mode, path in paths.items()},
        "quasi_identifiers": {name: len(levels) for name, levels in LEVELS.items()},
        "k": K,
        "max_suppression": MAX_SUPPRESSION,
        "wall_s": wall,
        "runs": {mode: [run.wall_s for run in runs[mode]] for mode in paths},
        "records": runs["suppress"][0].written + entries["suppress"]["suppressed"]["records"],
        "suppressed": {mode: entries[mode]["suppressed"]["records"] for mode in paths},
        "lattice_size": search["lattice_size"],
        "nodes_evaluated": search["nodes_evaluated"],
        "chosen": {name: level["setting"] for name, level in search["chosen"]["levels"].items()},
        "target": {
            "value": ratio,
            "target": f"<= {TARGET:g}",
            "verdict": "met" if ratio <= TARGET else "NOT MET",
            "on": f"wall s of veil run with on_violation generalize / suppress, {len(LEVELS)} quasi-identifiers, "
            f"{search['lattice_size']} nodes",
        },
    }


def print_search(result: dict) -> None:
    """The search's lines in the bench report."""
    wall, lost = result["wall_s"], result["suppressed"]
    print(
        f"\ngeneralization search (k={result['k']}, {result['lattice_size']} nodes, {result['nodes_evaluated']} "
        f"evaluated): generalize {wall['generalize']:.1f} s vs suppress {wall['suppress']:.1f} s = "
        f"{result['target']['value']:.2f}x (target {result['target']['target']}: {result['target']['verdict']})"
    )
    print(
        f"  suppressed: {lost['generalize']:,} records with generalize vs {lost['suppress']:,} with suppress "
        f"(of {result['records']:,}); chosen: " + ", ".join(f"{k} {v}" for k, v in result["chosen"].items())
    )
