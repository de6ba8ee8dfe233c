"""Dataset privacy without Beam: class keys, verdicts, risk figures, fairness, coarser generalizations, policy rules."""

import datetime as dt
import math
from collections import Counter

import pyarrow as pa
import pytest
import yaml

from veil.errors import ConfigError
from veil.transforms import anonymity as an
from veil.transforms.actions.generalize import GeneralizeParams
from veil.transforms.policy import parse_policy

# ---------------------------------------------------------------- class keys


@pytest.mark.parametrize(
    "value",
    [
        None,
        "902",
        "",
        0,
        -7,
        2.5,
        True,
        dt.date(2024, 5, 1),
        dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
        b"\x00\xff",
        ["a", None],
    ],
)
def test_a_class_key_decodes_to_its_values(value):
    key = an.encode([value, "x"])
    back = an.decode(key)
    expected = tuple(value) if isinstance(value, list) else value
    assert back == (expected, "x")
    assert type(back[0]) is type(expected)


def test_class_keys_are_equal_exactly_when_values_are():
    assert an.encode([None]) != an.encode(["null"]) != an.encode([""])
    assert an.encode([dt.date(2024, 1, 1)]) != an.encode(["2024-01-01"])
    assert an.encode([0.0]) == an.encode([-0.0])
    assert an.encode([math.nan]) == an.encode([float("nan")])
    assert an.encode(["a", "b"]) != an.encode(["a,b"]) != an.encode(["a", "b", None])


# ---------------------------------------------------------------- verdicts and figures


@pytest.mark.parametrize(
    ("size", "distinct", "l", "expected"),
    [
        (2, [5], 2, an.K_ANONYMITY),  # too small, whatever its diversity
        (3, [1], None, None),  # k met, no l rule
        (3, [1], 2, an.L_DIVERSITY),
        (3, [2, 1], 2, an.L_DIVERSITY),  # every sensitive field must reach l
        (3, [2, 2], 2, None),
    ],
)
def test_verdicts(size, distinct, l, expected):  # noqa: E741
    assert an.verdict(size, distinct, 3, l) == expected


def test_size_figures_match_a_hand_count():
    # classes of sizes 1, 1, 3, 5, 5: 15 records
    figures = an.size_figures({1: 2, 3: 1, 5: 2}, k=3)
    assert figures["records"] == 15
    assert figures["equivalence_classes"] == 5
    assert figures["smallest_class"] == 1 and figures["largest_class"] == 5
    assert figures["records_below_k"] == 2 and figures["classes_below_k"] == 2
    assert figures["unique_share"] == pytest.approx(2 / 15)
    assert figures["prosecutor_risk_max"] == 1.0
    # mean over records of 1/class size: (1 + 1 + 3*(1/3) + 10*(1/5)) / 15 = 5 / 15
    assert figures["prosecutor_risk_mean"] == pytest.approx(5 / 15)


def test_size_figures_of_nothing():
    figures = an.size_figures({}, k=3)
    assert figures["records"] == figures["equivalence_classes"] == figures["records_below_k"] == 0
    assert figures["smallest_class"] is None and figures["prosecutor_risk_max"] == 0.0


def test_histogram_bins_are_exact_up_to_k_then_doubling_and_hold_every_class():
    assert an.size_bins(5, 30) == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 10), (11, 20), (21, 40)]
    assert an.size_bins(8, 3)[-1] == (8, 8)
    assert an.size_bins(25, 100)[9:13] == [(10, 10), (11, 20), (21, 24), (25, 40)]  # capped, split at k
    sizes = Counter({1: 4, 2: 3, 7: 2, 12: 1, 500: 1})
    bars = an.histogram(sizes, an.size_bins(5, 500))
    assert sum(b["classes"] for b in bars) == sum(sizes.values())
    assert sum(b["records"] for b in bars) == sum(s * c for s, c in sizes.items())
    assert next(b for b in bars if b["min"] <= 500 <= b["max"])["records"] == 500


# ---------------------------------------------------------------- grouping


def test_arrow_grouping_and_python_grouping_agree_and_keep_null_as_a_value():
    table = pa.table(
        {
            "a": ["x", None, None, "x", "y", None],
            "b": [1, 1, 1, None, 2, 1],
            "s": ["p", None, "q", "p", None, None],
        }
    )
    arrow = an.group_classes(table, ["a", "b"], ["s"], values=False)
    python = an._group_in_python(table.rename_columns(["q0", "q1", "s0"]), ["q0", "q1"], ["s0"], False)
    assert sorted(arrow, key=repr) == sorted(python, key=repr)
    assert ((None, 1), 3, [2]) in arrow  # null a value of its own, and counted as a distinct value
    values = an.group_classes(table, ["a", "b"], ["s"], values=True)
    distinct = next(d for k, _, d in values if k == (None, 1))[0]
    assert sorted(distinct, key=repr) == sorted([None, "q"], key=repr)


def test_columns_arrow_cannot_group_by_fall_back_to_python():
    table = pa.table({"tags": [["a"], ["a"], ["b"]], "n": [1, 1, 1]})
    found = an.group_classes(table, ["tags", "n"], values=False)
    assert sorted((k, n) for k, n, _ in found) == [((["a"], 1), 2), ((["b"], 1), 1)]


# ---------------------------------------------------------------- fairness


def _groups(rare_suppressed: int):
    # 1000 records, 100 suppressed overall (10%); group "rare" has 100 records
    return [("g", "common", 900, 100 - rare_suppressed), ("g", "rare", 100, rare_suppressed)]


def test_fairness_shares():
    entries, _ = an.fairness(_groups(30), ["g"])
    rare = next(e for e in entries if e["value"] == "rare")
    assert rare["share_suppressed"] == pytest.approx(0.30)
    assert rare["share_before"] == pytest.approx(0.10)
    assert rare["share_after"] == pytest.approx(70 / 900)
    assert rare["records_after"] == 70 and rare["overall_suppressed"] == pytest.approx(0.10)


@pytest.mark.parametrize(("rare_suppressed", "warned"), [(20, False), (21, True), (0, False), (100, True)])
def test_the_fairness_warning_fires_only_above_twice_the_overall_rate(rare_suppressed, warned):
    entries, warnings = an.fairness(_groups(rare_suppressed), ["g"])
    flagged = {e["value"] for e in entries if e["warning"]}
    assert flagged == ({"rare"} if warned else set())
    assert len(warnings) == int(warned)
    if warned:
        assert "g=rare" in warnings[0] and "2x" in warnings[0]


def test_no_suppression_no_warning():
    entries, warnings = an.fairness([("g", "a", 5, 0), ("g", "b", 1, 0)], ["g"])
    assert warnings == [] and not any(e["warning"] for e in entries)


# ---------------------------------------------------------------- coarser generalizations


def _gen(**settings) -> GeneralizeParams:
    return GeneralizeParams(action="generalize", **settings)


def test_one_level_coarser():
    assert an.coarser_of(_gen(prefix=3))("902") == "90"
    assert an.coarser_of(_gen(prefix=1)) is None
    width = an.coarser_of(_gen(width=10000))
    assert (width.text, width(50000), width(30000), width(None)) == ("width: 20000", 40000, 20000, None)
    assert an.coarser_of(_gen(date="month"))(dt.date(2024, 5, 1)) == dt.date(2024, 4, 1)
    assert an.coarser_of(_gen(date="quarter"))(dt.date(2024, 4, 1)) == dt.date(2024, 1, 1)
    assert an.coarser_of(_gen(date="year")) is None
    assert an.coarser_of(_gen(round=0))(14.0) == 10.0
    ages = an.coarser_of(_gen(age_bins=[0, 18, 25, 35, 50, 65], at=dt.date(2026, 1, 1)))
    assert ages.text == "age_bins: [0, 25, 50]"
    assert [ages(v) for v in ("<0", "0-17", "18-24", "25-34", "35-49", "50-64", "65+")] == [
        "<0",
        "0-24",
        "0-24",
        "25-49",
        "25-49",
        "50+",
        "50+",
    ]
    floats = an.coarser_of(_gen(bins=[0.5, 1.5, 2.5]))
    assert floats("[0.5, 1.5)") == "[0.5, 2.5)" and floats("<0.5") == "<0.5"
    assert an.coarser_of(_gen(map={"US": "domestic"}, other="foreign")) is None


def test_what_if_counts_equal_a_brute_force_recount():
    classes = [(("0-17", "902"), 1), (("18-24", "902"), 2), (("25-34", "903"), 1), (("25-34", "904"), 5)]
    hints = an.hints_for(
        ["age", "zip3"],
        {"age": _gen(age_bins=[0, 18, 25, 35], at=dt.date(2026, 1, 1)), "zip3": _gen(prefix=3)},
    )
    below = an.what_if_counts(classes, hints, k=3)
    # age coarser: 0-24 x 902 = 3 records (ok), 25+ x 903 = 1 (below), 25+ x 904 = 5
    assert below["coarser:age"] == 1
    # zip coarser (90): 0-17:1, 18-24:2, 25-34: 6 -> 3 below
    assert below["coarser:zip3"] == 3
    assert below["without:age"] == 1 and below["without:zip3"] == 3
    entries = an.hint_entries(hints, below, now=4, k=3)
    assert entries[0]["records_below_k_coarser"] == 1 and "3 fewer to suppress" in entries[0]["hint"]


def test_violation_message_gives_counts_never_values():
    policy = parse_policy(POLICY)
    message = an.violation_message(
        policy, {"k_anonymity": {"classes": 4, "records": 7}, "l_diversity": {"classes": 1, "records": 9}}
    )
    assert "4 equivalence classes with 7 records" in message and "k=3" in message
    assert "1 classes with 9 records" in message and "l=2" in message
    assert an.violation_message(policy, {}) is None


# ---------------------------------------------------------------- policy rules

POLICY = """
version: 1
purpose: analytics
fields:
  birth_date: {action: generalize, age_bins: [0, 18, 65], at: 2026-01-01, as: age_band}
  zip: {action: generalize, prefix: 3, as: zip3}
  gender: {action: keep}
  income: {action: generalize, width: 10000, as: income_band}
  email: {action: drop}
k_anonymity: {k: 3, quasi_identifiers: [age_band, zip3], protected: [gender]}
l_diversity: {l: 2, sensitive: [income_band]}
"""


def _with(**changes) -> str:
    data = yaml.safe_load(POLICY)
    data.update(changes)
    return yaml.safe_dump(data, sort_keys=False)


def test_a_valid_policy_with_dataset_rules():
    policy = parse_policy(POLICY)
    assert policy.k_anonymity.k == 3 and policy.k_anonymity.on_violation == "suppress"
    assert policy.l_diversity.sensitive == ("income_band",)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"k_anonymity": {"k": 3, "quasi_identifiers": ["zip"]}}, "'zip' is not an output field"),  # input name
        ({"k_anonymity": {"k": 3, "quasi_identifiers": ["email"]}}, "'email' is not an output field"),  # dropped
        ({"k_anonymity": {"k": 3, "quasi_identifiers": ["zip3"], "protected": ["nope"]}}, "'nope' is not an output"),
        ({"l_diversity": {"l": 2, "sensitive": ["age_band"]}}, "both quasi-identifier and sensitive"),
        ({"k_anonymity": None}, "l_diversity needs k_anonymity"),
        ({"k_anonymity": {"k": 1, "quasi_identifiers": ["zip3"]}}, "k_anonymity.k"),
        ({"k_anonymity": {"k": 3, "quasi_identifiers": []}}, "k_anonymity.quasi_identifiers"),
        ({"k_anonymity": {"k": 3, "quasi_identifiers": ["zip3", "zip3"]}}, "named twice"),
        ({"k_anonymity": {"k": 3, "quasi_identifiers": ["zip3"], "on_violation": "ignore"}}, "on_violation"),
    ],
)
def test_dataset_rules_name_output_fields(changes, message):
    with pytest.raises(ConfigError) as error:
        parse_policy(_with(**changes), "p.yaml")
    assert message in str(error.value)
    assert str(error.value).startswith("policy p.yaml: ")
