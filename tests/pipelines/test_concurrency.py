"""Two runs into one output, two erasures at once, killed erasures, readers while keys are appended (issue 15)."""

import os
import random
import socket
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from failures import assert_consistent, key_table, kill, stagings, start, wait_for, world_env
from helpers import cli

from veil.keys import open_keyring
from veil.pipelines import outputs
from veil.pipelines.locks import LOCK, Owner, folder_lock
from veil.pipelines.subject_keys import delete_subject_keys, key_files, publish_new_keys
from veil.transforms.subjects import subject_ref


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with world_env(tmp_path_factory.mktemp("concurrency")) as world:
        result = cli(*world.run_args(world.root / "first", "--quiet"))  # every subject gets its key
        assert result.code == 0, result.err
        yield world


def ref(world, subject: str) -> str:
    return subject_ref(open_keyring(str(world.root / "keyset.json")), subject)


def erased(world) -> list[str]:
    return [
        r for p in sorted(world.erasures.glob("erased-*.parquet")) for r in pq.read_table(p)["subject_ref"].to_pylist()
    ]


def test_a_second_run_into_the_same_output_is_refused_at_once_naming_the_first(world, capfd):
    out = world.root / "contested"
    first, marker = start(world, *world.run_args(out, "--quiet"), pause_at="publish-start")
    wait_for(marker, first)
    began = time.monotonic()
    second = cli(*world.run_args(out, "--quiet"))
    assert time.monotonic() - began < 5  # at once: no waiting for the first run
    holder = Owner.parse((out / LOCK).read_bytes())
    assert second.code == 2 and second.err.count("\n") == 1 and second.err.startswith("error: output ")
    for fact in (holder.run_id, f"host {socket.gethostname()}", f"pid {first.pid}"):
        assert fact in second.err
    assert assert_consistent(world, out) is None  # the first run's half is not visible, the second wrote nothing
    kill(first)
    capfd.readouterr()
    again = cli(*world.run_args(out, "--quiet"))
    warnings = capfd.readouterr().err
    assert again.code == 0, again.err
    assert f"took over the lock of run {holder.run_id}" in warnings and f"pid {first.pid}" in warnings
    assert stagings(out) == [] and assert_consistent(world, out)["run_id"] != holder.run_id


def test_a_lock_of_a_live_process_is_not_taken_over_and_a_reused_pid_is(tmp_path):
    live = Owner("other-run", socket.gethostname(), os.getppid(), "earlier", None)
    (tmp_path / LOCK).write_bytes(live.to_json())
    with pytest.raises(Exception, match="other-run"), folder_lock(str(tmp_path), "me", warn=print):
        pass
    reused = Owner("old-run", socket.gethostname(), os.getppid(), "earlier", started=1)  # same pid, other start
    (tmp_path / LOCK).write_bytes(reused.to_json())
    said = []
    with folder_lock(str(tmp_path), "me", warn=said.append) as me:
        assert Owner.parse((tmp_path / LOCK).read_bytes()) == me
    assert not (tmp_path / LOCK).exists() and len(said) == 1 and "old-run" in said[0]


def test_staging_of_a_live_run_is_left_alone(world, tmp_path):
    live = outputs.open_staging(str(tmp_path), "live-run")  # owned by this (live) process
    said = []
    assert outputs.remove_stale_staging(str(tmp_path), said.append) == [] and os.path.isdir(live) and said == []


def test_two_erasures_at_once_both_take_effect(world):
    subjects = ["C0000001", "C0000002"]
    processes = [start(world, "erase", world.policy, "--subject", s)[0] for s in subjects]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    refs = {ref(world, s) for s in subjects}
    assert refs <= set(erased(world))
    assert not refs & {k["subject_ref"] for k in key_table(world)}  # both subjects' keys are shredded


def test_an_erasure_killed_after_recording_is_completed_by_the_next(world):
    process, marker = start(world, "erase", world.policy, "--subject", "C0000005", pause_at="erase-recorded")
    wait_for(marker, process)
    kill(process)
    recorded = ref(world, "C0000005")
    assert recorded in erased(world) and recorded in {k["subject_ref"] for k in key_table(world)}
    assert cli("erase", world.policy, "--subject", "C0000006").code == 0
    assert not {recorded, ref(world, "C0000006")} & {k["subject_ref"] for k in key_table(world)}


def test_an_erasure_killed_at_a_random_moment_is_recorded_whole_or_not_at_all(world):
    rng = random.Random(10)
    for subject in ("C0000007", "C0000008", "C0000009"):
        before = erased(world)
        process, _ = start(world, "erase", world.policy, "--subject", subject, "--subject", "C0000010")
        time.sleep(rng.uniform(0.2, 1.6))
        kill(process)
        added = erased(world)[len(before) :] if erased(world)[: len(before)] == before else None
        assert added is not None  # earlier erasures untouched
        assert sorted(set(added)) in ([], sorted({ref(world, subject), ref(world, "C0000010")}))
        refs = [k["subject_ref"] for k in key_table(world)]
        assert len(refs) == len(set(refs))


def test_readers_never_see_a_partial_key_file_while_keys_are_appended_and_rewritten(tmp_path):
    table = tmp_path / "keys"
    table.mkdir()
    schema = pa.schema([("subject_ref", pa.string()), ("key_id", pa.string())])
    rows = pa.table({"subject_ref": [f"r{i}" for i in range(20000)], "key_id": ["k"] * 20000}, schema=schema)
    stop, failures = threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            for path in key_files(str(table)):
                try:  # one open handle, as veil's readers use (FileSystems.open): one version of the file
                    with open(path, "rb") as handle:
                        assert 20000 - 6 <= pq.read_table(handle).num_rows <= 20000  # each rewrite drops one row
                except Exception as error:  # a torn or vanished file
                    failures.append(repr(error))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    for run in range(6):
        staging = outputs.open_staging(str(table), f"run{run}")
        pq.write_table(rows, os.path.join(staging, "keys-00000-of-00001.parquet"))
        publish_new_keys(staging, str(table), f"run{run}")
        delete_subject_keys(str(table), {f"r{run}"})
    stop.set()
    for reader in readers:
        reader.join()
    assert failures == [] and len(key_files(str(table))) == 6
