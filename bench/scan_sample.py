"""`veil scan` benchmark: the CPU time of a scan of the demo customers, per format, and what reading costs in it.

Writes `--rows` synthetic customers (pipelines/synthetic.py, the demo's table) as CSV and
Parquet, then per format, interleaved over `--repeat` rounds: the CPU time (user + sys of this
process) of `scan_input` with the default sample, and of reading the whole input alone through
`veil run`'s reader (`read_file`). Medians are printed, with the reading share of the scan.
A benchmark, not a test: `python bench/scan_sample.py [--rows N] [--sample N] [--repeat N]`.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

from veil.pipelines.scan import DEFAULT_SAMPLE, scan_input
from veil.pipelines.synthetic import write_customers
from veil.transforms.io import format_of, read_file, read_schema


def _cpu(call) -> float:
    start = time.process_time()
    call()
    return time.process_time() - start


def _read_all(path: str) -> None:
    fmt = format_of(path)
    schema = read_schema([path], fmt)
    for _ in read_file(path, fmt, schema):
        pass


def main(argv: list[str] | None = None) -> None:
    """Print the medians, in CPU seconds, per format."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="veil-scan-bench-") as folder:
        paths = {suffix: os.path.join(folder, f"customers.{suffix}") for suffix in ("csv", "parquet")}
        for path in paths.values():
            write_customers(path, args.rows)
        scans: dict[str, list[float]] = {suffix: [] for suffix in paths}
        reads: dict[str, list[float]] = {suffix: [] for suffix in paths}
        for _ in range(args.repeat):
            for suffix, path in paths.items():
                scans[suffix].append(_cpu(lambda path=path: scan_input(path, args.sample)))
                reads[suffix].append(_cpu(lambda path=path: _read_all(path)))
    print(f"veil scan, {args.rows:,} rows, sample {args.sample:,}, median of {args.repeat} (CPU seconds):")
    for suffix in paths:
        scan, read = statistics.median(scans[suffix]), statistics.median(reads[suffix])
        print(f"  {suffix:8} scan {scan:6.2f} s   whole input read alone {read:5.2f} s ({read / scan:.0%} of the scan)")
    print(f"  load average {os.getloadavg()[0]:.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
