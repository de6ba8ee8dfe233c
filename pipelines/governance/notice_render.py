"""The customer notice as Markdown (`notice.md`) and as a self-contained HTML page (`notice.html`).

Pure: a `Notice` in, text out. Every text from a policy (descriptions, reasons, owner,
recipients) is escaped for the format, so it reads as written and cannot inject markup.
"""

import re

from veil.pipelines.governance.html_page import escape, page
from veil.pipelines.governance.notice import Notice

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def markdown_text(text: str) -> str:
    """`text` with Markdown's special characters backslash-escaped (and `&` as an entity)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;"))


def to_markdown(notice: Notice) -> str:
    """The notice as Markdown: a title, the intro, then per purpose a section of headed parts."""
    lines = [f"# {markdown_text(notice.title)}", ""]
    for paragraph in notice.intro:
        lines += [markdown_text(paragraph), ""]
    for section in notice.sections:
        lines += [f"## {markdown_text(section.purpose.capitalize())}", ""]
        if section.description:
            lines += [f"*{markdown_text(section.description)}*", ""]
        for part in section.parts:
            lines += [f"### {markdown_text(part.heading)}", ""]
            for paragraph in part.paragraphs:
                lines += [markdown_text(paragraph), ""]
            if part.entries:
                lines += [f"- {markdown_text(entry.text)} (`{entry.field}`)" for entry in part.entries]
                lines.append("")
    return "\n".join(lines)


def to_html(notice: Notice) -> str:
    """The notice as one self-contained HTML page."""
    body = [f"<h1>{escape(notice.title)}</h1>"]
    body += [f"<p>{escape(paragraph)}</p>" for paragraph in notice.intro]
    for section in notice.sections:
        body.append(f'<section id="{escape(section.purpose)}"><h2>{escape(section.purpose.capitalize())}</h2>')
        if section.description:
            body.append(f'<p class="meta">{escape(section.description)}</p>')
        for part in section.parts:
            body.append(f"<h3>{escape(part.heading)}</h3>")
            body += [f"<p>{escape(paragraph)}</p>" for paragraph in part.paragraphs]
            if part.entries:
                items = "".join(
                    f'<li>{escape(entry.text)} <span class="field">{escape(entry.field)}</span></li>'
                    for entry in part.entries
                )
                body.append(f"<ul>{items}</ul>")
        body.append("</section>")
    return page(notice.title, "\n".join(body))
