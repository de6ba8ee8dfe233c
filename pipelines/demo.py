"""`veil demo`: synthetic customers through the example policies, end to end.

It writes `OUT/input/customers.parquet` (seeded Faker data), a development keyset in
`OUT/.veil/`, runs `veil run` with configs/analytics, marketing, support and quality (the
support notes, scrubbed) into
`OUT/views/<purpose>/`, shows what each purpose sees of the same two customers, and writes the
customer notice and the data map of the example policies into `OUT/governance/` (`veil explain`).
"""

from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from veil import _fs
from veil.keys import init_keyset, open_keyring
from veil.pipelines.governance.explain import write_explain
from veil.pipelines.run import run_job
from veil.pipelines.synthetic import write_customers
from veil.transforms.engine import BoundPlan
from veil.transforms.plan import compile_plan
from veil.transforms.policy import Policy, load_policy

PURPOSES = ("analytics", "marketing", "support")  # what the synthetic consents name
EXAMPLES = (*PURPOSES, "quality")  # quality has no consent gate: it sees the support notes scrubbed
SHOWN = 28


def example_policy_path(purpose: str) -> str:
    """Path of an example policy shipped in `veil.configs`."""
    return str(resources.files("veil.configs") / f"{purpose}.yaml")


def _short(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _samples(table, count: int = 2) -> list[dict]:
    """The first `count` customers who consented to every example purpose and have notes."""
    picked = []
    for row in table.to_pylist():
        if row["consents"] and set(PURPOSES) <= set(row["consents"]) and row["notes"] and row["birth_date"]:
            picked.append(row)
            if len(picked) == count:
                break
    return picked


def _as_seen_by(policy: Policy, schema, keyset: str, rows: list[dict], folder: str) -> list[dict]:
    """The output rows of `rows`, found in the view by their deterministic first field."""
    plan = compile_plan(policy, schema)
    expected = BoundPlan(plan, open_keyring(keyset)).apply_records(rows).records
    key = plan.ops[0].output
    wanted = {row[key] for row in expected}
    found = {row[key]: row for row in pq.read_table(folder).to_pylist() if row[key] in wanted}
    return [found.get(row[key], {}) for row in expected]


def _side_by_side(title: str, rows: list[dict]) -> Table:
    table = Table("field", *(f"customer {i + 1}" for i in range(len(rows))), title=title, title_justify="left")
    for field in rows[0]:
        table.add_row(field, *(_short(row.get(field)) for row in rows))
    return table


def run_demo(*, rows: int, out: str, console: Console) -> list[dict]:
    """Generate, protect, summarise; returns the run's manifests."""
    base = Path(out)
    source = str(base / "input" / "customers.parquet")
    (base / "input").mkdir(parents=True, exist_ok=True)
    write_customers(source, rows)
    keyset = str(base / ".veil" / "keyset.json")
    if not _fs.exists(keyset):
        if init_keyset(keyset):
            console.print(
                f"[yellow]created a development keyset and master key in {base / '.veil'} (for development only)[/]"
            )
    policies = [load_policy(example_policy_path(p)) for p in EXAMPLES]
    console.print(f"protecting {rows} synthetic customers for {', '.join(EXAMPLES)} ...")
    manifests = run_job(policies, source, str(base / "views"), keyset=keyset, overwrite=True)

    summary = Table(
        "purpose",
        "in",
        "out",
        "records dropped",
        "kept",
        "protected",
        "removed",
        title="veil demo: records in and out, fields kept, protected and removed",
        title_justify="left",
    )
    for manifest in manifests:
        counts, fields = manifest["counts"], manifest["fields"].values()
        kept = sum(1 for f in fields if f["action"] == "keep")
        summary.add_row(
            manifest["purpose"],
            str(counts["read"]),
            str(counts["written"]),
            "\n".join(f"{k} {v}" for k, v in counts["dropped"].items()) or "0",
            str(kept),
            str(len(fields) - kept),
            str(len(manifest["dropped_fields"])),
        )
    console.print(summary)
    for manifest in manifests:
        scrubbed = manifest["counts"].get("scrubbed", {})
        for field, entities in scrubbed.items():
            found = ", ".join(f"{entity} {n}" for entity, n in sorted(entities.items()))
            console.print(f"{manifest['purpose']}: scrubbed from {field}: {found}")

    table = pq.read_table(source)
    samples = _samples(table)
    if samples:
        console.print(_side_by_side("before: the raw input", samples))
        for policy, manifest in zip(policies, manifests):
            after = _as_seen_by(policy, table.schema, keyset, samples, manifest["output"]["folder"])
            if all(after):
                console.print(_side_by_side(f"after: what {policy.purpose} sees", after))
    console.print(f"views and manifests: {base / 'views'}/<purpose>/ ; input: {source}")
    from veil.pipelines.report_text import run_lines  # k-anonymity: suppression, fairness warnings, report path
    from veil.pipelines.verify import verify_lines  # each view checked against the input before publishing

    for line in [*run_lines(manifests), *verify_lines(manifests)]:
        console.print(line, markup=False, soft_wrap=True)
    explain_examples(policies, str(base / "governance"), console)
    return manifests


def explain_examples(policies: list[Policy], folder: str, console: Console) -> list[str]:
    """Write the notice and data map of `policies` into `folder` (`veil explain`) and print their paths."""
    paths = write_explain(policies, folder)
    console.print("customer notice and data map of the example policies (veil explain):")
    for path in paths:
        console.print(f"  {path}", markup=False, soft_wrap=True)
    return paths
