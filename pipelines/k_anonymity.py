"""The k-anonymity stage of `veil run`: the policy's dataset gate over one view, with its summary
handed to the job as data (for the view's manifest and its risk report).

The enforcing itself is `veil.transforms.enforce.EnforceKAnonymity`; this stage adds what a run
needs around it: the summary collected for the driver, and the manifest's `k_anonymity` entry.
"""

from typing import Any, NamedTuple

import apache_beam as beam

from veil.pipelines.job import Collected, collect
from veil.pipelines.report import REPORT_HTML, REPORT_JSON
from veil.transforms.anonymity import manifest_section
from veil.transforms.enforce import EnforceKAnonymity
from veil.transforms.policy import Policy


class KAnonymityStage(NamedTuple):
    """What the stage gives back.

    Attributes:
        batches: the records that may be released.
        summary: the stage's summary (see `KAnonymityResult`), readable once the pipeline has run.
    """

    batches: beam.PCollection
    summary: Collected


def enforce_k_anonymity(batches: beam.PCollection, policy: Policy, staging: str) -> KAnonymityStage:
    """Apply the policy's k-anonymity (and l-diversity) to a view's batches; collect the summary into `staging`."""
    purpose = policy.purpose
    result = batches | f"KAnonymity[{purpose}]" >> EnforceKAnonymity(policy)
    summary = collect(result.summary, staging, "k_anonymity_summary", label=f"KAnonymitySummary[{purpose}]")
    return KAnonymityStage(result.batches, summary)


def manifest_entry(policy: Policy, summary: dict[str, Any]) -> dict[str, Any]:
    """The manifest's `k_anonymity` entry of a view, from the stage's summary."""
    return {**manifest_section(policy, summary), "report": {"json": REPORT_JSON, "html": REPORT_HTML}}
