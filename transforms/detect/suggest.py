"""The action a scanned column suggests, and why: the rules `veil scan` and `veil init` share.

Minimization by default: only what the detectors or the column's name point at gets an action
that lets it out, always a protective one.

| what the scan saw | role | suggested |
|---|---|---|
| the subject (an id column, `customer_id`, nearly all values distinct) | subject | pseudonymize |
| a whole-value entity (`email`, `phone`, `card`, ...) or a name saying so | identifier | pseudonymize (1) |
| a birth date (the name says birth; dates, or date values) | quasi_identifier | generalize to age bands |
| a zip or postal code, an age (by name) | quasi_identifier | generalize (3-character prefix; age bands) |
| a gender (by name) | quasi_identifier | keep, counted in k-anonymity |
| a consent list (by name) | consent | drop (read by the consent gate) |
| text with entities in it | free_text | scrub them (label; the scan's phone regions if not the default) |
| anything else, or a type the action cannot take | none | drop: the owner decides what to keep |

(1) An entity's pseudonyms have a domain of their own (`email`, `phone`, ...), so equal values join
across columns of the purpose; names, addresses and ids use the field's name.
"""

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from veil.transforms.detect.detectors import DEFAULT_ENTITIES, DEFAULT_REGIONS, ENTITIES
from veil.transforms.detect.hints import words_of
from veil.transforms.detect.scan import WHOLE_SHARE, ColumnScan

Role = Literal["subject", "identifier", "quasi_identifier", "free_text", "consent", "none"]
AGE_BINS = (0, 18, 25, 35, 50, 65)
_COARSER_AGE_BINS = ((0, 25, 50, 65), (0, 65))
ZIP_PREFIX = 3
SUBJECT_DISTINCT = 0.9  # an id column is the subject when at least this share of its values is distinct
_ENTITY_DOMAINS = {"email", "phone", "card", "iban", "ssn", "ip", "url"}
_HINT_IDENTIFIERS = ("email", "phone", "ssn", "card", "iban", "ip", "name", "address", "id")
_LABELS = {
    "email": "an email address",
    "phone": "a phone number",
    "card": "a payment card number",
    "iban": "a bank account (IBAN)",
    "ssn": "a social security or national id number",
    "ip": "an IP address",
    "url": "a web address",
    "person": "a person's name",
    "name": "a person's name",
    "address": "a postal address",
    "id": "an identifier",
}


@dataclass(frozen=True)
class Suggestion:
    """A suggested field action.

    Attributes:
        settings: the field's policy settings (`{"action": "pseudonymize", "domain": "email"}`).
        role: what the column is for the purpose's privacy (subject, identifier, quasi-identifier, ...).
        reason: one line for people: what was detected and why this action (never a value).
        levels: for a quasi-identifier, its generalization levels for k-anonymity, finest (its
            own settings, or `keep`) first, `suppress` last.
    """

    settings: dict[str, Any]
    role: Role
    reason: str
    levels: tuple[Any, ...] = ()


def _percent(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else "<1%"


def _found(column: ColumnScan) -> str:
    return ", ".join(f"{entity} in {_percent(share)}" for entity, share in column.entities.items())


def _keyed(column: ColumnScan) -> bool:
    return column.kind in ("string", "integer")


def _is_date(column: ColumnScan) -> bool:
    return column.kind in ("date", "timestamp") or column.whole.get("date", 0.0) >= WHOLE_SHARE


def _numeric(column: ColumnScan) -> bool:
    return column.kind in ("integer", "float")


def _levels(setting: str, *steps: Any) -> tuple[Any, ...]:
    """Generalization levels `{setting: step}` per step, finest first, then `suppress`."""
    return (*({setting: list(step) if isinstance(step, tuple) else step} for step in steps), "suppress")


def _drop(reason: str, role: Role = "none") -> Suggestion:
    return Suggestion({"action": "drop"}, role, reason)


def _pseudonymize(column: ColumnScan, what: str, seen: str, domain: str | None) -> Suggestion:
    if not _keyed(column):
        return _drop(f"{what}: {seen}, but a {column.type} column cannot be pseudonymized: dropped")
    settings: dict[str, Any] = {"action": "pseudonymize"}
    if domain:
        settings["domain"] = domain
    if domain == "email":
        settings["normalize"] = ["strip", "lower"]
    why = "a direct identifier, pseudonymized (keyed, not reversible, joinable within this purpose only)"
    return Suggestion(settings, "identifier", f"{what}: {seen}; {why}")


def _subject_domain(name: str) -> str | None:
    words = [word for word in words_of(name) if word not in ("id", "uid", "uuid", "key", "nr", "no", "number")]
    return "_".join(words) or None


def _identifier(column: ColumnScan) -> Suggestion | None:
    entity = column.main_entity
    if entity is not None and entity != "date":
        seen = f"{entity} is the whole value in {_percent(column.whole[entity])}"
        return _pseudonymize(column, _LABELS[entity], seen, entity if entity in _ENTITY_DOMAINS else None)
    for hint in _HINT_IDENTIFIERS:
        if hint in column.hints:
            seen = f"by its name{f' ({_found(column)})' if column.entities else ''}"
            return _pseudonymize(column, _LABELS[hint], seen, hint if hint in _ENTITY_DOMAINS else None)
    return None


def _birth(column: ColumnScan, at: date) -> Suggestion | None:
    named = "birth" in column.hints
    if column.main_entity == "date" or (named and _is_date(column)):
        settings = {"action": "generalize", "age_bins": list(AGE_BINS), "at": at.isoformat()}
        seen = f"{'by its name; ' if named else ''}dates in {_percent(column.whole.get('date', 1.0))}"
        why = f"a quasi-identifier, generalized to age bands on {at}"
        levels = _levels("age_bins", AGE_BINS, *_COARSER_AGE_BINS)
        return Suggestion(settings, "quasi_identifier", f"a birth date ({seen}): {why}", levels)
    if not named:
        return None
    if column.kind == "integer":
        settings = {"action": "generalize", "width": 10}
        why, levels = "a quasi-identifier, by decade", _levels("width", 10, 20, 50)
        return Suggestion(settings, "quasi_identifier", f"a birth year (by its name): {why}", levels)
    return _drop("its name says birth, but its values are not dates: dropped (a quasi-identifier)")


def _quasi_identifier(column: ColumnScan) -> Suggestion | None:
    hints, role = column.hints, "quasi_identifier"
    if "zip" in hints and _keyed(column):
        settings = {"action": "generalize", "prefix": ZIP_PREFIX}
        why = f"a quasi-identifier, generalized to its first {ZIP_PREFIX} characters"
        levels = _levels("prefix", *range(ZIP_PREFIX, 0, -1))
        return Suggestion(settings, role, f"a zip or postal code (by its name): {why}", levels)
    if "age" in hints and _numeric(column):
        settings = {"action": "generalize", "bins": list(AGE_BINS)}
        why, levels = "a quasi-identifier, generalized to bands", _levels("bins", AGE_BINS, *_COARSER_AGE_BINS)
        return Suggestion(settings, role, f"an age (by its name): {why}", levels)
    if "gender" in hints and column.kind == "string":
        why = "a quasi-identifier with few values, kept and counted in k-anonymity; drop it if not needed"
        return Suggestion({"action": "keep"}, role, f"a gender (by its name): {why}", ("keep", "suppress"))
    if "city" in hints:
        why = "a quasi-identifier, dropped; keep it and add it to k-anonymity if needed"
        return _drop(f"a place (by its name): {why}", role)
    return None


def _text(column: ColumnScan, regions: tuple[str, ...]) -> Suggestion:
    if not column.entities:
        if column.free_text:
            return _drop("free text, nothing detected in the sample: dropped; scrub it if the purpose needs it")
        return _drop("nothing detected: dropped (data minimization); keep it if the purpose needs it")
    if column.kind != "string":
        return _drop(f"{_found(column)} of the values, in a {column.type} column that cannot be scrubbed: dropped")
    entities = [e for e in ENTITIES if e in DEFAULT_ENTITIES or e in column.entities]
    settings: dict[str, Any] = {"action": "scrub", "entities": entities, "replace": "label"}
    if regions != DEFAULT_REGIONS:  # scrub reads national phone numbers where the scan read them
        settings["regions"] = list(regions)
    kind = "free text" if column.free_text else "text"
    why = "the detected spans replaced by labels; names outside the lists and addresses stay: review"
    return Suggestion(settings, "free_text", f"{kind} with personal data ({_found(column)}): scrubbed, {why}")


def suggest(
    column: ColumnScan, *, subject: str | None, at: date, regions: tuple[str, ...] = DEFAULT_REGIONS
) -> Suggestion:
    """The suggested action for `column`.

    Args:
        subject: the policy's subject field.
        at: the date age bands count on.
        regions: the phone regions the scan read national numbers in (a `scrub` reads them too).
    """
    if "consent" in column.hints:
        return _drop("consents (by its name): read by the consent gate, then dropped", "consent")
    if column.name == subject:
        found = _pseudonymize(column, "the data subject", "distinct ids", _subject_domain(column.name))
        return Suggestion(found.settings, "subject", found.reason)
    if column.values == 0:
        return _drop("no value in the sample (all null): dropped")
    return _birth(column, at) or _identifier(column) or _quasi_identifier(column) or _text(column, regions)


def choose_subject(columns: list[ColumnScan]) -> str | None:
    """The column identifying the data subject: the first id column (by name) with nearly all values distinct."""
    for column in columns:
        if "id" in column.hints and column.distinct >= SUBJECT_DISTINCT and _keyed(column):
            return column.name
    return None


def suggest_all(
    columns: list[ColumnScan], at: date, regions: tuple[str, ...] = DEFAULT_REGIONS
) -> tuple[str | None, dict[str, Suggestion]]:
    """(the subject field, column name -> its `Suggestion`) for a whole table (`regions`: as `suggest`)."""
    subject = choose_subject(columns)
    return subject, {column.name: suggest(column, subject=subject, at=at, regions=regions) for column in columns}
