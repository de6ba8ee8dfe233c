"""Micro-benchmark of each veil field action: microseconds per value of the bound function.

Each action is bound the way veil binds it on a worker, `REGISTRY[name].bind(params,
BindContext(...))` with the public test keyring (`veil.keys.testing.fake_keyring()`), and
called once per non-null value over N values of a realistic column (the benchmark data, or
synthetic customers). No Beam, no Arrow conversion, no per-batch memo: the cost of the action
alone. The bench policy's actions come first, then the other actions.

Not a test. Run: `.venv/bin/python bench/actions_micro.py [--values N] [--repeats R]
[--input customers.parquet] [--json PATH]`.
"""

import argparse
import itertools
import json
import statistics
import time

import pyarrow.parquet as pq

from veil.keys.testing import fake_keyring
from veil.transforms.actions.base import BindContext
from veil.transforms.registry import REGISTRY

PURPOSE = "analytics"
SUBJECT = "customer_id"
SLOW_ACTIONS = {"fake": 10_000}  # most values timed for slow actions (Faker per value)

# (label, input field, params): the 12 fields of bench/policy.yaml, then the other actions.
CASES = [
    ("pseudonymize customer_id", "customer_id", {"action": "pseudonymize", "domain": "customer"}),
    ("pseudonymize email (strip, lower)", "email", {"action": "pseudonymize", "normalize": ["strip", "lower"]}),
    ("tokenize siv phone", "phone", {"action": "tokenize", "method": "siv"}),
    (
        "tokenize ff1 card_number (keep_last 4)",
        "card_number",
        {"action": "tokenize", "method": "ff1", "alphabet": "digits", "keep_last": 4},
    ),
    ("encrypt notes", "notes", {"action": "encrypt"}),
    ("mask last_name (keep_first 1)", "last_name", {"action": "mask", "keep_first": 1}),
    (
        "generalize age_bins birth_date",
        "birth_date",
        {"action": "generalize", "age_bins": [0, 18, 25, 35, 50, 65], "at": "2026-01-01"},
    ),
    ("generalize prefix zip (3)", "zip", {"action": "generalize", "prefix": 3}),
    ("generalize width income (10000)", "income", {"action": "generalize", "width": 10000}),
    ("generalize date signup_ts (month)", "signup_ts", {"action": "generalize", "date": "month"}),
    ("keep country", "country", {"action": "keep"}),
    ("redact street", "street", {"action": "redact"}),
    ("replace city", "city", {"action": "replace", "value": "somewhere"}),
    ("date_shift signup_ts (30 days)", "signup_ts", {"action": "date_shift", "max_days": 30}),
    ("fake first_name", "first_name", {"action": "fake", "provider": "first_name"}),
]
POLICY_CASES = 11  # the first 11 labels cover the policy's 12 fields (keep country stands for keep gender)


def _columns(path: str | None, count: int) -> dict[str, list]:
    """`count` values of each input field: the first rows of `path` (cycled if shorter), or synthetic."""
    fields = sorted({field for _, field, _ in CASES} | {SUBJECT})
    if path:
        table = pq.ParquetFile(path).iter_batches(batch_size=count, columns=fields)
        columns = next(table).to_pydict()
    else:
        from veil.pipelines.synthetic import synthetic_customers

        columns = synthetic_customers(count).select(fields).to_pydict()
    return {name: list(itertools.islice(itertools.cycle(values), count)) for name, values in columns.items()}


def _takes_subject_id(action, params) -> bool:
    """Whether the bound function takes the record's subject id as a second argument."""
    subject_input = getattr(action, "subject_input", None)
    if callable(subject_input):  # "id", "key" (a subject key cell: not among the cases) or None
        return subject_input(params) == "id"
    per_subject = getattr(action, "per_subject", False)  # older registries: a flag
    return bool(per_subject(params) if callable(per_subject) else per_subject)


def measure(columns: dict[str, list], repeats: int) -> dict[str, dict]:
    """{label: {"us_per_value": median, "best_us": ..., "values": n, "policy": bool}} for each case."""
    keyring = fake_keyring()
    results = {}
    for position, (label, field, raw) in enumerate(CASES):
        action = REGISTRY[raw["action"]]
        params = action.params.model_validate(raw)
        fn = action.bind(params, BindContext(PURPOSE, field, keyring if action.keyed else None, 1))
        limit = SLOW_ACTIONS.get(raw["action"], len(columns[field]))
        pairs = [(v, s) for v, s in zip(columns[field][:limit], columns[SUBJECT][:limit]) if v is not None]
        if _takes_subject_id(action, params):

            def run(fn=fn, pairs=pairs):
                for value, subject in pairs:
                    fn(value, subject)

        else:
            values = [v for v, _ in pairs]

            def run(fn=fn, values=values):
                for value in values:
                    fn(value)

        run()  # warm-up: key derivation, caches
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            timings.append(time.perf_counter() - start)
        results[label] = {
            "us_per_value": statistics.median(timings) / len(pairs) * 1e6,
            "best_us": min(timings) / len(pairs) * 1e6,
            "values": len(pairs),
            "policy": position < POLICY_CASES,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--input", help="customers Parquet file (default: generate synthetic customers)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    results = measure(_columns(args.input, args.values), args.repeats)
    print(f"veil actions, bound function per non-null value, median (best) of {args.repeats} runs")
    for label, row in results.items():
        mark = "" if row["policy"] else "   (not in bench/policy.yaml)"
        print(f"  {label:<40} {row['us_per_value']:7.2f} ({row['best_us']:6.2f}) us/value{mark}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"values": args.values, "repeats": args.repeats, "actions": results}, out, indent=2)


if __name__ == "__main__":
    main()
