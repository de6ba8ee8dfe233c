"""Dataflow from the command line: veil stages its own wheel and pinned dependencies, offline.

The `gcp` tests need apache-beam[gcp] (`pip install -c constraints.txt -e ".[gcp]"`; `.ci/run`
installs it and runs them): Beam's `--dry_run` (TestOptions) translates the Dataflow job
without contacting Google Cloud, so the job graph and its staged artifacts can be checked.
"""

import datetime as dt
import zipfile
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from veil.pipelines import dataflow
from veil.pipelines.synthetic import write_customers

DATAFLOW = ["--runner", "DataflowRunner", "--project", "veil-test-project", "--region", "europe-west1"]


@pytest.fixture
def cached_wheel(tmp_path) -> Path:
    """A wheel already in the cache for this version and source (so nothing is built)."""
    root = dataflow.source_root()
    folder = tmp_path / f"{metadata.version('veil')}-{dataflow.source_digest(root)}"
    folder.mkdir()
    wheel = folder / "veil-0-py3-none-any.whl"
    wheel.write_bytes(b"stand-in")
    return wheel


def test_dataflow_jobs_get_the_wheel_and_pinned_requirements(tmp_path, cached_wheel):
    args = dataflow.staging_args(DATAFLOW, cache=tmp_path)
    assert args[: len(DATAFLOW)] == DATAFLOW
    added = args[len(DATAFLOW) :]
    assert added[:2] == ["--extra_package", str(cached_wheel)]
    assert added[2] == "--requirements_file" and added[4:] == ["--requirements_cache", "skip"]
    pins = Path(added[3]).read_text().splitlines()
    assert f"pydantic=={metadata.version('pydantic')}" in pins
    assert f"pyarrow=={metadata.version('pyarrow')}" in pins
    assert f"pydantic_core=={metadata.version('pydantic_core')}" in pins or any(
        p.lower().startswith("pydantic-core==") for p in pins
    )  # a dependency of a dependency
    assert not any(p.lower().startswith(("apache-beam", "apache_beam")) for p in pins)  # in the container
    assert not any(p.lower().startswith(("pytest", "hypothesis", "ruff")) for p in pins)  # test extra only


@pytest.mark.parametrize(
    "packaging",
    [
        ["--sdk_container_image", "europe-docker.pkg.dev/p/r/veil:1"],
        ["--sdk_container_image=europe-docker.pkg.dev/p/r/veil:1"],
        ["--setup_file", "./setup.py"],
        ["--requirements_file=reqs.txt"],
        ["--extra_package", "dist/veil.whl"],
        ["--extra_packages=dist/veil.whl"],
    ],
)
def test_a_job_the_user_packaged_is_left_as_it_is(tmp_path, cached_wheel, packaging):
    assert dataflow.staging_args([*DATAFLOW, *packaging], cache=tmp_path) == [*DATAFLOW, *packaging]


@pytest.mark.parametrize("runner", [[], ["--runner", "DirectRunner"], ["--runner=PrismRunner"]])
def test_other_runners_stage_nothing(tmp_path, runner):
    assert dataflow.staging_args(runner, cache=tmp_path) == runner
    assert not list(tmp_path.iterdir())


def test_the_wheel_is_built_once_per_version_and_source(tmp_path):
    first = dataflow.veil_wheel(tmp_path)
    names = zipfile.ZipFile(first).namelist()
    assert "veil/pipelines/dataflow.py" in names and "veil/keys/keyring.py" in names
    assert all(name.startswith(("veil/", "veil-")) for name in names)
    built = first.stat().st_mtime_ns
    assert dataflow.veil_wheel(tmp_path) == first and first.stat().st_mtime_ns == built
    assert first.parent.name == f"{metadata.version('veil')}-{dataflow.source_digest(dataflow.source_root())}"


POLICY = """version: 1
purpose: support
subject: customer_id
keyset: {keyset}
consent: {{table: consents.parquet}}
erasure: {{table: erasures}}
fields:
  customer_id: {{action: pseudonymize, domain: customer}}
  email: {{action: tokenize, normalize: [strip, lower]}}
  notes: {{action: encrypt}}
"""


class _Translated(Exception):
    """Raised right after the dry run, carrying the translated job (so nothing is published)."""

    def __init__(self, job):
        super().__init__("translated")
        self.job = job


@pytest.mark.gcp
def test_dry_run_translates_the_dataflow_job_with_veils_packages(tmp_path, keyset, monkeypatch):
    from veil.pipelines import job
    from veil.pipelines.rights import init_erasure_table
    from veil.pipelines.run import run_job
    from veil.transforms.policy import load_policy

    write_customers(str(tmp_path / "in.parquet"), 20)
    at = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    consents = {"subject": ["C0000001"], "purpose": ["support"], "granted": [True], "at": [at]}
    pq.write_table(pa.table(consents), tmp_path / "consents.parquet")
    (tmp_path / "support.yaml").write_text(POLICY.format(keyset=keyset))
    policy = load_policy(tmp_path / "support.yaml")
    init_erasure_table(policy)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    original = job.StagedJob.run

    def run_then_stop(self, build, beam_args):
        original(self, build, beam_args)
        raise _Translated(self._result.job)

    monkeypatch.setattr(job.StagedJob, "run", run_then_stop)
    options = [*DATAFLOW, "--temp_location", "gs://veil-test-bucket/tmp", "--dry_run", "True"]
    with pytest.raises(_Translated) as translated:
        run_job([policy], str(tmp_path / "in.parquet"), str(tmp_path / "out"), beam_args=options)

    proto = translated.value.job.proto_pipeline
    names = {t.unique_name for t in proto.components.transforms.values()}
    for step in ("Read", "Sanitize[support]", "Write[support]"):
        assert step in names
    assert any("Consent" in name for name in names) and any("Erasure" in name or "Erased" in name for name in names)
    staged = {
        dependency.role_payload.decode("latin-1")
        for environment in proto.components.environments.values()
        for dependency in environment.dependencies
    }
    assert any("requirements.txt" in name for name in staged)
    assert any(f"veil-{metadata.version('veil')}-py3-none-any.whl" in name for name in staged)
    assert not (tmp_path / "out" / "_manifest.json").exists()
