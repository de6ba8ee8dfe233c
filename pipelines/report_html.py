"""The risk report as one self-contained HTML page (inline CSS and SVG; no script, no network).

Pure: a report dict (see `veil.pipelines.report.build_report`) in, the page's text out.
"""

import html
from collections.abc import Sequence
from typing import Any

from veil.transforms.anonymity import label

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


def _generalization_html(generalization: dict[str, Any]) -> list[str]:
    """The chosen node of `on_violation: generalize` and the runner-ups the search evaluated."""
    nodes = [("chosen", generalization["chosen"]), ("finest (plain suppression)", generalization["finest"])]
    nodes += [("runner-up", node) for node in generalization["runner_ups"]]
    rows = [
        [
            what,
            ", ".join(f"{name} {level['setting']}" for name, level in node["levels"].items()),
            f"{node['loss']:.3f}",
            node["suppressed"],
            _pct(node["share_suppressed"]),
            "yes" if node["qualifies"] else node["why_not"] or "no",
        ]
        for what, node in nodes
    ]
    return [
        "<h2>Generalization</h2>",
        f"<p>The search evaluated {generalization['nodes_evaluated']} of {generalization['lattice_size']} nodes "
        f"of the lattice (at most {_pct(generalization['max_suppression'])} suppressed"
        f"{', fair to every protected group' if generalization['fair'] else ''}); loss is the mean over "
        "quasi-identifiers of level / (levels - 1).</p>",
        _table(["node", "levels", "loss", "suppressed", "share", "qualifies"], rows, {2, 3, 4}),
    ]


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
    if report.get("generalization"):
        parts += _generalization_html(report["generalization"])
    if report["fairness_warnings"]:
        items = "".join(f"<li>{_e(w)}</li>" for w in report["fairness_warnings"])
        parts += ["<h2>Warnings</h2>", f'<ul class="warn-list">{items}</ul>']
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
