"""Who is writing a folder: owner records, liveness by pid, and exclusive folder locks.

A veil run (and `veil erase`) holds `DIR/.veil-lock` while it writes DIR: a small JSON file
naming the run id, host, pid and when it was created. It is created atomically and
exclusively (written aside, then `link(2)`ed into place, which fails if a lock exists, as
`O_EXCL` does), so it is never seen half written. A second writer is refused at once (or,
with `wait`, waits for the lock). A lock whose process is gone (same host, pid not alive,
or alive but started after the lock was made) is stale and taken over, with a warning; the
take-over itself runs under `flock(2)` on `DIR/.veil-lock.takeover`, so two writers cannot
both take over one stale lock. Locks are taken on local folders only: object stores (gs://)
have no exclusive create through Beam's FileSystems, so remote outputs are not locked.
"""

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from typing import Optional

from veil import _fs
from veil.errors import OutputError
from veil.transforms.audit import utc_now

LOCK = ".veil-lock"
_POLL_SECONDS = 0.05


def _process_start(pid: int) -> Optional[int]:
    """The start time of `pid` in clock ticks since boot (Linux /proc), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[19]) if fields[0] != b"Z" else None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    if os.path.exists("/proc/self/stat"):
        return _process_start(pid) is not None  # a zombie (killed, not yet reaped) is not alive
    return True


@dataclass(frozen=True)
class Owner:
    """The process that writes a folder: recorded in locks and in staging folders.

    Attributes:
        run_id: the run's id.
        host: the host name.
        pid: the process id.
        created: when the record was made (UTC, ISO 8601).
        started: the process's start time in clock ticks since boot (Linux; None elsewhere).
    """

    run_id: str
    host: str
    pid: int
    created: str
    started: Optional[int] = None

    @classmethod
    def current(cls, run_id: str) -> "Owner":
        """This process, running `run_id`."""
        return cls(run_id, socket.gethostname(), os.getpid(), utc_now(), _process_start(os.getpid()))

    @classmethod
    def parse(cls, data: bytes) -> Optional["Owner"]:
        """The owner recorded in `data`, or None when it is not an owner record."""
        try:
            doc = json.loads(data)
            owner = cls(str(doc["run_id"]), str(doc["host"]), int(doc["pid"]), str(doc["created"]), doc.get("started"))
        except (ValueError, TypeError, KeyError):
            return None
        return owner if owner.started is None or isinstance(owner.started, int) else None

    def to_json(self) -> bytes:
        """The record as JSON."""
        return (json.dumps(asdict(self), sort_keys=True) + "\n").encode("utf-8")

    def alive(self) -> bool:
        """Whether the process may still be running (always True for another host: it cannot be checked)."""
        if self.host != socket.gethostname():
            return True
        if not _pid_alive(self.pid):
            return False
        return self.started is None or _process_start(self.pid) == self.started

    def describe(self) -> str:
        """`run R (host H, pid P, since T)`, for messages."""
        return f"run {self.run_id} (host {self.host}, pid {self.pid}, since {self.created})"


def read_owner(path: str) -> Optional[Owner]:
    """The owner recorded in the file at `path` (None when missing or unreadable)."""
    try:
        return Owner.parse(_fs.read_bytes(path))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None


def _create_exclusive(path: str, data: bytes) -> bool:
    """Create `path` holding `data`, atomically; False if it exists."""
    aside = f"{path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    with open(aside, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(aside, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(aside)


def _take_over_if_stale(path: str, warn: Callable[[str], None], what: str) -> Optional[Owner]:
    """Remove the lock at `path` if its owner is gone; returns the live owner otherwise."""
    with open(f"{path}.takeover", "a") as guard:
        fcntl.flock(guard.fileno(), fcntl.LOCK_EX)
        holder = read_owner(path)
        if holder is not None and holder.alive():
            return holder
        if holder is None and os.path.exists(path) and time.time() - os.path.getmtime(path) < 10:
            return Owner("unknown", "unknown", 0, "just now")  # unreadable and fresh: not ours to judge yet
        try:
            os.unlink(path)
        except FileNotFoundError:
            return None
        gone = holder.describe() if holder else "an unreadable lock"
        warn(f"{what}: took over the lock of {gone}, whose process is gone")
    return None


@contextmanager
def folder_lock(
    folder: str, run_id: str, *, warn: Callable[[str], None], wait: float = 0.0, what: str = ""
) -> Iterator[Optional[Owner]]:
    """Hold `folder`'s lock for `run_id` while the block runs (no-op for remote folders).

    Raises:
        OutputError: another live process holds the lock (after `wait` seconds, if given).
    """
    if _fs.is_remote(folder):
        yield None
        return
    created = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    path, me = os.path.join(folder, LOCK), Owner.current(run_id)
    deadline = time.monotonic() + wait
    while not _create_exclusive(path, me.to_json()):
        holder = _take_over_if_stale(path, warn, what or folder)
        if holder is None:
            continue
        if time.monotonic() >= deadline:
            raise OutputError(
                f"{what or folder} is in use by {holder.describe()}; wait for it to finish, or choose another "
                f"folder (if that process is gone on host {holder.host}, remove {path})"
            )
        time.sleep(_POLL_SECONDS)
    try:
        yield me
    finally:
        if read_owner(path) == me:
            os.unlink(path)
        if created:
            with suppress(OSError):  # a run that failed before writing leaves no empty folder behind
                os.remove(f"{path}.takeover")
                os.rmdir(folder)
