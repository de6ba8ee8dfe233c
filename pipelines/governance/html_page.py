"""The page shell of the governance documents: one self-contained HTML page (inline CSS; no
script, no link, no image, nothing fetched), with every text from a policy escaped."""

import html
from typing import Any

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232b;margin:24px auto;
max-width:1040px;padding:0 16px;background:#fff}
h1{font-size:24px;margin:0 0 8px}h2{font-size:19px;margin:32px 0 6px;border-bottom:1px solid #e3e6ea}
h3{font-size:15px;margin:18px 0 4px}.meta{color:#5a6573;font-size:13px}
code,.field{font:12px ui-monospace,Menlo,Consolas,monospace;color:#5a6573}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{text-align:left;padding:5px 8px;
border:1px solid #dde1e6;vertical-align:top}th{background:#eef1f5;font-weight:600}
"""


def escape(value: Any) -> str:
    """`value` as HTML text (quotes too, so it is safe in an attribute)."""
    return html.escape(str(value), quote=True)


def page(title: str, body: str, css: str = "") -> str:
    """A whole HTML document: `title` (escaped here), `body` (already HTML), the shared CSS plus `css`."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}{css}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
