"""A policy's `aggregates:`: the differentially private statistics a purpose receives instead of rows.

Only the settings and their checks live here (pydantic, no Beam, no PipelineDP); the
aggregation itself is `veil.transforms.dp.DPAggregates`.
"""

import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
Metric = Literal["count", "sum", "mean", "variance"]
VALUE_METRICS = ("sum", "mean", "variance")  # the metrics that read a value (and need its bounds)
GROUP_VALUE_TYPES = (str, int, float, bool, datetime.date)  # what a public group value can be (hashable scalars)


class AggregateTable(BaseModel):
    """One released table: DP metrics per group.

    Attributes:
        name: the table's name (its file is `part-<run>-<name>.parquet`).
        group_by: output fields whose values make a group (one column each in the table).
        metrics: `count` (records), `sum`, `mean`, `variance` (of `value`).
        value: the output field summed or averaged (a number); only with sum, mean or variance.
        min, max: each value is clamped into [min, max] (the sensitivity of sum, mean, variance).
        max_groups_per_unit: a privacy unit contributes to at most this many groups (the rest of
            its groups are dropped at random).
        max_rows_per_group: and at most this many records to each group.
        public_groups: the groups to release, known without looking at the data (one value each
            for a single group_by field, a list per group for several). Without them, groups are
            selected privately: a group with few privacy units is left out.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    name: str = Field(..., pattern=NAME, max_length=64)
    group_by: tuple[str, ...] = Field(..., min_length=1)
    metrics: tuple[Metric, ...] = Field(..., min_length=1)
    value: str | None = None
    min: float | None = None
    max: float | None = None
    max_groups_per_unit: int = Field(1, ge=1)
    max_rows_per_group: int = Field(1, ge=1)
    public_groups: tuple[Any, ...] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "AggregateTable":
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError("a metric is named twice")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("a group_by field is named twice")
        reads_value = any(metric in VALUE_METRICS for metric in self.metrics)
        settings = {"value": self.value, "min": self.min, "max": self.max}
        if reads_value:
            missing = [name for name, setting in settings.items() if setting is None]
            if missing:
                raise ValueError(f"sum, mean and variance need {', '.join(missing)} (the field and its bounds)")
            if not self.min < self.max:
                raise ValueError("min must be smaller than max")
        elif any(setting is not None for setting in settings.values()):
            raise ValueError("value, min and max are for sum, mean and variance; count needs none")
        if self.public_groups is not None:
            self._check_public_groups()
        return self

    def _check_public_groups(self) -> None:
        width = len(self.group_by)
        for group in self.public_groups:
            several = isinstance(group, (list, tuple))
            if width == 1 and several:
                raise ValueError("with one group_by field, each public group is one value (not a list)")
            if width > 1 and (not several or len(group) != width):
                raise ValueError(f"with {width} group_by fields, each public group is a list of {width} values")
            if not all(isinstance(value, GROUP_VALUE_TYPES) for value in (group if several else (group,))):
                raise ValueError("a public group's values are texts, numbers, booleans or dates, not lists or mappings")
        if len(set(self.group_keys())) != len(self.public_groups):
            raise ValueError("a public group is named twice")

    def group_keys(self) -> list[Any]:
        """The public groups as the aggregation keys them (a value, or a tuple for several fields)."""
        if self.public_groups is None:
            return []
        return [tuple(group) if isinstance(group, (list, tuple)) else group for group in self.public_groups]

    @property
    def fields(self) -> tuple[str, ...]:
        """The output fields this table reads (group_by, then value)."""
        return (*self.group_by, *((self.value,) if self.value else ()))


class AggregatesSpec(BaseModel):
    """DP aggregates instead of rows: every table's metrics, with one privacy budget for all.

    Attributes:
        privacy_unit: the output field identifying whose contributions are bounded (the subject,
            kept or pseudonymized): neighbouring datasets differ by all records of one unit.
        epsilon: the total privacy budget (> 0), split across tables and metrics by PipelineDP's
            accountant (equal weights).
        delta: the total probability of failure (0 <= delta < 1); selecting groups privately and
            Gaussian noise need delta > 0.
        noise: `laplace` (default) or `gaussian`.
        tables: the released tables.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    privacy_unit: str = Field(..., pattern=NAME)
    epsilon: float = Field(..., gt=0)
    delta: float = Field(0.0, ge=0, lt=1)
    noise: Literal["laplace", "gaussian"] = "laplace"
    tables: tuple[AggregateTable, ...]  # not min_length: a bad table would also report the tuple as empty

    @model_validator(mode="after")
    def _consistent(self) -> "AggregatesSpec":
        if not self.tables:
            raise ValueError("aggregates needs at least one table")
        names = [table.name for table in self.tables]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"table name {', '.join(twice)} is used twice")
        if self.delta == 0:
            private = [table.name for table in self.tables if table.public_groups is None]
            if private:
                raise ValueError(
                    f"table {private[0]} selects its groups privately, which needs delta > 0 "
                    "(e.g. delta: 1.0e-6), or list its public_groups"
                )
            if self.noise == "gaussian":
                raise ValueError("gaussian noise needs delta > 0")
        return self

    @property
    def fields(self) -> tuple[str, ...]:
        """Every output field the tables read, the privacy unit first, each once."""
        names = [self.privacy_unit, *(name for table in self.tables for name in table.fields)]
        return tuple(dict.fromkeys(names))
