"""The veil benchmark harness (issue 6): veil against the plain-Python limit, naive Beam and Presidio.

`make bench` runs this. All contenders read the same cached Parquet file of synthetic customers
and write Parquet, applying the 12 fields of bench/policy.yaml with the same primitives:

  limit            bench/contender_limit.py: pyarrow column by column, no Beam
  veil engine      bench/contender_engine.py: veil's BoundPlan over pyarrow batches, no Beam (a
                   reference: veil run / veil engine is what Beam costs)
  naive Beam       bench/contender_naive.py: ReadFromParquet -> per-record DoFn -> WriteToParquet
  Presidio         bench/contender_presidio.py: the naive job with presidio-anonymizer operators
  veil             `veil run bench/policy.yaml ... --verify off` on the DirectRunner, 1 worker: the
                   same work as the other contenders (`veil / limit` is taken with it)
  veil, verify on  `veil run` as it runs by default (output verification on, 1 worker): a
                   reference (verification is work no other contender does); it runs
                   whenever `veil` does, and the 2-worker and memory figures are taken with it
  veil, 2 workers  the same with --direct_num_workers 2 --direct_running_mode multi_processing

Each run is a separate process, timed end to end (interpreter start to exit); its peak RSS is
the largest sum of the resident sets of its process tree, sampled every 50 ms from /proc (and
never less than the kernel's high-water mark, VmHWM, of the largest single process in it). Rounds are interleaved (every
contender once, then again) and the median of `--repeats` rounds is reported. After its first
run, each contender's output is checked against veil's: same rows, byte-equal deterministic
columns (Presidio: those it computes the same way). Then the start-up figure (bench/startup.py:
`veil run` over 1,000 rows, `--startup-runs` times, the median wall time), the per-action and FF1
micro-benchmarks and the detection bench (bench/detection.py, `--detection-notes`) run, and
with `--memory-check` veil's 2-worker speed-up at 1M and 4M rows and its peak RSS at 1M and 10M rows
(inputs above 1M rows repeat the 1M generated ones, ids renumbered).

Writes bench/results.json (or `--results`). Benchmarks are not tests: nothing here fails on a
missed target; targets are printed as met or not met.
"""

import argparse
import base64
import datetime as dt
import glob
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
POLICY = os.path.join(BENCH, "policy.yaml")
sys.path.insert(0, BENCH)

# A fixed, public master key: the benchmark keyset protects nothing but synthetic data.
MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
CHUNK_ROWS = 100_000  # rows generated at once, and the input's Parquet row-group size
TILE_ROWS = 1_000_000  # larger inputs repeat this many generated rows (see `_tiled`)
SAMPLE_SECONDS = 0.05
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024

FF1_CASE = "tokenize ff1 card_number (keep_last 4)"  # its label in bench/actions_micro.py
TARGETS = {  # name -> (comparison, threshold)
    "veil / limit": (">=", 0.9),
    "veil / naive Beam": (">=", 2.5),
    "veil / Presidio": (">=", 10.0),
    "FF1 encrypt_many, batched (us)": ("<=", 10.0),
    "tokenize ff1, per card in veil (us)": ("<=", 10.0),
    "veil peak RSS 10M / 1M rows": ("<=", 1.3),
    "veil 2 workers / 1 worker, 1M": (">=", 1.3),
    "veil 2 workers / 1 worker, 4M": (">=", 1.7),
    "veil run, 1,000 rows: wall s": ("<=", 1.5),
}


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    description: str
    command: list[str]
    veil: bool = False


@dataclass
class Run:
    wall_s: float
    peak_tree_rss: int  # bytes, sampled sum over the process tree
    max_process_rss: int  # bytes, the largest VmHWM (kernel high-water mark) of one process in the tree
    read: int
    written: int
    cpu_s: float = 0.0  # user + system seconds of the process tree (a shared machine disturbs it less than wall)

    @property
    def peak_rss(self) -> int:
        return max(self.peak_tree_rss, self.max_process_rss)


@dataclass
class Outcome:
    contender: Contender
    runs: list[Run] = field(default_factory=list)
    check: str = "not checked"
    skipped: str | None = None

    @property
    def wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def cpu_s(self) -> float:
        return statistics.median(r.cpu_s for r in self.runs)

    @property
    def records_per_s(self) -> float:
        return self.runs[0].read / self.wall_s if self.runs else 0.0

    @property
    def peak_rss_mb(self) -> float:
        return statistics.median(r.peak_rss for r in self.runs) / MIB


# --- data and keys ---------------------------------------------------------------------------


def ensure_data(data_dir: str, rows: int) -> str:
    """The cached input file of `rows` synthetic customers, generated in chunks if missing.

    Chunk k is `synthetic_customers(rows_k, seed=7 + k)` with customer ids renumbered to follow
    the previous chunk's, written as one Parquet row group, so memory stays flat at any size.
    """
    from veil.pipelines.synthetic import CUSTOMER_SCHEMA, synthetic_customers

    path = os.path.join(data_dir, f"customers-{rows}.parquet")
    if os.path.exists(path):
        return path
    if rows > TILE_ROWS:
        return _tiled(ensure_data(data_dir, TILE_ROWS), rows, path)
    os.makedirs(data_dir, exist_ok=True)
    print(f"generating {rows:,} synthetic customers into {path} (once; cached) ...", flush=True)
    start, partial = time.perf_counter(), path + ".partial"
    with pq.ParquetWriter(partial, CUSTOMER_SCHEMA, compression="snappy") as writer:
        for k, offset in enumerate(range(0, rows, CHUNK_ROWS)):
            count = min(CHUNK_ROWS, rows - offset)
            table = synthetic_customers(count, seed=7 + k)
            ids = pa.array([f"C{offset + i:07d}" for i in range(1, count + 1)], pa.string())
            writer.write_table(table.set_column(0, "customer_id", ids), row_group_size=CHUNK_ROWS)
    os.replace(partial, path)
    print(f"  generated in {time.perf_counter() - start:.0f} s", flush=True)
    return path


def _tiled(source: str, rows: int, path: str) -> str:
    """`rows` customers made of the row groups of `source` over and over, customer ids renumbered.

    Faker writes about 4k customers/s: 10M rows would take 40 minutes. Repeating the 1M cached
    ones is as good for throughput and memory (every value still goes through every action;
    the ids stay distinct, and the engine's per-batch memos see what they see in 1M rows).
    """
    print(f"building {rows:,} customers from {source} (once; cached) ...", flush=True)
    partial, written, reader = path + ".partial", 0, pq.ParquetFile(source)
    with pq.ParquetWriter(partial, reader.schema_arrow, compression="snappy") as writer:
        while written < rows:
            for group in range(reader.num_row_groups):
                table = reader.read_row_group(group)
                table = table.slice(0, min(table.num_rows, rows - written))
                ids = pa.array([f"C{written + i:08d}" for i in range(1, table.num_rows + 1)], pa.string())
                writer.write_table(table.set_column(0, "customer_id", ids), row_group_size=CHUNK_ROWS)
                written += table.num_rows
                if written == rows:
                    break
    os.replace(partial, path)
    return path


def ensure_keyset(data_dir: str) -> str:
    """The benchmark keyset (one primary key), wrapped by MASTER_KEY; made once."""
    from veil.keys import init_keyset, open_keyring

    path = os.path.join(data_dir, "keyset.json")
    if os.path.exists(path):
        try:
            open_keyring(path)
            return path
        except Exception:  # made under another master key: start again
            os.remove(path)
    init_keyset(path)
    return path


# --- measuring one process -------------------------------------------------------------------


def _tree_rss(root: int) -> tuple[int, int]:
    """(sum of the current RSS, largest high-water mark VmHWM) over `root` and its descendants, in bytes.

    VmHWM is per address space and starts again at exec, so unlike `wait4`'s ru_maxrss it does
    not inherit the harness's own size from the fork.
    """
    total, high, stack, seen = 0, 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        high = max(high, int(line.split()[1]) * 1024)
                    elif line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break  # VmRSS comes after VmHWM
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    stack.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):  # the process or thread is gone
            continue
    return total, high


def measure(command: list[str], env: dict[str, str], log_path: str) -> tuple[float, int, int, int, str]:
    """Run `command`: (wall seconds, peak summed tree RSS, largest process VmHWM, exit code, stdout)."""
    with open(log_path + ".out", "w") as out, open(log_path + ".err", "w") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=REPO)
        peak, high, done = 0, 0, threading.Event()

        def sample() -> None:
            nonlocal peak, high
            while not done.is_set():
                total, hwm = _tree_rss(process.pid)
                peak, high = max(peak, total), max(high, hwm)
                done.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        process.wait()
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
    with open(log_path + ".out") as out:
        stdout = out.read()
    return wall, peak, high, process.returncode, stdout


def run_once(contender: Contender, output: str, env: dict[str, str], logs: str) -> Run:
    shutil.rmtree(output, ignore_errors=True)
    command = [part.replace("{output}", output) for part in contender.command]
    log = os.path.join(logs, contender.key)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, tree_peak, proc_peak, code, stdout = measure(command, env, log)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if code != 0:
        with open(log + ".err") as err:
            tail = err.read()[-3000:]
        raise RuntimeError(f"{contender.label} exited with {code}: {' '.join(command)}\n{tail}")
    if contender.veil:
        with open(os.path.join(output, "_manifest.json")) as manifest:
            counts = json.load(manifest)["counts"]
    else:
        counts = json.loads(stdout.strip().splitlines()[-1])
    return Run(wall, tree_peak, proc_peak, int(counts["read"]), int(counts["written"]), cpu)


# --- checking outputs ------------------------------------------------------------------------

PRESIDIO_SAME = ("phone_token", "card_token", "last_name", "age_band", "zip3", "income_band", "signup_month")


def _read_output(folder: str, columns: list[str]) -> pa.Table:
    files = sorted(glob.glob(os.path.join(folder, "part-*.parquet")))
    table = pa.concat_tables([pq.read_table(f, columns=columns) for f in files])
    return table.sort_by([(name, "ascending") for name in columns])


def check_output(folder: str, reference: str, columns: tuple[str, ...], keyset: str, notes: bool) -> str:
    """Compare `folder`'s output with veil's on `columns` (sorted rows); decrypt a sample of notes."""
    names = list(columns)
    ours, theirs = _read_output(folder, names), _read_output(reference, names)
    if ours.num_rows != theirs.num_rows:
        return f"MISMATCH: {ours.num_rows} rows, veil wrote {theirs.num_rows}"
    different = [name for name in names if not ours[name].equals(theirs[name])]
    if different:
        return f"MISMATCH in {', '.join(different)}"
    verdict = f"{len(names)} columns byte-equal to veil's"
    if notes:
        verdict += "; notes decrypt" if _notes_decrypt(folder, keyset) else "; notes DO NOT DECRYPT"
    return verdict


def _notes_decrypt(folder: str, keyset: str, sample: int = 200) -> bool:
    """Whether the first `sample` notes decrypt with the key and associated data the README documents."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from workload import AD_NOTES, working_keys

    gcm = AESGCM(working_keys(keyset).notes)
    files = sorted(glob.glob(os.path.join(folder, "part-*.parquet")))
    tokens = [t for t in pq.read_table(files[0], columns=["notes"])["notes"].to_pylist() if t][:sample]
    try:
        for token in tokens:
            payload = token.split(".", 1)[1]
            sealed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            gcm.decrypt(sealed[:12], sealed[12:], AD_NOTES)
    except Exception:
        return False
    return bool(tokens)


def first_run_check(key: str, outputs: str, keyset: str, have_veil: bool) -> str:
    """What a contender's first output says: veil's is the reference, the others are compared to it."""
    from workload import DETERMINISTIC_OUTPUTS

    folder = os.path.join(outputs, key)
    if key == "veil":
        return "reference; notes " + ("decrypt" if _notes_decrypt(folder, keyset) else "DO NOT DECRYPT")
    if not have_veil:
        return "not checked (veil did not run)"
    columns = PRESIDIO_SAME if key == "presidio" else DETERMINISTIC_OUTPUTS
    return check_output(folder, os.path.join(outputs, "veil"), columns, keyset, notes=key != "presidio")


# --- the contenders --------------------------------------------------------------------------


def _veil_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "veil")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "from veil.pipelines.cli import console_main; console_main()"]


def contenders(data: str, keyset: str) -> list[Contender]:
    py, io = sys.executable, ["--input", data, "--output", "{output}", "--keyset", keyset]
    veil = [*_veil_command(), "run", POLICY, *io, "--quiet"]
    two = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
    return [
        Contender(
            "veil",
            "veil --verify off",
            "veil run --verify off on the DirectRunner, 1 worker (batched Arrow path): the limit's work, no more",
            [*veil, "--verify", "off"],
            True,
        ),
        Contender(
            "veil_verify",
            "veil, verify on",
            "veil run as by default (--verify fail: each view checked against its input), 1 worker",
            veil,
            True,
        ),
        Contender(
            "veil_2w",
            "veil (2 workers)",
            "veil run (verify on), DirectRunner --direct_num_workers 2 --direct_running_mode multi_processing",
            veil + two,
            True,
        ),
        Contender(
            "limit",
            "limit (pyarrow)",
            "plain pyarrow column by column, no Beam; same primitives, keys set once, FF1 batched",
            [py, os.path.join(BENCH, "contender_limit.py"), *io],
        ),
        Contender(
            "engine",
            "veil engine",
            "veil's BoundPlan.apply_batch over 2,048-row batches read and written as veil run does, no Beam",
            [py, os.path.join(BENCH, "contender_engine.py"), *io],
        ),
        Contender(
            "naive",
            "naive Beam",
            "ReadFromParquet (dicts) -> per-record DoFn -> WriteToParquet; same primitives",
            [py, os.path.join(BENCH, "contender_naive.py"), *io],
        ),
        Contender(
            "presidio",
            "Presidio in Beam",
            "naive Beam shape; hash (salted SHA-256), encrypt (AES-CBC), mask, replace, custom (AES-SIV) "
            "via BatchAnonymizerEngine.anonymize_dict per record; FF1, age bins, width, month and the "
            "consent gate with the naive contender's code",
            [py, os.path.join(BENCH, "contender_presidio.py"), *io],
        ),
    ]


def presidio_missing() -> str | None:
    try:
        import presidio_anonymizer  # noqa: F401
    except ImportError:
        return "presidio-anonymizer is not installed (pip install -c constraints.txt -e '.[bench]')"
    return None


# --- micro-benchmarks, memory check, profile -------------------------------------------------


def micro(data: str, values: int, repeats: int, scratch: str) -> dict:
    actions_json, ff1_json = os.path.join(scratch, "actions.json"), os.path.join(scratch, "ff1.json")
    for script, out, extra in (
        ("actions_micro.py", actions_json, ["--input", data]),
        ("ff1_micro.py", ff1_json, []),
    ):
        command = [sys.executable, os.path.join(BENCH, script), "--values", str(values)]
        command += ["--repeats", str(repeats), "--json", out, *extra]
        subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    with open(actions_json) as a, open(ff1_json) as f:
        return {"actions": json.load(a), "ff1": json.load(f)}


def memory_check(args, keyset: str, env: dict[str, str], base: dict[str, Outcome], logs: str) -> dict:
    """veil at 1M rows (1 and 2 workers), at `--scaling-rows` (1 and 2 workers: the speed-up) and at
    `--memory-rows` (1 worker: peak RSS against 1M). Runs already measured at `--rows` are reused."""
    results = {}
    for rows, keys in (
        (1_000_000, ("veil_verify", "veil_2w")),
        (args.scaling_rows, ("veil_verify", "veil_2w")),
        (args.memory_rows, ("veil_verify",)),
    ):
        data = ensure_data(args.data_dir, rows)
        by_key = {c.key: c for c in contenders(data, keyset)}
        for key in keys:
            if rows == args.rows and key in base and base[key].runs:
                outcome = base[key]
            else:
                print(f"memory check: {by_key[key].label} on {rows:,} rows ...", flush=True)
                outcome = Outcome(by_key[key])
                outcome.runs.append(run_once(by_key[key], os.path.join(args.data_dir, "out", key), env, logs))
            results[f"{key}@{rows}"] = {
                "rows": rows,
                "runs": len(outcome.runs),
                "wall_s": outcome.wall_s,
                "records_per_s": outcome.records_per_s,
                "peak_rss_mb": outcome.peak_rss_mb,
            }
    return results


def profile_veil(args, data: str, keyset: str, env: dict[str, str]) -> None:
    """cProfile of `veil run` (1 worker) on `data`; prints the top cumulative entries."""
    prof = os.path.join(args.data_dir, "veil.prof")
    output = os.path.join(args.data_dir, "out", "profile")
    shutil.rmtree(output, ignore_errors=True)
    code = "import sys; from veil.pipelines.cli import main; sys.exit(main(sys.argv[1:]))"
    script = os.path.join(args.data_dir, "veil_main.py")
    with open(script, "w") as out:
        out.write(code + "\n")
    command = [sys.executable, "-m", "cProfile", "-o", prof, script, "run", POLICY]
    command += ["--input", data, "--output", output, "--keyset", keyset, "--quiet"]
    subprocess.run(command, check=True, cwd=REPO, env=env)
    import pstats

    print(f"\ncProfile of veil run, {args.profile:,} rows ({prof}); top 30 by cumulative time:")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(30)


# --- report ----------------------------------------------------------------------------------


def machine() -> dict:
    versions = {}
    for name in ("veil", "apache-beam", "pyarrow", "cryptography", "presidio-anonymizer", "Faker", "pydantic"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    memory = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "0")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(int(memory) / 1024 / 1024, 1),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _verdict(name: str, value: float | None) -> str:
    if value is None:
        return "not measured"
    op, threshold = TARGETS[name]
    met = value >= threshold if op == ">=" else value <= threshold
    return "met" if met else "NOT MET"


def ratios_and_targets(
    outcomes: dict[str, Outcome],
    micro_results: dict | None,
    memory: dict | None,
    rows: int,
    startup: dict | None = None,
):
    def speed(key: str) -> float | None:
        outcome = outcomes.get(key)
        return outcome.records_per_s if outcome and outcome.runs else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    veil, verified = speed("veil"), speed("veil_verify")
    alike = f"{rows:,} rows, records/s, veil 1 worker --verify off (the same work)"
    values: dict[str, tuple[float | None, str]] = {
        "veil / limit": (ratio(veil, speed("limit")), alike),
        "veil / naive Beam": (ratio(veil, speed("naive")), alike),
        "veil / Presidio": (ratio(veil, speed("presidio")), alike),
    }
    beam_cost = ratio(veil, speed("engine"))
    ff1 = (micro_results or {}).get("ff1", {}).get("us_per_value", {})
    values["FF1 encrypt_many, batched (us)"] = (
        ff1.get("encrypt_many (batched)", {}).get("median"),
        "16-digit values, bench/ff1_micro.py (one value per call: see the micro-benchmarks)",
    )
    card = (micro_results or {}).get("actions", {}).get("actions", {}).get(FF1_CASE, {})
    values["tokenize ff1, per card in veil (us)"] = (
        card.get("column_us"),
        "the whole action (16 digits, keep_last 4, format kept) as the engine runs it, bench/actions_micro.py",
    )
    values["veil 2 workers / 1 worker, 1M"] = (
        ratio(speed("veil_2w"), verified),
        f"{rows:,} rows, records/s, both verify on",
    )
    if memory:
        largest = max(v["rows"] for v in memory.values())
        scaling = max((v["rows"] for v in memory.values() if v["rows"] < largest), default=largest)

        def at(key: str, n: int) -> dict:
            return memory.get(f"{key}@{n}") or {}

        small, large = at("veil_verify", 1_000_000), at("veil_verify", largest)
        values["veil peak RSS 10M / 1M rows"] = (
            ratio(large.get("peak_rss_mb"), small.get("peak_rss_mb")),
            f"--memory-check, 1 worker, {largest:,} vs 1,000,000 rows, single runs",
        )
        values["veil 2 workers / 1 worker, 4M"] = (
            ratio(at("veil_2w", scaling).get("records_per_s"), at("veil_verify", scaling).get("records_per_s")),
            f"--memory-check, {scaling:,} rows, single runs",
        )
    else:
        values["veil peak RSS 10M / 1M rows"] = (None, "run with --memory-check")
        values["veil 2 workers / 1 worker, 4M"] = (None, "run with --memory-check")
    values["veil run, 1,000 rows: wall s"] = (
        (startup["wall_s"], f"median of {startup['runs']} runs, {startup['cpu_s']:.2f} s CPU (bench/startup.py)")
        if startup
        else (None, "run with --startup-runs N")
    )
    targets = {
        name: {
            "value": value,
            "target": f"{TARGETS[name][0]} {TARGETS[name][1]:g}",
            "verdict": _verdict(name, value),
            "on": note,
        }
        for name, (value, note) in values.items()
    }
    cpu = {key: o.cpu_s for key, o in outcomes.items() if o.runs}
    targets["veil / limit, CPU time"] = {
        "value": ratio(cpu.get("limit"), cpu.get("veil")),
        "target": "-",
        "verdict": "reference",
        "on": f"{rows:,} rows: limit CPU s / veil --verify off CPU s (less disturbed by a shared machine than wall)",
    }
    targets["veil, verify on / limit"] = {
        "value": ratio(verified, speed("limit")),
        "target": "-",
        "verdict": "reference",
        "on": f"{rows:,} rows, records/s: veil run as by default, checking each view (work the limit does not do)",
    }
    targets["veil / veil engine (no Beam)"] = {
        "value": beam_cost,
        "target": "-",
        "verdict": "reference",
        "on": f"{rows:,} rows, --verify off: what Beam (and veil run's staging and manifest) cost",
    }
    return targets


def print_report(doc: dict, outcomes: dict[str, Outcome]) -> None:
    m, d = doc["machine"], doc["data"]
    print()
    print(
        f"veil benchmark: {d['rows']:,} input rows ({d['consented']:,} with consent), median of "
        f"{doc['repeats']} run(s); {m['nproc']} cores, {m['cpu']}, Python {m['python']}, {m['date']}"
    )
    load = (
        [f"{x:.1f}" for x in m.get("load_average_at_start", ())],
        [f"{x:.1f}" for x in m.get("load_average_at_end", ())],
    )
    print(f"load average (1, 5, 15 min) at start {', '.join(load[0])}; at end {', '.join(load[1])}")
    header = f"{'contender':<18} {'records/s':>10} {'wall s':>8} {'CPU s':>7} {'peak RSS MB':>12}  output check"
    print(header)
    print("-" * len(header))
    for outcome in outcomes.values():
        if outcome.skipped:
            print(f"{outcome.contender.label:<18} {'skipped':>10}  {outcome.skipped}")
            continue
        print(
            f"{outcome.contender.label:<18} {outcome.records_per_s:>10,.0f} {outcome.wall_s:>8.2f} "
            f"{outcome.cpu_s:>7.2f} {outcome.peak_rss_mb:>12.0f}  {outcome.check}"
        )
    print(
        "records/s: input rows / wall seconds of the whole process, start-up included; CPU: user + system"
        " seconds of the process tree; RSS: process tree"
    )
    if "presidio" in outcomes and not outcomes["presidio"].skipped:
        print(
            "  Presidio does customer_id/email (salted SHA-256), notes (AES-CBC), phone (custom: AES-SIV),"
            " last_name (mask), zip (replace);\n  it has no FF1, age bins, buckets or date truncation: those"
            " run the naive contender's code."
        )
    print("\nratios and targets")
    for name, row in doc["targets"].items():
        value = "-" if row["value"] is None else f"{row['value']:.2f}"
        print(f"  {name:<36} {value:>8}   target {row['target']:<7} {row['verdict']:<13} {row['on']}")
    micro_results = doc.get("micro")
    if micro_results:
        print(f"\nmicroseconds per value ({micro_results['actions']['values']:,} values, median)")
        print(f"  {'veil action':<40} {'one by one':>10} {'in veil':>8}")
        for label, row in micro_results["actions"]["actions"].items():
            mark = "" if row["policy"] else "  (not in the policy)"
            print(f"  {label:<40} {row['us_per_value']:10.2f} {row['column_us']:8.2f}{mark}")
        ff1 = micro_results["ff1"]
        print(f"FF1, 16-digit values ({ff1['values']:,} values, median)")
        for name, row in ff1["us_per_value"].items():
            print(f"  {name:<40} {row['median']:7.2f}")
    if doc.get("memory_check"):
        print("\nmemory check (veil, single runs)")
        for name, row in doc["memory_check"].items():
            print(
                f"  {name:<20} {row['records_per_s']:>10,.0f} records/s {row['wall_s']:>8.1f} s"
                f" {row['peak_rss_mb']:>8.0f} MB peak RSS"
            )
    else:
        print("\nmemory check: not run (--memory-check runs veil on 1M, 4M and 10M rows)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="input rows (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each contender; the median counts")
    parser.add_argument(
        "--contenders",
        default="veil,veil_verify,veil_2w,limit,engine,naive,presidio",
        help="comma-separated subset (veil, which runs --verify off, brings veil_verify, which runs verify on)",
    )
    parser.add_argument("--micro-values", type=int, default=100_000, help="values per micro-benchmark")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro-benchmarks")
    parser.add_argument(
        "--memory-check",
        action="store_true",
        help="also run veil on 1M and --scaling-rows rows (1 and 2 workers: the speed-up) and --memory-rows "
        "(1 worker: peak RSS against 1M); off by default: it takes several minutes",
    )
    parser.add_argument("--scaling-rows", type=int, default=4_000_000)
    parser.add_argument("--memory-rows", type=int, default=10_000_000)
    parser.add_argument("--profile", type=int, default=0, metavar="ROWS", help="then cProfile veil run on ROWS rows")
    parser.add_argument(
        "--generalize-search",
        action="store_true",
        help="also time on_violation: generalize against suppress over the same view (bench/generalize_search.py)",
    )
    parser.add_argument(
        "--detection-notes",
        type=int,
        default=500,
        help="notes in the detection bench's corpus (bench/detection.py: recall, precision, scrub/Presidio); 0 skips",
    )
    parser.add_argument(
        "--verify-overhead", action="store_true", help="also time veil run with --verify fail against --verify off"
    )
    parser.add_argument(
        "--startup-runs",
        type=int,
        default=5,
        help="veil run over 1,000 rows this many times (bench/startup.py: start-up, median wall); 0 skips",
    )
    parser.add_argument("--data-dir", default=os.path.join(BENCH, ".data"), help="cache of inputs, keys and outputs")
    parser.add_argument("--results", default=os.path.join(BENCH, "results.json"))
    args = parser.parse_args(argv)

    os.environ["VEIL_MASTER_KEY"] = MASTER_KEY  # before the keyset is made or opened
    env = {**os.environ, "VEIL_MASTER_KEY": MASTER_KEY, "PYTHONUNBUFFERED": "1"}
    env.pop("VEIL_KEYSET", None)
    data = ensure_data(args.data_dir, args.rows)
    keyset = ensure_keyset(args.data_dir)
    logs = os.path.join(args.data_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    outputs = os.path.join(args.data_dir, "out")
    started = machine()

    wanted = args.contenders.split(",")
    if "veil" in wanted and "veil_verify" not in wanted:  # the ratio with verification is always shown beside
        wanted.insert(wanted.index("veil") + 1, "veil_verify")
    outcomes = {c.key: Outcome(c) for c in contenders(data, keyset) if c.key in wanted}
    if "presidio" in outcomes:
        outcomes["presidio"].skipped = presidio_missing()
    active = [o for o in outcomes.values() if not o.skipped]
    for round_ in range(args.repeats):
        for outcome in active:
            key = outcome.contender.key
            print(f"round {round_ + 1}/{args.repeats}: {outcome.contender.label} ...", end=" ", flush=True)
            run = run_once(outcome.contender, os.path.join(outputs, key), env, logs)
            outcome.runs.append(run)
            print(
                f"{run.wall_s:.1f} s, {run.read / run.wall_s:,.0f} records/s, {run.peak_rss / MIB:.0f} MB", flush=True
            )
            if round_ == 0:
                outcome.check = first_run_check(key, outputs, keyset, "veil" in outcomes)
    consented = next((o.runs[0].written for o in active if o.runs), 0)

    startup = None
    if args.startup_runs:  # bench/startup.py
        from startup import ROWS as STARTUP_ROWS
        from startup import measure_startup

        small = ensure_data(args.data_dir, STARTUP_ROWS)
        startup = measure_startup(
            _veil_command(), POLICY, small, keyset, outputs, logs, env, args.startup_runs, measure
        )

    micro_results = None
    if not args.no_micro:
        print("micro-benchmarks ...", flush=True)
        micro_results = micro(data, args.micro_values, max(args.repeats, 3), args.data_dir)
    memory = memory_check(args, keyset, env, outcomes, logs) if args.memory_check else None
    search = None
    if args.generalize_search:
        from generalize_search import measure_search, print_search

        common = {"data": data, "keyset": keyset, "env": env, "logs": logs, "outputs": outputs}
        search = measure_search(
            **common, repeats=args.repeats, veil_command=_veil_command(), contender=Contender, run_once=run_once
        )
    detection = None
    if args.detection_notes:
        from detection import run as run_detection

        print("detection ...", flush=True)
        detection = run_detection(args.detection_notes, seed=11, repeats=max(args.repeats, 3))
    verifying = None
    if args.verify_overhead:  # bench/verify_overhead.py
        from verify_overhead import measure_overhead

        verifying = measure_overhead(_veil_command(), POLICY, data, keyset, outputs, logs, env, args.repeats, measure)

    doc = {
        "machine": started,
        "data": {
            "rows": args.rows,
            "consented": consented,
            "file": os.path.relpath(data, REPO) if data.startswith(REPO + os.sep) else data,
            "row_group_rows": CHUNK_ROWS,
            "generator": "veil.pipelines.synthetic.synthetic_customers, 100k-row chunks, seed 7 + chunk",
        },
        "policy": os.path.relpath(POLICY, REPO),
        "repeats": args.repeats,
        "rss": "peak of the summed RSS of the process tree, sampled every 50 ms (at least the largest VmHWM)",
        "contenders": {
            key: {
                "label": o.contender.label,
                "description": o.contender.description,
                "skipped": o.skipped,
                **(
                    {}
                    if o.skipped or not o.runs
                    else {
                        "records_per_s": o.records_per_s,
                        "wall_s": o.wall_s,
                        "cpu_s": o.cpu_s,
                        "peak_rss_mb": o.peak_rss_mb,
                        "read": o.runs[0].read,
                        "written": o.runs[0].written,
                        "output_check": o.check,
                        "runs": [
                            {
                                "wall_s": r.wall_s,
                                "cpu_s": r.cpu_s,
                                "peak_tree_rss_mb": r.peak_tree_rss / MIB,
                                "max_process_rss_mb": r.max_process_rss / MIB,
                            }
                            for r in o.runs
                        ],
                    }
                ),
            }
            for key, o in outcomes.items()
        },
        "micro": micro_results,
        "memory_check": memory,
        "generalize_search": search,
        "detection": detection,
        "verify_overhead": verifying,
        "startup": startup,
    }
    doc["machine"]["load_average_at_end"] = os.getloadavg()
    doc["targets"] = ratios_and_targets(outcomes, micro_results, memory, args.rows, startup)
    if search:
        doc["targets"]["generalize / suppress (time)"] = search["target"]
    print_report(doc, outcomes)
    if search:
        print_search(search)
    if detection:
        from detection import print_report as print_detection

        print_detection(detection)
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(os.path.abspath(args.results)), delete=False) as out:
        json.dump(doc, out, indent=2)
    os.replace(out.name, args.results)
    print(f"\nwrote {args.results}")
    if args.profile:
        profile_veil(args, ensure_data(args.data_dir, args.profile), keyset, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
