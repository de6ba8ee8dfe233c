"""`veil explain` on the example policies: the notice and the data map say what the policies do,
name every purpose and field, hold nothing of the keyset, and render in a browser."""

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helpers import CHROMIUM, NO_CHROMIUM, assert_no_secret, chromium_screenshot, cli, pixels_near

from veil.keys.keyset import read_keyset, resolve_master_key, unwrap_keys, unwrap_subject_key
from veil.pipelines.governance.times import retention_words
from veil.transforms.policy import load_policy

CONFIGS = Path(__file__).parents[2] / "configs"
DOCUMENTS = ("notice.md", "notice.html", "data-map.json", "data-map.html")
REVERSIBLE = {"tokenize", "encrypt"}  # the README's reversible actions
GDPR_LETTER = dict(
    consent="a", contract="b", legal_obligation="c", vital_interests="d", public_task="e", legitimate_interests="f"
)
# A phrase each action's sentence must hold (independent of how the notice is put together).
ACTION_PHRASES = {
    "keep": "used as",
    "drop": "not used",
    "redact": "blanked out",
    "replace": "same fixed value",
    "mask": "shown; the rest is hidden",
    "pseudonymize": "code that cannot be turned back",
    "tokenize": "can turn it back, and every time that is logged",
    "encrypt": "and every reading is logged",
    "generalize": "",  # per variant, below
    "date_shift": "secret number of days",
    "fake": "made-up",
    "scrub": "removed",
}
VARIANT_PHRASES = {"age_bins": "age band", "prefix": "Only the first", "width": "multiple of", "date": "Only the"}


@dataclass
class Explained:
    folder: Path
    keyset: Path
    out: str
    texts: dict[str, str]
    raw: dict[str, dict]  # purpose -> the policy YAML, read plainly


@pytest.fixture(scope="module")
def explained(tmp_path_factory) -> Explained:
    """The example configs, with the demo's development keyset where they name it, explained once."""
    from veil.keys import init_keyset

    root = tmp_path_factory.mktemp("explain")
    configs = root / "configs"
    shutil.copytree(CONFIGS, configs, ignore=shutil.ignore_patterns("__*"))
    keyset = configs / ".veil" / "keyset.json"
    init_keyset(str(keyset))  # as `veil demo` makes it: a development master key beside it
    folder = root / "governance"
    result = cli("explain", *sorted(configs.glob("*.yaml")), "--output", folder)
    assert result.code == 0, result.err
    texts = {name: (folder / name).read_text() for name in DOCUMENTS}
    raw = {}
    for path in sorted(configs.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        raw[document["purpose"]] = document
    return Explained(folder, keyset, result.out, texts, raw)


def _section(markdown: str, purpose: str) -> str:
    return markdown.split(f"\n## {purpose.capitalize()}\n", 1)[1].split("\n## ", 1)[0]


def _entry_lines(section: str) -> dict[str, str]:
    """Input field -> its listed line in a notice section."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^- (.*) \(`(\w+)`\)$", section, re.M)}


def test_it_writes_the_four_documents_and_prints_their_paths(explained):
    assert explained.out.split() == [str(explained.folder / name) for name in DOCUMENTS]


def test_every_purpose_and_input_field_appears(explained):
    data_map = json.loads(explained.texts["data-map.json"])
    assert list(data_map["purposes"]) == list(explained.raw)
    for purpose, policy in explained.raw.items():
        section = _section(explained.texts["notice.md"], purpose)
        assert set(_entry_lines(section)) == set(policy["fields"])
        if "consent" in policy:
            assert f"(field {policy['consent']['field']})" in section
        html_section = explained.texts["notice.html"].split(f'<section id="{purpose}">', 1)[1].split("</section>")[0]
        for field in policy["fields"]:
            assert f'<span class="field">{field}</span>' in html_section
            assert f"<th><code>{field}</code></th>" in explained.texts["data-map.html"]
        assert f"<th>{purpose}</th>" in explained.texts["data-map.html"]
        assert set(policy["fields"]) <= set(data_map["fields"])


def test_there_is_a_sentence_for_every_action_present(explained):
    seen = set()
    for purpose, policy in explained.raw.items():
        lines = _entry_lines(_section(explained.texts["notice.md"], purpose))
        for field, spec in policy["fields"].items():
            action = spec["action"]
            seen.add(action)
            phrase = ACTION_PHRASES[action]
            if action == "generalize":
                phrase = next(p for variant, p in VARIANT_PHRASES.items() if variant in spec)
            assert phrase in lines[field], (purpose, field)
            if action in REVERSIBLE:
                assert f"the {purpose} team" in lines[field]
    assert seen >= {"pseudonymize", "tokenize", "encrypt", "generalize", "mask", "keep", "drop", "scrub", "fake"}


def test_each_section_states_basis_retention_recipients_and_contact(explained):
    for purpose, policy in explained.raw.items():
        section = _section(explained.texts["notice.md"], purpose)
        basis = policy.get("legal_basis")
        if basis:
            assert f"(GDPR Art. 6(1)({GDPR_LETTER[basis]}))" in section
        else:
            assert "No legal basis is recorded for this use." in section
        if "retention" in policy:
            assert f"deleted {retention_words(policy['retention'])} after they are made" in section
        for recipient in policy.get("recipients", []):
            assert recipient in section
        if "owner" in policy:
            assert f"Questions and requests about {purpose}: {policy['owner']}." in section
        if "consent" in policy:
            assert "To withdraw your consent" in section
        reversible = [f for f, spec in policy["fields"].items() if spec["action"] in REVERSIBLE]
        assert ("holding the keys of this use" in section) == bool(reversible)
        assert ("audit log" in section) == bool(reversible)


def test_nothing_of_the_keyset_appears(explained):
    keyset = read_keyset(str(explained.keyset))
    master = resolve_master_key(str(explained.keyset))
    secrets = [master, *unwrap_keys(keyset, master).values(), unwrap_subject_key(keyset, master)]
    stored = json.loads(explained.keyset.read_text())
    everything = "\n".join(explained.texts.values()) + explained.out
    assert_no_secret(everything, *secrets)
    for key in stored["keys"]:
        assert key["wrapped"] not in everything
    assert "keyset" not in everything and ".veil" not in everything
    assert str(explained.keyset.parent.parent) not in everything  # no path of the policies' folder either


def test_the_json_matrix_equals_a_plain_recount_of_the_policies(explained):
    data_map = json.loads(explained.texts["data-map.json"])
    expected, reversible = {}, {}
    for policy in explained.raw.values():
        for field in [*policy["fields"], policy.get("subject"), policy.get("consent", {}).get("field")]:
            if field is not None:
                expected.setdefault(field, {})
    for field in expected:
        for purpose, policy in explained.raw.items():
            spec = policy["fields"].get(field)
            if spec is not None:
                expected[field][purpose] = spec["action"]
            elif field == policy.get("consent", {}).get("field"):
                expected[field][purpose] = "read: consent"
            elif field == policy.get("subject"):
                expected[field][purpose] = "read: subject"
            else:
                expected[field][purpose] = "-"
        reversible[field] = [p for p, a in expected[field].items() if a in REVERSIBLE]
    assert data_map["matrix"] == expected
    assert data_map["reversible"] == reversible
    for purpose, policy in explained.raw.items():
        entry = data_map["purposes"][purpose]
        for name in ("owner", "legal_basis", "retention"):
            assert entry[name] == policy.get(name)
        assert entry["recipients"] == policy.get("recipients", [])
        assert entry["reviewed"] == (str(policy["reviewed"]) if "reviewed" in policy else None)


def test_the_html_documents_are_self_contained(explained):
    for name in ("notice.html", "data-map.html"):
        page = explained.texts[name]
        assert page.startswith("<!DOCTYPE html>") and "<script" not in page.lower()
        assert not re.search(r"https?://", page) and not re.search(r"\b(src|href)\s*=", page)


def test_policy_text_is_escaped(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\npurpose: probe\ndescription: '<script>alert(1)</script> *bold* & more'\n"
        "owner: 'a&b <team@example.com>'\nrecipients: ['<img src=x>']\n"
        "fields:\n  note: {action: keep, description: 'your <b>note</b>', reason: 'needed # [link](x)'}\n"
    )
    result = cli("explain", policy, "--output", tmp_path / "out")
    assert result.code == 0, result.err
    for name in ("notice.html", "data-map.html"):
        page = (tmp_path / "out" / name).read_text()
        assert "<script>" not in page and "<img" not in page and "<b>" not in page
        assert "&lt;script&gt;" in page and "&lt;img src=x&gt;" in page
    notice = (tmp_path / "out" / "notice.md").read_text()
    assert "<script>" not in notice and "<b>" not in notice and "[link](x)" not in notice
    assert r"\<script\>" in notice and r"\*bold\*" in notice and "&amp;" in notice


def test_a_bad_policy_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\npurpose: x\nfields:\n  a: {action: shred}\n")
    result = cli("explain", bad, "--output", tmp_path / "out")
    assert result.code == 2
    assert result.err.count("\n") == 1 and result.err.startswith(f"error: policy {bad}: fields.a (line 4): ")
    assert "unknown action 'shred'" in result.err
    missing = cli("explain", tmp_path / "nope.yaml", "--output", tmp_path / "out")
    assert missing.code == 2 and missing.err == f"error: policy {tmp_path / 'nope.yaml'} not found\n"
    assert not (tmp_path / "out").exists()


def test_two_policies_of_one_purpose_are_refused(tmp_path):
    copy = tmp_path / "again.yaml"
    shutil.copy(CONFIGS / "support.yaml", copy)
    result = cli("explain", CONFIGS / "support.yaml", copy, "--output", tmp_path / "out")
    assert result.code == 2 and "both for purpose 'support'" in result.err and result.err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_policy_with_erasure_and_per_subject_keys_says_what_erasure_does(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\npurpose: billing\nsubject: customer_id\nsubject_keys: keys/\nerasure: {table: erasures/}\n"
        "legal_basis: legal_obligation\nretention: 10y\n"
        "fields:\n  customer_id: {action: pseudonymize}\n  notes: {action: encrypt, per_subject: true}\n"
    )
    assert cli("explain", policy, "--output", tmp_path / "out").code == 0
    notice = (tmp_path / "out" / "notice.md").read_text()
    assert "added to an erasure list" in notice and "never reach billing" in notice
    assert "Your notes are encrypted with a key of your own, which is destroyed" in notice
    assert "deleted when their 10 years end" in notice
    assert "(GDPR Art. 6(1)(c))" in notice and "does not depend on your consent" in notice
    assert "erasures" not in notice and "keys/" not in notice  # table paths stay out


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_the_data_map_renders_its_matrix_in_headless_chromium(explained, tmp_path):
    from veil.pipelines.governance.data_map_html import REVERSIBLE_COLOR, SEEN_COLOR

    pixels = chromium_screenshot(explained.folder / "data-map.html", tmp_path / "data-map.png")
    assert pixels_near(pixels, SEEN_COLOR, 6) > 20000, "no matrix cells"
    assert pixels_near(pixels, REVERSIBLE_COLOR, 6) > 5000, "no reversible cells highlighted"


def test_the_demo_writes_and_prints_the_documents_of_the_example_policies(tmp_path):
    from rich.console import Console

    from veil.pipelines.demo import EXAMPLES, example_policy_path, explain_examples

    policies = [load_policy(example_policy_path(purpose)) for purpose in EXAMPLES]
    console = Console(record=True, width=300)
    paths = explain_examples(policies, str(tmp_path / "governance"), console)
    assert paths == [str(tmp_path / "governance" / name) for name in DOCUMENTS]
    printed = console.export_text()
    assert all(f"  {path}\n" in printed for path in paths)
    assert list(json.loads((tmp_path / "governance" / "data-map.json").read_text())["purposes"]) == list(EXAMPLES)


def test_the_readme_excerpt_is_what_explain_writes(explained):
    readme = (CONFIGS.parent / "README.md").read_text()
    excerpt = re.search(r"### Notice and data map.*?```markdown\n(.*?)```", readme, re.S).group(1)
    notice_lines = set(explained.texts["notice.md"].splitlines())
    lines = [line for line in excerpt.splitlines() if line]
    assert len(lines) > 10 and all(line in notice_lines for line in lines)


def test_a_policy_with_aggregates_says_only_statistics_leave(explained):
    section = _section(explained.texts["notice.md"], "statistics")
    assert (
        "Only statistics leave this use, never a record about you: counts, totals of income and averages of "
        "income by country; counts by age band." in section
    )
    assert "differential privacy, epsilon 1)" in section
    assert "Only statistics" not in _section(explained.texts["notice.md"], "analytics")
