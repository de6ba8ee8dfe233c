"""Micro-benchmark of FF1 on 16-digit values: per-value `encrypt` vs batched `encrypt_many`.

Not a test. Run: `.venv/bin/python bench/ff1_micro.py [--values N] [--repeats R] [--profile] [--json PATH]`.
Prints the median over the repeats, in microseconds per value; `--json` also writes them
(bench/run.py reads that). The project's target is
<= 10 us per 16-digit value (see /work/shared/PERF-NOTES.md: pure-Python FF3-1 costs 63.5).
"""

import argparse
import cProfile
import json
import pstats
import random
import statistics
import time
from collections.abc import Callable

from veil.keys.ff1 import ALPHABETS, FF1Alphabet

TARGET_US = 10.0
KEY = bytes(range(32))  # public benchmark key
TWEAK = b"veil/bench/card_number"


def _values(count: int) -> list[str]:
    rng = random.Random(20260101)
    return [f"{rng.randrange(10**16):016d}" for _ in range(count)]


def _timings_us(run: Callable[[], object], count: int, repeats: int) -> tuple[float, float]:
    """(median, best) of `repeats` runs, in microseconds per value."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) / count * 1e6, min(timings) / count * 1e6


def measure(count: int, repeats: int) -> tuple[dict[str, tuple[float, float]], dict[str, Callable[[], object]]]:
    """{name: (median, best) us per value} of each FF1 path over `count` values, and the runs themselves."""
    ff1 = FF1Alphabet(KEY, ALPHABETS["digits"])
    values = _values(count)
    # Warm up (plan cache) and check the two paths agree and round-trip.
    batched = ff1.encrypt_many(values, TWEAK)
    assert batched == [ff1.encrypt(v, TWEAK) for v in values]
    assert ff1.decrypt_many(batched, TWEAK) == values

    def per_value() -> list[str]:
        return [ff1.encrypt(v, TWEAK) for v in values]

    def batch() -> list[str]:
        return ff1.encrypt_many(values, TWEAK)

    def batch_decrypt() -> list[str]:
        return ff1.decrypt_many(batched, TWEAK)

    runs = {
        "encrypt (per value)": per_value,
        "encrypt_many (batched)": batch,
        "decrypt_many (batched)": batch_decrypt,
    }
    return {name: _timings_us(run, count, repeats) for name, run in runs.items()}, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one batched and one per-value run")
    parser.add_argument("--json", help="also write {name: {median_us, best_us}} to this file")
    args = parser.parse_args()

    results, runs = measure(args.values, args.repeats)
    print(f"FF1 over 16-digit values, {args.values} values, median (best) of {args.repeats} runs")
    for name, (median, best) in results.items():
        verdict = "ok" if median <= TARGET_US else f"over the {TARGET_US:g} us target"
        print(f"  {name:<24} {median:6.2f} ({best:5.2f}) us/value  {verdict}")
    if args.json:
        doc = {
            "values": args.values,
            "repeats": args.repeats,
            "target_us": TARGET_US,
            "us_per_value": {name: {"median": median, "best": best} for name, (median, best) in results.items()},
        }
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(doc, out, indent=2)

    if args.profile:
        for name in ("encrypt_many (batched)", "encrypt (per value)"):
            print(f"\n--- cProfile: {name} ---")
            profiler = cProfile.Profile()
            profiler.runcall(runs[name])
            pstats.Stats(profiler).sort_stats("tottime").print_stats(8)


if __name__ == "__main__":
    main()
