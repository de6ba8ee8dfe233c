"""What verification adds to `veil run` (issue 11: at most 15% on the bench policy).

`veil run bench/policy.yaml` with `--verify fail` (the default) against the same run with
`--verify off`, each a separate process timed start to exit, rounds interleaved, the median of
`repeats`; the ratio of the medians is the figure. `bench/run.py --verify-overhead` runs it.
"""

import json
import os
import shutil
import statistics
from collections.abc import Callable

TARGET = 0.15


def measure_overhead(
    veil_command: list[str],
    policy: str,
    data: str,
    keyset: str,
    outputs: str,
    logs: str,
    env: dict[str, str],
    repeats: int,
    measure: Callable[[list[str], dict[str, str], str], tuple],
) -> dict:
    """{wall_s: {fail, off}, overhead, target, cells_checked, findings}; `measure` is bench/run.py's."""
    walls: dict[str, list[float]] = {"fail": [], "off": []}
    entry = None
    for round_ in range(repeats):
        for mode in ("off", "fail"):
            output = os.path.join(outputs, f"verify-{mode}")
            shutil.rmtree(output, ignore_errors=True)
            command = [*veil_command, "run", policy, "--input", data, "--output", output, "--keyset", keyset]
            command += ["--quiet", "--verify", mode]
            wall, _, _, code, _ = measure(command, env, os.path.join(logs, f"verify-{mode}"))
            if code != 0:
                raise RuntimeError(f"veil run --verify {mode} exited with {code} (see {logs}/verify-{mode}.err)")
            walls[mode].append(wall)
            print(f"round {round_ + 1}/{repeats}: veil run --verify {mode}: {wall:.1f} s", flush=True)
            if mode == "fail":
                with open(os.path.join(output, "_manifest.json")) as manifest:
                    entry = json.load(manifest)["verify"]
    median = {mode: statistics.median(values) for mode, values in walls.items()}
    overhead = median["fail"] / median["off"] - 1
    print(f"verification adds {overhead:.1%} to veil run (target <= {TARGET:.0%})", flush=True)
    return {
        "wall_s": median,
        "runs": walls,
        "overhead": overhead,
        "target": TARGET,
        "met": overhead <= TARGET,
        "cells_checked": entry["cells_checked"] if entry else None,
        "checked": entry["checked"] if entry else None,
        "findings": {"raw_values": entry["raw_values"], "patterns": entry["patterns"]} if entry else None,
    }
