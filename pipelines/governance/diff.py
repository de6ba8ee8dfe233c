"""`veil diff`: what a policy change does to exposure, field by field and setting by setting.

Pure: two policies in, a `PolicyDiff` out. Fields are keyed by input field. Each comparison says
`more exposed`, `less exposed` or `same`, with its reasons; a field or setting is more exposed if
any one reason says so (a change that exposes one thing and hides another needs review all the
same). Actions are ranked by `exposure.TIERS`; two settings of one action by how finely they
keep the value (README "veil diff"). Where veil cannot rank a change it says `more exposed`.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from veil.pipelines.governance.exposure import REVERSIBLE_RANKS, tier_of
from veil.pipelines.governance.field_kinds import quasi_identifier_kind
from veil.pipelines.governance.times import retention_days, retention_words
from veil.transforms.actions.base import ActionParams
from veil.transforms.policy import Policy
from veil.transforms.registry import REGISTRY

Verdict = Literal["more exposed", "less exposed", "same"]
MORE: Verdict = "more exposed"
LESS: Verdict = "less exposed"
SAME: Verdict = "same"
NOTES = {"description", "reason"}  # words for people, not how the value is protected
PERIODS = ("year", "quarter", "month", "week")  # coarsest first
SCRUB_REPLACEMENTS = ("label", "mask", "pseudonym")  # least exposing first


@dataclass(frozen=True)
class Change:
    """One reason a field or setting is more, less or as exposed."""

    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class Entry:
    """A field's or setting's comparison: old and new (as JSON values), the verdict and why."""

    old: Any
    new: Any
    verdict: Verdict
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object."""
        return {"old": self.old, "new": self.new, "verdict": self.verdict, "reason": self.reason}


@dataclass(frozen=True)
class PolicyDiff:
    """What a policy change does.

    Attributes:
        fields: input field -> its comparison (every field either policy names).
        policy: (setting, comparison) for each policy-level setting that changed.
    """

    fields: dict[str, Entry]
    policy: list[tuple[str, Entry]]

    @property
    def more_exposed(self) -> bool:
        """Whether anything is more exposed (what `veil diff` exits 3 for)."""
        return any(entry.verdict == MORE for entry in (*self.fields.values(), *(e for _, e in self.policy)))

    def to_json(self) -> dict[str, Any]:
        """`{"fields": {INPUT_FIELD: {old, new, verdict, reason}}, "policy": [...], "more_exposed": bool}`."""
        return {
            "fields": {name: entry.to_json() for name, entry in self.fields.items()},
            "policy": [{"setting": setting, **entry.to_json()} for setting, entry in self.policy],
            "more_exposed": self.more_exposed,
        }


def _entry(old: Any, new: Any, changes: Iterable[Change]) -> Entry:
    """The verdict of several reasons (more beats less beats same), the deciding reasons first."""
    changes = list(changes)
    for verdict in (MORE, LESS, SAME):
        if any(change.verdict == verdict for change in changes):
            ordered = sorted(changes, key=lambda change: change.verdict != verdict)
            return Entry(old, new, verdict, "; ".join(change.reason for change in ordered))
    return Entry(old, new, SAME, "unchanged")


def settings(spec: ActionParams | None) -> dict[str, Any] | None:
    """A field action's settings as JSON (None: the policy does not name the field)."""
    if spec is None:
        return None
    dumped = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude=NOTES)
    return {"action": dumped.pop("action"), **dumped}


def _title(spec: ActionParams | None) -> str:
    if spec is None:
        return "not named"
    method = getattr(spec, "method", None)  # tokenize's siv or ff1
    return f"{spec.title} {method}" if method else spec.title


def _finer(what: str, old: Any, new: Any, finer: bool) -> Change:
    if finer:
        return Change(MORE, f"{what} {old} -> {new}: finer, values the old policy grouped are told apart")
    return Change(LESS, f"{what} {old} -> {new}: coarser")


def _edges(what: str, old: tuple, new: tuple) -> list[Change]:
    """Bins compare by their edges: added edges split bins, removed ones merge them."""
    before, after = set(old), set(new)
    if before == after:
        return []
    added = ", ".join(str(edge) for edge in sorted(after - before))
    if after > before:
        return [Change(MORE, f"{what}: new edges {added} split bins, telling apart values the old bins grouped")]
    if after < before:
        removed = ", ".join(str(edge) for edge in sorted(before - after))
        return [Change(LESS, f"{what}: edges {removed} removed, merging bins")]
    return [Change(MORE, f"{what}: edges moved (new: {added}), telling apart values the old bins grouped")]


def _labels_determine(pairs: list[tuple[Any, Any]]) -> bool:
    """Whether the first label of each pair determines the second."""
    seen: dict[Any, Any] = {}
    return all(seen.setdefault(first, second) == second for first, second in pairs)


def _map(old: ActionParams, new: ActionParams) -> list[Change]:
    """Maps compare by the groups they make (unmapped values form the `other` group)."""
    keys = set(old.map) | set(new.map)
    pairs = [(old.map.get(key, old.other), new.map.get(key, new.other)) for key in keys]
    pairs.append((old.other, new.other))
    coarser, finer = _labels_determine(pairs), _labels_determine([(b, a) for a, b in pairs])
    if coarser and finer:
        return [Change(SAME, "map: the same groups") if old.map != new.map else Change(SAME, "map unchanged")]
    if coarser:
        return [Change(LESS, "map merges groups of the old map")]
    if finer:
        return [Change(MORE, "map splits groups of the old map, telling apart values it grouped")]
    return [Change(MORE, "map regroups values, telling apart some the old map grouped")]


def _generalize(old: ActionParams, new: ActionParams) -> list[Change]:
    variant = old.variant
    if new.variant != variant:
        return [Change(MORE, f"{old.title} -> {new.title}: generalizations veil cannot rank; review the new one")]
    a, b = getattr(old, variant), getattr(new, variant)
    if variant in ("bins", "age_bins"):
        changes = _edges(variant, a, b)
        if variant == "age_bins" and old.at != new.at:
            changes.append(Change(SAME, f"ages on {new.at} instead of {old.at}"))
        return changes
    if variant == "map":
        return _map(old, new)
    if a == b:
        return []
    if variant == "date":
        return [_finer("date", a, b, PERIODS.index(b) > PERIODS.index(a))]
    if variant == "width":
        return [_finer("width", a, b, b < a)]
    return [_finer(variant, a, b, b > a)]  # prefix (characters kept), round (decimals kept)


def _mask(old: ActionParams, new: ActionParams) -> list[Change]:
    a, b = (old.keep_first, old.keep_last), (new.keep_first, new.keep_last)
    shown = f"keep_first {a[0]} -> {b[0]}, keep_last {a[1]} -> {b[1]}"
    if b[0] > a[0] or b[1] > a[1]:
        return [Change(MORE, f"mask keeps more characters in clear ({shown})")]
    if a != b:
        return [Change(LESS, f"mask keeps fewer characters in clear ({shown})")]
    return []


def _tokenize(old: ActionParams, new: ActionParams) -> list[Change]:
    if new.method != "ff1":
        return []
    changes = []
    if new.keep_first > old.keep_first or new.keep_last > old.keep_last:
        changes.append(Change(MORE, "ff1 keeps more characters in clear (keep_first, keep_last)"))
    elif (new.keep_first, new.keep_last) != (old.keep_first, old.keep_last):
        changes.append(Change(LESS, "ff1 keeps fewer characters in clear (keep_first, keep_last)"))
    before, after = set(old.characters), set(new.characters)
    if after < before:
        changes.append(Change(MORE, "ff1 alphabet smaller: characters outside it stay in clear"))
    elif after > before:
        changes.append(Change(LESS, "ff1 alphabet larger: fewer characters stay in clear"))
    elif after != before:
        changes.append(Change(MORE, "ff1 alphabet changed: characters the old one encrypted stay in clear"))
    return changes


def _scrub(old: ActionParams, new: ActionParams) -> list[Change]:
    changes = []
    a, b = SCRUB_REPLACEMENTS.index(old.replace), SCRUB_REPLACEMENTS.index(new.replace)
    if a != b:
        shows = "links repeats across records" if new.replace == "pseudonym" else "shows the shape of each span"
        verdict = MORE if b > a else LESS
        changes.append(Change(verdict, f"scrub replace {old.replace} -> {new.replace}" + (f": {shows}" * (b > a))))
    for what, before, after in (("entities", old.entities, new.entities), ("regions", old.regions, new.regions)):
        gone, added = sorted(set(before) - set(after)), sorted(set(after) - set(before))
        if gone:
            changes.append(Change(MORE, f"scrub {what} {', '.join(gone)} no longer looked for: they stay in the text"))
        if added:
            changes.append(Change(LESS, f"scrub {what} {', '.join(added)} now looked for"))
    return changes


def _encrypt(old: ActionParams, new: ActionParams) -> list[Change]:
    if old.per_subject and not new.per_subject:
        return [Change(MORE, "no longer encrypted per subject: erasing a subject no longer shreds these values")]
    if new.per_subject and not old.per_subject:
        return [Change(LESS, "now encrypted per subject: erasing a subject shreds these values")]
    return []


def _date_shift(old: ActionParams, new: ActionParams) -> list[Change]:
    if new.max_days == old.max_days:
        return []
    closer = new.max_days < old.max_days
    what = f"date_shift max_days {old.max_days} -> {new.max_days}"
    return [Change(MORE, f"{what}: dates stay closer to the real ones") if closer else Change(LESS, what)]


_SAME_ACTION = {
    "generalize": _generalize,
    "mask": _mask,
    "tokenize": _tokenize,
    "scrub": _scrub,
    "encrypt": _encrypt,
    "date_shift": _date_shift,
}


def _actions(old: ActionParams | None, new: ActionParams | None) -> list[Change]:
    """The change of action, by the exposure order; the same action compared by its settings."""
    before, after = tier_of(old), tier_of(new)
    moved = f"{_title(old)} -> {_title(new)}"
    if after.rank > before.rank:
        if after.rank in REVERSIBLE_RANKS and before.rank not in REVERSIBLE_RANKS:
            return [Change(MORE, f"{moved}: one-way -> reversible, whoever holds the key can restore the value")]
        return [Change(MORE, f"{moved}: the output held {before.shows}; now {after.shows}")]
    if after.rank < before.rank:
        return [Change(LESS, f"{moved}: the output held {before.shows}; now {after.shows}")]
    if old is None or new is None or old.action != new.action:
        if after.rank == 3:
            return [Change(MORE, f"{moved}: both leave part of the value in clear, in ways veil cannot rank")]
        return [Change(SAME, f"{moved}: {after.shows} either way")]
    changes = _SAME_ACTION.get(old.action, lambda _a, _b: [])(old, new)
    if not changes and settings(old) != settings(new):
        changed = sorted(
            key for key in {*settings(old), *settings(new)} if settings(old).get(key) != settings(new).get(key)
        )
        changes.append(Change(SAME, f"{', '.join(changed)} changed; {after.shows} either way"))
    return changes


def _partners(policy: Policy, name: str) -> set[str]:
    """Other fields whose keyed outputs equal this field's for equal values (same action, method, domain)."""
    spec = policy.fields.get(name)
    if spec is None or "domain" not in type(spec).model_fields:  # pseudonymize, tokenize: keyed by domain
        return set()

    def key(field: str, params: ActionParams) -> tuple:
        return params.action, getattr(params, "method", None), getattr(params, "domain", None) or field

    return {other for other, params in policy.fields.items() if other != name and key(other, params) == key(name, spec)}


def _joins(name: str, old: Policy, new: Policy) -> list[Change]:
    before, after = _partners(old, name), _partners(new, name)
    changes = []
    if after - before:
        domain = new.fields[name].domain or name
        changes.append(
            Change(
                MORE,
                f"domain '{domain}' shared with {', '.join(sorted(after - before))}: equal values give equal "
                "outputs, so the fields can be joined",
            )
        )
    if before - after:
        changes.append(Change(LESS, f"no longer joinable with {', '.join(sorted(before - after))}"))
    return changes


def _quasi_identifier(policy: Policy, name: str) -> tuple[str | None, bool]:
    """(the kind of quasi-identifier field `name`'s output looks like, or None; whether k covers it)."""
    spec = policy.fields.get(name)
    if spec is None or not REGISTRY[spec.action].writes_output:
        return None, False
    output = policy.output_name(name)
    covered = policy.k_anonymity is not None and output in policy.k_anonymity.quasi_identifiers
    return quasi_identifier_kind(name, output, spec), covered


def _coverage(name: str, old: Policy, new: Policy) -> list[Change]:
    kind, covered = _quasi_identifier(new, name)
    was, was_covered = _quasi_identifier(old, name)
    if kind is None:
        return []
    output = new.output_name(name)
    if not covered and (was is None or was_covered):
        lost = "no longer covered by k_anonymity" if was_covered else "not covered by k_anonymity"
        return [Change(MORE, f"{output} looks like {kind}, a quasi-identifier, {lost}")]
    if covered and was is not None and not was_covered:
        return [Change(LESS, f"{output} is now covered by k_anonymity")]
    return []


def _compare_field(name: str, old: Policy, new: Policy) -> Entry:
    before, after = old.fields.get(name), new.fields.get(name)
    changes = [*_actions(before, after), *_joins(name, old, new), *_coverage(name, old, new)]
    return _entry(settings(before), settings(after), changes)


def _gate(what: str, old: Any, new: Any, removed: str) -> Entry | None:
    a = old.model_dump(mode="json", exclude_defaults=True) if old else None
    b = new.model_dump(mode="json", exclude_defaults=True) if new else None
    if a == b:
        return None
    if b is None:
        return _entry(a, b, [Change(MORE, f"{what} gate removed: {removed}")])
    if a is None:
        return _entry(a, b, [Change(LESS, f"{what} gate added")])
    return _entry(a, b, [Change(SAME, f"{what} read from another source")])


def _retention(old: str | None, new: str | None) -> Entry | None:
    if old == new:
        return None
    if new is None:
        return _entry(old, new, [Change(MORE, "retention removed: outputs may be kept forever")])
    if old is None:
        return _entry(old, new, [Change(LESS, f"retention set: outputs are deleted after {retention_words(new)}")])
    a, b = retention_days(old), retention_days(new)
    verdict = MORE if b > a else LESS if b < a else SAME
    what = "lengthened" if b > a else "shortened" if b < a else "the same length"
    return _entry(old, new, [Change(verdict, f"retention {what}: {retention_words(old)} -> {retention_words(new)}")])


def _threshold(what: str, old: int | None, new: int | None, lowered: str) -> Entry | None:
    if old == new:
        return None
    if new is None:
        return _entry(old, new, [Change(MORE, f"{what} removed: {lowered}")])
    if old is None:
        return _entry(old, new, [Change(LESS, f"{what} added")])
    if new < old:
        return _entry(old, new, [Change(MORE, f"{what} lowered {old} -> {new}: {lowered}")])
    return _entry(old, new, [Change(LESS, f"{what} raised {old} -> {new}")])


def _members(
    old: tuple[str, ...], new: tuple[str, ...], gone: tuple[Verdict, str], added: tuple[Verdict, str]
) -> Entry | None:
    """A list setting's change: `gone` and `added` are (verdict, reason template with {names})."""
    changes = [
        Change(verdict, template.format(names=", ".join(names)))
        for names, (verdict, template) in ((sorted(set(old) - set(new)), gone), (sorted(set(new) - set(old)), added))
        if names
    ]
    return _entry(list(old), list(new), changes) if changes else None


def _same(what: str, old: Any, new: Any, why: str) -> Entry | None:
    return None if old == new else _entry(old, new, [Change(SAME, f"{what} changed: {why}")])


def _dataset_rule(
    rule: str, old: Any, new: Any, threshold: str, members: str, lowered: str, dropped: str
) -> list[tuple[str, Entry | None]]:
    """A dataset rule's threshold (k, l) and its member fields (quasi-identifiers, sensitive fields)."""
    before, after = (getattr(spec, threshold) if spec else None for spec in (old, new))
    named = (old and new) and _members(
        getattr(old, members),
        getattr(new, members),
        (MORE, "{names} " + dropped),
        (LESS, "{names} added to " + members),
    )
    return [(f"{rule}.{threshold}", _threshold(rule, before, after, lowered)), (f"{rule}.{members}", named or None)]


def _k_settings(old: Any, new: Any) -> Entry | None:
    """How k-anonymity is met (on_violation, levels, max_suppression, fairness): every class keeps k either way."""
    if old is None or new is None:
        return None
    a, b = (
        {
            **spec.model_dump(mode="json", exclude={"k", "quasi_identifiers"}),
            "levels": {name: list(hierarchy.levels) for name, hierarchy in spec.hierarchies.items()},
        }
        for spec in (old, new)
    )
    if a == b:
        return None
    changed = sorted(key for key in {*a, *b} if a.get(key) != b.get(key))
    return _entry(a, b, [Change(SAME, f"{', '.join(changed)} changed: every published class still has k records")])


def _policy_settings(old: Policy, new: Policy) -> list[tuple[str, Entry | None]]:
    return [
        ("default", _same("default", old.default, new.default, "unnamed fields are dropped or refused, never output")),
        ("consent", _gate("consent", old.consent, new.consent, "records flow without the subject's consent")),
        ("erasure", _gate("erasure", old.erasure, new.erasure, "subjects who asked to be forgotten flow again")),
        ("retention", _retention(old.retention, new.retention)),
        *_dataset_rule(
            "k_anonymity",
            old.k_anonymity,
            new.k_anonymity,
            "k",
            "quasi_identifiers",
            "rarer combinations of quasi-identifiers are published",
            "no longer a quasi-identifier: classes are counted without it, so rarer values are published",
        ),
        ("k_anonymity", _k_settings(old.k_anonymity, new.k_anonymity)),
        *_dataset_rule(
            "l_diversity",
            old.l_diversity,
            new.l_diversity,
            "l",
            "sensitive",
            "classes with fewer distinct sensitive values are published",
            "no longer checked for diversity",
        ),
        (
            "recipients",
            _members(
                old.recipients, new.recipients, (LESS, "no longer sent to: {names}"), (MORE, "new recipients: {names}")
            ),
        ),
        ("legal_basis", _same("legal basis", old.legal_basis, new.legal_basis, "review the notice")),
        ("purpose", _same("purpose", old.purpose, new.purpose, "keys are derived per purpose: outputs do not link")),
    ]


def diff_policies(old: Policy, new: Policy) -> PolicyDiff:
    """Compare two versions of a policy: every field either names, and each changed policy setting."""
    names = list(dict.fromkeys([*old.fields, *new.fields]))
    fields = {name: _compare_field(name, old, new) for name in names}
    changed = [(setting, entry) for setting, entry in _policy_settings(old, new) if entry is not None]
    return PolicyDiff(fields, changed)


def text_of(value: Any) -> str:
    """A JSON value as one short line for the table (`{action: generalize, prefix: 3}`)."""
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {text_of(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(text_of(item) for item in value) + "]"
    return str(value)
