"""The Dataflow Flex Template: its metadata declares `veil run`'s options, and its entry point builds
the pipeline `veil run` runs and returns once it is submitted. Offline: nothing is submitted."""

import json
import re
from pathlib import Path

import apache_beam as beam
import pytest
import typer

from veil.pipelines import flex_template
from veil.pipelines.cli import app
from veil.pipelines.job import OUTPUT_FORMATS
from veil.pipelines.run import run_job
from veil.pipelines.synthetic import write_customers
from veil.pipelines.verify import MODES
from veil.transforms.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
METADATA = json.loads((ROOT / "deploy" / "dataflow" / "metadata.json").read_text())
PARAMETERS = {p["name"]: p for p in METADATA["parameters"]}


def _run_command_options() -> dict[str, bool]:
    """`veil run`'s option names -> whether required, and its POLICIES argument."""
    command = typer.main.get_command(app).commands["run"]
    return {opt: param.required for param in command.params for opt in param.opts}


def test_the_parameters_are_veil_runs_options_with_the_same_requiredness():
    assert tuple(PARAMETERS) == flex_template.PARAMETERS
    options = _run_command_options()
    assert "policies" in options and options["policies"]  # `policy` is veil run's POLICY argument
    for name, parameter in PARAMETERS.items():
        required = not parameter.get("isOptional", False)
        if name != "policy":
            assert options[f"--{name}"] == required, name
        assert parameter["helpText"] and parameter["label"] and parameter["regexes"]
    known, beam_args = flex_template.parse(
        ["--policy=/p.yaml", "--input=/in", "--output=/out", "--keyset=/k.json", "--format=avro", "--project=p"]
    )
    expected = {"policy": "/p.yaml", "input": "/in", "output": "/out", "keyset": "/k.json", "format": "avro"}
    assert vars(known) == {**expected, "verify": "fail"}
    assert beam_args == ["--project=p"]
    with pytest.raises(SystemExit):
        flex_template.parse(["--input=/in", "--output=/out"])  # the policy is required, as in metadata.json


def _accepts(name: str, value: str) -> bool:
    return all(re.fullmatch(regex, value) for regex in PARAMETERS[name]["regexes"])


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_each_regex_accepts_its_documented_example(name):
    example = re.search(r"Example: (\S+)$", PARAMETERS[name]["helpText"]).group(1)
    assert _accepts(name, example)


def test_the_regexes_accept_real_values_and_refuse_wrong_ones():
    assert _accepts("policy", "gs://b-1/policies/analytics.yml") and _accepts("policy", "/template/p.yaml")
    assert not _accepts("policy", "gs://b/policies/analytics.json") and not _accepts("policy", "analytics.yaml")
    assert _accepts("input", "gs://bucket/in/*.avro") and _accepts("input", "gs://bucket/in/")
    assert not _accepts("input", "s3://bucket/in.parquet") and not _accepts("input", "gs://B/in.parquet")
    assert _accepts("output", "gs://bucket/views/analytics") and not _accepts("output", "gs://bucket/views/*")
    assert _accepts("keyset", "gs://bucket/keys/keyset.json") and not _accepts("keyset", "gcp-kms://projects/p")
    assert [f for f in OUTPUT_FORMATS if _accepts("format", f)] == list(OUTPUT_FORMATS)
    assert not _accepts("format", "xml") and not _accepts("format", "parquet,csv")
    assert [m for m in MODES if _accepts("verify", m)] == list(MODES) and not _accepts("verify", "true")


class _Built(Exception):
    """Raised instead of running a pipeline: it carries the labels of the built graph."""

    def __init__(self, labels):
        super().__init__("built")
        self.labels = labels


def _labels(pipeline: beam.Pipeline) -> set[str]:
    return {t.unique_name for t in pipeline.to_runner_api().components.transforms.values()}


class _Submitted:
    """A stand-in for a runner's result: a launcher must not wait for it."""

    def __init__(self, labels):
        self.labels = labels

    def wait_until_finish(self):
        raise AssertionError("the Flex Template launcher waited for the job")


def test_the_entry_point_builds_veil_runs_pipeline_and_returns_without_waiting(tmp_path, keyset, monkeypatch):
    write_customers(str(tmp_path / "in.parquet"), 30)
    policy = ROOT / "configs" / "analytics.yaml"
    args = ["--input", str(tmp_path / "in.parquet"), "--keyset", keyset]

    def refuse_to_run(pipeline):
        raise _Built(_labels(pipeline))

    monkeypatch.setattr(beam.Pipeline, "run", refuse_to_run)
    with pytest.raises(_Built) as built:
        run_job([load_policy(policy)], args[1], str(tmp_path / "run"), keyset=keyset)
    monkeypatch.setattr(beam.Pipeline, "run", lambda pipeline: _Submitted(_labels(pipeline)))
    result = flex_template.launch(["--policy", str(policy), *args, "--output", str(tmp_path / "flex")])

    assert isinstance(result, _Submitted)
    assert result.labels == built.value.labels
    steps = {"Read", "Sanitize[analytics]", "KAnonymity[analytics]", "Write[analytics]", "Verify[analytics]", "Publish"}
    assert steps <= result.labels
    left = sorted(p.name for p in (tmp_path / "flex").iterdir())
    assert len(left) == 1 and left[0].startswith(".veil-staging-")  # the job's to publish, not removed
    assert not (tmp_path / "flex" / "_manifest.json").exists() and not (tmp_path / "flex" / ".veil-lock").exists()
