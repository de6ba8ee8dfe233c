"""Fuzzing the policy loader: random YAML documents and mutations of the example configs.

Every document loads, or is refused with one `ConfigError` (`veil validate`: one `error:` line,
exit 2); nothing else escapes.
"""

from pathlib import Path

import yaml
from fuzzing import assert_clean, budget, fuzz, mutated
from helpers import cli
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import ConfigError
from veil.transforms.policy import parse_policy

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))
TEXTS = {path.name: path.read_text() for path in CONFIGS}
KEYS = st.sampled_from(
    ["version", "purpose", "subject", "fields", "action", "as", "keyset", "default", "consent", "erasure", "k"]
) | st.text(max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.dates()
    | st.sampled_from(["keep", "drop", "tokenize", "generalize", "siv", "ff1", "month", "suppress", "1", ""])
)
NODES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5), max_leaves=20
)


def load(text: str) -> None:
    """Parse `text`: a policy, or one ConfigError; anything else fails the test."""
    try:
        parse_policy(text, "fuzz.yaml")
    except ConfigError as error:
        assert "\n" not in str(error)


def paths(node, prefix=()):
    """Every (path, node) of a loaded YAML document."""
    yield prefix, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


@st.composite
def structural_mutation(draw) -> str:
    """An example config with one node replaced by a random value, or removed."""
    document = yaml.safe_load(TEXTS[draw(st.sampled_from(sorted(TEXTS)))])
    targets = [p for p, _ in paths(document) if p]
    path = draw(st.sampled_from(targets))
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if draw(st.booleans()):
        parent[path[-1]] = draw(NODES)
    else:
        del parent[path[-1]]
    return yaml.safe_dump(document, sort_keys=False)


@fuzz
@given(NODES)
@budget(30)
def test_random_documents_load_or_are_refused(document):
    load(yaml.safe_dump(document))


@fuzz
@given(st.text(max_size=200))
@budget(10)
def test_random_text_loads_or_is_refused(text):
    load(text)


@fuzz
@given(st.sampled_from(sorted(TEXTS)).flatmap(lambda name: mutated(TEXTS[name].encode())))
@budget(30)
def test_byte_mutations_of_the_configs_load_or_are_refused(data):
    text = data.decode("utf-8", errors="replace")
    load(text)


@fuzz
@given(structural_mutation())
@budget(30)
def test_structural_mutations_of_the_configs_load_or_are_refused(text):
    load(text)


@fuzz
@given(structural_mutation() | st.sampled_from(sorted(TEXTS)).flatmap(lambda name: mutated(TEXTS[name].encode())))
@budget(10)
def test_veil_validate_prints_one_error_line(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_bytes(document if isinstance(document, bytes) else document.encode())
    assert_clean(cli("validate", path))
