"""Read and write small files by path or URI (used by keys, transforms and pipelines alike).

Local paths use the file system directly (fast, and `veil validate` need not import Beam);
any path with a scheme (`gs://`, `s3://`, ...) goes through Beam's `FileSystems`, so keysets
and tables can live where the workers can reach them.
"""

import os
import re
from pathlib import Path

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_remote(path: str) -> bool:
    """True for URIs with a scheme, which need Beam's FileSystems."""
    return bool(_SCHEME.match(path))


def read_bytes(path: str) -> bytes:
    """The whole content of `path`; `FileNotFoundError` if it does not exist."""
    if not is_remote(path):
        return Path(path).read_bytes()
    from apache_beam.io.filesystems import FileSystems

    if not FileSystems.exists(path):
        raise FileNotFoundError(path)
    with FileSystems.open(path) as handle:
        return handle.read()


def exists(path: str) -> bool:
    """Whether `path` exists."""
    if not is_remote(path):
        return Path(path).exists()
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.exists(path)


def write_bytes(path: str, data: bytes, *, private: bool = False) -> None:
    """Replace `path` with `data`; `private` makes a local file readable by its owner only."""
    if is_remote(path):
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.create(path) as handle:
            handle.write(data)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(staging, target)
