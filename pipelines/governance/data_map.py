"""The record of processing (`data-map.json`): input fields x purposes, and each purpose's governance.

Pure: policies in, a JSON-ready dict out (`data_map_html` draws it). The matrix holds, per
input field and purpose, the field's action; `read: consent` where the purpose reads the
field only for its consent gate, `read: subject` where it reads the subject only for its
gates, and `-` where the purpose never sees the field. No key material, data or path.
"""

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from veil.pipelines.governance.notice import distinct_purposes
from veil.pipelines.governance.wording import LEGAL_BASES
from veil.transforms.policy import Policy

UNSEEN = "-"
CONSENT_READ = "read: consent"
SUBJECT_READ = "read: subject"
VERSION = 1


def cell(policy: Policy, field: str) -> str:
    """What `policy` does with input `field`: its action, a gate's read, or `-`."""
    spec = policy.fields.get(field)
    if spec is not None:
        return spec.action
    if policy.consent is not None and field == policy.consent.field:
        return CONSENT_READ
    if field == policy.subject:
        return SUBJECT_READ
    return UNSEEN


def _read_fields(policy: Policy) -> list[str]:
    """The input fields `policy` reads, in policy order: its fields, then the subject and consent field."""
    names = list(policy.fields)
    for name in (policy.subject, policy.consent.field if policy.consent else None):
        if name and name not in names:
            names.append(name)
    return names


def _purpose(policy: Policy) -> dict[str, Any]:
    basis = policy.legal_basis
    rule = policy.k_anonymity
    outputs = policy.outputs
    return {
        "description": policy.description,
        "policy": PurePosixPath(policy.source).name if policy.source else None,
        "policy_sha256": policy.sha256,
        "owner": policy.owner,
        "legal_basis": basis,
        "legal_basis_article": f"GDPR Art. 6(1)({LEGAL_BASES[basis][0]})" if basis else None,
        "retention": policy.retention,
        "reviewed": policy.reviewed.isoformat() if policy.reviewed else None,
        "recipients": list(policy.recipients),
        "default": policy.default,
        "consent": None if policy.consent is None else ("field" if policy.consent.field else "table"),
        "erasure": policy.erasure is not None,
        "k_anonymity": None if rule is None else {"k": rule.k, "quasi_identifiers": list(rule.quasi_identifiers)},
        "reversible_fields": [outputs[out] for out in policy.reversible_outputs],
    }


def build_data_map(policies: Sequence[Policy]) -> dict[str, Any]:
    """The data map of `policies`.

    Returns:
        `{"version", "purposes": {purpose: governance}, "fields": [input field, ...],
        "matrix": {field: {purpose: cell}}, "titles": {field: {purpose: the action with its variant}},
        "outputs": {field: {purpose: output field}} (fields the purpose sees),
        "reversible": {field: [purpose, ...]}}`; fields in order of first mention.

    Raises:
        ConfigError: two policies of one purpose.
    """
    distinct_purposes(policies)
    fields: list[str] = []
    for policy in policies:
        fields += [name for name in _read_fields(policy) if name not in fields]
    purposes = {policy.purpose: _purpose(policy) for policy in policies}
    return {
        "version": VERSION,
        "purposes": purposes,
        "fields": fields,
        "matrix": {field: {policy.purpose: cell(policy, field) for policy in policies} for field in fields},
        "titles": {
            field: {policy.purpose: policy.fields[field].title for policy in policies if field in policy.fields}
            for field in fields
        },
        "outputs": {
            field: {policy.purpose: out for policy in policies for out, name in policy.outputs.items() if name == field}
            for field in fields
        },
        "reversible": {
            field: [purpose for purpose, entry in purposes.items() if field in entry["reversible_fields"]]
            for field in fields
        },
    }
