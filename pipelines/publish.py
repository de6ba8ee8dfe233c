"""The last stage of `veil run`: publish every view of the run, inside the pipeline.

A launcher that does not wait for its job (a Dataflow Flex Template) must still publish
exactly once, and only a job that got that far may publish. So what the publishing needs
flows to it as data, never read from Beam Metrics after the job:

* per view, the count dicts of its transforms (`SanitizeResult.counts`, `KAnonymityResult.counts`),
  the names of the files its write produced, its k-anonymity summary and its verification
  findings (`veil.transforms.verify.Verify`, the written batches against the input);
* per subject key table, the names of the key files the run wrote.

`Gather` sums and collects them into one element (a small combine over a few facts per
batch and per file), and `Publish` runs once on it: every manifest is made, the verification
gate judges them (in `fail` mode a finding refuses the run, before anything is published),
then the new subject keys go into their tables, then each view's staged files into place with
its manifest last (`outputs.commit`), then its risk report. A write feeds the stage only once
it has finished, so a failure anywhere before this stage publishes nothing; the staging
folders are left for the launcher (or the next run into the folder) to remove. A retried
stage skips a view its manifest already shows published.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from veil.pipelines import outputs
from veil.pipelines.aggregates import WITHHELD, AggregatesStage
from veil.pipelines.aggregates import manifest_entry as aggregates_entry
from veil.pipelines.k_anonymity import manifest_entry
from veil.pipelines.manifest import build_manifest, manifest_json, read_manifest, schema_fields
from veil.pipelines.report import report_job
from veil.pipelines.subject_keys import publish_new_keys
from veil.pipelines.verify import manifest_entry as verify_entry
from veil.pipelines.verify import refuse_failed
from veil.transforms.audit import utc_now
from veil.transforms.plan import Plan

COUNTS, FILES, SUMMARY, KEYS, VERIFY = "counts", "files", "summary", "keys", "verify"


@dataclass(frozen=True)
class ViewRelease:
    """What the publish stage knows of one view before the pipeline runs.

    Attributes:
        plan: the view's compiled plan.
        folder: where it is published.
        staging: the run's staging folder in `folder`.
        keyset: the keyset path (None when nothing is keyed).
        key_version: the root key version written with (None when nothing is keyed).
        verify: the verification mode (fail, warn, off) the view's findings are judged by.
        aggregates: for a policy with `aggregates:`, its stage's budget and explain reports.
    """

    plan: Plan
    folder: str
    staging: str
    keyset: str | None
    key_version: int | None
    verify: str = "off"
    aggregates: AggregatesStage | None = None


@dataclass(frozen=True)
class Release:
    """The run's facts the publish stage writes into manifests, and where it publishes.

    Attributes:
        run_id, started, runner: the run's id, start (UTC) and Beam runner.
        inputs: the manifest's `inputs` entry.
        output_format: parquet, csv, jsonl or avro.
        views: one `ViewRelease` per policy.
        key_tables: subject key table -> the run's staging folder in it.
    """

    run_id: str
    started: str
    runner: str
    inputs: Mapping[str, Any]
    output_format: str
    views: tuple[ViewRelease, ...]
    key_tables: Mapping[str, str]


def tagged(pcoll: beam.PCollection, kind: str, key: str, *, label: str) -> beam.PCollection:
    """`pcoll`'s elements as `(kind, key, element)` facts for `Gather`."""
    return pcoll | label >> beam.Map(lambda element: (kind, key, element)).with_output_types(tuple)


class Gather(beam.CombineFn):
    """Facts -> one dict: `counts` {purpose: summed counts}, `files` and `keys` {name: [paths]},
    `summary` {purpose: k-anonymity summary}, `verify` {purpose: verification findings}."""

    def create_accumulator(self) -> dict:
        return {COUNTS: {}, FILES: {}, SUMMARY: {}, KEYS: {}, VERIFY: {}}

    def add_input(self, accumulator: dict, fact: tuple) -> dict:
        kind, key, value = fact
        if kind == COUNTS:
            accumulator[COUNTS].setdefault(key, Counter()).update(value)
        elif kind in (SUMMARY, VERIFY):
            accumulator[kind][key] = value
        else:
            accumulator[kind].setdefault(key, []).append(value)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[dict]) -> dict:
        merged = self.create_accumulator()
        for accumulator in accumulators:
            for key, counts in accumulator[COUNTS].items():
                merged[COUNTS].setdefault(key, Counter()).update(counts)
            merged[SUMMARY].update(accumulator[SUMMARY])
            merged[VERIFY].update(accumulator[VERIFY])
            for kind in (FILES, KEYS):
                for key, paths in accumulator[kind].items():
                    merged[kind].setdefault(key, []).extend(paths)
        return merged

    def extract_output(self, accumulator: dict) -> dict:
        counts = {key: {name: n for name, n in c.items() if n} for key, c in accumulator[COUNTS].items()}
        files = {key: sorted(paths) for key, paths in accumulator[FILES].items()}
        return {**accumulator, COUNTS: counts, FILES: files}


def _manifest(release: Release, view: ViewRelease, gathered: Mapping[str, Any], finished: str) -> dict[str, Any]:
    """A view's manifest, from the run's facts and the gathered ones."""
    policy = view.plan.policy
    counts = gathered[COUNTS].get(policy.purpose, {})
    manifest = build_manifest(
        plan=view.plan,
        run_id=release.run_id,
        started=release.started,
        finished=finished,
        inputs=dict(release.inputs),
        output={
            "folder": view.folder,
            "format": release.output_format,
            "files": outputs.published_names(view.staging, gathered[FILES].get(policy.purpose, [])),
            "schema": schema_fields(view.plan.output_schema),
        },
        runner=release.runner,
        keyset=view.keyset,
        key_version=view.key_version,
        counts=counts,
    )
    if policy.k_anonymity is not None:
        manifest["k_anonymity"] = manifest_entry(policy, gathered[SUMMARY][policy.purpose])
    if view.aggregates is not None:  # DP tables, never rows (nothing to verify): exact record counts are withheld
        manifest["output"]["schema"] = []  # no rows: each table's schema is in its entry
        manifest["output"]["format"] = "parquet"  # tables are Parquet whatever --format says
        manifest["aggregates"] = aggregates_entry(view.plan, view.aggregates, manifest["output"]["files"], counts)
        manifest["counts"] = {"records": WITHHELD}
    else:
        manifest["verify"] = verify_entry(view.verify, view.plan, gathered[VERIFY].get(policy.purpose))
    return manifest


def publish(release: Release, gathered: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Publish every view of `release` from the gathered facts; returns the manifests.

    Every manifest is made first, and the verification gate judges them (`refuse_failed`: in
    `fail` mode a finding refuses the run) before anything is published. Then new subject keys
    go into their tables, so no published ciphertext depends on a key that was not kept, and
    each view is committed, its manifest last (see `outputs.commit`).

    Raises:
        DataRefusedError: a view's verification refused it; nothing was published.
    """
    finished = utc_now()
    manifests = [_manifest(release, view, gathered, finished) for view in release.views]
    refuse_failed(manifests)
    for table, staging in sorted(release.key_tables.items()):
        publish_new_keys(staging, table, release.run_id)
    for view, manifest in zip(release.views, manifests):
        published = read_manifest(view.folder)
        if published and published.get("run_id") == release.run_id:  # a retried stage: done already
            continue
        staged = gathered[FILES].get(view.plan.policy.purpose, [])
        outputs.commit(view.folder, view.staging, manifest_json(manifest), staged)
        if view.plan.policy.k_anonymity is not None:
            report_job(view.folder)
    return manifests


class _PublishFn(beam.DoFn):
    def __init__(self, release: Release):
        self._release = release

    def process(self, gathered: dict) -> Iterable[str]:
        for manifest in publish(self._release, gathered):
            yield FileSystems.join(manifest["output"]["folder"], outputs.MANIFEST)


class Publish(beam.PTransform):
    """Facts (`tagged`) -> the run published, once every fact is in; outputs the manifests' paths."""

    def __init__(self, release: Release):
        super().__init__()
        self._release = release

    def expand(self, facts):
        return (
            facts
            | "Facts" >> beam.Flatten()
            | "Gather" >> beam.CombineGlobally(Gather())
            | "Publish" >> beam.ParDo(_PublishFn(self._release)).with_output_types(str)
        )
