"""Compile a policy against an input schema into a Plan: one ColumnOp per output field.

Everything that can be checked before data moves is checked here: fields missing from the
input, actions that cannot take a field's type, unlisted fields under `default: error`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from veil.errors import ConfigError
from veil.transforms.actions.base import ActionParams, kind_of
from veil.transforms.policy import Policy
from veil.transforms.registry import REGISTRY


@dataclass(frozen=True)
class ColumnOp:
    """One output field: where it comes from and what is done to it.

    Attributes:
        source: input field name.
        output: output field name.
        params: the action's validated params.
        output_type: the output's Arrow type (None when compiled without an input schema).
    """

    source: str
    output: str
    params: ActionParams
    output_type: pa.DataType | None

    @property
    def action(self) -> str:
        """The action's name."""
        return self.params.action


@dataclass(frozen=True)
class Plan:
    """A policy made concrete for one input.

    Attributes:
        policy: the policy.
        ops: the output fields, in policy order.
        dropped: input fields that do not reach the output (known only with a schema).
        input_schema: the input's schema, if known.
        levels: with `on_violation: generalize`, the coarser levels of the quasi-identifiers
            (hidden columns named by `level_column`, for `EnforceKAnonymity` to choose from).
    """

    policy: Policy
    ops: tuple[ColumnOp, ...]
    dropped: tuple[str, ...]
    input_schema: pa.Schema | None
    levels: tuple[ColumnOp, ...] = ()

    @property
    def output_schema(self) -> pa.Schema | None:
        """The output's Arrow schema (None without an input schema)."""
        if self.input_schema is None:
            return None
        return pa.schema([pa.field(op.output, op.output_type) for op in self.ops])

    @property
    def batch_schema(self) -> pa.Schema | None:
        """The schema of the batches `SanitizeBatches` makes: the output's, then the hidden level columns."""
        schema = self.output_schema
        if schema is None or not self.levels:
            return schema
        return pa.schema([*schema, *(pa.field(op.output, op.output_type) for op in self.levels)])

    @property
    def keyed(self) -> bool:
        """Whether any field needs keys."""
        return any(REGISTRY[op.action].keyed for op in self.ops)

    @property
    def input_fields(self) -> tuple[str, ...]:
        """Every input field the plan reads (a job need not read the others)."""
        return tuple(dict.fromkeys([*(op.source for op in self.ops), *self.gate_fields]))

    @property
    def gate_fields(self) -> tuple[str, ...]:
        """Input fields read by the record gates and per-subject actions."""
        policy = self.policy
        used = [policy.consent.field] if policy.consent and policy.consent.field else []
        if policy.subject and (
            subject_gates(policy) or any(REGISTRY[op.action].per_subject(op.params) for op in self.ops)
        ):
            used.append(policy.subject)
        return tuple(used)


def level_column(quasi_identifier: str, level: int) -> str:
    """The hidden column holding `quasi_identifier` at a coarser `level` (between sanitize and k-anonymity)."""
    return f"__veil_level{level}__{quasi_identifier}"


def _level_ops(
    policy: Policy, ops: list[ColumnOp], input_types: dict[str, pa.DataType] | None, problems: list[str]
) -> tuple[ColumnOp, ...]:
    """The hidden ColumnOps of every coarser, non-suppress level (see `Plan.levels`)."""
    spec = policy.k_anonymity
    if spec is None or spec.on_violation != "generalize":
        return ()
    by_output = {op.output: op for op in ops}
    levels = []
    for name in spec.hierarchies:
        own = by_output.get(name)
        if own is None:  # its input field is missing: reported already
            continue
        for index, params in enumerate(policy.levels_of(name)):
            if index == 0 or params is None:
                continue
            output_type = None
            if input_types is not None:
                where = f"k_anonymity.quasi_identifiers.{name}.levels.{index}"
                input_type, action = input_types[own.source], REGISTRY[params.action]
                kinds = action.accepted_kinds(params)
                if kinds is not None and kind_of(input_type) not in (*kinds, "null"):
                    problems.append(
                        f"{where}: field '{own.source}' is {input_type}, but {params.variant} takes "
                        f"{' or '.join(sorted(kinds))}"
                    )
                    continue
                output_type = action.output_type(params, input_type)
                if output_type != own.output_type:
                    problems.append(
                        f"{where} makes {output_type}, but the "
                        f"field makes {own.output_type}: every level of a quasi-identifier must make one type"
                    )
                    continue
            levels.append(ColumnOp(own.source, level_column(name, index), params, output_type))
    return tuple(levels)


def subject_gates(policy: Policy) -> bool:
    """Whether records must be joined with facts kept per subject (consent, erasure or key tables)."""
    return bool((policy.consent and policy.consent.table) or policy.erasure or policy.subject_keys)


INPUT_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "bool": pa.bool_(),
}


def declared_types(policies: Sequence[Policy]) -> dict[str, pa.DataType]:
    """Input field -> the Arrow type the policies' `input_types` parse its text into (one input, one type).

    Raises:
        ConfigError: two policies read one field as different types.
    """
    types: dict[str, pa.DataType] = {}
    for policy in policies:
        for name, kind in policy.input_types.items():
            if name in types and types[name] != INPUT_TYPES[kind]:
                raise ConfigError(
                    f"the policies read input field '{name}' as different types ({types[name]} and {kind} "
                    "in input_types); run them separately or declare one type"
                )
            types[name] = INPUT_TYPES[kind]
    return types


def _where(policy: Policy) -> str:
    return f"policy {policy.source}" if policy.source else f"policy '{policy.purpose}'"


def compile_plan(policy: Policy, schema: pa.Schema | None = None) -> Plan:
    """The Plan for `policy` over input `schema` (or a schema-free plan for dict records).

    Raises:
        ConfigError: naming every field the policy and the input disagree on.
    """
    problems: list[str] = []
    input_types = {f.name: f.type for f in schema} if schema is not None else None
    ops = []
    for source, params in policy.fields.items():
        action = REGISTRY[params.action]
        input_type = None
        if input_types is not None:
            if source not in input_types:
                problems.append(f"field '{source}' is not in the input")
                continue
            input_type = input_types[source]
            kinds = action.accepted_kinds(params)
            kind = kind_of(input_type)
            if kinds is not None and kind != "null" and kind not in kinds:
                problems.append(
                    f"field '{source}' is {input_type}, but {params.title} takes {' or '.join(sorted(kinds))}"
                )
                continue
        if not action.writes_output:
            continue
        output_type = action.output_type(params, input_type) if input_type is not None else None
        ops.append(ColumnOp(source, policy.output_name(source), params, output_type))
    dropped: tuple[str, ...] = ()
    if input_types is not None:
        for name, role in ((policy.subject, "subject"), (policy.consent and policy.consent.field, "consent")):
            if name and name not in input_types:
                problems.append(f"{role} field '{name}' is not in the input")
        for name, kind in policy.input_types.items():
            if name in input_types and input_types[name] != INPUT_TYPES[kind]:
                problems.append(
                    f"field '{name}' is {input_types[name]} in the input, but input_types says {kind} "
                    "(input_types parses CSV and JSON Lines text; a Parquet column keeps its type)"
                )
        unlisted = [name for name in input_types if name not in policy.mentioned_fields]
        if policy.default == "error" and unlisted:
            problems.append(
                "default: error, and the policy does not name input field"
                f"{'s' if len(unlisted) > 1 else ''} "
                + ", ".join(unlisted)
                + " (add each to fields, with action: drop if unneeded)"
            )
        outputs = {op.source for op in ops}
        dropped = tuple(name for name in input_types if name not in outputs)
    levels = _level_ops(policy, ops, input_types, problems)
    if problems:
        raise ConfigError(f"{_where(policy)}: " + "; ".join(problems))
    return Plan(policy, tuple(ops), dropped, schema, levels)
