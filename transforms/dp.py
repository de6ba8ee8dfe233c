"""Differentially private aggregates (a policy's `aggregates:`) with PipelineDP on Beam.

`DPAggregates` takes the input's Arrow batches, runs the policy's gates and field actions
(the same `SanitizeBatches` every view uses, so consent and erasure apply first), and hands
(privacy unit, group, value) contributions to PipelineDP's `DPEngine` on its `BeamBackend`:
contributions are bounded per unit, noise is added per metric, and without public groups the
groups are selected privately. One `NaiveBudgetAccountant` splits the policy's epsilon and
delta across the tables and their mechanisms. Only the tables come out, never a row.

PipelineDP is the optional extra `dp` (its python-dp wheels exist for Linux x86_64 with
Python 3.11-3.13): it is imported when a `DPAggregates` is built, never before.
"""

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa

from veil.errors import ConfigError
from veil.transforms.aggregates import AggregatesSpec, AggregateTable
from veil.transforms.beam import SanitizeBatches
from veil.transforms.plan import Plan
from veil.transforms.tables import GateTables

DP_EXTRA = (
    "differentially private aggregates need the dp extra: pip install 'veil[dp]' "
    "(pipeline-dp, published for Linux x86_64 with Python 3.11-3.13)"
)
STDDEV_METRICS = ("count", "sum")  # PipelineDP reports their noise's stddev when no mean or variance shares them


def import_pipeline_dp() -> Any:
    """The `pipeline_dp` module; `ConfigError` naming the extra when it is not installed."""
    try:
        import pipeline_dp
    except ImportError:
        raise ConfigError(DP_EXTRA) from None
    return pipeline_dp


class DPAggregatesResult(NamedTuple):
    """What `DPAggregates` gives back.

    Attributes:
        tables: table name -> a PCollection of one `pyarrow.Table` (its `table_schema`).
        budget: the accountant's split, one dict per mechanism: table, mechanism (PipelineDP's
            name), noise, epsilon, delta.
        explain: table name -> PipelineDP's explain computation report (bounding, selection,
            noise per metric).
        dead_letters: as `SanitizeResult.dead_letters` (field, action, code; never a value).
    """

    tables: dict[str, beam.PCollection]
    budget: list[dict[str, Any]]
    explain: dict[str, str]
    dead_letters: beam.PCollection


def reported_stddevs(table: AggregateTable) -> tuple[str, ...]:
    """The metrics whose noise stddev the table carries (`<metric>_noise_stddev` columns)."""
    if any(metric in ("mean", "variance") for metric in table.metrics):
        return ()
    return tuple(metric for metric in table.metrics if metric in STDDEV_METRICS)


def table_schema(table: AggregateTable, view: pa.Schema) -> pa.Schema:
    """A released table's columns: the group_by fields (their view types), each metric, then the
    noise stddevs PipelineDP reports."""
    columns = [view.field(name) for name in table.group_by]
    columns += [pa.field(metric, pa.float64()) for metric in table.metrics]
    columns += [pa.field(f"{metric}_noise_stddev", pa.float64()) for metric in reported_stddevs(table)]
    return pa.schema(columns)


def check_tables(spec: AggregatesSpec, view: pa.Schema, purpose: str) -> None:
    """Refuse, before data moves, a value that is not a number or public groups the group_by types cannot hold."""
    for index, table in enumerate(spec.tables):
        where = f"policy '{purpose}': aggregates.tables.{index} ({table.name})"
        if table.value is not None:
            kind = view.field(table.value).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
                raise ConfigError(
                    f"{where}: value '{table.value}' is {kind} in this view; sum, mean and variance need a number "
                    "(keep a numeric field, or generalize it with width or round)"
                )
        for position, name in enumerate(table.group_by):
            kind = view.field(name).type
            if pa.types.is_nested(kind):
                raise ConfigError(f"{where}: group_by field '{name}' is {kind}; a group is made of plain values")
            values = [key[position] if len(table.group_by) > 1 else key for key in table.group_keys()]
            try:
                pa.array(values, type=kind)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
                raise ConfigError(
                    f"{where}: public_groups do not fit group_by field '{name}' ({kind}); write them as its values"
                ) from None


def _contributions(batch: pa.RecordBatch, unit: str, table: AggregateTable) -> Iterable[tuple]:
    """(privacy unit, group key, value) per record; records without a unit (or a value to aggregate) left out."""
    units = batch.column(unit).to_pylist()
    groups = [batch.column(name).to_pylist() for name in table.group_by]
    keys = groups[0] if len(groups) == 1 else list(zip(*groups))
    values = batch.column(table.value).to_pylist() if table.value else [0.0] * len(units)
    for owner, key, value in zip(units, keys, values):
        if owner is not None and value is not None:
            yield owner, key, float(value)


def _to_table(rows: Sequence[tuple[Any, Any]], table: AggregateTable, schema: pa.Schema) -> pa.Table:
    """(group key, PipelineDP metrics) pairs -> one Arrow table, groups sorted for a stable file."""
    columns: dict[str, list] = {name: [] for name in schema.names}
    for key, metrics in sorted(rows, key=lambda row: repr(row[0])):
        parts = (key,) if len(table.group_by) == 1 else key
        for name, part in zip(table.group_by, parts):
            columns[name].append(part)
        found = metrics._asdict()
        for name in schema.names[len(table.group_by) :]:
            columns[name].append(found[name])
    return pa.Table.from_pydict(columns, schema=schema)


class _AggregateInput(SanitizeBatches):
    """SanitizeBatches for a policy with aggregates: its rows only ever reach the aggregation."""

    _aggregating = True


def _recording_accountant(pipeline_dp: Any, spec: AggregatesSpec) -> Any:
    """PipelineDP's NaiveBudgetAccountant, remembering which table asked for each mechanism's budget."""

    class RecordingAccountant(pipeline_dp.NaiveBudgetAccountant):
        """Records (table, MechanismSpec) for every budget requested; the specs get their epsilon
        and delta in `compute_budgets`."""

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.table, self.requested = "", []

        def request_budget(self, *args: Any, **kwargs: Any) -> Any:
            mechanism = super().request_budget(*args, **kwargs)
            self.requested.append((self.table, mechanism))
            return mechanism

    return RecordingAccountant(spec.epsilon, spec.delta, num_aggregations=len(spec.tables))


class DPAggregates(beam.PTransform):
    """Input RecordBatches -> a `DPAggregatesResult`: the policy's DP tables, never a row.

    Args:
        plan: the policy's plan compiled against the input schema (`compile_plan`); its policy
            must have `aggregates`.
        keyset, key_version, tables: as `SanitizeBatches` (the gates and field actions run first).
        label: the transform label (default `DPAggregates[<purpose>]`).

    Raises:
        ConfigError: PipelineDP missing (the `dp` extra), no aggregates, a value that is not a number.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        keyset: str | None = None,
        key_version: int | None = None,
        tables: GateTables | None = None,
        label: str | None = None,
    ):
        policy = plan.policy
        if policy.aggregates is None:
            raise ConfigError(f"policy '{policy.purpose}' has no aggregates; use SanitizeBatches for its rows")
        self._pipeline_dp = import_pipeline_dp()
        super().__init__(label or f"DPAggregates[{policy.purpose}]")
        self._spec, self._purpose, self._view = policy.aggregates, policy.purpose, plan.output_schema
        check_tables(self._spec, self._view, policy.purpose)
        self._sanitize = _AggregateInput(plan, keyset=keyset, key_version=key_version, tables=tables)

    def _params(self, table: AggregateTable) -> Any:
        dp, spec = self._pipeline_dp, self._spec
        return dp.AggregateParams(
            metrics=[getattr(dp.Metrics, metric.upper()) for metric in table.metrics],
            noise_kind=dp.NoiseKind.GAUSSIAN if spec.noise == "gaussian" else dp.NoiseKind.LAPLACE,
            max_partitions_contributed=table.max_groups_per_unit,
            max_contributions_per_partition=table.max_rows_per_group,
            min_value=table.min,
            max_value=table.max,
            output_noise_stddev=bool(reported_stddevs(table)),
        )

    def expand(self, batches) -> DPAggregatesResult:
        dp, spec = self._pipeline_dp, self._spec
        sanitized = batches | "Sanitize" >> self._sanitize
        accountant = _recording_accountant(dp, spec)
        engine = dp.DPEngine(accountant, dp.BeamBackend())
        extractors = dp.DataExtractors(
            privacy_id_extractor=lambda row: row[0],
            partition_extractor=lambda row: row[1],
            value_extractor=lambda row: row[2],
        )
        aggregated, reports = {}, {}
        for table in spec.tables:
            accountant.table = table.name
            rows = sanitized.output | f"Contributions[{table.name}]" >> beam.FlatMap(
                _contributions, spec.privacy_unit, table
            ).with_output_types(tuple[Any, Any, float])
            reports[table.name] = dp.report_generator.ExplainComputationReport()
            aggregated[table.name] = engine.aggregate(
                rows,
                self._params(table),
                extractors,
                public_partitions=table.group_keys() if table.public_groups is not None else None,
                out_explain_computation_report=reports[table.name],
            )
        accountant.compute_budgets()
        tables = {}
        for table in spec.tables:
            schema = table_schema(table, self._view)
            tables[table.name] = (
                aggregated[table.name]
                | f"Gather[{table.name}]" >> beam.combiners.ToList()
                | f"ToTable[{table.name}]" >> beam.Map(_to_table, table, schema).with_output_types(pa.Table)
            )
        budget = [
            {
                "table": name,
                "mechanism": mechanism.name or str(mechanism.mechanism_type.value),
                "noise": str(mechanism.mechanism_type.value),
                "epsilon": mechanism.eps,
                "delta": mechanism.delta,
            }
            for name, mechanism in accountant.requested
        ]
        explain = {name: report.text() for name, report in reports.items()}
        return DPAggregatesResult(tables, budget, explain, sanitized.dead_letters)
