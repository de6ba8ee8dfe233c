"""The Dataflow Flex Template's entry point: build `veil run`'s pipeline and submit it, without waiting.

Dataflow's template launcher runs `deploy/dataflow/launch.py` (which calls `main`) with the
template's parameters as options (`--policy`, `--input`, `--output`, and optionally
`--keyset`, `--format` and `--verify`; `deploy/dataflow/metadata.json` declares them) followed by the
job's Beam options. A launcher must return once the job is submitted (Dataflow's Flex
Template guide: do not call `wait_until_finish`), so publishing is the pipeline's own last
stage (`veil.pipelines.publish`): the job publishes its views when everything is written,
and a job that fails before that publishes nothing.
"""

import argparse
import logging
from collections.abc import Sequence

from veil.pipelines.job import OUTPUT_FORMATS
from veil.pipelines.run import RunJob
from veil.pipelines.verify import MODES
from veil.transforms.policy import load_policy

# the template's parameters: each is `veil run`'s option of that name (`policy` its POLICY argument)
PARAMETERS = ("policy", "input", "output", "keyset", "format", "verify")


def parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The template's parameters and the Beam options that follow them."""
    parser = argparse.ArgumentParser(prog="veil-flex-template", allow_abbrev=False)
    parser.add_argument("--policy", required=True, help="the policy YAML (gs:// or a path in the image)")
    parser.add_argument("--input", required=True, help="input file, folder or glob")
    parser.add_argument("--output", required=True, help="output folder (new, or empty)")
    parser.add_argument("--keyset", default=None, help="keyset path, overriding the policy's")
    parser.add_argument("--format", default="parquet", choices=OUTPUT_FORMATS, help="output format")
    parser.add_argument("--verify", default="fail", choices=MODES, help="check the view against the input")
    known, beam_args = parser.parse_known_args(argv)
    return known, beam_args


def launch(argv: Sequence[str] | None = None):
    """Build the run's pipeline from the template's parameters and submit it; returns the runner's result."""
    known, beam_args = parse(argv)
    run = RunJob(
        [load_policy(known.policy)],
        known.input,
        known.output,
        output_format=known.format,
        keyset=known.keyset,
        verify=known.verify,
    )
    return run.job.launch(run.build, beam_args)


def main(argv: Sequence[str] | None = None) -> None:
    """The launcher's program: submit the job, log its id, return (errors propagate: the launch fails)."""
    logging.getLogger().setLevel(logging.INFO)
    launch(argv)
    logging.info("veil: job submitted; its last stage publishes the view")
