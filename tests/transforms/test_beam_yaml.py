"""Beam YAML: `VeilSanitize` and `VeilDetokenize` through `python -m apache_beam.yaml.main` give what
`veil run` and `veil detokenize` give, and refuse what they cannot guarantee.

The pipelines run with `--runner FnApiRunner` (Beam's local portable runner): `DirectRunner`
first tries to download the Prism runner, which a test must not do.
"""

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from apache_beam.options.pipeline_options import PipelineOptions
from helpers import cli

from veil.errors import ConfigError
from veil.pipelines.synthetic import synthetic_customers
from veil.transforms.beam_yaml import VeilDetokenize, VeilSanitize

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "beam"
LOCAL = ["--runner", "FnApiRunner"]


def _text_dates(rows: int) -> pa.Table:
    """Synthetic customers with dates as ISO text (Beam's Parquet IO gives rows no date types)."""
    table = synthetic_customers(rows, 11)
    for name in ("birth_date", "signup_ts"):
        table = table.set_column(table.schema.get_field_index(name), name, table.column(name).cast(pa.string()))
    return table


def _yaml_main(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "apache_beam.yaml.main", *args, *LOCAL], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "prism" not in done.stderr.lower()  # nothing was downloaded


def _rows(pattern: str) -> list[tuple]:
    tables = [pq.read_table(path) for path in sorted(Path(pattern).parent.glob(Path(pattern).name))]
    assert tables, pattern
    return sorted((tuple(row.values()) for t in tables for row in t.to_pylist()), key=repr)


@pytest.fixture
def world(tmp_path, keyset, monkeypatch):
    """The example policy with an erasure table naming one consenting customer, and an input."""
    monkeypatch.setenv("VEIL_KEYSET", keyset)
    text = (EXAMPLE / "segments.yaml").read_text()
    policy = tmp_path / "segments.yaml"
    policy.write_text(text.replace("keyset: ../.veil/keyset.json", "erasure: {table: erasures}"))
    table = _text_dates(300)
    pq.write_table(table, tmp_path / "in.parquet")
    consenting = [r["customer_id"] for r in table.to_pylist() if "marketing" in (r["consents"] or [])]
    assert cli("erase", policy, "--init").code == 0
    assert cli("erase", policy, "--subject", consenting[0]).code == 0
    return tmp_path, policy


def test_the_example_yaml_pipeline_writes_and_restores_what_veil_run_and_detokenize_do(world):
    folder, policy = world
    assert cli("run", policy, "--input", folder / "in.parquet", "--output", folder / "run", "--quiet").code == 0
    manifest = json.loads((folder / "run" / "_manifest.json").read_text())
    assert manifest["counts"]["dropped"]["erased"] == 1 and manifest["counts"]["dropped"]["k_anonymity"] > 0
    variables = {"input": str(folder / "in.parquet"), "output": str(folder / "yaml" / "part"), "policy": str(policy)}
    _yaml_main("--yaml_pipeline_file", str(EXAMPLE / "pipeline.yaml"), "--jinja_variables", json.dumps(variables))
    expected = _rows(str(folder / "run" / "part-*.parquet"))
    assert len(expected) == manifest["counts"]["written"] > 0
    assert _rows(str(folder / "yaml" / "part-*")) == expected
    names = [field["name"] for field in manifest["output"]["schema"]]
    assert pq.read_schema(next((folder / "yaml").glob("part-*"))).names == names

    # VeilDetokenize over that view restores what `veil detokenize` restores, with its own audit line
    restore = ["detokenize", policy, "--input", folder / "run", "--output", folder / "plain", "--fields", "email_token"]
    assert cli(*restore).code == 0
    pipeline = folder / "restore.yaml"
    pipeline.write_text(
        json.dumps(
            {
                "pipeline": {
                    "type": "chain",
                    "transforms": [
                        {"type": "ReadFromParquet", "config": {"path": str(folder / "run" / "part-*.parquet")}},
                        {"type": "VeilDetokenize", "config": {"policy": str(policy), "fields": ["email_token"]}},
                        {"type": "WriteToParquet", "config": {"path": str(folder / "yaml-plain" / "part")}},
                    ],
                },
                "providers": [{"include": str(EXAMPLE / "provider.yaml")}],
            }
        )
    )
    _yaml_main("--yaml_pipeline_file", str(pipeline))
    expected = _rows(str(folder / "plain" / "part-*.parquet"))
    assert _rows(str(folder / "yaml-plain" / "part-*")) == expected
    emails = {row["email"].strip().lower() for row in pq.read_table(folder / "in.parquet").to_pylist() if row["email"]}
    restored = pq.read_table(next((folder / "yaml-plain").glob("part-*")))
    assert "email" in restored.column_names and set(restored.column("email").to_pylist()) <= emails
    audit = Path(os.environ["VEIL_KEYSET"]).parent / "audit.jsonl"
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    restores = [line for line in lines if line["event"] == "detokenize"]
    assert len(restores) == 2 and all(line["outcome"] == "ok" for line in restores)
    assert restores[-1]["counts"] == restores[0]["counts"] and restores[-1]["fields"] == ["email_token"]
    assert not any(email in audit.read_text() for email in emails)


class _Dated(typing.NamedTuple):
    customer_id: str
    signup: str


class _Customer(typing.NamedTuple):
    customer_id: str
    email: str
    zip: str
    gender: str
    country: str
    income: str
    consents: typing.Sequence[str]


def _customers() -> list[_Customer]:
    return [
        _Customer(f"C{i}", f"p{i}@example.com", "12345", "female", "DE", "abc" if i == 0 else "52000", ["marketing"])
        for i in range(4)
    ]


def test_dead_letters_go_to_the_named_error_output_without_the_value(tmp_path, keyset):
    text = (EXAMPLE / "segments.yaml").read_text().replace("keyset: ../.veil/keyset.json", f"keyset: {keyset}")
    text = text.replace("width: 20000, as: income_band}", "width: 20000, as: income_band, on_error: null}")
    policy = tmp_path / "segments.yaml"
    policy.write_text(text.split("k_anonymity:")[0])
    sanitize = VeilSanitize(str(policy), error_handling={"output": "errors"})
    out = tmp_path / "out"
    with beam.Pipeline(options=PipelineOptions(LOCAL)) as pipeline:
        result = pipeline | beam.Create(_customers()).with_output_types(_Customer) | sanitize
        _ = (
            result["errors"]
            | "Letters" >> beam.Map(lambda row: json.dumps(row._asdict()))
            | beam.io.WriteToText(str(out / "letters"))
        )
        _ = (
            result["output"]
            | "Views" >> beam.Map(lambda row: json.dumps(row._asdict()))
            | "W" >> beam.io.WriteToText(str(out / "views"))
        )
    letters = [json.loads(line) for path in out.glob("letters*") for line in path.read_text().splitlines()]
    views = [json.loads(line) for path in out.glob("views*") for line in path.read_text().splitlines()]
    assert [(x["field"], x["action"], x["on_error"]) for x in letters] == [("income", "generalize", "null")]
    assert "abc" not in json.dumps(letters)
    assert sorted(v["income_band"] is None for v in views) == [False, False, False, True]
    assert all("email" not in v and v["email_token"] for v in views)


def test_policies_a_yaml_transform_cannot_keep_are_refused(tmp_path, keyset):
    base = (EXAMPLE / "segments.yaml").read_text().replace("keyset: ../.veil/keyset.json", f"keyset: {keyset}")
    per_subject = tmp_path / "per_subject.yaml"
    per_subject.write_text(
        base.replace("fields:\n", "subject_keys: keys\nfields:\n  notes: {action: encrypt, per_subject: true}\n")
    )
    with pytest.raises(ConfigError, match="encrypts per subject.*use veil run"):
        VeilSanitize(str(per_subject))
    dated = tmp_path / "dated.yaml"
    dated.write_text(
        f"version: 1\npurpose: p\nsubject: customer_id\nkeyset: {keyset}\ndefault: drop\nfields:\n"
        "  customer_id: {action: pseudonymize}\n  signup: {action: generalize, date: month}\n"
    )
    pipeline = beam.Pipeline(options=PipelineOptions(LOCAL))  # built, never run
    with pytest.raises(ConfigError, match="field 'signup' would be date32"):
        _ = pipeline | beam.Create([_Dated("C1", "2026-01-01")]).with_output_types(_Dated) | VeilSanitize(str(dated))
    with pytest.raises(ConfigError, match="takes schema'd rows"):
        _ = pipeline | "Dicts" >> beam.Create([{"customer_id": "C1"}]) | "Untyped" >> VeilSanitize(str(dated))
    with pytest.raises(ConfigError, match="not an output field"):
        VeilDetokenize(str(dated), ["email"])


def test_the_readme_shows_the_shipped_provider():
    section = (ROOT / "README.md").read_text().split("### Beam YAML", 1)[1]
    snippet = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(snippet)["providers"] == yaml.safe_load((EXAMPLE / "provider.yaml").read_text())
