"""`veil lint`: governance rules over policies, each finding with a rule id, severity and fix.

Pure: a policy and today's date in, findings out (the date is a parameter so tests pin it).
The README ("veil lint") has the table of rules.

A field's `reason` is the acknowledgement the field rules ask for: personal data or free text
kept raw, or a quasi-identifier outside k-anonymity, with a reason saying why, is not flagged.
"""

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from typing import Literal

from veil.pipelines.governance.exposure import kept_raw
from veil.pipelines.governance.field_kinds import personal_data_kind, quasi_identifier_kind
from veil.pipelines.governance.times import add_months
from veil.transforms.detect.hints import looks_like_free_text
from veil.transforms.policy import Policy
from veil.transforms.registry import REGISTRY

Severity = Literal["error", "warning"]
REVIEW_MONTHS = 12


@dataclass(frozen=True)
class Finding:
    """One rule broken by one policy.

    Attributes:
        policy: the policy file (or purpose, for a policy built in code).
        rule: the rule's id.
        severity: `error` (veil lint exits 3) or `warning`.
        where: the policy key or field it is about.
        message: what is wrong.
        fix: how to fix it.
    """

    policy: str
    rule: str
    severity: Severity
    where: str
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        """The finding as a JSON object."""
        return asdict(self)


def _kept_raw(policy: Policy) -> list[str]:
    """Input fields output as they are, without a reason."""
    return [name for name, spec in policy.fields.items() if kept_raw(spec) and spec.reason is None]


def _personal_data_kept(policy: Policy) -> Iterable[tuple[str, str, str]]:
    for name in _kept_raw(policy):
        kind = personal_data_kind(name)
        if kind is not None:
            yield (
                f"fields.{name}",
                f"'{name}' looks like {kind} and is kept as it is",
                "protect it (pseudonymize, tokenize, mask, generalize) or drop it; if the purpose needs it raw, "
                "say why in the field's 'reason'",
            )


def _free_text_kept(policy: Policy) -> Iterable[tuple[str, str, str]]:
    for name in _kept_raw(policy):
        if looks_like_free_text(name) and personal_data_kind(name) is None:
            yield (
                f"fields.{name}",
                f"'{name}' looks like free text, which can hold any personal data, and is kept raw",
                "scrub it (action: scrub), encrypt it or drop it; if the purpose needs it raw, say why in 'reason'",
            )


def _reversible_without_audit_log(policy: Policy) -> Iterable[tuple[str, str, str]]:
    if policy.audit_log or policy.keyset:  # the log is the policy's, or audit.jsonl beside its keyset
        return
    reversible = [name for name, spec in policy.fields.items() if REGISTRY[spec.action].reverse is not None]
    if reversible:
        yield (
            "audit_log",
            f"{', '.join(reversible)} can be restored, but the policy names no audit log (nor a keyset beside "
            "which it would be)",
            "add 'audit_log: PATH' (or 'keyset: PATH': the log is then audit.jsonl beside it), so every "
            "re-identification is recorded where the policy says",
        )


def _quasi_identifiers_without_k(policy: Policy) -> Iterable[tuple[str, str, str]]:
    if policy.k_anonymity is not None or policy.aggregates is not None:  # DP aggregates release no rows
        return
    looking = {
        name: kind
        for name, spec in policy.fields.items()
        if REGISTRY[spec.action].writes_output
        and (kind := quasi_identifier_kind(name, policy.output_name(name), spec)) is not None
    }
    unexplained = [name for name in looking if policy.fields[name].reason is None]
    if len(looking) >= 2 and unexplained:
        listed = ", ".join(f"{policy.output_name(name)} ({looking[name]})" for name in unexplained)
        yield (
            "k_anonymity",
            f"outputs {listed} look like quasi-identifiers, which together can single a person out, "
            "and the policy has no k_anonymity",
            "add 'k_anonymity: {k: 5, quasi_identifiers: [...]}' over them, or say in each field's 'reason' "
            "why the purpose may single people out (it contacts them anyway, say)",
        )


def _missing(key: str, why: str, fix: str) -> Callable[[Policy], Iterable[tuple[str, str, str]]]:
    def rule(policy: Policy) -> Iterable[tuple[str, str, str]]:
        if getattr(policy, key) is None:
            yield key, f"no {key}: {why}", fix

    return rule


def _review(today: date) -> Callable[[Policy], Iterable[tuple[str, str, str]]]:
    def rule(policy: Policy) -> Iterable[tuple[str, str, str]]:
        reviewed = policy.reviewed
        if reviewed is not None and add_months(datetime.combine(reviewed, time()), REVIEW_MONTHS).date() < today:
            yield (
                "reviewed",
                f"last reviewed on {reviewed.isoformat()}, more than a year ago",
                "review the policy with its owner and set 'reviewed' to the date of the review",
            )

    return rule


def _rules(today: date) -> tuple[tuple[str, Severity, Callable[[Policy], Iterable[tuple[str, str, str]]]], ...]:
    return (
        ("personal-data-kept", "error", _personal_data_kept),
        ("free-text-kept", "error", _free_text_kept),
        ("reversible-without-audit-log", "error", _reversible_without_audit_log),
        (
            "no-legal-basis",
            "error",
            _missing(
                "legal_basis",
                "processing personal data needs a lawful basis (GDPR Art. 6(1))",
                "add 'legal_basis:' (consent, contract, legal_obligation, vital_interests, public_task or "
                "legitimate_interests)",
            ),
        ),
        ("quasi-identifiers-without-k", "warning", _quasi_identifiers_without_k),
        (
            "no-owner",
            "warning",
            _missing("owner", "nobody is accountable for this purpose", "add 'owner:' (a team or an address)"),
        ),
        (
            "no-retention",
            "warning",
            _missing(
                "retention",
                "its outputs are kept forever (veil expire never deletes them)",
                "add 'retention:' (90d, 12w, 6m, 2y): how long an output may be kept after its run",
            ),
        ),
        (
            "not-reviewed",
            "warning",
            _missing("reviewed", "nobody has recorded reviewing it", "review it and add 'reviewed: YYYY-MM-DD'"),
        ),
        ("review-overdue", "warning", _review(today)),
    )


RULES: tuple[tuple[str, Severity], ...] = tuple((rule, severity) for rule, severity, _ in _rules(date.min))


def lint_policy(policy: Policy, today: date) -> list[Finding]:
    """Every finding of one policy, in rule order."""
    where = policy.source or f"purpose {policy.purpose}"
    return [
        Finding(where, rule, severity, key, message, fix)
        for rule, severity, check in _rules(today)
        for key, message, fix in check(policy)
    ]
