"""The staged-job skeleton every file job shares: check, stage, run, count, commit; nothing left on failure."""

import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics import Metrics

from veil.errors import OutputError
from veil.pipelines.job import StagedJob, collect
from veil.transforms.beam import metrics_namespace


def write_lines(staging: str, lines: list[str]):
    def build(pipeline: beam.Pipeline) -> None:
        counter = Metrics.counter(metrics_namespace("p"), "written")

        def counted(line: str) -> str:
            counter.inc()
            return line

        _ = (
            pipeline
            | beam.Create(lines)
            | beam.Map(counted)
            | beam.io.WriteToText(f"{staging}/part", file_name_suffix=".txt", num_shards=1)
        )

    return build


def test_a_job_stages_counts_and_commits_with_the_manifest_last(tmp_path):
    out = tmp_path / "out"
    with StagedJob([str(out)], overwrite=False) as job:
        staging = job.stage(str(out))
        assert staging == job.stage(str(out)) and job.run_id in staging
        job.run(write_lines(staging, ["a", "b", "c"]), [])
        assert job.counts("p") == {"written": 3}
        assert job.runner == "DirectRunner" and job.started <= job.finished
        files = job.staged_files(str(out))
        assert len(files) == 1 and files[0].startswith("part-")
        job.commit(str(out), {"files": files})
    assert sorted(p.name for p in out.iterdir()) == sorted([*files, "_manifest.json"])
    assert json.loads((out / "_manifest.json").read_text()) == {"files": files}
    assert (out / files[0]).read_text().split() == ["a", "b", "c"]


def test_a_failing_pipeline_leaves_no_staging_folder(tmp_path):
    out = tmp_path / "out"

    def boom(line: str) -> str:
        raise ValueError("no")

    def build(pipeline: beam.Pipeline) -> None:
        _ = pipeline | beam.Create(["a"]) | beam.Map(boom) | beam.io.WriteToText(f"{job.stage(str(out))}/part")

    job = StagedJob([str(out)], overwrite=False)
    with pytest.raises(Exception, match="no"), job:
        job.run(build, [])
    assert not out.exists() or list(out.iterdir()) == []


def test_a_refusal_after_the_run_removes_every_uncommitted_staging_folder(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    with pytest.raises(RuntimeError, match="refused"), StagedJob([str(first), str(second)], False) as job:
        job.run(write_lines(job.stage(str(first)), ["a"]), [])
        job.stage(str(second))
        job.commit(str(first), {"ok": True})
        assert (first / "_manifest.json").is_file()
        raise RuntimeError("refused after counting")
    assert (first / "_manifest.json").is_file()  # committed before the failure: kept
    assert not second.exists() or list(second.iterdir()) == []
    assert [p.name for p in first.iterdir() if p.name.startswith(".veil-staging-")] == []


def test_the_check_refuses_a_folder_with_something_in_it(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="exists and is not empty"):
        StagedJob([str(tmp_path)], overwrite=False)


def test_a_collected_element_comes_back_to_the_driver(tmp_path):
    out = tmp_path / "out"
    summary = {"sizes": [[1, 2], [3, 4]], "name": "é"}
    with StagedJob([str(out)], overwrite=False) as job:
        handle = None

        def build(pipeline: beam.Pipeline) -> None:
            nonlocal handle
            handle = collect(pipeline | beam.Create([summary]), job.stage(str(out)), "summary", label="Collect")

        job.run(build, [])
        assert handle.value() == summary
        job.commit(str(out), {})
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json"]  # the collected file went with the staging


@pytest.mark.parametrize("args", [[], ["--runner", "DirectRunner"], ["--direct_num_workers", "2"]])
def test_a_local_run_goes_straight_to_the_fn_api_runner(args):
    from apache_beam.options.pipeline_options import PipelineOptions, TypeOptions
    from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner

    from veil.pipelines.job import local_runner

    options = PipelineOptions(args)
    runner = local_runner(options)
    assert isinstance(runner, FnApiRunner)  # no Prism download attempt, no second check of every transform
    assert options.view_as(TypeOptions).pipeline_type_check is True  # what gives PCollections their types
    seen_by_workers = runner._provision_info.provision_info.pipeline_options.fields
    assert seen_by_workers["beam:option:direct_num_workers:v1"].string_value == ("2" if "2" in args else "1")


def test_a_local_run_gives_arrow_batches_the_arrow_coder(tmp_path):
    """Declared element types are kept, so Beam sizes a batch by its nbytes instead of pickling it."""
    import pyarrow as pa

    from veil.transforms.beam import ArrowBatchCoder

    out, seen = tmp_path / "out", {}
    batch = pa.record_batch({"a": pa.array(["x", "y"])})

    def build(pipeline: beam.Pipeline) -> None:
        batches = pipeline | beam.Create([None]) | beam.Map(lambda _: batch).with_output_types(pa.RecordBatch)
        seen["type"], seen["coder"] = batches.element_type, beam.coders.registry.get_coder(batches.element_type)
        _ = batches | beam.Map(lambda b: b.num_rows)

    with StagedJob([str(out)], overwrite=False) as job:
        job.run(build, [])
    assert seen["type"] is pa.RecordBatch and isinstance(seen["coder"], ArrowBatchCoder)


@pytest.mark.parametrize("runner", ["DataflowRunner", "PrismRunner", "FnApiRunner"])
def test_a_named_runner_is_left_to_beam(runner):
    from apache_beam.options.pipeline_options import PipelineOptions

    from veil.pipelines.job import local_runner

    assert local_runner(PipelineOptions(["--runner", runner])) is None


@pytest.mark.parametrize("verify", ["off", "fail"])
def test_a_local_run_moves_arrow_data_with_the_arrow_coders_not_pickle(tmp_path, keyset, verify):
    """Batches and tables between veil's steps are coded (and sized) as Arrow, never pickled."""
    import pyarrow.parquet as pq
    from apache_beam import coders
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.pipeline import PipelineVisitor

    from veil.pipelines.job import local_runner
    from veil.pipelines.run import RunJob
    from veil.pipelines.synthetic import synthetic_customers
    from veil.transforms.arrow_coder import ArrowBatchCoder, ArrowTableCoder
    from veil.transforms.policy import load_policy

    pq.write_table(synthetic_customers(20), tmp_path / "in.parquet")
    policy = load_policy(Path(__file__).parents[2] / "bench" / "policy.yaml")
    run = RunJob([policy], str(tmp_path / "in.parquet"), str(tmp_path / "out"), keyset=keyset, verify=verify)
    found: dict[str, type] = {}

    class Coders(PipelineVisitor):
        def visit_transform(self, node):
            for tag, pcoll in node.outputs.items():
                if tag is None:
                    found[node.full_label] = type(coders.registry.get_coder(pcoll.element_type))

    with run.job:
        options = PipelineOptions([])
        pipeline = beam.Pipeline(runner=local_runner(options), options=options)
        run.build(pipeline)
        pipeline.visit(Coders())
        run.job.discard()
    assert found["Read/ReadParquet/Read"] is ArrowBatchCoder
    assert found["Sanitize[analytics]/Apply/ParDo(_SanitizeFn)"] is ArrowBatchCoder
    assert found["Write[analytics]/ToTable"] is ArrowTableCoder
