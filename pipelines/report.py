"""The re-identification risk report of a veil output: `DIR/_report.json` and `DIR/_report.html`.

`veil report DIR` reads the output's quasi-identifier, sensitive and protected columns (only
those) and its `_manifest.json`. Figures *after* are measured on the output; figures *before*
suppression, the fairness of suppression and the what-if hints come from the manifest, where
`veil run` recorded them from the pipeline's own counts (the input is not read again). The
HTML is one self-contained file (inline CSS and SVG, no script, no network).

`veil run` also uses this module to enforce k-anonymity inside its pipeline and to carry the
summary from the workers to the manifest (a small JSON file in the run's staging folder).
"""

import html
import io
import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems

from veil import _fs
from veil.errors import ConfigError, InputError
from veil.pipelines.manifest import MANIFEST
from veil.transforms.anonymity import (
    fairness,
    group_classes,
    hint_entries,
    hints_for,
    histogram,
    label,
    manifest_section,
    shown,
    size_bins,
    size_figures,
    what_if_counts,
)
from veil.transforms.audit import utc_now
from veil.transforms.enforce import EnforceKAnonymity
from veil.transforms.io import SUFFIX
from veil.transforms.policy import Policy
from veil.transforms.registry import REGISTRY

REPORT_JSON, REPORT_HTML = "_report.json", "_report.html"
SUMMARY_FILE = "_k_anonymity_summary.json"  # in the staging folder only; removed with it
REPORT_VERSION = 1


# ---------------------------------------------------------------- inside `veil run`


class EnforceAndSummarize(beam.PTransform):
    """`EnforceKAnonymity`, with its summary written to `<staging>/_k_anonymity_summary.json`."""

    def __init__(self, policy: Policy, staging: str):
        super().__init__()
        self._policy, self._path = policy, FileSystems.join(staging, SUMMARY_FILE)

    def expand(self, batches):
        result = batches | "Enforce" >> EnforceKAnonymity(self._policy)
        _ = (
            result.summary
            | "SummaryJson" >> beam.Map(json.dumps).with_output_types(str)
            | "WriteSummary" >> beam.io.WriteToText(self._path, num_shards=1, shard_name_template="")
        )
        return result.batches


def read_summary(staging: str) -> dict[str, Any]:
    """The summary `EnforceAndSummarize` wrote into `staging`."""
    return json.loads(_fs.read_bytes(FileSystems.join(staging, SUMMARY_FILE)))


# ---------------------------------------------------------------- reading an output


_TIMESTAMP = re.compile(r"timestamp\[(\w+)(?:, tz=([^\]]+))?\]")


def _arrow_type(text: str) -> pa.DataType | None:
    """An Arrow type from its manifest spelling (`int64`, `date32[day]`, `timestamp[us, tz=UTC]`)."""
    match = _TIMESTAMP.fullmatch(text)
    if match:
        return pa.timestamp(match.group(1), match.group(2))
    try:
        return pa.type_for_alias(text)
    except (ValueError, KeyError):
        return None


def _output_files(folder: str, manifest: dict | None) -> tuple[list[str], str]:
    if manifest is not None:
        output = manifest.get("output", {})
        fmt = output.get("format", "parquet")
        return [FileSystems.join(folder, name) for name in output.get("files", [])], fmt
    for fmt, suffix in SUFFIX.items():
        matched = FileSystems.match([FileSystems.join(folder, f"part-*{suffix}")])[0].metadata_list
        if matched:
            return sorted(m.path for m in matched), fmt
    raise InputError(f"{folder} holds no veil output (no _manifest.json and no part-* files)")


def read_columns(folder: str, columns: Sequence[str], manifest: dict | None) -> pa.Table:
    """The named columns of an output folder's data files, as one table."""
    import pyarrow.csv as pa_csv
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    files, fmt = _output_files(folder, manifest)
    declared = {f["name"]: _arrow_type(f["type"]) for f in (manifest or {}).get("output", {}).get("schema", [])}
    types = {name: declared[name] for name in columns if declared.get(name) is not None}
    tables = []
    for path in files:
        try:
            with FileSystems.open(path, compression_type="uncompressed") as handle:
                if fmt == "parquet":
                    table = pq.read_table(handle, columns=list(columns))
                elif fmt == "csv":
                    names = list(declared) or None
                    read = pa_csv.ReadOptions(column_names=names, skip_rows=1 if names else 0)
                    convert = pa_csv.ConvertOptions(column_types=types, include_columns=list(columns))
                    table = pa_csv.read_csv(handle, read_options=read, convert_options=convert)
                else:
                    data = handle.read()
                    if not data.strip():  # every record of this shard was suppressed
                        continue
                    schema = pa.schema([(name, kind) for name, kind in types.items()]) if types else None
                    parse = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
                    table = pa_json.read_json(io.BytesIO(data), parse_options=parse).select(list(columns))
        except (pa.ArrowException, OSError, KeyError) as exc:
            raise InputError(f"output file {path} cannot be read for the report ({type(exc).__name__})") from None
        tables.append(table)
    if not tables:
        return pa.table({name: pa.array([], types.get(name, pa.null())) for name in columns})
    return pa.concat_tables(tables, promote_options="permissive")


def _classes(table: pa.Table, quasi_identifiers: Sequence[str], sensitive: Sequence[str]) -> list[tuple]:
    """(class values, records, distinct values per sensitive field) per equivalence class."""
    return group_classes(table, quasi_identifiers, sensitive, values=False)


# ---------------------------------------------------------------- the report


def _field_params(manifest: dict | None) -> dict[str, Any]:
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
    folder: str,
    *,
    quasi_identifiers: Sequence[str] | None = None,
    k: int | None = None,
    sensitive: Sequence[str] | None = None,
    protected: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The risk report of the veil output in `folder` (see the module docstring).

    Quasi-identifiers, k, sensitive and protected fields come from the manifest's
    `k_anonymity`; the arguments override them (and then the run's before-figures, which were
    measured for the manifest's quasi-identifiers, are left out).

    Raises:
        InputError: the folder holds no readable output.
        ConfigError: no quasi-identifiers or no k are known.
    """
    manifest_path = FileSystems.join(folder, MANIFEST)
    manifest = json.loads(_fs.read_bytes(manifest_path)) if _fs.exists(manifest_path) else None
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
    sensitive = list(sensitive if sensitive is not None else l_run.get("sensitive", []))
    protected = list(protected if protected is not None else (run or {}).get("protected", []))
    if not same_run:
        run = None

    needed = list(dict.fromkeys([*qis, *sensitive, *protected]))
    table = read_columns(folder, needed, manifest)
    missing = [name for name in needed if name not in table.column_names]
    if missing:
        raise ConfigError(f"{folder}: the output has no field {', '.join(missing)}")
    classes = _classes(table, qis, sensitive)
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
    }


def write_report(folder: str, report: dict[str, Any]) -> tuple[str, str]:
    """Write `_report.json` and `_report.html` into `folder`; returns their paths."""
    json_path, html_path = FileSystems.join(folder, REPORT_JSON), FileSystems.join(folder, REPORT_HTML)
    _fs.write_bytes(json_path, (json.dumps(report, indent=2) + "\n").encode("utf-8"))
    _fs.write_bytes(html_path, render_html(report).encode("utf-8"))
    return json_path, html_path


def report_job(folder: str, **options: Any) -> tuple[dict[str, Any], str, str]:
    """Build and write the report of `folder`; returns (report, json path, html path)."""
    report = build_report(folder, **options)
    json_path, html_path = write_report(folder, report)
    return report, json_path, html_path


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


# ---------------------------------------------------------------- HTML

AFTER_COLOR, BEFORE_COLOR, BELOW_K_COLOR = "#2f6db5", "#c3c8d0", "#fbe3e1"

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232b;margin:24px auto;
max-width:960px;padding:0 16px;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e3e6ea}
.meta{color:#5a6573;font-size:13px}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}
.card{border:1px solid #dde1e6;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:#5a6573;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #eceef1}th{color:#5a6573;font-weight:600}td.n{text-align:right;
font-variant-numeric:tabular-nums}tr.warn td{background:#fdecea}.warn-list li{color:#a2261b}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px;vertical-align:-1px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _svg_histogram(report: dict[str, Any]) -> str:
    bars = report["class_size_histogram"]
    width, height, left, bottom, top = 900, 300, 56, 44, 14
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max([1] + [b["records"] for b in bars] + [b["records_before"] or 0 for b in bars])
    slot = plot_w / max(len(bars), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="records per class size">'
    ]
    for i, bar in enumerate(bars):
        if bar["max"] < report["k"]:
            parts.append(
                f'<rect x="{left + i * slot:.1f}" y="{top}" width="{slot:.1f}" height="{plot_h}" '
                f'fill="{BELOW_K_COLOR}"/>'
            )
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ea"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5a6573">'
            f"{round(peak * fraction)}</text>"
        )
    bar_w = slot * 0.38
    for i, bar in enumerate(bars):
        x = left + i * slot + slot * 0.1
        for offset, records, color, what in (
            (0, bar["records_before"], BEFORE_COLOR, "before suppression"),
            (bar_w + 1, bar["records"], AFTER_COLOR, "in the output"),
        ):
            if records:
                h = plot_h * records / peak
                parts.append(
                    f'<rect x="{x + offset:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                    f'fill="{color}"><title>{records} records {what}</title></rect>'
                )
        text = str(bar["min"]) if bar["min"] == bar["max"] else f"{bar['min']}-{bar['max']}"
        parts.append(
            f'<text x="{left + (i + 0.5) * slot:.1f}" y="{top + plot_h + 16}" font-size="11" '
            f'text-anchor="middle" fill="#1d232b">{_e(text)}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="12" text-anchor="middle" '
        'fill="#5a6573">class size (records sharing one quasi-identifier tuple)</text>'
    )
    parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#8a94a1"/>')
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int], classes=None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{classes[index]}"' if classes and classes[index] else ""
        cells = "".join(
            f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>" for i, v in enumerate(row)
        )
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG; no script, no network)."""
    below = report["records_below_k"]
    cards = [
        ("records", report["records"]),
        ("equivalence classes", report["equivalence_classes"]),
        ("smallest class", report["smallest_class"] if report["smallest_class"] is not None else "–"),
        (f"records below k={report['k']} (before)", below["before"] if below["before"] is not None else "–"),
        (f"records below k={report['k']} (output)", below["after"]),
        ("unique share", _pct(report["unique_share"])),
        ("prosecutor risk max", f"{report['prosecutor_risk_max']:.3f}"),
        ("prosecutor risk mean", f"{report['prosecutor_risk_mean']:.3f}"),
    ]
    if report["suppressed"]:
        cards.append(
            ("records suppressed", f"{report['suppressed']['records']} ({_pct(report['suppressed']['share'])})")
        )
    hints = {entry["field"]: entry for entry in report["hints"]}
    qi_rows = [
        [q, report["distinct_values"][q], hints.get(q, {}).get("generalization", ""), hints.get(q, {}).get("hint", "")]
        for q in report["quasi_identifiers"]
    ]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>veil risk report: {_e(report['purpose'] or report['folder'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Re-identification risk: {_e(report['purpose'] or report['folder'])}</h1>",
        f'<p class="meta">output {_e(report["folder"])} · run {_e(report["run_id"] or "–")} · '
        f"k = {report['k']} over {_e(', '.join(report['quasi_identifiers']))} · "
        f"generated {_e(report['generated'])}</p>",
        '<div class="cards">'
        + "".join(f"<div class=card><b>{_e(v)}</b><span>{_e(n)}</span></div>" for n, v in cards)
        + "</div>",
        "<h2>Class sizes</h2>",
        '<p class="legend">records per class size:'
        f'<span style="background:{BEFORE_COLOR}"></span>before suppression'
        f'<span style="background:{AFTER_COLOR}"></span>in the output'
        f'<span style="background:{BELOW_K_COLOR}"></span>sizes below k</p>',
        _svg_histogram(report),
        "<h2>Quasi-identifiers</h2>",
        _table(["field", "distinct values", "generalization", "hint"], qi_rows, {1}),
    ]
    if report["l_diversity"]:
        parts += [
            "<h2>Sensitive fields</h2>",
            "<p>l: the fewest distinct values of the field in any class (null counts as one).</p>",
            _table(["field", "l"], list(report["l_diversity"].items()), {1}),
        ]
    if report["fairness"]:
        rows = [
            [
                e["field"],
                label(e["value"]),
                e["records_before"] if e["records_before"] is not None else "–",
                e["records_after"],
                _pct(e["share_suppressed"]),
                _pct(e["share_before"]),
                _pct(e["share_after"]),
            ]
            for e in report["fairness"]
        ]
        marks = ["warn" if e["warning"] else "" for e in report["fairness"]]
        parts += [
            "<h2>Fairness of suppression</h2>",
            "<p>Per protected group: the share of its records suppressed, and its share of the population "
            "before and after suppression. Rows in red lost more than twice the overall rate.</p>",
            _table(
                ["field", "value", "before", "after", "suppressed", "share before", "share after"],
                rows,
                {2, 3, 4, 5, 6},
                marks,
            ),
        ]
    if report["fairness_warnings"]:
        items = "".join(f"<li>{_e(w)}</li>" for w in report["fairness_warnings"])
        parts += ["<h2>Warnings</h2>", f'<ul class="warn-list">{items}</ul>']
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def manifest_entry(policy: Policy, staging: str) -> dict[str, Any]:
    """The manifest's `k_anonymity` entry of a run, from the summary its pipeline staged."""
    return {**manifest_section(policy, read_summary(staging)), "report": {"json": REPORT_JSON, "html": REPORT_HTML}}


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
        lines += [f"warning: {purpose}: {text}" for text in entry["warnings"]]
        lines.append(f"{purpose}: risk report {FileSystems.join(folder, REPORT_HTML)}")
    return lines
