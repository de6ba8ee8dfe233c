"""Output folders: refuse to clobber, stage aside, move into place only when a run succeeded.

A run writes into `DIR/.veil-staging-<run id>/`; only after the pipeline finished are the
files moved into DIR and `_manifest.json` written last, so a folder with a manifest is
complete and a failed run leaves nothing that looks complete.
"""

import os
import posixpath

from apache_beam.io.filesystems import FileSystems

from veil import _fs
from veil.errors import OutputError

VEIL_FILES = ("part-", "_manifest.json", "_report.")
STAGING = ".veil-staging-"


def _names(folder: str) -> list[str]:
    """Entries of `folder`; local folders list subfolders too (Beam's match lists files only)."""
    if not _fs.is_remote(folder):
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    if not FileSystems.exists(folder):
        return []
    pattern = FileSystems.join(folder, "*")
    return [posixpath.basename(m.path.rstrip("/")) for m in FileSystems.match([pattern])[0].metadata_list]


def check_output(folder: str, overwrite: bool) -> None:
    """Refuse a non-empty `folder` unless `overwrite`, and even then if it holds foreign files."""
    names = [n for n in _names(folder) if not n.startswith(STAGING)]
    if not names:
        return
    if not overwrite:
        raise OutputError(
            f"output {folder} exists and is not empty; choose another folder or "
            "pass --overwrite to replace a previous veil output there"
        )
    foreign = [n for n in names if not n.startswith(VEIL_FILES)]
    if foreign:
        raise OutputError(
            f"output {folder} holds files veil did not write ({', '.join(sorted(foreign)[:5])}); "
            "--overwrite only replaces a previous veil output: choose another folder"
        )


def staging_dir(folder: str, run_id: str) -> str:
    """Where a run writes before it commits."""
    return FileSystems.join(folder, STAGING + run_id)


def _staged(staging: str) -> list[str]:
    return [m.path for m in FileSystems.match([FileSystems.join(staging, "part-*")])[0].metadata_list]


def staged_names(staging: str) -> list[str]:
    """Names of the data files a run staged (what the manifest lists)."""
    return sorted(posixpath.basename(p) for p in _staged(staging))


def commit(folder: str, staging: str, manifest: bytes) -> None:
    """Replace the previous veil output in `folder` by the staged files; manifest last."""
    old = [FileSystems.join(folder, n) for n in _names(folder) if n.startswith(VEIL_FILES)]
    if old:
        FileSystems.delete(old)
    staged = _staged(staging)
    if staged:
        FileSystems.rename(staged, [FileSystems.join(folder, posixpath.basename(p)) for p in staged])
    discard(staging)
    _fs.write_bytes(FileSystems.join(folder, "_manifest.json"), manifest)


def discard(staging: str) -> None:
    """Remove a staging folder and whatever a failed run left in it."""
    if FileSystems.exists(staging):
        FileSystems.delete([staging])
