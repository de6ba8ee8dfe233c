"""Reference contender: veil's own engine with no Beam around it.

Reads the input Parquet file as `veil run` does (a row group at a time, only the columns the
policy reads, sliced into veil's 2,048-row batches), runs each batch through
`veil.transforms.engine.BoundPlan.apply_batch` (the code `veil run`'s workers run) and writes
one Parquet file in row groups of up to 32 output batches, as `veil run` does. `veil run`
against this is what Beam costs; this against the limit is what veil's engine costs against
hand-written pyarrow.

Run by bench/run.py: `python bench/contender_engine.py --input F --output DIR --keyset K`.
Prints one JSON line {"read": n, "written": m}.
"""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
from workload import contender_args

from veil.keys import open_keyring
from veil.transforms.engine import BATCHES_PER_ROW_GROUP, ROWS_PER_BATCH, BoundPlan
from veil.transforms.plan import compile_plan
from veil.transforms.policy import load_policy

POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policy.yaml")


def main() -> None:
    args, _ = contender_args(__doc__.splitlines()[0])

    source = pq.ParquetFile(args.input)
    plan = compile_plan(load_policy(POLICY), source.schema_arrow)
    bound = BoundPlan(plan, open_keyring(args.keyset))
    os.makedirs(args.output, exist_ok=True)
    read = written = 0
    gathered: list[pa.RecordBatch] = []  # veil run writes up to BATCHES_PER_ROW_GROUP batches per row group
    with pq.ParquetWriter(os.path.join(args.output, "part-00000.parquet"), plan.output_schema) as out:
        for group in range(source.num_row_groups):
            table = source.read_row_group(group, columns=list(plan.input_fields))
            for batch in table.combine_chunks().to_batches(max_chunksize=ROWS_PER_BATCH):
                protected, counts, _ = bound.apply_batch(batch)
                read += counts["read"]
                written += counts["written"]
                gathered.append(protected)
                if len(gathered) == BATCHES_PER_ROW_GROUP:
                    out.write_table(pa.Table.from_batches(gathered, schema=plan.output_schema))
                    gathered = []
        if gathered:
            out.write_table(pa.Table.from_batches(gathered, schema=plan.output_schema))
    print(json.dumps({"read": read, "written": written}))


if __name__ == "__main__":
    main()
