"""Contender 1, the limit: plain pyarrow, column by column, no Beam.

Reads the input Parquet file in row batches (only the columns the policy needs), applies the
consent gate and the 12 fields of bench/policy.yaml column by column, and writes one Parquet
file. The keyed fields use the same primitives as veil, each key set once (`bench/workload.py`),
with one bulk `os.urandom` per batch for the GCM nonces and FF1 batched (`encrypt_many`); the
unkeyed ones are pyarrow.compute kernels. This is the physical reference for the machine.

Run by bench/run.py: `python bench/contender_limit.py --input F --output DIR --keyset K`.
Prints one JSON line {"read": n, "written": m}.
"""

import binascii
import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload import (  # noqa: E402
    AD_NOTES,
    AGE_AT,
    AGE_EDGES,
    CONSENT_FIELD,
    INCOME_WIDTH,
    INPUT_FIELDS,
    MASK_KEEP_FIRST,
    OUTPUT_SCHEMA,
    PURPOSE,
    ZIP_PREFIX,
    Primitives,
    contender_args,
    working_keys,
)

BATCH_ROWS = 50_000
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_AGE_LABELS = pa.array(
    [f"<{AGE_EDGES[0]}"] + [f"{low}-{high - 1}" for low, high in zip(AGE_EDGES, AGE_EDGES[1:])] + [f"{AGE_EDGES[-1]}+"]
)


def _consent_mask(consents: pa.ChunkedArray | pa.Array, n: int) -> pa.Array:
    """True where the consents list holds PURPOSE (null or empty list: False)."""
    parents = pc.list_parent_indices(consents)
    hits = pc.filter(parents, pc.equal(pc.list_flatten(consents), PURPOSE))
    return pc.is_in(pa.array(np.arange(n, dtype=np.int64)), value_set=pc.unique(hits))


def _bytes(column: pa.Array) -> tuple[pa.Array, list[bytes]]:
    """(validity mask, the non-null values as bytes): bytes straight from the Arrow buffer, no str round trip."""
    valid = pc.is_valid(column)
    return valid, pc.cast(column.filter(valid), pa.binary()).to_pylist()


def _scatter(valid: pa.Array, computed: pa.Array) -> pa.Array:
    """`computed` (one value per valid row) placed back among the nulls."""
    if len(computed) == len(valid):
        return computed
    return pc.replace_with_mask(pa.nulls(len(valid), pa.string()), valid, computed)


def _fixed_width(text: bytes, width: int) -> pa.Array:
    """A string array of the `width`-byte pieces of ASCII `text` (offsets computed, no Python per value)."""
    n = len(text) // width
    offsets = pa.py_buffer(np.arange(0, width * (n + 1), width, dtype=np.int32).tobytes())
    return pa.StringArray.from_buffers(n, offsets, pa.py_buffer(text))


def _hmac_hex(mac, column: pa.Array) -> pa.Array:
    """Hex HMAC-SHA256 of each value: one copy/update/finalize per value, the hex and the array in bulk."""
    valid, values = _bytes(column)
    copy, digests = mac.copy, []
    append = digests.append
    for value in values:
        h = copy()
        h.update(value)
        append(h.finalize())
    return _scatter(valid, _fixed_width(b"".join(digests).hex().encode(), 64))


def _tokens(version: int, payloads: list[bytes]) -> pa.Array:
    """`v<version>.` + base64url without padding of each payload, encoded and split in bulk."""
    lines = b"".join(map(binascii.b2a_base64, payloads)).translate(_URLSAFE, b"=")
    prefix = f"v{version}."
    text = prefix + lines[:-1].decode("ascii").replace("\n", "\n" + prefix)
    return pa.array(text.split("\n"), pa.string()) if payloads else pa.array([], pa.string())


def _siv_tokens(p: Primitives, column: pa.Array) -> pa.Array:
    valid, values = _bytes(column)
    encrypt, ad = p.siv.encrypt, p.siv_ad
    return _scatter(valid, _tokens(p.version, [encrypt(v, ad) for v in values]))


def _notes(p: Primitives, column: pa.Array) -> pa.Array:
    """AES-GCM of each value, the nonces sliced from one `os.urandom` call per batch."""
    valid, values = _bytes(column)
    nonces = os.urandom(12 * len(values))
    encrypt = p.gcm.encrypt
    sealed = [
        nonces[o : o + 12] + encrypt(nonces[o : o + 12], v, AD_NOTES)
        for o, v in zip(range(0, 12 * len(values), 12), values)
    ]
    return _scatter(valid, _tokens(p.version, sealed))


def _card_tokens(p: Primitives, column: pa.Array) -> pa.Array:
    """FF1 over the digits but the last four, every card in one batched call; other characters stay.

    Cards sharing a layout (length, where the digits are) are cut and rejoined as numpy arrays
    by `FF1Layout`, the primitive's own batch form; too few digits: null (on_error: null).
    """
    valid = pc.is_valid(column)
    tokens, _, _ = p.card_layout.crypt_texts(column.filter(valid).to_pylist())
    return _scatter(valid, pa.array(tokens, pa.string()))


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
        _hmac_hex(p.customer_mac, col("customer_id")),
        _hmac_hex(p.email_mac, pc.utf8_lower(pc.utf8_trim_whitespace(col("email")))),
        _siv_tokens(p, col("phone")),
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
