"""Micro-benchmark of each veil field action: microseconds per value, one at a time and as veil runs it.

Two figures per action, over N values of a realistic column (the benchmark data, or synthetic
customers), with the public test keyring (`veil.keys.testing.fake_keyring()`):

- per value: the bound function, `REGISTRY[name].bind(params, BindContext(...))`, called once
  per non-null value (no Beam, no Arrow, no memo): what one value costs on its own;
- column: a one-field policy's `BoundPlan.apply_batch` over 2,048-row Arrow batches, which is
  what `veil run` does per batch (Arrow kernel, batched column function or per-value loop over
  distinct values, and the output array), with no Beam around it.

The bench policy's actions come first, then the other actions.

Not a test. Run: `.venv/bin/python bench/actions_micro.py [--values N] [--repeats R]
[--input customers.parquet] [--json PATH]`.
"""

import argparse
import json
import statistics
import time

import pyarrow as pa
import pyarrow.parquet as pq

from veil.keys.testing import fake_keyring
from veil.transforms.actions.base import BindContext
from veil.transforms.engine import ROWS_PER_BATCH, BoundPlan
from veil.transforms.plan import compile_plan
from veil.transforms.policy import Policy
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


def _table(path: str | None, count: int) -> pa.Table:
    """`count` rows of each input field: the first rows of `path` (cycled if shorter), or synthetic."""
    fields = sorted({field for _, field, _ in CASES} | {SUBJECT})
    if path:
        table = pa.Table.from_batches([next(pq.ParquetFile(path).iter_batches(batch_size=count, columns=fields))])
    else:
        from veil.pipelines.synthetic import synthetic_customers

        table = synthetic_customers(count).select(fields)
    while table.num_rows < count:
        table = pa.concat_tables([table, table])
    return table.slice(0, count)


def _timed(run, repeats: int) -> list[float]:
    run()  # warm-up: key derivation, caches
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return timings


def _column_run(field: str, raw: dict, table: pa.Table, keyring, limit: int):
    """A run of `apply_batch` over `limit` rows for a policy with only this field (and its subject)."""
    policy = Policy.model_validate(
        {"version": 1, "purpose": PURPOSE, "subject": SUBJECT, "default": "drop", "fields": {field: raw}}
    )
    source = table.select([field] if field == SUBJECT else [field, SUBJECT]).slice(0, limit)
    bound = BoundPlan(compile_plan(policy, source.schema), keyring)
    batches = source.combine_chunks().to_batches(max_chunksize=ROWS_PER_BATCH)

    def run():
        for batch in batches:
            bound.apply_batch(batch)

    return run


def _takes_subject_id(action, params) -> bool:
    """Whether the bound function takes the record's subject id as a second argument."""
    subject_input = getattr(action, "subject_input", None)
    if callable(subject_input):  # "id", "key" (a subject key cell: not among the cases) or None
        return subject_input(params) == "id"
    per_subject = getattr(action, "per_subject", False)  # older registries: a flag
    return bool(per_subject(params) if callable(per_subject) else per_subject)


def measure(table: pa.Table, repeats: int) -> dict[str, dict]:
    """{label: {"us_per_value", "best_us", "column_us", "column_best_us", "values", "policy"}} for each case.

    `us_per_value` is the bound function one value at a time, `column_us` the engine's column
    path per input row (both medians of `repeats`).
    """
    keyring = fake_keyring()
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
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

        timings = _timed(run, repeats)
        column = _timed(_column_run(field, raw, table, keyring, limit), repeats)
        results[label] = {
            "us_per_value": statistics.median(timings) / len(pairs) * 1e6,
            "best_us": min(timings) / len(pairs) * 1e6,
            "column_us": statistics.median(column) / len(pairs) * 1e6,
            "column_best_us": min(column) / len(pairs) * 1e6,
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

    results = measure(_table(args.input, args.values), args.repeats)
    print(f"veil actions, us per non-null value, median (best) of {args.repeats} runs")
    print(f"  {'action':<40} {'per value':>17} {'column (engine)':>17}")
    for label, row in results.items():
        mark = "" if row["policy"] else "   (not in bench/policy.yaml)"
        print(
            f"  {label:<40} {row['us_per_value']:7.2f} ({row['best_us']:6.2f})"
            f"   {row['column_us']:7.2f} ({row['column_best_us']:6.2f}){mark}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"values": args.values, "repeats": args.repeats, "actions": results}, out, indent=2)


if __name__ == "__main__":
    main()
