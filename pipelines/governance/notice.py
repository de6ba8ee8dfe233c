"""The customer data-use notice, built from the policies: one section per purpose.

Pure: policies in, a `Notice` (plain text in a fixed structure) out; `notice_render` writes it
as Markdown and HTML. Each section says what data the purpose uses and how each field is
protected (`wording`), who can re-identify and how that is audited, the legal basis, the
retention, the recipients, how consent is withdrawn and erasure asked for, and whom to ask.
It holds no key material, no data and no path (keyset, tables): only what the policy says.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from veil.errors import ConfigError
from veil.pipelines.governance.times import retention_words
from veil.pipelines.governance.wording import (
    capitalized,
    field_noun,
    legal_basis_text,
    name_words,
    plural,
    protection,
    word_list,
)
from veil.transforms.policy import Policy
from veil.transforms.registry import REGISTRY

TITLE = "How we use your data"


@dataclass(frozen=True)
class Entry:
    """One listed line: what happens to an input field, and the field's name (for traceability).

    Attributes:
        text: the sentence(s) (`wording.protection`, then the field's `reason`).
        field: the input field's name.
    """

    text: str
    field: str


@dataclass(frozen=True)
class Part:
    """A headed part of a section: paragraphs, then listed entries.

    Attributes:
        heading: the part's heading.
        paragraphs: plain-text paragraphs.
        entries: field entries, listed after the paragraphs.
    """

    heading: str
    paragraphs: tuple[str, ...] = ()
    entries: tuple[Entry, ...] = ()


@dataclass(frozen=True)
class Section:
    """What the notice says about one purpose.

    Attributes:
        purpose: the purpose's name.
        description: the policy's description (may be empty).
        parts: the headed parts, in reading order.
    """

    purpose: str
    description: str
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Notice:
    """The whole notice.

    Attributes:
        title: its title.
        intro: paragraphs before the sections.
        sections: one per purpose, in the order the policies were given.
    """

    title: str
    intro: tuple[str, ...]
    sections: tuple[Section, ...]


def distinct_purposes(policies: Sequence[Policy]) -> None:
    """Refuse two policies of one purpose (a notice and a data map have one section, one column, per purpose).

    Raises:
        ConfigError: naming the purpose and both files.
    """
    seen: dict[str, str] = {}
    for policy in policies:
        where = policy.source or policy.purpose
        if policy.purpose in seen:
            raise ConfigError(
                f"policies {seen[policy.purpose]} and {where} are both for purpose '{policy.purpose}'; "
                "explain one policy per purpose"
            )
        seen[policy.purpose] = where


def _noun(policy: Policy, name: str) -> str:
    spec = policy.fields.get(name)
    return field_noun(name, spec.description if spec else None)


def _entry(policy: Policy, name: str) -> Entry:
    spec = policy.fields[name]
    text = protection(spec, _noun(policy, name), policy.purpose)
    if spec.reason:
        text += f" Why: {spec.reason.rstrip('.')}."
    return Entry(text, name)


def _consent_check(policy: Policy) -> str | None:
    consent = policy.consent
    if consent is None:
        return None
    if consent.field:
        return (
            f"Your consent choices (field {consent.field}) are read only to check that you agreed to "
            f"{policy.purpose}; records without that consent are left out."
        )
    return (
        f"Only customers whose latest choice in our consent log is a yes to {policy.purpose} are included; "
        "everyone else's records are left out."
    )


def _dataset_rules(policy: Policy) -> str | None:
    rule = policy.k_anonymity
    if rule is None:
        return None
    names = word_list([name_words(name) for name in rule.quasi_identifiers])
    fate = {
        "suppress": "rarer combinations are left out",
        "generalize": "rarer combinations are made coarser, or left out",
        "fail": "the processing stops rather than release rarer combinations",
    }[rule.on_violation]
    text = (
        f"The results are also checked as a whole: every combination of {names} in them is shared by at least "
        f"{rule.k} customers; "
        f"{fate}, so no one can be singled out by them."
    )
    if policy.l_diversity is not None:
        sensitive = word_list([name_words(name) for name in policy.l_diversity.sensitive])
        text += (
            f" Within each such group, {sensitive} takes at least {policy.l_diversity.l} different values, "
            "so belonging to a group does not give it away."
        )
    return text


_METRIC_WORDS = {"count": "counts", "sum": "totals", "mean": "averages", "variance": "spreads"}


def _statistics_only(policy: Policy) -> str | None:
    spec = policy.aggregates
    if spec is None:
        return None
    tables = []
    for table in spec.tables:
        metrics = word_list(
            [_METRIC_WORDS[m] + (f" of {name_words(table.value)}" if m != "count" else "") for m in table.metrics]
        )
        tables.append(f"{metrics} by {word_list([name_words(name) for name in table.group_by])}")
    return (
        f"Only statistics leave this use, never a record about you: {'; '.join(tables)}. Each customer's part in "
        "them is limited and random noise is added (differential privacy, "
        f"epsilon {spec.epsilon:g}), so they read nearly the same whether or not you are in the data."
    )


def _used(policy: Policy) -> Part:
    parts = (_consent_check(policy), _dataset_rules(policy), _statistics_only(policy))
    paragraphs = [text for text in parts if text]
    entries = tuple(_entry(policy, name) for name in policy.outputs.values())
    return Part("What we use and how it is protected", tuple(paragraphs), entries)


def _not_used(policy: Policy) -> Part:
    rest = {
        "drop": "any other data we hold about you is removed before it reaches this use",
        "error": "data not listed here stops the processing until we decide how to protect it",
    }[policy.default]
    dropped = tuple(
        _entry(policy, name) for name, spec in policy.fields.items() if not REGISTRY[spec.action].writes_output
    )
    return Part("What we do not use", (f"Nothing else reaches {policy.purpose}: {rest}.",), dropped)


def _re_identification(policy: Policy) -> Part:
    outputs = policy.outputs
    reversible = [_noun(policy, outputs[out]) for out in policy.reversible_outputs]
    paragraphs = []
    if reversible:
        paragraphs.append(
            f"Only the {policy.purpose} team, holding the keys of this use, can turn {word_list(reversible)} "
            "back into the original values. Every time, a line is added to an audit log: who, when, which fields "
            "and how many values, never the values themselves. The log is a hash chain, so a line edited, "
            "moved or deleted afterwards is detected."
        )
    else:
        paragraphs.append(
            f"None of the protected fields {policy.purpose} receives can be turned back into the original values: "
            "the protections are one-way."
        )
    subject = policy.fields.get(policy.subject) if policy.subject else None
    if subject is not None and REGISTRY[subject.action].keyed and REGISTRY[subject.action].reverse is None:
        paragraphs.append(
            f"To answer a request from you, we can compute the code of {_noun(policy, policy.subject)} to find your "
            "records; that is logged too."
        )
    return Part("Who can identify you again", tuple(paragraphs))


def _legal_basis(policy: Policy) -> Part:
    return Part("Why we may do this", (legal_basis_text(policy.legal_basis),))


def _retention(policy: Policy) -> Part:
    if policy.retention is None:
        text = "No retention period is set for this use: its results are kept until they are deleted."
    else:
        text = f"The results of this use are deleted {retention_words(policy.retention)} after they are made."
    return Part("How long we keep it", (text,))


def _recipients(policy: Policy) -> Part:
    if not policy.recipients:
        return Part("Who receives it", ("No recipients are recorded for this use.",))
    return Part("Who receives it", (f"The results go to {word_list(list(policy.recipients))}.",))


def _consent_choice(policy: Policy) -> str:
    if policy.consent is None:
        text = f"{capitalized(policy.purpose)} does not depend on your consent."
        if policy.legal_basis == "legitimate_interests":
            text += " You can object to it: ask us (see the contact below)."
        return text
    where = (
        f"{policy.purpose} is removed from your recorded choices"
        if policy.consent.field
        else "your withdrawal is recorded in our consent log, where your latest choice counts"
    )
    return (
        f"To withdraw your consent, change your choice where you gave it or ask us (see the contact below): {where}, "
        "and from the next run on your records are left out."
    )


def _erasure_choice(policy: Policy) -> str:
    if policy.erasure is None:
        return (
            f"{capitalized(policy.purpose)} keeps no erasure list of its own: to have your data erased, "
            "ask us (see the contact below)."
        )
    text = (
        f"To have your data erased, ask us (see the contact below). {capitalized(_noun(policy, policy.subject))} is "
        "added to an erasure list, as a keyed code rather than as it is, and from then on your records never reach "
        f"{policy.purpose}."
    )
    outputs = policy.outputs
    shredded = [_noun(policy, outputs[out]) for out in policy.per_subject_outputs]
    if shredded:
        verb = "are" if len(shredded) > 1 or plural(shredded[0]) else "is"
        text += (
            f" {capitalized(word_list(shredded))} {verb} encrypted with a key of your own, which is destroyed, "
            "so every copy becomes unreadable at once."
        )
    if policy.retention is not None:
        text += f" Results made before your request are deleted when their {retention_words(policy.retention)} end."
    else:
        text += " Results made before your request stay until they are deleted."
    return text


def _choices(policy: Policy) -> Part:
    return Part("Your choices", (_consent_choice(policy), _erasure_choice(policy)))


def _contact(policy: Policy) -> Part:
    if policy.owner is None:
        return Part("Contact", ("No contact is recorded for this use.",))
    return Part("Contact", (f"Questions and requests about {policy.purpose}: {policy.owner}.",))


def _section(policy: Policy) -> Section:
    parts = (
        _used(policy),
        _not_used(policy),
        _re_identification(policy),
        _legal_basis(policy),
        _retention(policy),
        _recipients(policy),
        _choices(policy),
        _contact(policy),
    )
    return Section(policy.purpose, policy.description, parts)


def build_notice(policies: Sequence[Policy]) -> Notice:
    """The notice for `policies` (one section each, in order).

    Raises:
        ConfigError: two policies of one purpose.
    """
    distinct_purposes(policies)
    uses = word_list([policy.purpose for policy in policies])
    intro = (
        "This notice is generated from the data policies our systems enforce, so it says what the processing "
        "actually does. Each use of your data has a policy of its own, and what is prepared for one use cannot be "
        "matched with another's: codes and keys differ per use.",
        f"It covers {len(policies)} use{'s' if len(policies) != 1 else ''} of your data: {uses}.",
        "If a value cannot be protected as described, it is left out (or the whole record is): it is never passed "
        "on as it is.",
    )
    return Notice(TITLE, intro, tuple(_section(policy) for policy in policies))
