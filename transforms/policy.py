"""The per-purpose policy: its pydantic model and its YAML loader.

Errors name the file, the field path and the YAML line, and never echo a value from the
file other than configuration words (an unknown action name, say).
"""

import hashlib
import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from veil import _fs
from veil.errors import ConfigError
from veil.transforms.actions.base import ActionParams
from veil.transforms.actions.generalize import GeneralizeParams
from veil.transforms.aggregates import AggregatesSpec
from veil.transforms.registry import REGISTRY, FieldSpec

KEYSET_ENV = "VEIL_KEYSET"
InputType = Literal["int64", "float64", "string", "date", "timestamp", "bool"]
NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# GDPR Art. 6(1) (a) to (f), in that order.
LegalBasis = Literal[
    "consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests"
]
RETENTION = re.compile(r"[1-9][0-9]{0,3}[dwmy]")  # 90d, 12w, 6m, 2y


class ConsentColumns(BaseModel):
    """Column names of a consent table (override them to match your consent log)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    subject: str = "subject"
    purpose: str = "purpose"
    granted: str = "granted"
    at: str = "at"


class ConsentSpec(BaseModel):
    """Consent gate: a record flows only if its subject consented to this purpose.

    Exactly one of:

    Attributes:
        field: the input field holding the list of purposes the subject consented to
            (a list of strings, or a string of purposes separated by ';', ',' or '|').
        table: a consent log (Parquet, CSV or JSON Lines files; path, folder or glob) of
            (subject, purpose, granted, at) entries; per subject, the latest entry for this
            purpose wins and on a tie the withdrawal does. Subjects without one have no consent.
        columns: the consent table's column names.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    field: str | None = Field(None, pattern=NAME)
    table: str | None = None
    columns: ConsentColumns = ConsentColumns()

    @model_validator(mode="after")
    def _one_source(self) -> "ConsentSpec":
        if (self.field is None) == (self.table is None):
            raise ValueError("consent takes exactly one of field (a consents column) or table (a consent log)")
        return self


class ErasureSpec(BaseModel):
    """Erasure gate: subjects in the erasure table never flow.

    Attributes:
        table: the erasure table folder, created by `veil erase POLICY --init` and appended to
            by `veil erase`; it holds keyed references of subject ids, never the ids.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    table: str


LevelSpec = Literal["keep", "suppress"] | dict[str, Any]
SUPPRESS_LEVEL = "suppress"
_LEVEL_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"enum": ["keep", "suppress"]},
        {"type": "object", "description": "a generalize action's settings (prefix, bins, age_bins, width, ...)"},
    ]
}
_QUASI_IDENTIFIERS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
        {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {"levels": {"type": "array", "items": _LEVEL_SCHEMA, "minItems": 1}},
                        "required": ["levels"],
                        "additionalProperties": False,
                    },
                ]
            },
        },
    ],
    "description": "output fields an attacker could link with other data; a list, or a mapping "
    "field -> {levels: [finest, ..., coarsest]} for on_violation: generalize",
}


class Hierarchy(BaseModel):
    """A quasi-identifier's generalization levels, finest first.

    Attributes:
        levels: `keep` (first only), a `generalize` action's settings (`{prefix: 2}`), or
            `suppress` (last only: the field becomes null). Level 0 is the field's own action;
            each coarser level is computed from the same input field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    levels: tuple[LevelSpec, ...] = Field(..., min_length=1)


class KAnonymitySpec(BaseModel):
    """Dataset rule: every combination of quasi-identifier values is shared by at least k records.

    Attributes:
        k: the smallest allowed equivalence class (records sharing one quasi-identifier tuple).
        quasi_identifiers: output fields an attacker could link with other data (age band, zip...).
            Written as a mapping, each may declare `levels` (see `Hierarchy`).
        on_violation: `suppress` the records of smaller classes, `fail` the job, or `generalize`:
            search the lattice of level combinations for the one with the least loss that
            meets the rules, apply it and suppress what is left.
        max_suppression: with `generalize`, the largest share of records that may still be
            suppressed (default 0).
        protected: output fields whose groups (gender, country...) the report checks for
            unfair suppression.
        fair: with `generalize`, accept only nodes where no protected group loses more than
            twice the overall suppression rate.
        hierarchies: the levels of the quasi-identifiers that declare them (filled from the
            mapping form of `quasi_identifiers`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    k: int = Field(..., ge=2)
    quasi_identifiers: Annotated[tuple[str, ...], WithJsonSchema(_QUASI_IDENTIFIERS_SCHEMA)] = Field(..., min_length=1)
    on_violation: Literal["suppress", "fail", "generalize"] = "suppress"
    max_suppression: float | None = Field(None, ge=0, le=1)
    protected: tuple[str, ...] = ()
    fair: bool = False
    hierarchies: SkipJsonSchema[dict[str, Hierarchy]] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _mapping_form(cls, data: Any) -> Any:
        qis = data.get("quasi_identifiers") if isinstance(data, dict) else None
        if not isinstance(qis, dict):
            return data
        hierarchies = {name: spec for name, spec in qis.items() if spec is not None}
        return {**data, "quasi_identifiers": tuple(qis), "hierarchies": hierarchies}

    @model_validator(mode="after")
    def _generalize_settings(self) -> "KAnonymitySpec":
        generalize = self.on_violation == "generalize"
        if self.max_suppression is not None and not generalize:
            raise ValueError("max_suppression is for on_violation: generalize")
        if self.fair and not generalize:
            raise ValueError("fair is for on_violation: generalize")
        if self.fair and not self.protected:
            raise ValueError("fair: true needs protected fields (the groups whose suppression is compared)")
        if self.hierarchies and not generalize:
            raise ValueError("levels are for on_violation: generalize")
        return self

    @field_serializer("quasi_identifiers")
    def _dump_quasi_identifiers(self, names: tuple[str, ...]) -> Any:
        if not self.hierarchies:
            return list(names)
        return {name: self.hierarchies[name].model_dump() if name in self.hierarchies else None for name in names}

    def level_count(self, name: str) -> int:
        """How many levels quasi-identifier `name` has (1 without `levels`)."""
        hierarchy = self.hierarchies.get(name)
        return len(hierarchy.levels) if hierarchy else 1

    @property
    def allowed_suppression(self) -> float:
        """The share of records that may stay suppressed after generalizing."""
        return self.max_suppression or 0.0


class LDiversitySpec(BaseModel):
    """Dataset rule: every equivalence class holds at least l distinct values of each sensitive field.

    Attributes:
        l: the fewest distinct values (null counts as one) a class may have per sensitive field.
        sensitive: output fields an attacker must not infer from the quasi-identifiers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    l: int = Field(..., ge=2)  # noqa: E741 - the rule's own name
    sensitive: tuple[str, ...] = Field(..., min_length=1)


def _field_error(loc: tuple[str, ...], message: str) -> None:
    """Raise a policy-level check as a ValidationError located at `loc` (so errors name the line)."""
    error = PydanticCustomError("policy_inconsistent", message)
    raise ValidationError.from_exception_data("Policy", [{"type": error, "loc": loc, "input": None}])


class Policy(BaseModel):
    """What one purpose may see of a dataset, and how each field is protected.

    Attributes:
        version: the policy format version (1).
        purpose: the purpose's name; part of every derived key, so purposes are unlinkable.
        description: free text for people.
        subject: the field identifying the data subject (needed by per-subject actions).
        keyset: path or URI of the keyset (relative paths are against the policy's folder);
            `--keyset` and `VEIL_KEYSET` override it.
        key_version: pin deterministic outputs to this root key version (default: primary).
        default: `drop` fields the policy does not name, or `error` on them.
        consent: the consent gate (a consents field or a consent table).
        erasure: the erasure gate.
        subject_keys: the subject key table (a folder veil creates) holding one wrapped data key
            per subject, for `encrypt: {per_subject: true}`; erasure deletes a subject's key.
        audit_log: where re-identifications (detokenize) append a line; default `audit.jsonl`
            beside the keyset. A relative path is against the policy's folder.
        owner: the team or address accountable for this purpose (notices, data map, lint).
        legal_basis: the GDPR Art. 6(1) basis of the processing; `consent` needs a consent gate.
        retention: how long an output of this policy may be kept after its run (`90d`, `12w`,
            `6m`, `2y`); `veil expire` deletes older outputs.
        reviewed: the date the policy was last reviewed (`veil lint` warns after a year).
        recipients: who receives the outputs (teams, processors), for the notice and data map.
        fields: input field name -> action.
        input_types: input field name -> the type its text is parsed into, for CSV and JSON Lines
            inputs (whose text is otherwise text: a zip code `01234` stays `01234`).
        k_anonymity, l_diversity: dataset rules over the released rows.
        aggregates: release differentially private tables instead of rows (see `AggregatesSpec`);
            `fields` then says what the aggregation reads, and every output field must be read.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    version: Literal[1]
    purpose: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    description: str = ""
    subject: str | None = Field(None, pattern=NAME)
    keyset: str | None = None
    key_version: int | None = Field(None, ge=1)
    default: Literal["drop", "error"] = "drop"
    consent: ConsentSpec | None = None
    erasure: ErasureSpec | None = None
    subject_keys: str | None = None
    audit_log: str | None = None
    owner: str | None = Field(None, min_length=1)
    legal_basis: LegalBasis | None = None
    retention: str | None = Field(None, json_schema_extra={"pattern": f"^{RETENTION.pattern}$"})
    reviewed: date | None = None
    recipients: tuple[str, ...] = ()
    fields: dict[str, FieldSpec] = Field(..., min_length=1)
    input_types: dict[str, InputType] = {}
    k_anonymity: KAnonymitySpec | None = None
    l_diversity: LDiversitySpec | None = None
    aggregates: AggregatesSpec | None = None

    _source: str | None = PrivateAttr(None)
    _sha256: str | None = PrivateAttr(None)

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str | None) -> str | None:
        if value is not None and not RETENTION.fullmatch(value):
            raise ValueError("retention is a number and a unit: d (days), w (weeks), m (months) or y (years), e.g. 90d")
        return value

    @model_validator(mode="after")
    def _lawful(self) -> "Policy":
        if self.legal_basis == "consent" and self.consent is None:
            _field_error(
                ("legal_basis",),
                "legal_basis: consent needs a consent gate: add 'consent: {field: ...}' or 'consent: {table: ...}'",
            )
        return self

    @model_validator(mode="after")
    def _consistent(self) -> "Policy":
        outputs: dict[str, str] = {}
        for name, spec in self.fields.items():
            action = REGISTRY[spec.action]
            if not action.writes_output:
                continue
            out = spec.as_ or name  # the one place output names are made (see `outputs`), clashes checked
            if out in outputs:
                _field_error(
                    ("fields", name, "as") if spec.as_ else ("fields", name),
                    f"fields '{outputs[out]}' and '{name}' both write output '{out}'; rename one with 'as'",
                )
            outputs[out] = name
            if action.subject_input(spec) == "key" and not self.subject_keys:
                _field_error(
                    ("fields", name, "per_subject"),
                    f"field '{name}' is encrypted per subject, which needs the policy's 'subject_keys' "
                    "(the subject key table folder)",
                )
            if action.per_subject(spec) and self.subject is None:
                _field_error(
                    ("fields", name, "action"),
                    f"field '{name}' uses {spec.action}, which needs the policy's "
                    "'subject' (the field identifying the data subject)",
                )
        needs_subject = [
            name
            for name, on in (
                ("consent.table", self.consent and self.consent.table),
                ("erasure", self.erasure),
                ("subject_keys", self.subject_keys),
            )
            if on
        ]
        if needs_subject and self.subject is None:
            _field_error(
                (needs_subject[0].split(".")[0],),
                f"{needs_subject[0]} needs the policy's 'subject' (the field identifying the data subject)",
            )
        if not outputs:
            _field_error(("fields",), "every field is dropped: a policy must let its purpose see at least one field")
        return self

    @model_validator(mode="after")
    def _dataset_rules(self) -> "Policy":
        outputs = self.outputs
        if self.l_diversity is not None and self.k_anonymity is None:
            _field_error(("l_diversity",), "l_diversity needs k_anonymity (its quasi-identifiers define the classes)")
        named = [("k_anonymity", "quasi_identifiers"), ("k_anonymity", "protected"), ("l_diversity", "sensitive")]
        for rule, key in named:
            spec = getattr(self, rule)
            names = getattr(spec, key) if spec is not None else ()
            for index, name in enumerate(names):
                if name not in outputs:
                    _field_error((rule, key, index), f"'{name}' is not an output field of this policy")
                if name in names[:index]:
                    _field_error((rule, key, index), f"'{name}' is named twice")
        if self.k_anonymity is not None:
            for name in self.k_anonymity.hierarchies:
                self.levels_of(name)  # raises a located error for a bad level
        if self.l_diversity is not None:
            both = sorted(set(self.l_diversity.sensitive) & set(self.k_anonymity.quasi_identifiers))
            if both:
                _field_error(
                    ("l_diversity", "sensitive"), f"{', '.join(both)} cannot be both quasi-identifier and sensitive"
                )
        return self

    @model_validator(mode="after")
    def _aggregate_rules(self) -> "Policy":
        spec = self.aggregates
        if spec is None:
            return self
        for rule in ("k_anonymity", "l_diversity"):
            if getattr(self, rule) is not None:
                _field_error(
                    (rule,),
                    f"a policy with aggregates releases no rows, so {rule} (a rule over released rows) does not "
                    "apply: remove it, or write the row view as a policy of its own",
                )
        outputs = self.outputs
        named = [(("aggregates", "privacy_unit"), spec.privacy_unit)]
        for index, table in enumerate(spec.tables):
            where = ("aggregates", "tables", index)
            named += [((*where, "group_by", i), name) for i, name in enumerate(table.group_by)]
            named += [((*where, "value"), table.value)] if table.value else []
        for loc, name in named:
            if name not in outputs:
                _field_error(loc, f"'{name}' is not an output field of this policy (name it under fields)")
        unread = [name for name in outputs if name not in spec.fields]
        if unread:
            source = outputs[unread[0]]
            _field_error(
                ("fields", source),
                f"output '{unread[0]}' is read by no aggregate table (a policy with aggregates releases no rows): "
                f"drop field '{source}'",
            )
        return self

    @property
    def source(self) -> str | None:
        """The file this policy was loaded from, if any."""
        return self._source

    @property
    def sha256(self) -> str:
        """sha256 of the policy file's bytes (or of its canonical JSON when built in code)."""
        if self._sha256 is None:
            return hashlib.sha256(self.model_dump_json(by_alias=True).encode()).hexdigest()
        return self._sha256

    def levels_of(self, quasi_identifier: str) -> tuple[ActionParams | None, ...]:
        """The generalization levels of output field `quasi_identifier`, finest first: the
        field's own action, then each coarser level's params (None: `suppress`).

        A level's `age_bins` without `at` takes the field's `at`.
        """
        source = next(name for name, spec in self.fields.items() if (spec.as_ or name) == quasi_identifier)
        own = self.fields[source]
        hierarchy = self.k_anonymity.hierarchies.get(quasi_identifier) if self.k_anonymity else None
        if hierarchy is None:
            return (own,)
        loc = ("k_anonymity", "quasi_identifiers", quasi_identifier, "levels")
        if own.action not in ("keep", "generalize"):
            _field_error(
                loc, f"levels need the field's action to be keep or generalize (field '{source}' is {own.action})"
            )
        levels: list[ActionParams | None] = []
        last = len(hierarchy.levels) - 1
        for index, level in enumerate(hierarchy.levels):
            where = (*loc, index)
            if level == SUPPRESS_LEVEL:
                if index != last:
                    _field_error(where, "suppress can only be the last level")
                if index == 0:
                    _field_error(where, "the first level is the field's own action, not suppress")
                levels.append(None)
                continue
            if level == "keep":
                if index != 0:
                    _field_error(where, "keep can only be the first (finest) level")
                if own.action != "keep":
                    _field_error(where, f"level 0 must be field '{source}''s own action ({own.action})")
                levels.append(own)
                continue
            params = self._generalize_level(level, own, where)
            if index == 0:
                if own.action != "generalize" or _settings(params) != _settings(own):
                    _field_error(
                        where, f"level 0 must be field '{source}''s own action (the finest level is what it does)"
                    )
                levels.append(own)
                continue
            if params.variant == "map" and params.other is None:
                _field_error((*where, "map"), "a coarser map level needs 'other' (the label of unmapped values)")
            levels.append(params)
        return tuple(levels)

    @staticmethod
    def _generalize_level(level: dict[str, Any], own: ActionParams, where: tuple) -> GeneralizeParams:
        """A level's settings as generalize params (`at` from the field's own action when absent)."""
        reserved = sorted(set(level) & {"action", "as", "on_error"})
        if reserved:
            _field_error((*where, reserved[0]), "a level holds generalize settings only (no action, as or on_error)")
        settings = dict(level)
        if "age_bins" in settings and "at" not in settings and getattr(own, "at", None) is not None:
            settings["at"] = own.at
        try:
            return GeneralizeParams.model_validate({"action": "generalize", **settings})
        except ValidationError as exc:
            error = exc.errors(include_input=False)[0]
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key (remove it or check its spelling)"
            _field_error((*where, *error["loc"]), message)

    def output_name(self, field: str) -> str:
        """The output name of input `field` (its `as`, else its own name)."""
        return self.fields[field].as_ or field

    @property
    def outputs(self) -> dict[str, str]:
        """Output field name -> the input field that makes it, in policy order (dropped fields have none)."""
        return {
            self.output_name(name): name for name, spec in self.fields.items() if REGISTRY[spec.action].writes_output
        }

    @property
    def mentioned_fields(self) -> frozenset[str]:
        """Input fields the policy names: its fields, the subject and the consent field (`default: error`
        refuses any other)."""
        named = set(self.fields)
        named.update(name for name in (self.subject, self.consent and self.consent.field) if name)
        return frozenset(named)

    def _outputs_where(self, test) -> tuple[str, ...]:
        return tuple(
            out for out, name in self.outputs.items() if test(REGISTRY[self.fields[name].action], self.fields[name])
        )

    @property
    def keyed_outputs(self) -> tuple[str, ...]:
        """Output fields made with keys (pseudonyms, tokens, ciphertexts, keyed fakes...)."""
        return self._outputs_where(lambda action, _spec: action.keyed)

    @property
    def reversible_outputs(self) -> tuple[str, ...]:
        """Output fields an authorized purpose can restore (tokenize, encrypt)."""
        return self._outputs_where(lambda action, _spec: action.reverse is not None)

    @property
    def per_subject_outputs(self) -> tuple[str, ...]:
        """Output fields made under each subject's own data key (restoring them needs the subject key table)."""
        return self._outputs_where(lambda action, spec: action.subject_input(spec) == "key")

    @property
    def unversioned_outputs(self) -> tuple[str, ...]:
        """Keyed output fields whose values do not say which key version made them (ff1 tokens)."""
        return self._outputs_where(lambda action, spec: action.keyed and not action.versioned(spec))

    def recorded_key_version(
        self, fields: Sequence[str], recorded: Mapping[str, Any], key_version: int | None
    ) -> int | None:
        """The key version to read `fields` (output names) with when some carry none (ff1).

        `key_version` (the caller's pin) wins; else the version the run's manifest recorded for
        those fields (`recorded`: output name -> its manifest field entry), which must be one.

        Raises:
            ConfigError: unversioned fields without one recorded version.
        """
        unversioned = [name for name in fields if name in self.unversioned_outputs]
        if not unversioned or key_version is not None:
            return key_version
        versions = {(recorded.get(name) or {}).get("key_version") for name in unversioned}
        if len(versions) != 1 or None in versions:
            raise ConfigError(
                f"ff1 tokens carry no key version and the input has no manifest saying which made "
                f"{', '.join(unversioned)}; pass --key-version N"
            )
        return versions.pop()


def _settings(params: ActionParams) -> dict[str, Any]:
    """A generalization's settings, without the output name and the error rule."""
    return params.model_dump(exclude={"as_", "on_error"}, exclude_none=True)


def resolve_keyset(policy: Policy, override: str | None = None) -> str:
    """The keyset to use: `override` (--keyset), else `VEIL_KEYSET`, else the policy's."""
    path = override or os.environ.get(KEYSET_ENV) or policy.keyset
    if not path:
        where = f"policy {policy.source}" if policy.source else "the policy"
        raise ConfigError(f"{where} names no keyset: add 'keyset: PATH' to it, set {KEYSET_ENV} or pass --keyset")
    return path


def _line_map(
    node: yaml.Node, path: tuple = (), lines: dict | None = None, seen: set[int] | None = None
) -> dict[tuple, int]:
    """YAML path -> 1-based line of its key (or item), for error messages.

    An aliased node is walked once only: a recursive alias (`&a [*a]`) or nested aliases
    (a "billion laughs" document) must not recurse forever or explode.
    """
    lines = {} if lines is None else lines
    seen = set() if seen is None else seen
    if id(node) in seen:
        return lines
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            lines[child] = key.start_mark.line + 1
            _line_map(value, child, lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _line_map(item, (*path, index), lines, seen)
    return lines


def _describe(error: dict[str, Any], data: Any, lines: dict[tuple, int]) -> str:
    loc = tuple(error["loc"])
    # a discriminated union puts the chosen tag into the location: leave it out
    if len(loc) > 2 and loc[0] == "fields" and isinstance(data, dict):
        spec = (data.get("fields") or {}).get(loc[1])
        if isinstance(spec, dict) and loc[2] == spec.get("action"):
            loc = loc[:2] + loc[3:]
    if loc[:2] == ("k_anonymity", "hierarchies"):  # the mapping form of quasi_identifiers, as written
        loc = ("k_anonymity", "quasi_identifiers", *loc[2:])
    known = loc
    while known and known not in lines:
        known = known[:-1]
    line = lines.get(known) or lines.get(known[:1]) if known else None
    where = ".".join(str(part) for part in loc) or "(top level)"
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        message = "unknown key (remove it or check its spelling)"
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "union_tag_invalid":
        message = f"unknown action '{error['ctx']['tag']}'; expected one of: " + ", ".join(REGISTRY)
    elif kind == "union_tag_not_found":
        message = "missing 'action' (one of: " + ", ".join(REGISTRY) + ")"
    message = message.removeprefix("Value error, ")
    return f"{where}{f' (line {line})' if line else ''}: {message}"


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate policy YAML `text`; `ConfigError` naming `source`, the field and the line."""
    try:
        data = yaml.safe_load(text)
        lines = _line_map(yaml.compose(text, Loader=yaml.SafeLoader)) if data is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"policy {source}:{line}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"policy {source}: nested too deeply to be a policy") from None
    except ValueError as exc:  # a scalar YAML types but cannot build: the date 2026-32-01
        raise ConfigError(f"policy {source}: a value cannot be read ({exc}); quote it to keep it text") from None
    if not isinstance(data, dict):
        raise ConfigError(f"policy {source}: must be a YAML mapping with version, purpose and fields")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_input=False)
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise ConfigError(f"policy {source}: {_describe(errors[0], data, lines)}{more}") from None
    return policy


def load_policy(path: str | os.PathLike) -> Policy:
    """Load and validate the policy file at `path` (local or any Beam FileSystems URI).

    Relative paths (keyset, audit log, consent and erasure tables) are resolved against the
    policy file's folder.
    """
    path = str(path)
    try:
        raw = _fs.read_bytes(path)
    except FileNotFoundError:
        raise ConfigError(f"policy {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"policy {path} is a folder; name a YAML file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"policy {path} is not UTF-8 text") from None
    policy = parse_policy(text, path)
    relative: dict[str, Any] = {
        name: _beside(path, value)
        for name in ("keyset", "audit_log", "subject_keys")
        if (value := getattr(policy, name))
    }
    if policy.consent and policy.consent.table:
        relative["consent"] = policy.consent.model_copy(update={"table": _beside(path, policy.consent.table)})
    if policy.erasure:
        relative["erasure"] = policy.erasure.model_copy(update={"table": _beside(path, policy.erasure.table)})
    policy = policy.model_copy(update=relative)
    policy._source = path
    policy._sha256 = hashlib.sha256(raw).hexdigest()
    return policy


def _beside(policy_path: str, path: str) -> str:
    """`path` resolved against the folder of the policy file (absolute paths and URIs unchanged)."""
    if _fs.is_remote(path) or Path(path).is_absolute():
        return path
    if _fs.is_remote(policy_path):
        return posixpath.join(posixpath.dirname(policy_path), path)
    return str(Path(policy_path).parent / path)


def resolve_audit_log(policy: Policy, keyset: str) -> str:
    """The policy's audit log, else `audit.jsonl` beside the keyset."""
    if policy.audit_log:
        return policy.audit_log
    return (
        posixpath.join(posixpath.dirname(keyset), "audit.jsonl")
        if _fs.is_remote(keyset)
        else str(Path(keyset).parent / "audit.jsonl")
    )


def policy_json_schema() -> dict[str, Any]:
    """The policy's JSON Schema (for editors: `# yaml-language-server: $schema=...`)."""
    schema = Policy.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "veil policy"
    return schema
