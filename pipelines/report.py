"""The re-identification risk report of a veil output: `DIR/_report.json` and `DIR/_report.html`.

`veil report DIR` reads the output's quasi-identifier, sensitive and protected columns (only
those) and its `_manifest.json`. Figures *after* are measured on the output; figures *before*
suppression, the fairness of suppression and the what-if hints come from the manifest, where
`veil run` recorded them from the pipeline's own counts (the input is not read again).

`build_report` is pure (a table and a manifest in, the report dict out); `report_job` reads the
folder, builds, and writes the JSON and the HTML (`veil.pipelines.report_html`).
"""

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems

from veil import _fs
from veil.errors import ConfigError
from veil.pipelines.manifest import output_files, output_schema, read_manifest
from veil.pipelines.report_html import render_html
from veil.transforms.anonymity import (
    fairness,
    group_classes,
    hint_entries,
    hints_for,
    histogram,
    shown,
    size_bins,
    size_figures,
    what_if_counts,
)
from veil.transforms.audit import utc_now
from veil.transforms.io import read_columns
from veil.transforms.registry import REGISTRY

REPORT_JSON, REPORT_HTML = "_report.json", "_report.html"
REPORT_VERSION = 1


@dataclass(frozen=True)
class ReportScope:
    """What a report measures.

    Attributes:
        quasi_identifiers, k, sensitive, protected: as the manifest's `k_anonymity` says, or as overridden.
        run: the manifest's `k_anonymity` entry when the scope is the run's own (its
            before-figures then apply), else None.
    """

    quasi_identifiers: list[str]
    k: int
    sensitive: list[str]
    protected: list[str]
    run: dict[str, Any] | None

    @property
    def fields(self) -> list[str]:
        """The output columns the report reads."""
        return list(dict.fromkeys([*self.quasi_identifiers, *self.sensitive, *self.protected]))


def report_scope(
    folder: str,
    manifest: Mapping[str, Any] | None,
    *,
    quasi_identifiers: Sequence[str] | None = None,
    k: int | None = None,
    sensitive: Sequence[str] | None = None,
    protected: Sequence[str] | None = None,
) -> ReportScope:
    """The scope from the manifest's `k_anonymity`, overridden by the arguments.

    Raises:
        ConfigError: no quasi-identifiers or no k are known.
    """
    if (manifest or {}).get("aggregates"):
        raise ConfigError(
            f"{folder} holds differentially private aggregates, not rows: there is no re-identification risk "
            "report for them (their manifest's aggregates entry records the guarantee)"
        )
    run = (manifest or {}).get("k_anonymity")
    qis = list(quasi_identifiers or (run or {}).get("quasi_identifiers") or [])
    k = k or (run or {}).get("k")
    if not qis:
        raise ConfigError(
            f"{folder}: the manifest names no quasi-identifiers (the policy has no k_anonymity); "
            "pass --quasi-identifiers a,b,c and --k N"
        )
    if not k or k < 1:
        raise ConfigError(f"{folder}: no k is known; pass --k N")
    same_run = run is not None and qis == run["quasi_identifiers"] and k == run["k"]
    l_run = (run or {}).get("l_diversity") or {}
    return ReportScope(
        quasi_identifiers=qis,
        k=k,
        sensitive=list(sensitive if sensitive is not None else l_run.get("sensitive", [])),
        protected=list(protected if protected is not None else (run or {}).get("protected", [])),
        run=run if same_run else None,
    )


def _field_params(manifest: Mapping[str, Any] | None) -> dict[str, Any]:
    """Output field -> the params of its action, from the manifest's `fields`."""
    params = {}
    for name, entry in ((manifest or {}).get("fields") or {}).items():
        action = REGISTRY.get(entry.get("action"))
        if action is None:
            continue
        try:
            params[name] = action.params.model_validate({"action": action.name, **entry.get("settings", {})})
        except ValueError:
            continue
    return params


def build_report(
    table: pa.Table, scope: ReportScope, manifest: Mapping[str, Any] | None, folder: str
) -> dict[str, Any]:
    """The risk report of an output's columns `table` (see the module docstring); pure.

    Raises:
        ConfigError: the table lacks a field of the scope.
    """
    qis, k, sensitive, protected, run = scope.quasi_identifiers, scope.k, scope.sensitive, scope.protected, scope.run
    missing = [name for name in scope.fields if name not in table.column_names]
    if missing:
        raise ConfigError(f"{folder}: the output has no field {', '.join(missing)}")
    classes = group_classes(table, qis, sensitive, values=False)
    sizes = Counter(n for _, n, _ in classes)
    after = size_figures(sizes, k)
    before_sizes = {int(s): int(c) for s, c in run["before"]["class_sizes"]} if run else {}
    bins = size_bins(k, max([after["largest_class"] or 0, *before_sizes]))
    bars = histogram(sizes, bins)
    for bar, old in zip(bars, histogram(before_sizes, bins) if run else [None] * len(bars)):
        bar["classes_before"] = old["classes"] if old else None
        bar["records_before"] = old["records"] if old else None

    if run:
        entries, warnings = run["fairness"], run["warnings"]
        hints = run["hints"]
        suppressed = {
            "k_anonymity": run["violations"]["k_anonymity"]["records"],
            "l_diversity": run["violations"]["l_diversity"]["records"],
            **run["suppressed"],
        }
    else:
        groups = []
        for name in protected:
            counts = Counter(table.column(name).to_pylist())
            groups += [[name, shown(value), n, 0] for value, n in counts.items()]
        entries, warnings = fairness(groups, protected)
        for entry in entries:
            for key in ("records_suppressed", "share_suppressed", "share_before", "records_before"):
                entry[key] = None
        hint_list = hints_for(qis, _field_params(manifest))
        below = what_if_counts(((values, n) for values, n, _ in classes), hint_list, k)
        hints = hint_entries(hint_list, below, after["records_below_k"], k)
        suppressed = None

    return {
        "report_version": REPORT_VERSION,
        "generated": utc_now(),
        "folder": folder,
        "purpose": (manifest or {}).get("purpose"),
        "run_id": (manifest or {}).get("run_id"),
        "k": k,
        "quasi_identifiers": qis,
        "sensitive": sensitive,
        "protected": protected,
        "records": after["records"],
        "equivalence_classes": after["equivalence_classes"],
        "smallest_class": after["smallest_class"],
        "records_below_k": {
            "before": run["before"]["records_below_k"] if run else None,
            "after": after["records_below_k"],
        },
        "unique_share": after["unique_share"],
        "prosecutor_risk_max": after["prosecutor_risk_max"],
        "prosecutor_risk_mean": after["prosecutor_risk_mean"],
        "distinct_values": {q: pc.count_distinct(table.column(q), mode="all").as_py() for q in qis},
        "l_diversity": {s: min((d[i] for _, _, d in classes), default=None) for i, s in enumerate(sensitive)},
        "class_size_histogram": bars,
        "before": {key: value for key, value in run["before"].items() if key != "class_sizes"} if run else None,
        "suppressed": suppressed,
        "fairness": entries,
        "fairness_warnings": warnings,
        "hints": hints,
        "generalization": run.get("generalization") if run else None,
    }


def read_output(folder: str, manifest: Mapping[str, Any] | None, columns: Sequence[str]) -> pa.Table:
    """The named columns of a veil output, typed as its manifest declares them."""
    files, fmt = output_files(folder, manifest)
    declared = output_schema(manifest)
    types = {name: declared[name] for name in columns if declared.get(name) is not None}
    return read_columns(files, fmt, list(columns), types, names=list(declared) or None)


def write_report(folder: str, report: dict[str, Any]) -> tuple[str, str]:
    """Write `_report.json` and `_report.html` into `folder`; returns their paths."""
    json_path, html_path = FileSystems.join(folder, REPORT_JSON), FileSystems.join(folder, REPORT_HTML)
    _fs.write_bytes(json_path, (json.dumps(report, indent=2) + "\n").encode("utf-8"))
    _fs.write_bytes(html_path, render_html(report).encode("utf-8"))
    return json_path, html_path


def report_job(folder: str, **options: Any) -> tuple[dict[str, Any], str, str]:
    """Build and write the report of `folder`; returns (report, json path, html path).

    Options override the manifest's scope (see `report_scope`).

    Raises:
        InputError: the folder holds no readable output.
        ConfigError: no quasi-identifiers or no k are known, or the output lacks a field.
    """
    manifest = read_manifest(folder)
    scope = report_scope(folder, manifest, **options)
    report = build_report(read_output(folder, manifest, scope.fields), scope, manifest, folder)
    json_path, html_path = write_report(folder, report)
    return report, json_path, html_path
