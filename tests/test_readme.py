"""The README's promises: the pinned pseudonym and the "use it in your own pipeline" example."""

import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from veil.keys.testing import fake_keyring
from veil.pipelines.synthetic import write_customers
from veil.transforms.actions.base import BindContext
from veil.transforms.actions.pseudonymize import PseudonymizeParams
from veil.transforms.registry import REGISTRY

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def _pseudonym(**settings) -> str:
    params = PseudonymizeParams(action="pseudonymize", domain="customer", **settings)
    bound = REGISTRY["pseudonymize"].bind(params, BindContext("analytics", "customer_id", fake_keyring(), 1))
    return bound("C0000001")


def test_the_documented_pseudonym_is_what_veil_computes():
    documented = re.search(r"the value `C0000001` has the pseudonym\n\n```\n([0-9a-f]{64})\n```", README)
    assert documented, "README lost its worked pseudonym example"
    assert documented.group(1) == _pseudonym()
    base32 = re.search(r"`encoding: base32, length: 26` gives `([a-z2-7]{26})`", README)
    assert base32 and base32.group(1) == _pseudonym(encoding="base32", length=26)


def test_the_pipeline_example_runs(tmp_path, monkeypatch, keyset):
    code = re.search(r"## Use it in your own pipeline.*?```python\n(.*?)```", README, re.S).group(1)
    (tmp_path / "configs").mkdir()
    shutil.copy(ROOT / "configs" / "analytics.yaml", tmp_path / "configs" / "analytics.yaml")
    rows = write_customers(str(tmp_path / "customers.parquet"), 120)
    monkeypatch.setenv("VEIL_KEYSET", keyset)
    monkeypatch.chdir(tmp_path)

    exec(compile(code, "README.md", "exec"), {})

    source = pq.read_table(tmp_path / "customers.parquet").to_pylist()
    consenting = sum(1 for r in source if r["consents"] and "analytics" in r["consents"])
    assert 0 < consenting < rows
    lines = [
        json.loads(line)
        for f in (tmp_path / "out").glob("analytics-rows*.jsonl")
        for line in f.read_text().splitlines()
    ]
    batches = pq.read_table(next((tmp_path / "out").glob("analytics-batches*.parquet"))).to_pylist()
    assert len(lines) == len(batches) == consenting
    assert (
        set(lines[0])
        == set(batches[0])
        == {"customer_key", "age_band", "zip3", "gender", "country", "income_band", "signup_month"}
    )
    assert sorted(r["customer_key"] for r in lines) == sorted(r["customer_key"] for r in batches)
    letters = [
        line for f in (tmp_path / "out").glob("analytics-dead-letters*.jsonl") for line in f.read_text().splitlines()
    ]
    assert letters == []  # synthetic customers are clean: nothing failed (the file exists, empty)
    assert list((tmp_path / "out").glob("analytics-dead-letters*.jsonl"))
