"""`veil` end to end on small synthetic data: run, formats, several purposes, overwrite, validate, plan, schema.

Most runs go through `main([...])` in-process (Beam's DirectRunner, ~1-3 s each); two go through a
real `veil` subprocess. Runs are module fixtures, shared by the tests that inspect them.
"""

import base64
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import yaml
from helpers import cli

from veil.keys import init_keyset
from veil.pipelines.synthetic import synthetic_customers, write_customers

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
POLICY = {name: CONFIGS / f"{name}.yaml" for name in ("analytics", "marketing", "support")}
VEIL = Path(sys.prefix) / "bin" / "veil"
ROWS = 200
MIN_LEN = 6  # raw values shorter than this could occur in outputs by chance

# Per purpose: the input columns whose raw values must never reach that purpose's view.
PROTECTED = {
    "analytics": ("customer_id", "first_name", "last_name", "email", "phone", "street", "card_number", "notes"),
    # first_name is replaced by a Faker surrogate drawn from the same kind of pool as the real
    # names, so a real first name may legitimately appear as someone else's surrogate.
    "marketing": ("customer_id", "last_name", "email", "phone", "street", "card_number", "notes"),
    # support keeps first_name on purpose.
    "support": ("customer_id", "last_name", "email", "phone", "street", "card_number", "notes"),
}
# Per purpose: input columns it keeps verbatim; a raw value inside one of these is not a leak
# (Faker cities are often built from first and last names, e.g. "Port Johnsonfort").
KEPT = {"analytics": ("gender", "country"), "marketing": ("city", "country"), "support": ("first_name",)}
# Per purpose: output columns of Faker surrogates. A surrogate first name may equal a customer's
# real last name ("Curtis"); that is not a leak of that customer's last name.
SURROGATES = {"marketing": ("first_name",)}


@dataclass
class World:
    root: Path
    parquet: Path
    csv: Path
    keyset: Path
    master_key: bytes
    table: pa.Table


def veil_process(*args, cwd: Path) -> subprocess.CompletedProcess:
    """`veil ARGS` as a real console-script subprocess."""
    assert VEIL.exists(), VEIL
    return subprocess.run(
        [str(VEIL), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=dict(os.environ), timeout=180
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    master_key = os.urandom(32)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MASTER_KEY", base64.b64encode(master_key).decode())
        mp.delenv("VEIL_KEYSET", raising=False)
        mp.setenv("COLUMNS", "200")  # rich tables: no wrapping or ellipsis
        init_keyset(str(root / "keyset.json"))
        assert write_customers(str(root / "in.parquet"), ROWS) == ROWS
        write_customers(str(root / "in.csv"), ROWS)
        yield World(
            root, root / "in.parquet", root / "in.csv", root / "keyset.json", master_key, synthetic_customers(ROWS)
        )


def run_args(world: World, policies, output: Path, *extra) -> list:
    return ["run", *policies, "--input", world.parquet, "--output", output, "--keyset", world.keyset, *extra]


@pytest.fixture(scope="module")
def analytics_out(world) -> Path:
    out = world.root / "analytics"
    result = cli(*run_args(world, [POLICY["analytics"]], out))
    assert result.code == 0, result.err
    return out


@pytest.fixture(scope="module")
def multi(world):
    """Two runs of all three policies: the first in-process, the second as a subprocess."""
    policies = [POLICY[p] for p in ("analytics", "marketing", "support")]
    first, second = world.root / "multi1", world.root / "multi2"
    result = cli(*run_args(world, policies, first))
    assert result.code == 0, result.err
    process = veil_process(*run_args(world, policies, second), cwd=world.root)
    return first, second, process


# ---------------------------------------------------------------- helpers


def part_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*"))


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "_manifest.json").read_text())


def read_view(folder: Path) -> pa.Table:
    """Every part file of a view, as one table (parquet, csv or jsonl)."""
    tables = []
    for part in part_files(folder):
        if part.suffix == ".parquet":
            tables.append(pq.read_table(part))
        elif part.suffix == ".csv":
            tables.append(pa_csv.read_csv(part))
        else:
            rows = [json.loads(line) for line in part.read_text().splitlines() if line.strip()]
            tables.append(pa.Table.from_pylist(rows))
    assert tables, f"no part files in {folder}"
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def policy_outputs(path: Path) -> list[str]:
    """Output field names of a policy, read from its YAML (independently of veil's plan)."""
    fields = yaml.safe_load(path.read_text())["fields"]
    return [spec.get("as", name) for name, spec in fields.items() if spec["action"] != "drop"]


def raw_values(table: pa.Table, columns, kept=(), also_allowed=()) -> set[str]:
    """Raw values (and their obvious normal forms) of `columns`, long enough to be meaningful.

    A value found inside a kept input column's value (or one of `also_allowed`) is left out.
    """
    allowed = [v for c in kept for v in table.column(c).to_pylist() if isinstance(v, str)]
    allowed += [v for v in also_allowed if isinstance(v, str)]
    values: set[str] = set()
    for column in columns:
        for value in table.column(column).to_pylist():
            if value is None:
                continue
            forms = {value, value.strip()}
            if column == "email":
                forms.add(value.strip().lower())
            if column in ("card_number", "phone"):
                forms.add("".join(ch for ch in value if ch.isdigit()))
            values.update(f for f in forms if len(f) >= MIN_LEN and not any(f in a for a in allowed))
    return values


def file_texts(folder: Path) -> dict[Path, bytes]:
    """Every file under `folder` as raw bytes, plus decoded cell text for Parquet files."""
    texts = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".parquet":  # snappy pages may hide a value from a plain byte scan
            cells = json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
            data += b"\n" + cells.encode()
        texts[path] = data
    return texts


def leaks(folder: Path, values: set[str]) -> list[tuple[str, str]]:
    return [
        (path.name, value) for path, data in file_texts(folder).items() for value in values if value.encode() in data
    ]


def no_consent(consents: list, purpose: str) -> int:
    return sum(1 for c in consents if c is None or purpose not in c)


def suppressed(counts: dict) -> int:
    """Records a view's k-anonymity (and l-diversity) rule suppressed (tests/pipelines/test_report.py checks them)."""
    return sum(n for reason, n in counts["dropped"].items() if reason in ("k_anonymity", "l_diversity"))


# ---------------------------------------------------------------- veil run, one policy


def test_run_writes_parts_and_manifest(analytics_out):
    names = sorted(p.name for p in analytics_out.iterdir())
    assert "_manifest.json" in names
    assert part_files(analytics_out) and all(p.suffix == ".parquet" for p in part_files(analytics_out))
    reports = {"_report.json", "_report.html"}  # analytics has k_anonymity: its run writes the risk report
    assert set(names) == {"_manifest.json", *reports, *(p.name for p in part_files(analytics_out))}  # no staging
    assert manifest_of(analytics_out)["output"]["files"] == [p.name for p in part_files(analytics_out)]


def test_output_columns_are_exactly_the_policy_outputs(analytics_out):
    expected = policy_outputs(POLICY["analytics"])
    assert expected == ["customer_key", "age_band", "zip3", "gender", "country", "income_band", "signup_month"]
    manifest = manifest_of(analytics_out)
    for part in part_files(analytics_out):
        assert pq.read_schema(part).names == expected
    assert list(manifest["fields"]) == expected
    assert [f["name"] for f in manifest["output"]["schema"]] == expected


def test_scanner_finds_raw_values_where_they_are(world):
    """The leak scan below is able to fail: on the input itself it finds every protected value."""
    values = raw_values(world.table, PROTECTED["analytics"])
    assert len(values) > 5 * ROWS
    found = leaks(world.root, values)  # in.csv (plain bytes) and in.parquet (decoded cells)
    assert {v for _, v in found} >= {v for v in world.table.column("email").to_pylist()}
    assert {name for name, _ in found} >= {"in.csv", "in.parquet"}


def test_no_raw_protected_value_in_the_output_or_manifest(world, analytics_out):
    values = raw_values(world.table, PROTECTED["analytics"], KEPT["analytics"])
    assert leaks(analytics_out, values) == []


def test_consent_gate_drops_and_counts(world, analytics_out):
    counts = manifest_of(analytics_out)["counts"]
    expected_dropped = no_consent(world.table.column("consents").to_pylist(), "analytics")
    assert 0 < expected_dropped < ROWS
    assert counts["read"] == ROWS
    assert counts["dropped"]["no_consent"] == expected_dropped
    assert counts["written"] == ROWS - expected_dropped - suppressed(counts)
    assert read_view(analytics_out).num_rows == counts["written"]


def test_manifest_records_policy_keys_and_fields(world, analytics_out):
    manifest = manifest_of(analytics_out)
    assert manifest["purpose"] == "analytics"
    assert manifest["policy"]["sha256"] == hashlib.sha256(POLICY["analytics"].read_bytes()).hexdigest()
    assert manifest["keys"]["key_version"] == 1
    spec = yaml.safe_load(POLICY["analytics"].read_text())["fields"]
    sources = {spec_.get("as", name): (name, spec_["action"]) for name, spec_ in spec.items()}
    assert {out: (f["source"], f["action"]) for out, f in manifest["fields"].items()} == sources
    assert manifest["fields"]["customer_key"]["key_version"] == 1
    assert set(manifest["dropped_fields"]) >= {"email", "phone", "card_number", "notes", "street"}
    written = yaml.safe_load(POLICY["analytics"].read_text())
    assert manifest["governance"] == {
        "owner": written["owner"],
        "legal_basis": written["legal_basis"],
        "retention": written["retention"],
        "reviewed": written["reviewed"].isoformat(),
        "recipients": written["recipients"],
    }


def test_no_key_material_anywhere_in_the_output(world, analytics_out):
    keyset = json.loads(world.keyset.read_text())
    wrapped = [k["wrapped"] for k in keyset["keys"]]
    secrets = [
        world.master_key,
        base64.b64encode(world.master_key),
        world.master_key.hex().encode(),
        *(w.encode() for w in wrapped),
    ]
    manifest = (analytics_out / "_manifest.json").read_text()
    assert "wrapped" not in manifest
    for path, data in file_texts(analytics_out).items():
        for secret in secrets:
            assert secret not in data, path.name


# ---------------------------------------------------------------- several policies, determinism, purposes


def test_subprocess_run_is_clean(multi):
    _, second, process = multi
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    assert "error" not in process.stderr.lower()
    assert {p.name for p in second.iterdir()} == {"analytics", "marketing", "support"}


@pytest.mark.parametrize("purpose", ["analytics", "marketing", "support"])
def test_several_policies_write_one_folder_each(world, multi, purpose):
    first, _, _ = multi
    assert not (first / "_manifest.json").exists() and not part_files(first)
    view = first / purpose
    manifest = manifest_of(view)
    assert manifest["purpose"] == purpose
    assert manifest["policy"]["sha256"] == hashlib.sha256(POLICY[purpose].read_bytes()).hexdigest()
    assert read_view(view).column_names == policy_outputs(POLICY[purpose])
    consents = world.table.column("consents").to_pylist()
    assert manifest["counts"]["read"] == ROWS
    assert manifest["counts"]["dropped"]["no_consent"] == no_consent(consents, purpose)
    expected = ROWS - no_consent(consents, purpose) - suppressed(manifest["counts"])
    assert read_view(view).num_rows == manifest["counts"]["written"] == expected


@pytest.mark.parametrize("purpose", ["marketing", "support"])
def test_no_raw_protected_value_in_other_views(world, multi, purpose):
    for run in multi[:2]:
        view = run / purpose
        surrogates = [v for c in SURROGATES.get(purpose, ()) for v in read_view(view).column(c).to_pylist()]
        values = raw_values(world.table, PROTECTED[purpose], KEPT[purpose], surrogates)
        assert len(values) > 3 * ROWS
        assert leaks(view, values) == []


def test_pseudonyms_and_tokens_are_stable_across_runs(analytics_out, multi):
    first, second, _ = multi
    keys = [
        sorted(read_view(v).column("customer_key").to_pylist())
        for v in (analytics_out, first / "analytics", second / "analytics")
    ]
    assert keys[0] == keys[1] == keys[2]
    assert len(set(keys[0])) == len(keys[0])  # one pseudonym per customer
    tokens = [read_view(v / "marketing").column("email_token").to_pylist() for v in (first, second)]
    keyed = [
        dict(zip(read_view(v / "marketing").column("customer_key").to_pylist(), t))
        for v, t in zip((first, second), tokens)
    ]
    assert keyed[0] == keyed[1]  # the same customer gets the same email token in both runs
    assert None not in tokens[0]


def test_encryption_differs_run_to_run(world, multi):
    first, second, _ = multi
    notes = []
    for run in (first, second):
        view = read_view(run / "support")
        notes.append(dict(zip(view.column("customer_token").to_pylist(), view.column("notes").to_pylist())))
    assert notes[0].keys() == notes[1].keys()  # siv tokens are deterministic
    encrypted = [token for token, ciphertext in notes[0].items() if ciphertext is not None]
    assert len(encrypted) > 10
    for token in encrypted:
        assert notes[1][token] is not None
        assert notes[0][token] != notes[1][token]
    plain = {n for n in world.table.column("notes").to_pylist() if n}
    assert not plain & set(notes[0].values())


def test_purposes_are_unlinkable(multi):
    first, _, _ = multi
    analytics = set(read_view(first / "analytics").column("customer_key").to_pylist())
    marketing = set(read_view(first / "marketing").column("customer_key").to_pylist())
    assert len(analytics) > 5 and len(marketing) > 50  # analytics' k-anonymity leaves few of 200 customers
    assert analytics.isdisjoint(marketing)


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_output_formats(world, analytics_out, fmt):
    out = world.root / f"analytics-{fmt}"
    result = cli(*run_args(world, [POLICY["analytics"]], out, "--format", fmt))
    assert result.code == 0, result.err
    parts = part_files(out)
    assert parts and all(p.suffix == f".{fmt}" for p in parts)
    table = read_view(out)
    assert table.num_rows == read_view(analytics_out).num_rows == manifest_of(out)["counts"]["written"]
    assert table.column_names == policy_outputs(POLICY["analytics"])
    assert sorted(table.column("customer_key").to_pylist()) == sorted(
        read_view(analytics_out).column("customer_key").to_pylist()
    )
    assert manifest_of(out)["output"]["format"] == fmt
    assert leaks(out, raw_values(world.table, PROTECTED["analytics"], KEPT["analytics"])) == []


def test_csv_input(world, analytics_out):
    out = world.root / "analytics-from-csv"
    result = cli("run", POLICY["analytics"], "--input", world.csv, "--output", out, "--keyset", world.keyset)
    assert result.code == 0, result.err
    with open(world.csv, newline="") as handle:
        consents = [row["consents"].split(";") for row in csv.DictReader(handle)]
    assert len(consents) == ROWS
    counts = manifest_of(out)["counts"]
    assert counts["read"] == ROWS
    assert counts["dropped"]["no_consent"] == no_consent(consents, "analytics")
    assert counts["written"] == ROWS - counts["dropped"]["no_consent"] - suppressed(counts) == read_view(out).num_rows
    # the same customers get the same pseudonyms whatever the input format; k-anonymity keeps
    # different customers, since CSV reads zips as integers ("01234" -> 1234, so another zip3)
    from_csv = set(read_view(out).column("customer_key").to_pylist())
    from_parquet = set(read_view(analytics_out).column("customer_key").to_pylist())
    assert len(from_csv & from_parquet) >= min(len(from_csv), len(from_parquet)) // 2 > 0
    assert leaks(out, raw_values(world.table, PROTECTED["analytics"], KEPT["analytics"])) == []


# ---------------------------------------------------------------- output folder


def test_existing_output_needs_overwrite(world, analytics_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(analytics_out, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    refused = cli(*run_args(world, [POLICY["analytics"]], out))
    assert refused.code == 2
    assert refused.err.startswith("error: ") and "--overwrite" in refused.err and str(out) in refused.err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    replaced = cli(*run_args(world, [POLICY["analytics"]], out, "--overwrite"))
    assert replaced.code == 0, replaced.err
    manifest = manifest_of(out)
    assert manifest["run_id"] != json.loads(before["_manifest.json"])["run_id"]
    reports = ["_report.json", "_report.html"]
    assert sorted(p.name for p in out.iterdir()) == sorted(["_manifest.json", *reports, *manifest["output"]["files"]])
    assert read_view(out).num_rows == manifest["counts"]["written"] == read_view(analytics_out).num_rows


def test_overwrite_never_replaces_foreign_files(world, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.xlsx").write_bytes(b"someone else's")
    result = cli(*run_args(world, [POLICY["analytics"]], out, "--overwrite"))
    assert result.code == 2
    assert result.err.startswith("error: ") and "report.xlsx" in result.err
    assert [p.name for p in out.iterdir()] == ["report.xlsx"]


# ---------------------------------------------------------------- beam options


def test_unknown_beam_flags_pass_through(world):
    out = world.root / "analytics-beam-flags"
    process = veil_process(*run_args(world, [POLICY["analytics"]], out, "--direct_num_workers", "1"), cwd=world.root)
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    manifest = manifest_of(out)
    assert manifest["runner"] == "DirectRunner"
    assert manifest["counts"]["read"] == ROWS
    assert read_view(out).num_rows == manifest["counts"]["written"]


# ---------------------------------------------------------------- validate, plan, schema


def test_validate_ok(world):
    result = cli("validate", POLICY["support"])
    assert result.code == 0, result.err
    assert result.out.startswith("ok: ") and "support" in result.out
    fits = cli("validate", POLICY["analytics"], "--input", world.parquet)
    assert fits.code == 0, fits.err
    assert "7 output fields" in fits.out and "9 dropped" in fits.out


def test_plan_prints_a_table(world):
    result = cli("plan", POLICY["analytics"], "--input", world.parquet)
    assert result.code == 0, result.err
    for field in policy_outputs(POLICY["analytics"]):
        assert field in result.out
    for action in ("pseudonymize", "generalize", "keep"):
        assert action in result.out
    dropped = [line for line in result.out.splitlines() if "dropped" in line]
    assert dropped
    for field in ("email", "phone", "card_number", "notes", "street", "first_name", "last_name"):
        assert field in dropped[0]
    assert "consent" in result.out


def test_schema_prints_the_policy_json_schema():
    result = cli("schema")
    assert result.code == 0, result.err
    schema = json.loads(result.out)
    assert schema["title"] == "veil policy"
    assert "fields" in schema["properties"] and "purpose" in schema["properties"]
