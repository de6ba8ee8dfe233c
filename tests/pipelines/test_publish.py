"""`veil run` publishes as the pipeline's last stage, from data: the counts it writes into the manifests
are the ones Beam Metrics report, and a pipeline that fails before that stage publishes nothing."""

from pathlib import Path

import pytest

from veil.errors import DataRefusedError
from veil.pipelines.manifest import split_counts
from veil.pipelines.rights import erase_subjects, init_erasure_table
from veil.pipelines.run import RunJob, run_job
from veil.pipelines.synthetic import synthetic_customers, write_customers
from veil.transforms.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = """version: 1
purpose: support
subject: customer_id
keyset: {keyset}
default: drop
consent: {{field: consents}}
erasure: {{table: erasures}}
subject_keys: keys
fields:
  customer_id: {{action: pseudonymize, domain: customer, as: customer_key}}
  zip: {{action: generalize, prefix: 2, as: zip2}}
  gender: {{action: keep}}
  income: {{action: generalize, width: 50000, as: income_band}}
  notes: {{action: encrypt, per_subject: true}}
k_anonymity: {{k: {k}, quasi_identifiers: [zip2, gender], on_violation: {on_violation}}}
"""


def _support(tmp_path: Path, keyset: str, *, k: int = 3, on_violation: str = "suppress"):
    path = tmp_path / "support.yaml"
    path.write_text(SUPPORT.format(keyset=keyset, k=k, on_violation=on_violation))
    policy = load_policy(path)
    init_erasure_table(policy)
    return policy


def test_the_manifests_counts_are_what_beam_metrics_count(tmp_path, keyset):
    write_customers(str(tmp_path / "in.parquet"), 400)
    support = _support(tmp_path, keyset)
    ids = [r["customer_id"] for r in synthetic_customers(400, 7).to_pylist() if "support" in (r["consents"] or [])]
    erase_subjects(support, ids[:3])
    analytics = load_policy(ROOT / "configs" / "analytics.yaml")  # the generalization search
    run = RunJob([support, analytics], str(tmp_path / "in.parquet"), str(tmp_path / "out"), keyset=keyset)
    with run.job:
        run.job.run(run.build, [])
        manifests = run.manifests()
        for manifest in manifests:
            assert manifest["counts"] == split_counts(run.job.counts(manifest["purpose"]))
    support_counts = manifests[0]["counts"]
    assert support_counts["dropped"]["erased"] == 3 and support_counts["dropped"]["k_anonymity"] > 0
    assert support_counts["read"] == 400 == support_counts["written"] + sum(support_counts["dropped"].values())
    assert manifests[1]["k_anonymity"]["generalization"]
    for manifest in manifests:
        folder = Path(manifest["output"]["folder"])
        assert sorted(p.name for p in folder.glob("part-*")) == manifest["output"]["files"]
    assert len(list((tmp_path / "keys").glob("keys-*"))) == 1  # the run's new subject keys, published
    assert not list(tmp_path.rglob(".veil-staging-*"))


def test_a_pipeline_that_fails_before_the_last_stage_publishes_nothing(tmp_path, keyset):
    write_customers(str(tmp_path / "in.parquet"), 60)
    support = _support(tmp_path, keyset, k=1000, on_violation="fail")  # refused by the k-anonymity stage
    with pytest.raises(DataRefusedError):
        run_job([support], str(tmp_path / "in.parquet"), str(tmp_path / "out"), keyset=keyset)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert list((tmp_path / "keys").glob("keys-*")) == []  # the keys it made were never kept
    assert not list(tmp_path.rglob(".veil-staging-*"))
