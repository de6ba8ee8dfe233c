"""The aggregates stage of `veil run`: a policy with `aggregates:` releases DP tables, never rows.

The aggregation itself is `veil.transforms.dp.DPAggregates`; this stage writes each table as
one staged Parquet file (`part-<name>.parquet`, published as `part-<run>-<name>.parquet` with
the rest of the run, manifest last), counts the groups each table releases, and builds the
manifest's `aggregates` entry: epsilon, delta, the accountant's split, PipelineDP's explain
report per table.

The manifest of such a view withholds the exact record counts (read, written, dropped): an
exact count next to noisy ones is not differentially private, and a run differenced against
the next would reveal whether one subject joined.
"""

from collections import Counter
from collections.abc import Mapping
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from veil.pipelines.manifest import schema_fields
from veil.transforms.counting import COUNTS, CountingFn
from veil.transforms.dp import DPAggregates, table_schema
from veil.transforms.io import SUFFIX
from veil.transforms.plan import Plan
from veil.transforms.tables import GateTables

WITHHELD = "withheld: exact record counts are not differentially private (the tables' noisy counts are)"


class AggregatesStage(NamedTuple):
    """What the stage gives back to the job (known once the pipeline is built).

    Attributes:
        budget: the accountant's split, per mechanism (see `DPAggregatesResult.budget`).
        explain: table name -> PipelineDP's explain computation report.
    """

    budget: list[dict[str, Any]]
    explain: dict[str, str]


class AggregatesRelease(NamedTuple):
    """What the stage adds to the run: `stage` for the manifest, and as data, for the run's publish
    stage, the names of the table files written (`files`) and the group counts (`counts`)."""

    stage: AggregatesStage
    files: beam.PCollection
    counts: beam.PCollection


class _CountGroupsFn(CountingFn):
    """Counts a table's released groups (`groups.<table>`), passing the table on."""

    def __init__(self, purpose: str, name: str):
        super().__init__(purpose)
        self._name = name

    def process(self, table: pa.Table):
        yield self._count(Counter({f"groups.{self._name}": table.num_rows}))
        yield table


def release_aggregates(
    batches: beam.PCollection,
    plan: Plan,
    staging: str,
    *,
    keyset: str | None,
    key_version: int | None,
    tables: GateTables,
) -> AggregatesRelease:
    """Aggregate the input batches by the plan's policy and write each table into `staging`."""
    purpose, spec = plan.policy.purpose, plan.policy.aggregates
    result = batches | f"Aggregates[{purpose}]" >> DPAggregates(
        plan, keyset=keyset, key_version=key_version, tables=tables
    )
    files, counts = [], []
    for table in spec.tables:
        name = table.name
        counted = result.tables[name] | f"CountGroups[{purpose}.{name}]" >> beam.ParDo(
            _CountGroupsFn(purpose, name)
        ).with_output_types(pa.Table).with_outputs(COUNTS, main="tables")
        counts.append(counted[COUNTS])
        written = counted.tables | f"WriteTable[{purpose}.{name}]" >> beam.io.WriteToParquetBatched(
            FileSystems.join(staging, f"part-{name}"),
            table_schema(table, plan.output_schema),
            codec="snappy",
            num_shards=1,
            shard_name_template="",
            file_name_suffix=SUFFIX["parquet"],
        )
        files.append(written)
    return AggregatesRelease(
        AggregatesStage(result.budget, result.explain),
        tuple(files) | f"TableFiles[{purpose}]" >> beam.Flatten(),
        tuple(counts) | f"GroupCounts[{purpose}]" >> beam.Flatten(),
    )


def table_file(files: list[str], name: str) -> str:
    """The published file of table `name` among a run's files (`part-<run>-<name>.parquet`)."""
    return next(f for f in files if f.endswith(f"-{name}{SUFFIX['parquet']}"))


def manifest_entry(plan: Plan, stage: AggregatesStage, files: list[str], counts: Mapping[str, int]) -> dict[str, Any]:
    """The manifest's `aggregates` entry: the guarantee's parameters, each table, the split and the explain reports."""
    spec = plan.policy.aggregates
    return {
        "privacy_unit": spec.privacy_unit,
        "epsilon": spec.epsilon,
        "delta": spec.delta,
        "noise": spec.noise,
        "tables": [
            {
                "name": table.name,
                "file": table_file(files, table.name),
                "schema": schema_fields(table_schema(table, plan.output_schema)),
                **table.model_dump(mode="json", exclude={"name", "public_groups"}, exclude_none=True),
                "groups": "public" if table.public_groups is not None else "selected privately",
                "public_groups": None if table.public_groups is None else len(table.public_groups),
                "released_groups": counts.get(f"groups.{table.name}", 0),
            }
            for table in spec.tables
        ],
        "budget": stage.budget,
        "explain": {name: text.splitlines() for name, text in stage.explain.items()},
    }
