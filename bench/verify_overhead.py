"""What verification adds to `veil run` (issue 11: at most 15% on the bench policy).

`veil run bench/policy.yaml` with `--verify fail` (the default) against the same run with
`--verify off`, each a separate process timed start to exit, rounds interleaved, the median of
`repeats`; the ratio of the medians is the figure. Wall time and CPU time (user + system of the
process tree, which a machine shared with other jobs disturbs less) are both reported.
`bench/run.py --verify-overhead` runs it.
"""

import json
import os
import resource
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
    cpus: dict[str, list[float]] = {"fail": [], "off": []}
    entry = None
    for round_ in range(repeats):
        for mode in ("off", "fail"):
            output = os.path.join(outputs, f"verify-{mode}")
            shutil.rmtree(output, ignore_errors=True)
            command = [*veil_command, "run", policy, "--input", data, "--output", output, "--keyset", keyset]
            command += ["--quiet", "--verify", mode]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall, _, _, code, _ = measure(command, env, os.path.join(logs, f"verify-{mode}"))
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[mode].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if code != 0:
                raise RuntimeError(f"veil run --verify {mode} exited with {code} (see {logs}/verify-{mode}.err)")
            walls[mode].append(wall)
            print(f"round {round_ + 1}/{repeats}: veil run --verify {mode}: {wall:.1f} s, {cpus[mode][-1]:.1f} s CPU")
            if mode == "fail":
                with open(os.path.join(output, "_manifest.json")) as manifest:
                    entry = json.load(manifest)["verify"]
    median = {mode: statistics.median(values) for mode, values in walls.items()}
    cpu = {mode: statistics.median(values) for mode, values in cpus.items()}
    overhead, cpu_overhead = median["fail"] / median["off"] - 1, cpu["fail"] / cpu["off"] - 1
    print(f"verification adds {overhead:.1%} wall, {cpu_overhead:.1%} CPU to veil run (target <= {TARGET:.0%})")
    return {
        "wall_s": median,
        "cpu_s": cpu,
        "runs": {"wall_s": walls, "cpu_s": cpus},
        "overhead": overhead,
        "cpu_overhead": cpu_overhead,
        "target": TARGET,
        "met": overhead <= TARGET,
        "cells_checked": entry["cells_checked"] if entry else None,
        "checked": entry["checked"] if entry else None,
        "findings": {"raw_values": entry["raw_values"], "patterns": entry["patterns"]} if entry else None,
    }
