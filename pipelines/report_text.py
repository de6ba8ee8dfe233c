"""What veil prints about k-anonymity and risk reports: pure text from a report or the run's manifests."""

from collections.abc import Sequence
from typing import Any

from apache_beam.io.filesystems import FileSystems

from veil.pipelines.report import REPORT_HTML


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The report in a few lines of text (what `veil report` prints)."""
    below = report["records_below_k"]
    lines = [
        f"{report['records']} records in {report['equivalence_classes']} classes over "
        f"{', '.join(report['quasi_identifiers'])}; smallest class {report['smallest_class']}",
        f"records in classes below k={report['k']}: "
        + (f"{below['before']} before suppression, " if below["before"] is not None else "")
        + f"{below['after']} in the output",
        f"unique share {report['unique_share']:.1%}; prosecutor risk max {report['prosecutor_risk_max']:.3f}, "
        f"mean {report['prosecutor_risk_mean']:.3f}",
    ]
    if report["l_diversity"]:
        lines.append("l per sensitive field: " + ", ".join(f"{f} {v}" for f, v in report["l_diversity"].items()))
    lines += [f"hint: {entry['hint']}" for entry in report["hints"]]
    lines += [f"warning: {text}" for text in report["fairness_warnings"]]
    return lines


def run_lines(manifests: Sequence[dict[str, Any]]) -> list[str]:
    """What `veil run` says about each view with k-anonymity: suppression, warnings, the report's path."""
    lines = []
    for manifest in manifests:
        entry = manifest.get("k_anonymity")
        if not entry:
            continue
        purpose, folder = manifest["purpose"], manifest["output"]["folder"]
        lost = entry["suppressed"]
        lines.append(
            f"{purpose}: k-anonymity k={entry['k']} over {', '.join(entry['quasi_identifiers'])}: "
            f"{lost['records']} of {entry['before']['records']} records suppressed ({lost['share']:.1%})"
        )
        generalization = entry.get("generalization")
        if generalization:
            chosen, finest = generalization["chosen"], generalization["finest"]
            levels = ", ".join(f"{name} {level['setting']}" for name, level in chosen["levels"].items())
            lines.append(
                f"{purpose}: generalized to {levels} (loss {chosen['loss']:.2f}; {generalization['nodes_evaluated']} "
                f"of {generalization['lattice_size']} nodes evaluated); plain suppression would have dropped "
                f"{finest['suppressed']} records ({finest['share_suppressed']:.1%})"
            )
        lines += [f"warning: {purpose}: {text}" for text in entry["warnings"]]
        lines.append(f"{purpose}: risk report {FileSystems.join(folder, REPORT_HTML)}")
    return lines
