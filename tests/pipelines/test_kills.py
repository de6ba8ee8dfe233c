"""SIGKILL at random moments and at every publishing step: never a visible incomplete output (issue 15).

Real `veil run` processes over a small input with per-subject keys, killed during start-up,
read, transform and write (random moments) and at each step of publishing (pause points
the processes reach through $VEIL_TEST_PAUSE_AT). Each kill is checked against the
invariants of `failures.assert_consistent`; the next run takes over the dead run's lock and
staging and completes.
"""

import random
import time

import pytest
from failures import assert_consistent, kill, stagings, start, wait_for, world_env
from helpers import cli

# (phase, whether a previous output is there): kills over an empty folder and over a previous output
PHASES = [
    ("publish-start", False),
    ("publish-parts", False),
    ("keys-published", True),
    ("publish-parts", True),
    ("publish-switched", True),
]
RANDOM_KILLS = 15
FULL_RUN_SECONDS = 3.6  # about how long one small run takes here: kills are spread over it


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with world_env(tmp_path_factory.mktemp("kills")) as world:
        yield world


def complete_run(world, out, capfd):
    capfd.readouterr()
    result = cli(*world.run_args(out, "--overwrite", "--quiet"))
    assert result.code == 0, result.err
    result.err += capfd.readouterr().err  # warnings go to the real stderr, past Beam's hidden chatter
    assert stagings(out) == [] and stagings(world.keys) == [], "the next run removes dead runs' staging"
    assert not (out / ".veil-lock").exists()
    assert assert_consistent(world, out) is not None
    return result


def test_kills_at_every_publishing_step_leave_old_or_new_output_and_the_next_run_cleans_up(world, capfd):
    out = world.root / "phases"
    for phase, previous in PHASES:
        if previous and not (out / "_manifest.json").exists():
            complete_run(world, out, capfd)
        before = assert_consistent(world, out)
        process, marker = start(world, *world.run_args(out, "--overwrite", "--quiet"), pause_at=phase)
        wait_for(marker, process)
        kill(process)
        after = assert_consistent(world, out)
        if phase == "publish-switched":
            assert after is not None and after["run_id"] != (before or {}).get("run_id")  # the new one is published
        else:
            assert after == before  # the old output (or none) stays as it was
        assert len(stagings(out)) == 1
    result = complete_run(world, out, capfd)
    assert result.err.count("warning: removed") == 1 and "no longer alive" in result.err
    assert "took over the lock" in result.err


def test_kills_at_random_moments(world, capfd):
    out, rng = world.root / "random", random.Random(15)
    killed_running = 0
    for i in range(RANDOM_KILLS):
        process, _ = start(world, *world.run_args(out, "--overwrite", "--quiet"))
        time.sleep(rng.uniform(0.3, FULL_RUN_SECONDS))
        killed_running += process.poll() is None
        kill(process)
        assert_consistent(world, out)
        if i == RANDOM_KILLS // 2:
            complete_run(world, out, capfd)
    assert killed_running >= RANDOM_KILLS // 2  # most kills hit a running process, not a finished one
    complete_run(world, out, capfd)
