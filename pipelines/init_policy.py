"""`veil init`: a suggested default-deny policy for one purpose, from a scanned sample of an input.

Every input column is listed with its suggested action and a comment saying what was detected
and why; columns with nothing detected are listed as `drop` so the owner decides what to keep.
The policy names no keyset (`--keyset` or `VEIL_KEYSET` give it when it runs), its subject is
the id column the scan chose, a consent column becomes the consent gate, and the generalized
and kept quasi-identifiers are held to k-anonymity. The text is validated (and compiled against
the input's schema) before anyone writes it.
"""

import json
import re
import textwrap
from datetime import date
from typing import Any

from veil.errors import ConfigError
from veil.pipelines.scan import InputScan
from veil.transforms.columns import consent_mask
from veil.transforms.plan import compile_plan
from veil.transforms.policy import NAME, parse_policy
from veil.transforms.registry import REGISTRY

K = 5
MAX_SUPPRESSION = 0.05
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_RESERVED = frozenset("y yes n no true false on off null".split())
_COMMENT_WIDTH = 100


def _scalar(value: Any) -> str:
    """`value` as a YAML flow scalar: bare where YAML reads it back unchanged, else JSON-quoted."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value  # a date, as policies write `at:`
    if isinstance(value, str) and _PLAIN.match(value) and value.lower() not in _RESERVED:
        return value
    return json.dumps(value, ensure_ascii=False)


def yaml_flow(settings: dict[str, Any]) -> str:
    """`{action: pseudonymize, domain: email}`: one field's settings as a YAML flow mapping."""
    parts = []
    for key, value in settings.items():
        text = "[" + ", ".join(map(_scalar, value)) + "]" if isinstance(value, list) else _scalar(value)
        parts.append(f"{key}: {text}")
    return "{" + ", ".join(parts) + "}"


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, _COMMENT_WIDTH, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}#   ")


def _consent_line(scan: InputScan, column: str, purpose: str) -> str:
    granted = consent_mask(scan.sample.column(column).combine_chunks(), purpose)
    share = sum(granted.to_pylist()) / scan.rows_sampled if scan.rows_sampled else 0.0
    return (
        f"consent: {{field: {column}}}    # a record flows only if '{purpose}' is in its {column} "
        f"({share:.0%} of the sampled records)"
    )


def _quasi_identifiers(scan: InputScan) -> list[str]:
    return [
        name
        for name, suggestion in scan.suggestions.items()
        if suggestion.role == "quasi_identifier" and REGISTRY[suggestion.settings["action"]].writes_output
    ]


def _k_anonymity(scan: InputScan, quasi: list[str]) -> list[str]:
    lines = _comment(
        f"Every combination of the quasi-identifiers must be shared by at least {K} records: veil searches "
        f"the levels below for the least coarsening that meets k with at most {MAX_SUPPRESSION:.0%} of the "
        "records suppressed (see README, Generalization search).",
        "",
    )
    lines += ["k_anonymity:", f"  k: {K}", "  quasi_identifiers:"]
    for name in quasi:
        levels = ", ".join(
            level if isinstance(level, str) else yaml_flow(level) for level in scan.suggestions[name].levels
        )
        lines.append(f"    {_scalar(name)}: {{levels: [{levels}]}}")
    lines += ["  on_violation: generalize", f"  max_suppression: {MAX_SUPPRESSION}"]
    return lines


def policy_text(scan: InputScan, purpose: str, made: date | None = None) -> str:
    """The suggested policy's YAML for `purpose` (`made`: the date written in its header)."""
    made = made or date.today()
    lines = [
        f"# Suggested by `veil init` for purpose '{purpose}' on {made}, from {scan.rows_sampled:,} rows sampled",
        f"# at random of the {scan.rows_read:,} rows of {scan.input}. Review every field before use: the detectors",
        "# find only what they know",
        "# (names outside their lists, postal addresses and free-form identifiers are not detected).",
        "version: 1",
        f"purpose: {purpose}",
    ]
    if scan.subject and re.match(NAME, scan.subject):
        lines.append(f"subject: {scan.subject}    # the data subject: an id column whose values are distinct")
    lines += [
        "# No keyset is named: run with --keyset PATH or VEIL_KEYSET (or add `keyset: PATH`).",
        "default: drop    # data minimization: a column not named below never leaves",
    ]
    consents = [name for name, s in scan.suggestions.items() if s.role == "consent" and re.match(NAME, name)]
    if consents:
        lines.append(_consent_line(scan, consents[0], purpose))
    lines.append("fields:")
    for name, suggestion in scan.suggestions.items():
        lines += _comment(suggestion.reason, "  ")
        lines.append(f"  {_scalar(name)}: {yaml_flow(suggestion.settings)}")
    quasi = _quasi_identifiers(scan)
    if quasi:
        lines += _k_anonymity(scan, quasi)
    return "\n".join(lines) + "\n"


def checked_policy_text(scan: InputScan, purpose: str, made: date | None = None) -> str:
    """`policy_text`, validated as a policy and compiled against the input's schema (a failure is a bug).

    Raises:
        ConfigError: every column would be dropped (a policy must let its purpose see a field).
    """
    if not any(REGISTRY[s.settings["action"]].writes_output for s in scan.suggestions.values()):
        raise ConfigError(
            f"input {scan.input}: every column is suggested as drop (nothing personal found, nothing to protect); "
            "a policy lets its purpose see at least one field: write it with keep for the columns the purpose needs"
        )
    text = policy_text(scan, purpose, made)
    compile_plan(parse_policy(text, "the suggested policy"), scan.schema)
    return text
