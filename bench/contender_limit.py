"""Contender 1, the limit: plain pyarrow, column by column, no Beam.

Reads the input Parquet file in row batches (only the columns the policy needs), applies the
consent gate and the 12 fields of bench/policy.yaml column by column, and writes one Parquet
file. The keyed fields use the same primitives as veil, each key set once (`bench/workload.py`),
with one bulk `os.urandom` per batch for the GCM nonces and FF1 batched (`encrypt_many`); the
unkeyed ones are pyarrow.compute kernels. This is the physical reference for the machine.

Run by bench/run.py: `python bench/contender_limit.py --input F --output DIR --keyset K`.
Prints one JSON line {"read": n, "written": m}.
"""

import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload import (  # noqa: E402
    AGE_AT,
    AGE_EDGES,
    CARD_KEEP_LAST,
    CONSENT_FIELD,
    DIGITS,
    FF1_MIN_DIGITS,
    INCOME_WIDTH,
    INPUT_FIELDS,
    MASK_KEEP_FIRST,
    OUTPUT_SCHEMA,
    PURPOSE,
    TWEAK_CARD,
    ZIP_PREFIX,
    Primitives,
    contender_args,
    working_keys,
)

BATCH_ROWS = 50_000
_AGE_LABELS = pa.array(
    [f"<{AGE_EDGES[0]}"] + [f"{low}-{high - 1}" for low, high in zip(AGE_EDGES, AGE_EDGES[1:])] + [f"{AGE_EDGES[-1]}+"]
)


_DIGIT_SLOTS = str.maketrans({ch: "\0" for ch in DIGITS})  # a value's digits -> NUL: its shape


def _consent_mask(consents: pa.ChunkedArray | pa.Array, n: int) -> pa.Array:
    """True where the consents list holds PURPOSE (null or empty list: False)."""
    parents = pc.list_parent_indices(consents)
    hits = pc.filter(parents, pc.equal(pc.list_flatten(consents), PURPOSE))
    return pc.is_in(pa.array(np.arange(n, dtype=np.int64)), value_set=pc.unique(hits))


def _each(fn, column: pa.Array) -> pa.Array:
    """`fn` over the non-null values of a string column, nulls kept."""
    return pa.array([None if v is None else fn(v) for v in column.to_pylist()], pa.string())


def _card_tokens(p: Primitives, column: pa.Array) -> pa.Array:
    """FF1 over the digits but the last four, batched; the characters that are not digits stay."""
    digits = pc.replace_substring_regex(column, "[^0-9]", "")
    middles = pc.utf8_slice_codeunits(digits, 0, -CARD_KEEP_LAST).to_pylist()
    values, digits = column.to_pylist(), digits.to_pylist()
    rows = [i for i, m in enumerate(middles) if m is not None and len(m) >= FF1_MIN_DIGITS]
    secrets = p.ff1.encrypt_many([middles[i] for i in rows], TWEAK_CARD)
    out: list = [None] * len(values)  # too few digits: null (on_error: null)
    templates: dict[str, str] = {}  # "dddd-dddd-..." shape -> "{}{}{}{}-{}..." format string
    for row, secret in zip(rows, secrets):
        shape = values[row].translate(_DIGIT_SLOTS)
        template = templates.get(shape)
        if template is None:
            template = templates[shape] = shape.replace("{", "{{").replace("}", "}}").replace("\0", "{}")
        out[row] = template.format(*secret, *digits[row][len(secret) :])
    return pa.array(out, pa.string())


def _notes(p: Primitives, column: pa.Array) -> pa.Array:
    values = column.to_pylist()
    nonces = os.urandom(12 * len(values))
    return pa.array(
        [None if v is None else p.encrypt_notes(v, nonces[12 * i : 12 * i + 12]) for i, v in enumerate(values)],
        pa.string(),
    )


def _mask(column: pa.Array) -> pa.Array:
    lengths = pc.utf8_length(column)
    short = pc.less_equal(lengths, MASK_KEEP_FIRST)
    stars_all = pc.binary_repeat(pa.scalar("*"), lengths)
    kept = pc.utf8_slice_codeunits(column, 0, MASK_KEEP_FIRST)
    stars = pc.binary_repeat(pa.scalar("*"), pc.max_element_wise(pc.subtract(lengths, MASK_KEEP_FIRST), 0))
    return pc.if_else(short, stars_all, pc.binary_join_element_wise(kept, stars, ""))


def _age_bands(column: pa.Array) -> pa.Array:
    years, months, days = pc.year(column), pc.month(column), pc.day(column)
    before = pc.or_(pc.less(AGE_AT.month, months), pc.and_(pc.equal(months, AGE_AT.month), pc.less(AGE_AT.day, days)))
    ages = pc.subtract(pc.subtract(AGE_AT.year, years), pc.cast(before, pa.int64()))
    slots = np.digitize(ages.to_numpy(zero_copy_only=False), AGE_EDGES)  # nulls come as NaN: masked below
    labels = _AGE_LABELS.take(pa.array(slots.astype(np.int64)))
    return pc.if_else(pc.is_null(column), pa.scalar(None, pa.string()), labels)


def _income(column: pa.Array) -> pa.Array:
    floored = pc.floor(pc.divide(pc.cast(column, pa.float64()), INCOME_WIDTH))
    return pc.cast(pc.multiply(floored, INCOME_WIDTH), pa.int64())


def _month(column: pa.Array) -> pa.Array:
    return pc.cast(pc.floor_temporal(column, unit="month"), pa.date32())


def protect_batch(p: Primitives, batch: pa.RecordBatch) -> pa.RecordBatch:
    keep = _consent_mask(batch.column(CONSENT_FIELD), batch.num_rows)
    batch = batch.filter(keep)
    col = batch.column
    arrays = [
        _each(p.customer_key, col("customer_id")),
        _each(p.email_key, col("email")),
        _each(p.phone_token, col("phone")),
        _card_tokens(p, col("card_number")),
        _notes(p, col("notes")),
        _mask(col("last_name")),
        _age_bands(col("birth_date")),
        pc.utf8_slice_codeunits(col("zip"), 0, ZIP_PREFIX),
        _income(col("income")),
        _month(col("signup_ts")),
        col("country"),
        col("gender"),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=OUTPUT_SCHEMA)


def main() -> None:
    args, _ = contender_args(__doc__.splitlines()[0])

    primitives = Primitives(working_keys(args.keyset))
    os.makedirs(args.output, exist_ok=True)
    read = written = 0
    source = pq.ParquetFile(args.input)
    with pq.ParquetWriter(os.path.join(args.output, "part-00000.parquet"), OUTPUT_SCHEMA, compression="snappy") as out:
        for batch in source.iter_batches(batch_size=BATCH_ROWS, columns=list(INPUT_FIELDS)):
            protected = protect_batch(primitives, batch)
            read += batch.num_rows
            written += protected.num_rows
            out.write_batch(protected)
    print(json.dumps({"read": read, "written": written}))


if __name__ == "__main__":
    main()
