"""What every field action shares: the params base model, the bind context and the record.

An action is pure: `bind(params, context)` returns a per-value function with keys already
bound; it raises `ActionError` (a code, never the value) for a value it cannot protect.
Nulls never reach it: a null input is a null output for every action that reads values.
"""

import base64
import binascii
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from veil.errors import ActionError, ErrorCode, IntegrityError
from veil.keys import KeyRing
from veil.keys.tink_export import TinkKeySpec

OnError = Literal["null", "drop_record", "fail"]
Kind = Literal["string", "integer", "float", "date", "timestamp", "bool", "list", "null", "other"]
NUMERIC: frozenset[Kind] = frozenset({"integer", "float"})
DATES: frozenset[Kind] = frozenset({"date", "timestamp", "string"})
SCALARS: frozenset[Kind] = frozenset({"string", "integer", "float", "date", "timestamp", "bool"})

ValueFn = Callable[..., Any]
# A column function: non-null values -> (outputs, positions that failed (their output is None), first failure).
ColumnFn = Callable[[list], tuple[list, list[int], ActionError | None]]
# An Arrow column function: array -> (output array of the op's output type, failed indices (null
# there), first failure). Nulls in give nulls out.
ArrowFn = Callable[[pa.Array], tuple[pa.Array, list[int], ActionError | None]]
# The same for an action with a subject input: (values, the per-subject column) -> as ArrowFn.
SubjectArrowFn = Callable[[pa.Array, pa.Array], tuple[pa.Array, list[int], ActionError | None]]
SubjectInput = Literal["id", "key"]
INTERNAL_PREFIX = "__veil_"  # columns veil adds to batches between its stages; never input or output fields
SUBJECT_KEY_COLUMN = "__veil_subject_key"  # added to batches by the subject key join: "<key id>:<wrapped, base64>"


class ActionParams(BaseModel):
    """Settings every action accepts.

    Attributes:
        as_: the output field name (YAML `as`); defaults to the input field's name.
        on_error: what happens to a value the action cannot protect: `null` the field,
            `drop_record`, or `fail` the job. The raw value never passes through.
        description: what the field holds, in plain words for customers ("your email
            address"); `veil explain` uses it in the notice instead of the field's name.
        reason: why the purpose needs the field in this form; shown in the notice, and what
            `veil lint` asks for before personal data or free text may be kept raw.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True, populate_by_name=True)

    as_: str | None = Field(None, alias="as", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    on_error: OnError = "null"
    description: str | None = Field(None, min_length=1)
    reason: str | None = Field(None, min_length=1)

    @field_validator("on_error", mode="before")
    @classmethod
    def _yaml_null(cls, value: Any) -> Any:
        return "null" if value is None else value

    @property
    def title(self) -> str:
        """The action as messages name it (its name; generalize adds its variant)."""
        return getattr(self, "action", "?")

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
        tally: counts an action reports about its work (`scrubbed.<field>.<entity>`); the engine
            adds them to the run's counts after each batch and empties it.
    """

    purpose: str
    field: str
    keyring: KeyRing | None = None
    key_version: int | None = None
    tally: Counter | None = None

    def require_keys(self) -> tuple[KeyRing, int]:
        """The keyring and version; a bug if a keyed action was bound without them."""
        assert self.keyring is not None and self.key_version is not None, "keyed action bound without keys"
        return self.keyring, self.key_version


RawCheck = Literal["visible", "coincident", "labels", "encoded", "derived"]
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # RFC 4648 section 5


@dataclass(frozen=True)
class TextFormat:
    """The shape of every cell of an encoded output (what verification checks instead of values).

    Attributes:
        alphabet: the only characters a cell holds.
        length: its exact length in characters (None: any).
        head: an RE2 pattern its start matches (a token's `v<version>.`), or None.
    """

    alphabet: str
    length: int | None = None
    head: str | None = None


TOKEN_FORMAT = TextFormat(BASE64URL + ".", head=r"v[0-9]+\.[A-Za-z0-9_-]")  # v<version>.<base64url>


@dataclass(frozen=True)
class VerifyRule:
    """How verification (`veil.transforms.verify`) checks an action's output against its input.

    Attributes:
        raw: how an output cell is compared with the raw values of its input field:
            `visible`: the output is the value, by the policy's choice (keep): nothing to compare;
            `coincident`: outputs are values of the input's own domain by design (bucket bounds,
            period starts, shifted dates, Faker surrogates, text without findings), so that one
            equals some other record's raw value is expected: not compared;
            `labels`: outputs are among `labels`, a small set of texts: the raw values of the
            field (of every input field that is not kept, with `across`) are looked up in it;
            `encoded`: keyed encodings; a cell must be in `format` (the encoding's alphabet,
            length and head), one that is not counts as a raw value;
            `derived`: text computed from the value and keeping some of it (mask, prefix, ff1):
            compared by keyed hash with every raw value of the field (of that field only: a
            cell that copies a whole value is its own field's value; one equal to another
            field's value is part of a value or a token, equal by chance of the domains).
        labels: the values a `labels` output can take (compared as text).
        format: the shape of every cell of an `encoded` output.
        designed: entities the output is meant to look like, not counted by the pattern check;
            None: every entity (format-preserving and encoded outputs are not pattern-checked).
        entities: entities the pattern check looks for besides the default ones (a scrub
            field's own list), read with phone `regions` (default: the detectors').
        longest: the most characters an output can have (None: no bound); a `derived` output
            always shorter than the shortest compared value is not compared.
        across: `labels` the policy spells as they are (a `replace` value, `map` targets),
            which may have been copied from any column; bin labels veil writes from the
            policy's edges (`18-24`) are compared with their own field only.
        text: the output is free text (scrub, and keep of a field named as free text): raw
            values of the other input fields that are not kept are looked for in its cells,
            whole and inside (`veil.transforms.inside_text`).
    """

    raw: RawCheck = "derived"
    labels: tuple[Any, ...] = ()
    format: TextFormat | None = None
    designed: frozenset[str] | None = frozenset()
    entities: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    longest: int | None = None
    across: bool = False
    text: bool = False


DERIVED = VerifyRule()


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
        bind_column: optionally, params + context -> a `ColumnFn`: `bind` over a whole list
            of non-null values at once (outputs, failed positions, first error), equal to `bind`
            applied per value; for actions whose primitive is cheaper batched (HMAC with the key
            set once, SIV, GCM with bulk nonces, FF1).
        versioned: params -> whether the output carries the key version that made it (a token
            `v<version>.`); False for ff1 tokens, whose version only the run's manifest knows.
        bind_arrow: optionally, params + context + the input's Arrow type -> an `ArrowFn` that
            computes the output column with Arrow kernels (None when it cannot for that type);
            it must equal `bind` applied per value, nulls staying null. For an action with a
            `subject_input`, it is a `SubjectArrowFn`, given the per-subject column as well.
        tink_key: optionally, params + purpose + input field -> the `TinkKeySpec` of the
            field's working key, for a Tink keyset export (`veil keys export-tink`); it raises
            `ConfigError` saying why when these params make values Tink cannot read.
        verify: params -> the `VerifyRule` verification checks this action's output with.
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
    bind_column: Callable[[Any, BindContext], ColumnFn | None] | None = None
    bind_arrow: Callable[[Any, BindContext, pa.DataType], ArrowFn | SubjectArrowFn | None] | None = None
    tink_key: Callable[[Any, str, str], TinkKeySpec] | None = None
    versioned: Callable[[Any], bool] = lambda _params: True
    verify: Callable[[Any], VerifyRule] = lambda _params: DERIVED

    @property
    def writes_output(self) -> bool:
        """Whether the field reaches the output at all (False for `drop`)."""
        return self.bind is not None

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


def is_arrow_text(input_type: pa.DataType) -> bool:
    """Whether `arrow_text` takes arrays of this Arrow type (string, large_string, integers)."""
    t = pa.types
    return t.is_string(input_type) or t.is_large_string(input_type) or t.is_integer(input_type)


def arrow_text(array: pa.Array) -> pa.Array:
    """`as_text` over an Arrow array of an `is_arrow_text` type.

    Strings stay as they are; integers become their decimal text (Arrow's integer -> string cast
    writes what Python's `str(int)` writes).
    """
    if pa.types.is_integer(array.type):
        return array.cast(pa.string())
    assert pa.types.is_string(array.type) or pa.types.is_large_string(array.type), "not a text type"
    return array


BEYOND_ANY_STRING = 2**61  # a character count past any Arrow string's length: slicing to it keeps everything


def present_mask(array: pa.Array) -> np.ndarray:
    """True where `array` is not null, as a numpy array."""
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    return pc.is_valid(array).to_numpy(zero_copy_only=False)


def encodable(text: str) -> bool:
    """Whether `text` can be an Arrow string (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


Normalization = Literal["strip", "lower", "upper"]


_NORMALIZATIONS: dict[str, Callable[[str], str]] = {"strip": str.strip, "lower": str.lower, "upper": str.upper}


def normalizer(steps: tuple[Normalization, ...]) -> Callable[[str], str]:
    """A function applying `steps` in order, so equal-looking inputs get equal outputs."""
    chain = [_NORMALIZATIONS[s] for s in steps]

    def normalize(text: str) -> str:
        for op in chain:
            text = op(text)
        return text

    return normalize


def column_normalizer(steps: tuple[Normalization, ...]) -> Callable[[list[str]], list[str]] | None:
    """`normalizer(steps)` over a list of texts, one C-level map per step; None when there are no steps."""
    if not steps:
        return None
    chain = [_NORMALIZATIONS[s] for s in steps]

    def normalize_all(texts: list[str]) -> list[str]:
        for op in chain:
            texts = list(map(op, texts))
        return texts

    return normalize_all


class TextColumn:
    """A `ColumnFn` made of a per-value function's type check and a batched function over texts.

    When every value is a `str` (one cheap pass), `texts` gets the list as it is: no per-value
    `try`. Otherwise each value goes through `check` first (None is skipped and stays None, as
    nulls do), the values it refuses fail with its error, and `texts` gets the texts of the
    others; the positions and the first error are put back in column order. The engine calls
    `texts` directly on the values of an Arrow string column, which are all `str`.

    Attributes:
        check: value -> its text, raising `ActionError` where the per-value function does
            before doing anything else (`as_text`, `require_text`).
        texts: a `ColumnFn` over texts only, equal to the per-value function on each.
    """

    def __init__(self, check: Callable[[Any], str], texts: ColumnFn):
        self.check, self.texts = check, texts

    def __call__(self, values: list) -> tuple[list, list[int], ActionError | None]:
        if all(type(v) is str for v in values):
            return self.texts(values)
        out: list = [None] * len(values)
        refused: list[int] = []
        refusal: ActionError | None = None
        texts: list[str] = []
        positions: list[int] = []
        for position, value in enumerate(values):
            if value is None:
                continue
            try:
                texts.append(self.check(value))
            except ActionError as error:
                refused.append(position)
                if refusal is None:
                    refusal = error
                continue
            positions.append(position)
        outputs, text_failed, text_error = self.texts(texts)
        for position, output in zip(positions, outputs):
            out[position] = output
        if not text_failed:
            return out, refused, refusal
        failed = [positions[i] for i in text_failed]
        if refused and refused[0] < failed[0]:
            text_error = refusal
        return out, sorted(refused + failed), text_error


def text_column(check: Callable[[Any], str], texts_fn: ColumnFn) -> TextColumn:
    """The `ColumnFn` of a per-value function's type check and a batched function over texts (`TextColumn`)."""
    return TextColumn(check, texts_fn)


def require_text(value: Any) -> str:
    """The value if it is a string; `ActionError(WRONG_TYPE)` otherwise."""
    if isinstance(value, str):
        return value
    raise ActionError(ErrorCode.WRONG_TYPE)


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def token_text(version: int, payload: bytes) -> str:
    """Text form of a token or ciphertext: `v<key version>.<base64url, no padding>`."""
    return f"v{version}." + base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def token_texts(version: int, payloads: list[bytes]) -> list[str]:
    """`[token_text(version, p) for p in payloads]`, encoded, translated and split in bulk."""
    if not payloads:
        return []
    # b2a_base64 ends each encoding with a newline; base64 never contains one.
    lines = b"".join(map(binascii.b2a_base64, payloads)).translate(_URLSAFE, b"=")
    prefix = f"v{version}."
    return (prefix + lines[:-1].decode("ascii").replace("\n", "\n" + prefix)).split("\n")


def parse_token(text: Any) -> tuple[int, bytes]:
    """(key version, payload) of a `token_text`; `IntegrityError` if it is not one."""
    if not isinstance(text, str) or not text.startswith("v"):
        raise IntegrityError("not a veil token")
    version, _, payload = text[1:].partition(".")
    try:
        number = int(version)
    except ValueError:
        raise IntegrityError("not a veil token") from None
    return number, decode_payload(payload)


def decode_payload(text: str) -> bytes:
    """The bytes of base64url `text` (padding optional); `IntegrityError` if it is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
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
