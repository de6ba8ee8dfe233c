"""Customer rights through the CLI: consent tables, erasure, locate, export, rectification, audit lines.

Every command goes through `main([...])` in-process (Beam's DirectRunner). Runs are module
fixtures on small synthetic data (customer ids C0000001..), shared by the tests that inspect them.
"""

import base64
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import yaml
from helpers import Result, cli

from veil.keys import init_keyset, open_keyring
from veil.pipelines.synthetic import synthetic_customers, write_customers
from veil.transforms.subjects import subject_ref

ROWS = 40
IDS = [f"C{i:07d}" for i in range(1, ROWS + 1)]


@dataclass
class World:
    root: Path
    keyset: Path
    parquet: Path
    table: pa.Table
    email_of: dict[str, str] = field(default_factory=dict)
    id_of_email: dict[str, str] = field(default_factory=dict)


def ok(*args) -> Result:
    result = cli(*args)
    assert result.code == 0, (args, result.err)
    return result


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("rights")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
        mp.delenv("VEIL_KEYSET", raising=False)
        init_keyset(str(root / "keyset.json"))
        assert write_customers(str(root / "in.parquet"), ROWS) == ROWS
        table = synthetic_customers(ROWS)
        assert table.column("customer_id").to_pylist() == IDS
        emails = dict(zip(IDS, table.column("email").to_pylist()))
        assert len(set(emails.values())) == ROWS  # emails identify rows in outputs that keep them
        yield World(root, root / "keyset.json", root / "in.parquet", table, emails, {e: i for i, e in emails.items()})


def write_policy(path: Path, purpose: str, fields: dict, *, keyset: Path, **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": 1, "purpose": purpose, "subject": "customer_id", "keyset": str(keyset), **extra, "fields": fields}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def read_view(folder: Path) -> list[dict]:
    parts = sorted(folder.glob("part-*.parquet"))
    assert parts, f"no part files in {folder}"
    return [row for part in parts for row in pq.read_table(part).to_pylist()]


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "_manifest.json").read_text())


def located(policy: Path, subject: str) -> dict:
    """`veil locate`'s JSON for one subject."""
    return json.loads(ok("locate", policy, "--subject", subject).out)


def file_bytes(folder: Path) -> dict[Path, bytes]:
    """Every file under `folder`, plus the decoded cells of Parquet files (snappy may hide a value)."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".parquet":
            data += b"\n" + json.dumps(pq.read_table(path).to_pylist(), default=str).encode()
        found[path] = data
    return found


def occurrences(paths: dict[Path, bytes], values) -> list[tuple[str, str]]:
    return [(path.name, value) for path, data in paths.items() for value in values if value.encode() in data]


def audit_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# ---------------------------------------------------------------- consent tables

T = {d: datetime(2025, 1, d, 9, 30, tzinfo=timezone.utc) for d in range(1, 10)}
# (subject, purpose, granted, at), in the order they are written (deliberately not by time)
CONSENT_LOG = [
    ("C0000001", "research", True, T[1]),  # granted
    ("C0000002", "research", True, T[1]),  # granted, then withdrawn later
    ("C0000003", "research", False, T[1]),  # withdrawn, then re-granted
    ("C0000004", "research", True, T[3]),  # tie: grant and withdrawal at the same time
    ("C0000005", "research", False, T[3]),  # tie, withdrawal written first
    ("C0000006", "marketing", True, T[1]),  # another purpose only
    ("C0000007", "research", True, T[1]),  # granted here, withdrawn for another purpose
    ("C0000008", "research", False, T[5]),  # withdrawn later, written before the earlier grant
    ("C0000009", "research", True, T[5]),  # granted later, written before the earlier withdrawal
    ("C0000010", "research", True, None),  # a grant without a time grants nothing
    ("C0000011", "research", True, T[1]),  # granted; a later entry without a decision changes nothing
    ("C0000012", "research", False, T[1]),  # only a withdrawal
    ("C9999999", "research", True, T[1]),  # a subject not in the data
    *[(f"C{i:07d}", "research", True, T[2]) for i in range(20, 30)],
    ("C0000002", "research", False, T[2]),
    ("C0000003", "research", True, T[2]),
    ("C0000004", "research", False, T[3]),
    ("C0000005", "research", True, T[3]),
    ("C0000007", "marketing", False, T[2]),
    ("C0000008", "research", True, T[1]),
    ("C0000009", "research", False, T[1]),
    ("C0000011", "research", None, T[2]),
    ("C0000013", "marketing", True, T[1]),
    ("C0000013", "research", None, T[1]),
]
CONSENTED = {"C0000001", "C0000003", "C0000007", "C0000009", "C0000011", *(f"C{i:07d}" for i in range(20, 30))}
CONSENT_SCHEMA = pa.schema(
    [("subject", pa.string()), ("purpose", pa.string()), ("granted", pa.bool_()), ("at", pa.timestamp("us", "UTC"))]
)
RESEARCH_FIELDS = {
    "customer_id": {"action": "pseudonymize", "domain": "customer", "as": "customer_key"},
    "email": {"action": "keep"},  # identifies the row for the test (emails are unique)
}


def consent_table(renamed: dict[str, str] | None = None) -> pa.Table:
    table = pa.Table.from_pylist([dict(zip(CONSENT_SCHEMA.names, row)) for row in CONSENT_LOG], CONSENT_SCHEMA)
    if renamed:
        table = table.rename_columns([renamed.get(n, n) for n in table.schema.names])
        table = table.append_column("source", pa.array(["web"] * table.num_rows))
    return table


def write_jsonl(table: pa.Table, path: Path) -> None:
    with path.open("w") as out:
        for row in table.to_pylist():
            if row["at"] is not None:
                row["at"] = row["at"].isoformat()
            out.write(json.dumps(row) + "\n")


@dataclass
class ConsentRun:
    variant: str
    policy: Path
    output: Path
    result: Result
    erased: set[str] = field(default_factory=set)


@pytest.fixture(scope="module", params=["parquet-folder", "renamed-columns", "csv", "jsonl", "with-erasure"])
def consent_run(request, world) -> ConsentRun:
    variant = request.param
    folder = world.root / f"consent-{variant}"
    folder.mkdir()
    table, extra, erased = consent_table(), {}, set()
    if variant == "parquet-folder":  # two files, the tie split between them
        (folder / "consent").mkdir()
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), folder / "consent" / "log-1.parquet")
        pq.write_table(table.slice(half), folder / "consent" / "log-2.parquet")
        consent = {"table": "consent"}  # relative to the policy's folder
    elif variant == "renamed-columns":
        names = {"subject": "sid", "purpose": "p", "granted": "g", "at": "t"}
        pq.write_table(consent_table(names), folder / "consent.parquet")
        consent = {"table": str(folder / "consent.parquet"), "columns": names}
    elif variant == "csv":
        pa_csv.write_csv(table, folder / "consent.csv")
        consent = {"table": str(folder / "consent.csv")}
    elif variant == "jsonl":
        write_jsonl(table, folder / "consent.jsonl")
        consent = {"table": str(folder / "consent.jsonl")}
    else:
        pq.write_table(table, folder / "consent.parquet")
        consent = {"table": str(folder / "consent.parquet")}
        extra = {"erasure": {"table": "erasure"}}
        erased = {"C0000001", "C0000002"}  # one consented, one not: both count as erased
    policy = write_policy(
        folder / "research.yaml", "research", RESEARCH_FIELDS, keyset=world.keyset, consent=consent, **extra
    )
    if erased:
        ok("erase", policy, "--init", *(a for s in sorted(erased) for a in ("--subject", s)))
    output = folder / "out"
    result = cli("run", policy, "--input", world.parquet, "--output", output)
    return ConsentRun(variant, policy, output, result, erased)


def test_consent_table_lets_exactly_the_consented_subjects_through(world, consent_run):
    assert consent_run.result.code == 0, consent_run.result.err
    rows = read_view(consent_run.output)
    subjects = [world.id_of_email[row["email"]] for row in rows]
    assert sorted(subjects) == sorted(CONSENTED - consent_run.erased)


def test_consent_table_rows_carry_the_subjects_pseudonyms(world, consent_run):
    assert consent_run.result.code == 0, consent_run.result.err
    keys = {row["email"]: row["customer_key"] for row in read_view(consent_run.output)}
    for subject in ("C0000003", "C0000009"):
        assert keys[world.email_of[subject]] == located(consent_run.policy, subject)["matches"]["customer_key"]


def test_consent_table_counts_in_the_manifest(consent_run):
    assert consent_run.result.code == 0, consent_run.result.err
    expected_written = len(CONSENTED - consent_run.erased)
    no_consent = sum(1 for s in IDS if s not in CONSENTED and s not in consent_run.erased)
    counts = manifest_of(consent_run.output)["counts"]
    assert counts["read"] == ROWS
    assert counts["written"] == expected_written
    expected_dropped = {"no_consent": no_consent}
    if consent_run.erased:
        expected_dropped["erased"] = len(consent_run.erased)
    assert counts["dropped"] == expected_dropped
    assert counts["read"] == counts["written"] + sum(counts["dropped"].values())


@pytest.mark.parametrize(
    "columns, missing",
    [(None, "at"), ({"granted": "decision"}, "decision"), ({"subject": "customer", "at": "when"}, "customer")],
)
def test_a_consent_table_without_a_column_is_refused(world, tmp_path, columns, missing):
    table = consent_table()
    if columns is None:
        table = table.drop_columns(["at"])
    pq.write_table(table, tmp_path / "consent.parquet")
    consent = {"table": str(tmp_path / "consent.parquet"), **({"columns": columns} if columns else {})}
    policy = write_policy(tmp_path / "p.yaml", "research", RESEARCH_FIELDS, keyset=world.keyset, consent=consent)
    result = cli("run", policy, "--input", world.parquet, "--output", tmp_path / "out")
    assert result.code == 2, result.err
    assert result.err.startswith("error: consent table") and f"no column {missing}" in result.err
    assert not (tmp_path / "out" / "_manifest.json").exists()


def test_consent_times_written_as_text_are_ordered_as_times(world, tmp_path):
    # JSON Lines times with a fraction or an offset stay text in Arrow; as text they would sort
    # "10:00:00.5Z" before "10:00:00Z" and "12:00:00+02:00" after "11:00:00Z".
    entries = [
        ("C0000001", True, "2025-01-01T10:00:00Z"),
        ("C0000001", False, "2025-01-01T10:00:00.5Z"),  # half a second later: withdrawn
        ("C0000002", False, "2025-01-01T12:00:00+02:00"),  # 10:00 UTC
        ("C0000002", True, "2025-01-01T11:00:00Z"),  # an hour later: granted
    ]
    with (tmp_path / "consent.jsonl").open("w") as out:
        for subject, granted, at in entries:
            out.write(json.dumps({"subject": subject, "purpose": "research", "granted": granted, "at": at}) + "\n")
    consent = {"table": str(tmp_path / "consent.jsonl")}
    policy = write_policy(tmp_path / "p.yaml", "research", RESEARCH_FIELDS, keyset=world.keyset, consent=consent)
    ok("run", policy, "--input", world.parquet, "--output", tmp_path / "out")
    assert [world.id_of_email[r["email"]] for r in read_view(tmp_path / "out")] == ["C0000002"]


def test_consent_decisions_that_are_not_booleans_are_refused(world, tmp_path):
    # "no" is truthy text: read as a decision, it would grant
    (tmp_path / "consent.csv").write_text(
        "subject,purpose,granted,at\nC0000001,research,no,2025-01-01T10:00:00Z\nC0000002,research,yes,2025-01-01T10:00:00Z\n"
    )
    consent = {"table": str(tmp_path / "consent.csv")}
    policy = write_policy(tmp_path / "p.yaml", "research", RESEARCH_FIELDS, keyset=world.keyset, consent=consent)
    result = cli("run", policy, "--input", world.parquet, "--output", tmp_path / "out")
    assert result.code == 2 and "consent table column granted must hold true/false" in result.err, result.err
    assert not (tmp_path / "out" / "_manifest.json").exists()


def test_a_missing_consent_table_is_refused(world, tmp_path):
    consent = {"table": str(tmp_path / "nowhere.parquet")}
    policy = write_policy(tmp_path / "p.yaml", "research", RESEARCH_FIELDS, keyset=world.keyset, consent=consent)
    result = cli("run", policy, "--input", world.parquet, "--output", tmp_path / "out")
    assert result.code == 2 and "matches no files" in result.err, result.err


# ---------------------------------------------------------------- erasure


@dataclass
class ErasureWorld:
    root: Path
    keyset: Path
    audit: Path
    billing: Path  # policy
    fraud: Path  # policy of another purpose sharing the erasure table
    table: Path
    before: Path
    after: Path
    rotated: Path
    erased_before_rotation: set[str]
    erased_after_rotation: set[str]
    results: dict[str, Result]
    keys_before: dict[str, str]  # subject -> billing pseudonym (key version 1)
    keys_rotated: dict[str, str]  # subject -> billing pseudonym (key version 2)


@pytest.fixture(scope="module")
def erasure(world) -> ErasureWorld:
    root = world.root / "erasure"
    keyset = root / "keyset.json"
    root.mkdir()
    init_keyset(str(keyset))
    policies = root / "policies"
    pseudonym = {"action": "pseudonymize", "domain": "customer", "as": "customer_key"}
    billing = write_policy(
        policies / "billing.yaml",
        "billing",
        {"customer_id": pseudonym, "email": {"action": "keep"}, "country": {"action": "keep"}},
        keyset=keyset,
        erasure={"table": "erasure-table"},  # relative to the policies' folder: both name the same table
    )
    fraud = write_policy(
        policies / "fraud.yaml",
        "fraud",
        {"customer_id": pseudonym, "email": {"action": "keep"}, "phone": {"action": "keep"}},
        keyset=keyset,
        erasure={"table": "erasure-table"},
    )
    results = {"init": cli("erase", billing, "--init")}
    before = root / "before"
    results["run-before"] = cli("run", billing, "--input", world.parquet, "--output", before)
    keys_before = {s: located(billing, s)["matches"]["customer_key"] for s in IDS}

    results["erase-one"] = cli("erase", billing, "--subject", "C0000005")
    subjects_file = root / "subjects.txt"
    subjects_file.write_text("C0000012\n\nC0000030\r\n C0000005 \n")
    results["erase-file"] = cli("erase", fraud, "--subjects-file", subjects_file)
    after = root / "after"
    results["run-after"] = cli("run", billing, fraud, "--input", world.parquet, "--output", after)

    results["rotate"] = cli("keys", "rotate", "--keyset", keyset)
    results["erase-rotated"] = cli("erase", billing, "--subject", "C0000021")
    rotated = root / "rotated"
    results["run-rotated"] = cli("run", billing, fraud, "--input", world.parquet, "--output", rotated)
    keys_rotated = {s: located(billing, s)["matches"]["customer_key"] for s in IDS}
    return ErasureWorld(
        root,
        keyset,
        root / "audit.jsonl",
        billing,
        fraud,
        policies / "erasure-table",
        before,
        after,
        rotated,
        {"C0000005", "C0000012", "C0000030"},
        {"C0000005", "C0000012", "C0000030", "C0000021"},
        results,
        keys_before,
        keys_rotated,
    )


def test_erasure_commands_succeed(erasure):
    for name, result in erasure.results.items():
        assert result.code == 0, (name, result.err)
    assert "created erasure table" in erasure.results["init"].out
    assert "erased 1 subject " in erasure.results["erase-one"].out
    assert "erased 3 subjects" in erasure.results["erase-file"].out  # blank line skipped, spaces stripped


def test_erasure_table_holds_keyed_references_only(erasure):
    files = sorted(erasure.table.glob("erased-*.parquet"))
    assert len(files) == 3  # one per erase command, appended
    assert (erasure.table / "_veil_erasure_table").is_file()
    table = pa.concat_tables(pq.read_table(f) for f in files)
    assert table.schema.names == ["subject_ref", "erased_at"]
    refs = table.column("subject_ref").to_pylist()
    assert len(refs) == 5 and all(len(ref) == 64 and int(ref, 16) >= 0 for ref in refs)
    keyring = open_keyring(str(erasure.keyset))
    assert set(refs) == {subject_ref(keyring, s) for s in erasure.erased_after_rotation}
    assert all(at.tzinfo is not None for at in table.column("erased_at").to_pylist())


def test_before_erasure_everyone_flows(world, erasure):
    rows = read_view(erasure.before)
    assert sorted(world.id_of_email[r["email"]] for r in rows) == IDS
    assert sorted(r["customer_key"] for r in rows) == sorted(erasure.keys_before.values())
    assert manifest_of(erasure.before)["counts"]["dropped"].get("erased", 0) == 0


@pytest.mark.parametrize("purpose", ["billing", "fraud"])
def test_erased_subjects_are_gone_under_every_purpose_sharing_the_table(world, erasure, purpose):
    view = erasure.after / purpose
    rows = read_view(view)
    assert sorted(world.id_of_email[r["email"]] for r in rows) == sorted(set(IDS) - erasure.erased_before_rotation)
    if purpose == "billing":  # the subjects' pseudonyms (from locate) are in the old output, not in the new
        keys = {r["customer_key"] for r in rows}
        for subject in erasure.erased_before_rotation:
            assert erasure.keys_before[subject] not in keys
        assert keys == {erasure.keys_before[s] for s in set(IDS) - erasure.erased_before_rotation}
    counts = manifest_of(view)["counts"]
    assert counts["read"] == ROWS
    assert counts["written"] == ROWS - 3
    assert counts["dropped"] == {"erased": 3}


@pytest.mark.parametrize("purpose", ["billing", "fraud"])
def test_erased_subjects_stay_gone_after_a_key_rotation(world, erasure, purpose):
    view = erasure.rotated / purpose
    manifest = manifest_of(view)
    assert manifest["keys"]["key_version"] == 2
    rows = read_view(view)
    assert sorted(world.id_of_email[r["email"]] for r in rows) == sorted(set(IDS) - erasure.erased_after_rotation)
    if purpose == "billing":
        assert erasure.keys_rotated["C0000005"] != erasure.keys_before["C0000005"]  # the rotation took effect
        keys = {r["customer_key"] for r in rows}
        assert not keys & {erasure.keys_rotated[s] for s in erasure.erased_after_rotation}
    assert manifest["counts"]["read"] == ROWS
    assert manifest["counts"]["written"] == ROWS - 4
    assert manifest["counts"]["dropped"] == {"erased": 4}


def test_no_raw_subject_id_in_the_erasure_table_outputs_or_audit_log(world, erasure):
    assert erasure.audit.is_file()
    written = {**file_bytes(erasure.table), **file_bytes(erasure.before), **file_bytes(erasure.after)}
    written.update(file_bytes(erasure.rotated))
    written[erasure.audit] = erasure.audit.read_bytes()
    assert len(written) > 10
    assert occurrences(written, IDS) == []  # neither the erased ids nor anyone else's
    # nor any value of an erased subject in the outputs made after the erasure
    erased_rows = [r for r in world.table.to_pylist() if r["customer_id"] in erasure.erased_before_rotation]
    values = {r[c] for r in erased_rows for c in ("email", "phone")}
    after = {**file_bytes(erasure.after), **file_bytes(erasure.rotated)}
    assert occurrences(after, values) == []


def test_erasure_with_a_consent_field_counts_each_record_once(world, erasure, tmp_path):
    policy = write_policy(
        tmp_path / "analytics.yaml",
        "analytics",
        {"customer_id": {"action": "pseudonymize", "as": "customer_key"}, "email": {"action": "keep"}},
        keyset=erasure.keyset,
        consent={"field": "consents"},
        erasure={"table": str(erasure.table)},
    )
    ok("run", policy, "--input", world.parquet, "--output", tmp_path / "out")
    consents = dict(zip(IDS, world.table.column("consents").to_pylist()))
    erased = erasure.erased_after_rotation
    allowed = {s for s in IDS if s not in erased and "analytics" in (consents[s] or [])}
    rows = read_view(tmp_path / "out")
    assert sorted(world.id_of_email[r["email"]] for r in rows) == sorted(allowed)
    counts = manifest_of(tmp_path / "out")["counts"]
    assert counts["read"] == ROWS and counts["written"] == len(allowed)
    assert counts["dropped"] == {"erased": len(erased), "no_consent": ROWS - len(erased) - len(allowed)}


def test_a_missing_erasure_table_is_an_error_never_an_empty_list(world, erasure, tmp_path):
    fields = {"customer_id": {"action": "pseudonymize", "as": "customer_key"}}
    missing = write_policy(
        tmp_path / "missing.yaml", "billing", fields, keyset=erasure.keyset, erasure={"table": "nope"}
    )
    result = cli("run", missing, "--input", world.parquet, "--output", tmp_path / "out")
    assert result.code == 2 and "does not exist" in result.err, result.err
    assert not (tmp_path / "out" / "_manifest.json").exists()
    result = cli("erase", missing, "--subject", "C0000001")
    assert result.code == 2 and "does not exist" in result.err, result.err
    assert not (tmp_path / "nope").exists()

    # a folder holding erasure files but not made by `--init` (a copy, a wrong path) is refused too
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in erasure.table.glob("erased-*.parquet"):
        (copy / path.name).write_bytes(path.read_bytes())
    unmarked = write_policy(tmp_path / "copy.yaml", "billing", fields, keyset=erasure.keyset, erasure={"table": "copy"})
    result = cli("run", unmarked, "--input", world.parquet, "--output", tmp_path / "out")
    assert result.code == 2 and "does not exist" in result.err, result.err
    assert not (tmp_path / "out" / "_manifest.json").exists()


def test_erase_init_refuses_an_existing_table_and_erase_needs_ids(erasure, tmp_path):
    before = sorted(p.name for p in erasure.table.iterdir())
    result = cli("erase", erasure.billing, "--init")
    assert result.code == 2 and "already exists" in result.err, result.err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    result = cli("erase", erasure.billing, "--subjects-file", empty)
    assert result.code == 2 and "at least one subject" in result.err, result.err
    assert sorted(p.name for p in erasure.table.iterdir()) == before


def test_erase_needs_a_policy_with_an_erasure_table(world, tmp_path):
    policy = write_policy(tmp_path / "p.yaml", "research", RESEARCH_FIELDS, keyset=world.keyset)
    result = cli("erase", policy, "--subject", "C0000001")
    assert result.code == 2 and "has no erasure table" in result.err, result.err


# ---------------------------------------------------------------- locate


def test_locate_finds_exactly_the_subjects_rows_in_a_real_output(world, erasure):
    rows = read_view(erasure.rotated / "billing")  # made with the keyset's current primary, as locate uses
    for subject in ("C0000009", "C0000033"):
        document = located(erasure.billing, subject)
        assert document["purpose"] == "billing" and document["subject_field"] == "customer_id"
        (name, value), *more = document["matches"].items()
        assert name == "customer_key" and not more
        mine = [r for r in rows if value in r.values()]
        assert [r["email"] for r in mine] == [world.email_of[subject]]
        assert not any(value in str(r) for r in rows if r not in mine)


def test_locate_refuses_a_policy_whose_subject_cannot_be_found(world, tmp_path):
    fields = {"customer_id": {"action": "encrypt"}, "email": {"action": "keep"}}
    policy = write_policy(tmp_path / "p.yaml", "research", fields, keyset=world.keyset)
    result = cli("locate", policy, "--subject", "C0000001")
    assert result.code == 2 and "cannot be found" in result.err, result.err


# ---------------------------------------------------------------- export and rectification

SUPPORT_FIELDS = {
    "customer_id": {"action": "pseudonymize", "domain": "customer", "as": "customer_key"},
    "email": {"action": "tokenize", "method": "siv", "as": "email_token"},
    "notes": {"action": "encrypt"},
    "card_number": {"action": "tokenize", "method": "ff1", "alphabet": "digits", "keep_last": 4},
    "country": {"action": "keep"},
}
TWICE = "C0000004"  # has a second record in the support input
CORRECTED, NEW_EMAIL = "C0000006", "corrected.address@example.net"


@dataclass
class SupportWorld:
    policy: Path
    input: pa.Table
    view: Path  # run on the input
    fixed: Path  # run on the input with CORRECTED's email rectified
    fixed_input: pa.Table


@pytest.fixture(scope="module")
def support(world) -> SupportWorld:
    root = world.root / "support"
    root.mkdir()
    policy = write_policy(root / "support.yaml", "support", SUPPORT_FIELDS, keyset=world.keyset)
    rows = world.table.to_pylist()
    second = {**rows[IDS.index(TWICE)], "email": "second.record@example.org", "notes": "A second record of hers."}
    source = pa.Table.from_pylist([*rows, second], world.table.schema)
    pq.write_table(source, root / "in.parquet")
    ok("run", policy, "--input", root / "in.parquet", "--output", root / "view")

    emails = source.column("email").to_pylist()
    emails[IDS.index(CORRECTED)] = NEW_EMAIL
    fixed_input = source.set_column(source.schema.get_field_index("email"), "email", pa.array(emails))
    pq.write_table(fixed_input, root / "in.parquet")  # the source, corrected in place
    ok("run", policy, "--input", root / "in.parquet", "--output", root / "fixed")
    return SupportWorld(policy, source, root / "view", root / "fixed", fixed_input)


def expected_records(table: pa.Table, subject: str, key: str) -> list[dict]:
    return sorted(
        (
            {
                "customer_key": key,
                "email": r["email"],
                "notes": r["notes"],
                "card_number": r["card_number"],
                "country": r["country"],
            }
            for r in table.to_pylist()
            if r["customer_id"] == subject
        ),
        key=lambda r: r["email"],
    )


def export(policy: Path, subject: str, view: Path, output: Path) -> dict:
    result = ok("export", policy, "--subject", subject, "--input", view, "--output", output)
    assert "records" in result.out
    return json.loads(output.read_text())


@pytest.mark.parametrize("subject, records", [(TWICE, 2), ("C0000009", 1), ("C0000099", 0)])
def test_export_holds_exactly_the_subjects_records_restored(support, tmp_path, subject, records):
    key = located(support.policy, subject)["matches"]["customer_key"]
    document = export(support.policy, subject, support.view, tmp_path / "export.json")
    assert document["purpose"] == "support"
    assert document["not_restored"] == {}
    assert len(document["records"]) == records
    assert sorted(document["records"], key=lambda r: r["email"]) == expected_records(support.input, subject, key)
    assert (tmp_path / "export.json").stat().st_mode & 0o077 == 0  # personal data: owner only


def test_export_refuses_an_output_of_another_purpose(world, erasure, support, tmp_path):
    result = cli(
        "export", support.policy, "--subject", "C0000009", "--input", erasure.before, "--output", tmp_path / "x"
    )
    assert result.code == 2 and "made for purpose 'billing'" in result.err, result.err
    assert not (tmp_path / "x").exists()


def test_rectification_keeps_the_pseudonym_and_replaces_the_value(support, tmp_path):
    key = located(support.policy, CORRECTED)["matches"]["customer_key"]
    old, new = read_view(support.view), read_view(support.fixed)
    stable = ("customer_key", "email_token", "card_number", "country")  # notes are randomised per run

    def index(rows):
        return sorted(tuple(r[c] for c in stable) for r in rows)

    assert index(r for r in old if r["customer_key"] != key) == index(r for r in new if r["customer_key"] != key)
    (old_row,) = [r for r in old if r["customer_key"] == key]
    (new_row,) = [r for r in new if r["customer_key"] == key]
    assert old_row["email_token"] != new_row["email_token"]
    assert (old_row["card_number"], old_row["country"]) == (new_row["card_number"], new_row["country"])

    before = export(support.policy, CORRECTED, support.view, tmp_path / "before.json")["records"]
    after = export(support.policy, CORRECTED, support.fixed, tmp_path / "after.json")["records"]
    original = support.input.column("email").to_pylist()[IDS.index(CORRECTED)]
    assert [r["email"] for r in before] == [original] != [NEW_EMAIL]
    assert after == expected_records(support.fixed_input, CORRECTED, key)
    assert [r["email"] for r in after] == [NEW_EMAIL]


# ---------------------------------------------------------------- audit lines


def test_erase_locate_and_export_each_append_one_audit_line_without_values(world, support, tmp_path):
    audit = tmp_path / "rights-audit.jsonl"
    policy = write_policy(
        tmp_path / "audited.yaml",
        "support",
        SUPPORT_FIELDS,
        keyset=world.keyset,
        erasure={"table": "erasure"},
        audit_log=str(audit),
    )
    ok("erase", policy, "--init")
    subjects = tmp_path / "subjects.txt"
    subjects.write_text("C0000015\nC0000016\n")
    commands = [
        ("erase", ["erase", policy, "--subject", "C0000014"], {"subjects": 1}),
        ("erase", ["erase", policy, "--subjects-file", subjects], {"subjects": 2}),
        ("locate", ["locate", policy, "--subject", "C0000017"], {"fields": ["customer_key"]}),
        (
            "export",
            ["export", policy, "--subject", TWICE, "--input", support.view, "--output", tmp_path / "e.json"],
            {"records": 2, "fields": ["email_token", "notes", "card_number"]},
        ),
    ]
    for event, args, facts in commands:
        before = audit_lines(audit)
        ok(*args)
        after = audit_lines(audit)
        assert after[: len(before)] == before
        (line,) = after[len(before) :]
        assert line["event"] == event
        assert line["purpose"] == "support" and line["policy"] == str(policy)
        assert {"at", "who", "policy_sha256"} <= line.keys()
        for name, value in facts.items():
            assert line[name] == value, (event, name, line)

    text = audit.read_text()
    rows = [r for r in support.input.to_pylist() if r["customer_id"] in {"C0000014", "C0000015", "C0000016", TWICE}]
    values = {*IDS, *(r[c] for r in rows for c in ("email", "notes", "card_number", "phone") if r[c])}
    assert [v for v in values if v in text] == []
