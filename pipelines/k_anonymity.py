"""The k-anonymity stage of `veil run`: the policy's dataset gate over one view, and the
manifest's `k_anonymity` entry made from its summary.

The enforcing itself is `veil.transforms.enforce.EnforceKAnonymity`; its summary and counts flow
to the run's publish stage as data (`veil.pipelines.publish`).
"""

from typing import Any

import apache_beam as beam

from veil.pipelines.report import REPORT_HTML, REPORT_JSON
from veil.transforms.anonymity import manifest_section
from veil.transforms.enforce import EnforceKAnonymity, KAnonymityResult
from veil.transforms.policy import Policy


def enforce_k_anonymity(batches: beam.PCollection, policy: Policy) -> KAnonymityResult:
    """Apply the policy's k-anonymity (and l-diversity) to a view's batches."""
    return batches | f"KAnonymity[{policy.purpose}]" >> EnforceKAnonymity(policy)


def manifest_entry(policy: Policy, summary: dict[str, Any]) -> dict[str, Any]:
    """The manifest's `k_anonymity` entry of a view, from the stage's summary."""
    return {**manifest_section(policy, summary), "report": {"json": REPORT_JSON, "html": REPORT_HTML}}
