"""`veil explain`: write the customer notice and the data map of some policies into a folder.

`DIR/notice.md`, `DIR/notice.html` (`notice`, `notice_render`), `DIR/data-map.json` and
`DIR/data-map.html` (`data_map`, `data_map_html`). Local folders or any Beam FileSystems URI.
"""

import json
import posixpath
from collections.abc import Sequence
from pathlib import Path

from veil import _fs
from veil.pipelines.governance.data_map import build_data_map
from veil.pipelines.governance.data_map_html import render_data_map
from veil.pipelines.governance.notice import build_notice
from veil.pipelines.governance.notice_render import to_html, to_markdown
from veil.transforms.policy import Policy

NOTICE_MD, NOTICE_HTML, DATA_MAP_JSON, DATA_MAP_HTML = "notice.md", "notice.html", "data-map.json", "data-map.html"


def write_explain(policies: Sequence[Policy], folder: str) -> list[str]:
    """Write the four documents of `policies` into `folder`; returns their paths (notice first).

    Raises:
        ConfigError: two policies of one purpose.
    """
    notice, data_map = build_notice(policies), build_data_map(policies)
    join = posixpath.join if _fs.is_remote(folder) else lambda *parts: str(Path(*parts))
    documents = {
        NOTICE_MD: to_markdown(notice),
        NOTICE_HTML: to_html(notice),
        DATA_MAP_JSON: json.dumps(data_map, indent=2) + "\n",
        DATA_MAP_HTML: render_data_map(data_map),
    }
    paths = []
    for name, text in documents.items():
        path = join(folder, name)
        _fs.write_bytes(path, text.encode("utf-8"))
        paths.append(path)
    return paths
