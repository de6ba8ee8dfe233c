"""Output folders: refuse to clobber, stage aside, publish so that no incomplete output is ever visible.

A run writes into `DIR/.veil-staging-<run id>/` (with `_owner.json` naming the run, host and
pid) while it holds DIR's lock (`pipelines/locks.py`). Publishing keeps one invariant at
every instant, even under SIGKILL: **the visible `_manifest.json` lists only files that are
present, and they are the files of the run it describes.**

1. The manifest is staged first, with `_publishing.json` (the files this run adds and the
   files of the run it replaces).
2. The staged parts are moved into DIR under names unique to the run (`part-<run>-...`), so
   they never clobber a part the visible manifest lists.
3. The staged manifest is renamed over the old one: one atomic step switches readers from
   the old output (or none) to the new one.
4. Only then are the old run's parts and report removed, and the staging folder.

A kill before step 3 leaves the old output as it was, plus parts no manifest lists; a kill
after it leaves the new output, plus old parts no manifest lists. Either way the next run
into DIR finds the dead run's staging folder, removes those unlisted parts (its journal
names them), removes the staging folder and says so once.
"""

import json
import os
import posixpath
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

from apache_beam.io.filesystems import FileSystems

from veil import _fs
from veil.errors import OutputError
from veil.pipelines.locks import Owner, folder_lock, read_owner

VEIL_FILES = ("part-", "_manifest.json", "_report.")
STAGING = ".veil-staging-"
OWNER = "_owner.json"
JOURNAL = "_publishing.json"
MANIFEST = "_manifest.json"
PAUSE_AT = "VEIL_TEST_PAUSE_AT"  # tests only: a phase name; see pause_point
_UNOWNED_GRACE_SECONDS = 60  # a staging folder without an owner record younger than this may be starting


def pause_point(phase: str) -> None:
    """Tests only: when $VEIL_TEST_PAUSE_AT names `phase`, touch $VEIL_TEST_PAUSE_FILE and sleep (to be killed)."""
    if os.environ.get(PAUSE_AT) != phase:
        return
    with open(os.environ["VEIL_TEST_PAUSE_FILE"], "w") as marker:
        marker.write(phase)
    time.sleep(120)


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
    names = [n for n in _names(folder) if not n.startswith(".veil-")]  # staging folders, the lock
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


def open_staging(folder: str, run_id: str) -> str:
    """Create the run's staging folder in `folder`, recording its owner (this process); returns its path."""
    staging = staging_dir(folder, run_id)
    _fs.write_bytes(FileSystems.join(staging, OWNER), Owner.current(run_id).to_json())
    return staging


def _stale(staging: str) -> bool:
    owner = read_owner(FileSystems.join(staging, OWNER))
    if owner is not None:
        return not owner.alive()
    if _fs.is_remote(staging):
        return False  # no owner record to judge by: leave it
    return time.time() - os.path.getmtime(staging) > _UNOWNED_GRACE_SECONDS


def remove_stale_staging(folder: str, warn: Callable[[str], None]) -> list[str]:
    """Remove the staging folders in `folder` of runs no longer alive, undoing their half-done publishing.

    Call it while holding the folder's lock. Says so once through `warn`; returns the run ids removed.
    """
    removed = []
    for name in _names(folder):
        staging = FileSystems.join(folder, name)
        if name.startswith(STAGING) and _stale(staging):
            _finish_or_undo(folder, staging)
            discard(staging)
            removed.append(name[len(STAGING) :])
    if removed:
        warn(
            f"removed {len(removed)} staging folder{'s' if len(removed) > 1 else ''} in {folder} of runs "
            f"no longer alive ({', '.join(removed)})"
        )
    return removed


def _listed(folder: str) -> tuple[str | None, list[str]]:
    """The run id and files of the visible manifest in `folder` (None, [] when there is none)."""
    try:
        manifest = json.loads(_fs.read_bytes(FileSystems.join(folder, MANIFEST)))
        return manifest.get("run_id"), list(manifest.get("output", {}).get("files", []))
    except (FileNotFoundError, ValueError, AttributeError):
        return None, []


def _finish_or_undo(folder: str, staging: str) -> None:
    """A dead run's publishing: finish removing the old files if its manifest is visible, else remove its parts."""
    try:
        journal = json.loads(_fs.read_bytes(FileSystems.join(staging, JOURNAL)))
    except (FileNotFoundError, ValueError):
        return  # it never started publishing: nothing of it is in `folder`
    run_id, listed = _listed(folder)
    doomed = journal["replaces"] if run_id == journal["run_id"] else journal["adds"]
    _delete_present(folder, [n for n in doomed if n not in listed])


def _delete_present(folder: str, names: list[str]) -> None:
    present = set(_names(folder))
    paths = [FileSystems.join(folder, n) for n in names if n in present]
    if paths:
        FileSystems.delete(paths)


def _staged(staging: str) -> list[str]:
    return sorted(m.path for m in FileSystems.match([FileSystems.join(staging, "part-*")])[0].metadata_list)


def _published_name(staging: str, staged_path: str) -> str:
    """A staged `part-00000-of-00002.parquet` of run `..-1a2b3c4d` is published as `part-1a2b3c4d-00000-...`."""
    tag = posixpath.basename(staging.rstrip("/"))[len(STAGING) :].rsplit("-", 1)[-1]
    return f"part-{tag}-{posixpath.basename(staged_path)[len('part-') :]}"


def published_names(staging: str, staged: Sequence[str]) -> list[str]:
    """The names the staged data files (paths in `staging`) have once published (what the manifest lists)."""
    return [_published_name(staging, p) for p in sorted(staged)]


def staged_names(staging: str) -> list[str]:
    """Names the data files a run staged will have once published (what the manifest lists)."""
    return published_names(staging, _staged(staging))


def commit(folder: str, staging: str, manifest: bytes, staged: Sequence[str] | None = None) -> None:
    """Replace the previous veil output in `folder` by the staged files, by the steps the module describes.

    `staged` names the data files (paths in `staging`) when the caller knows them (the files a
    pipeline's write reported), else they are listed. A part an earlier attempt of the same
    commit already moved is left in place.
    """
    staged = sorted(staged) if staged is not None else _staged(staging)
    adds = published_names(staging, staged)
    run_id = json.loads(manifest).get("run_id")
    replaces = [n for n in _names(folder) if n.startswith(VEIL_FILES) and n != MANIFEST and n not in adds]
    staged_manifest = FileSystems.join(staging, MANIFEST)
    _fs.write_bytes(staged_manifest, manifest)
    journal = {"run_id": run_id, "adds": adds, "replaces": replaces}
    _fs.write_bytes(FileSystems.join(staging, JOURNAL), json.dumps(journal).encode("utf-8"))
    pause_point("publish-start")
    for path, name in zip(staged, adds):
        target = FileSystems.join(folder, name)
        if FileSystems.exists(path) or not FileSystems.exists(target):
            FileSystems.rename([path], [target])
        pause_point("publish-parts")
    _switch_manifest(staged_manifest, FileSystems.join(folder, MANIFEST))
    pause_point("publish-switched")
    _delete_present(folder, replaces)
    discard(staging)


def _switch_manifest(staged: str, target: str) -> None:
    """Put the staged manifest in place of the visible one in one atomic step (local); remote: copy then delete."""
    if not _fs.is_remote(target):
        os.replace(staged, target)
        return
    _fs.write_bytes(target, _fs.read_bytes(staged))  # one object write: readers see the old or the new manifest
    FileSystems.delete([staged])


def discard(staging: str) -> None:
    """Remove a staging folder and whatever a failed run left in it."""
    if FileSystems.exists(staging):
        FileSystems.delete([staging])


def warn_on_stderr(line: str) -> None:
    """The default for `warn`: one `warning:` line on stderr."""
    print(f"warning: {line}", file=sys.stderr)


@contextmanager
def claim(folders: Sequence[str], run_id: str, *, warn: Callable[[str], None] = warn_on_stderr) -> Iterator[None]:
    """Hold the lock of every output folder while the block runs, after removing dead runs' staging folders.

    Raises:
        OutputError: another live run writes one of `folders`; names it (run id, host, pid).
    """
    with ExitStack() as held:
        for folder in sorted(set(folders)):
            held.enter_context(folder_lock(folder, run_id, warn=warn, what=f"output {folder}"))
        for folder in sorted(set(folders)):
            remove_stale_staging(folder, warn)
        yield
