"""What every field action shares: the params base model, the bind context and the record.

An action is pure: `bind(params, context)` returns a per-value function with keys already
bound; it raises `ActionError` (a code, never the value) for a value it cannot protect.
Nulls never reach it: a null input is a null output for every action that reads values.
"""

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from veil.errors import ActionError, ErrorCode, IntegrityError
from veil.keys import KeyRing

OnError = Literal["null", "drop_record", "fail"]
Kind = Literal["string", "integer", "float", "date", "timestamp", "bool", "list", "null", "other"]
NUMERIC: frozenset[Kind] = frozenset({"integer", "float"})
DATES: frozenset[Kind] = frozenset({"date", "timestamp", "string"})
SCALARS: frozenset[Kind] = frozenset({"string", "integer", "float", "date", "timestamp", "bool"})

ValueFn = Callable[..., Any]
SubjectInput = Literal["id", "key"]
SUBJECT_KEY_COLUMN = "__veil_subject_key"  # added to batches by the subject key join: "<key id>:<wrapped, base64>"


class ActionParams(BaseModel):
    """Settings every action accepts.

    Attributes:
        as_: the output field name (YAML `as`); defaults to the input field's name.
        on_error: what happens to a value the action cannot protect: `null` the field,
            `drop_record`, or `fail` the job. The raw value never passes through.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True, populate_by_name=True)

    as_: str | None = Field(None, alias="as", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    on_error: OnError = "null"

    @field_validator("on_error", mode="before")
    @classmethod
    def _yaml_null(cls, value: Any) -> Any:
        return "null" if value is None else value

    def __repr__(self) -> str:  # params are config, but keep reprs short and value-free
        return f"{type(self).__name__}(action={getattr(self, 'action', '?')!r})"


@dataclass(frozen=True)
class BindContext:
    """What an action may know when it is bound on a worker.

    Attributes:
        purpose: the policy's purpose (part of every derived key).
        field: the input field's name.
        keyring: the opened keys (None when the plan needs no keys).
        key_version: the root key version deterministic and keyed actions use.
    """

    purpose: str
    field: str
    keyring: KeyRing | None = None
    key_version: int | None = None

    def require_keys(self) -> tuple[KeyRing, int]:
        """The keyring and version; a bug if a keyed action was bound without them."""
        assert self.keyring is not None and self.key_version is not None, "keyed action bound without keys"
        return self.keyring, self.key_version


@dataclass(frozen=True)
class Action:
    """One registry entry.

    Attributes:
        name: the YAML `action:` value, the params' Literal tag and the module name.
        params: the pydantic params model.
        bind: params + context -> per-value function (value) or (value, subject); None for
            `drop`, which has no output to compute.
        output_type: params + input Arrow type -> output Arrow type (None: the field is dropped).
        accepts: input kinds the action can take (checked when a plan is compiled): a set, a
            function of the params giving one, or None for any kind.
        keyed: whether it needs the keyring.
        subject_input: params -> what per-subject input its function takes as a second
            argument: "id" (the record's subject id), "key" (the record's subject data key, from
            the subject key table), or None (the function takes the value only).
        deterministic: whether equal inputs give equal outputs (enables per-batch memo).
        reverse: params + context -> function from an output value back to the input value
            (raising `IntegrityError` for one that fails authentication); None when the action
            cannot be undone. The context's key_version is the version to use where the output
            does not carry one (ff1).
        bind_column: optionally, params + context -> a function over a whole column (values ->
            outputs, failed indices, first error) that must equal `bind` applied per value; for
            actions whose primitive is much cheaper batched (ff1).
    """

    name: str
    params: type[ActionParams]
    bind: Callable[[Any, BindContext], ValueFn] | None
    output_type: Callable[[Any, pa.DataType], pa.DataType | None]
    accepts: frozenset[Kind] | Callable[[Any], frozenset[Kind]] | None = SCALARS
    keyed: bool = False
    subject_input: Callable[[Any], SubjectInput | None] = lambda _params: None
    deterministic: bool = True
    reverse: Callable[[Any, BindContext], ValueFn] | None = None
    bind_column: Callable[[Any, BindContext], Callable[[list], tuple[list, list[int], Any]] | None] | None = None

    def per_subject(self, params: Any) -> bool:
        """Whether these params make the action read something per subject (so need `subject`)."""
        return self.subject_input(params) is not None

    def accepted_kinds(self, params: Any) -> frozenset[Kind] | None:
        """The input kinds these params can take (None: any)."""
        return self.accepts(params) if callable(self.accepts) else self.accepts


def kind_of(arrow_type: pa.DataType) -> Kind:
    """The coarse kind of an Arrow type, as actions declare what they accept."""
    t = pa.types
    if t.is_dictionary(arrow_type):
        return kind_of(arrow_type.value_type)
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return "string"
    if t.is_integer(arrow_type):
        return "integer"
    if t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return "float"
    if t.is_date(arrow_type):
        return "date"
    if t.is_timestamp(arrow_type):
        return "timestamp"
    if t.is_boolean(arrow_type):
        return "bool"
    if t.is_list(arrow_type) or t.is_large_list(arrow_type):
        return "list"
    if t.is_null(arrow_type):
        return "null"
    return "other"


def same_type(_params: Any, input_type: pa.DataType) -> pa.DataType:
    """Output type rule for actions that keep the input's type."""
    return input_type


def string_type(_params: Any, _input_type: pa.DataType) -> pa.DataType:
    """Output type rule for actions that always produce text."""
    return pa.string()


def as_text(value: Any) -> str:
    """Canonical text of a string or integer value; `ActionError` for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ActionError(ErrorCode.WRONG_TYPE)


Normalization = Literal["strip", "lower", "upper"]


def normalizer(steps: tuple[Normalization, ...]) -> Callable[[str], str]:
    """A function applying `steps` in order, so equal-looking inputs get equal outputs."""
    ops = {"strip": str.strip, "lower": str.lower, "upper": str.upper}
    chain = [ops[s] for s in steps]

    def normalize(text: str) -> str:
        for op in chain:
            text = op(text)
        return text

    return normalize


def token_text(version: int, payload: bytes) -> str:
    """Text form of a token or ciphertext: `v<key version>.<base64url, no padding>`."""
    return f"v{version}." + base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def parse_token(text: Any) -> tuple[int, bytes]:
    """(key version, payload) of a `token_text`; `IntegrityError` if it is not one."""
    if not isinstance(text, str) or not text.startswith("v"):
        raise IntegrityError("not a veil token")
    version, _, payload = text[1:].partition(".")
    try:
        return int(version), base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (ValueError, binascii.Error):
        raise IntegrityError("not a veil token") from None


def as_date(value: Any) -> date:
    """The calendar date of a date, a timestamp or an ISO 8601 string; `ActionError` otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip()).date()
        except ValueError:
            raise ActionError(ErrorCode.INVALID_DATE) from None
    raise ActionError(ErrorCode.WRONG_TYPE)


def is_number(value: Any) -> bool:
    """True for ints and floats, not bools."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
