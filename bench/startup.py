"""What a small `veil run` costs (issue 15: 1,000 rows in at most 1.5 s of wall time).

`veil run bench/policy.yaml` (verification on, as by default) over the first 1,000 generated
customers, `runs` times, each a separate process timed from start to exit: almost all of it is
fixed cost (imports, planning, building and running Beam's pipeline). The median wall time is the
figure; the CPU time (user + system of the process tree, which a shared machine disturbs less)
and the load average are reported beside it. `bench/run.py` runs it (`--startup-runs`, 0 skips).
"""

import os
import resource
import shutil
import statistics
from collections.abc import Callable

ROWS = 1_000
TARGET = 1.5  # seconds of wall time


def measure_startup(
    veil_command: list[str],
    policy: str,
    data: str,
    keyset: str,
    outputs: str,
    logs: str,
    env: dict[str, str],
    runs: int,
    measure: Callable[[list[str], dict[str, str], str], tuple],
) -> dict:
    """{rows, runs, wall_s, cpu_s (medians), per-run figures, load average}; `measure` is bench/run.py's."""
    walls, cpus = [], []
    output = os.path.join(outputs, "startup")
    for run in range(runs):
        shutil.rmtree(output, ignore_errors=True)
        command = [*veil_command, "run", policy, "--input", data, "--output", output, "--keyset", keyset, "--quiet"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall, _, _, code, _ = measure(command, env, os.path.join(logs, "startup"))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if code != 0:
            raise RuntimeError(f"veil run on {ROWS:,} rows exited with {code} (see {logs}/startup.err)")
        walls.append(wall)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        print(f"start-up {run + 1}/{runs}: veil run, {ROWS:,} rows: {wall:.2f} s, {cpus[-1]:.2f} s CPU", flush=True)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"veil run, {ROWS:,} rows: {wall:.2f} s wall (median of {runs}), {cpu:.2f} s CPU; target <= {TARGET:g} s")
    return {
        "rows": ROWS,
        "runs": runs,
        "wall_s": wall,
        "cpu_s": cpu,
        "per_run": {"wall_s": walls, "cpu_s": cpus},
        "load_average": os.getloadavg(),
        "target_wall_s": TARGET,
    }
