"""Subject references and consent decisions: the pure part of the consent and erasure gates."""

import base64
import os
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from veil.keys import init_keyset, open_keyring, rotate_keyset
from veil.transforms.subjects import (
    PARTITIONS,
    REF_COLUMN,
    latest_consent,
    partition_of,
    split_by_partition,
    subject_ref,
    subject_refs,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# ---------------------------------------------------------------- latest_consent


def test_a_grant_gives_consent():
    assert latest_consent([("a", at(0), True)]) == {"a"}


def test_a_later_withdrawal_removes_consent():
    assert latest_consent([("a", at(0), True), ("a", at(5), False)]) == set()


def test_a_regrant_after_withdrawal_restores_consent():
    assert latest_consent([("a", at(0), True), ("a", at(5), False), ("a", at(9), True)]) == {"a"}


def test_the_latest_entry_wins_whatever_the_order_of_entries():
    assert latest_consent([("a", at(9), True), ("a", at(5), False), ("a", at(0), True)]) == {"a"}
    assert latest_consent([("a", at(9), False), ("a", at(0), True), ("a", at(5), True)]) == set()


@pytest.mark.parametrize(
    "entries",
    [
        [("a", at(3), True), ("a", at(3), False)],
        [("a", at(3), False), ("a", at(3), True)],
        [("a", at(0), True), ("a", at(3), True), ("a", at(3), False), ("a", at(3), True)],
        [("a", at(3), False), ("a", at(0), True), ("a", at(3), True)],
    ],
    ids=["grant-then-withdraw", "withdraw-then-grant", "grant-withdraw-grant", "earlier-grant-between"],
)
def test_a_tie_in_time_goes_to_the_withdrawal(entries):
    assert latest_consent(entries) == set()
    assert latest_consent(list(reversed(entries))) == set()


def test_entries_without_a_time_or_a_decision_are_ignored():
    entries = [
        ("a", at(0), True),
        ("a", None, False),  # cannot be ordered: does not withdraw
        ("a", at(5), None),  # cannot be read: does not withdraw
        ("b", None, True),  # a grant without a time grants nothing
        ("c", at(1), None),
        ("d", at(0), False),
        ("d", None, True),
        (None, at(9), True),  # no subject
    ]
    assert latest_consent(entries) == {"a"}


def test_subjects_are_decided_independently():
    entries = [("a", at(0), True), ("b", at(1), True), ("b", at(2), False), ("c", at(2), False), ("c", at(3), True)]
    assert latest_consent(entries) == {"a", "c"}


def test_no_entries_no_consent():
    assert latest_consent([]) == set()
    assert latest_consent(iter([])) == set()


# ---------------------------------------------------------------- subject references


@pytest.fixture(scope="module")
def keysets(tmp_path_factory):
    """Two real keysets under one master key, the first opened before and after a rotation."""
    root = tmp_path_factory.mktemp("subject-keys")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
        first, second = str(root / "first.json"), str(root / "second.json")
        init_keyset(first)
        init_keyset(second)
        before = open_keyring(first)
        assert rotate_keyset(first) == 2
        after = open_keyring(first)
        assert after.primary == 2
        yield before, after, open_keyring(second)


def test_subject_ref_is_deterministic_hex_of_a_sha256(keysets):
    keyring = keysets[0]
    ref = subject_ref(keyring, "C0000001")
    assert ref == subject_ref(keyring, "C0000001")
    assert len(ref) == 64 and int(ref, 16) >= 0
    assert ref != subject_ref(keyring, "C0000002")
    assert ref != subject_ref(keyring, "c0000001")


def test_subject_ref_is_the_same_for_an_integer_and_its_decimal_text(keysets):
    keyring = keysets[0]
    assert subject_ref(keyring, 42) == subject_ref(keyring, "42")
    assert subject_ref(keyring, 42) != subject_ref(keyring, "042")


@pytest.mark.parametrize("value", [None, 4.2, True, b"C0000001", ["C0000001"]])
def test_subject_ref_is_none_for_null_or_unusable_ids(keysets, value):
    assert subject_ref(keysets[0], value) is None


def test_subject_refs_differ_between_keysets(keysets):
    before, _, other = keysets
    ids = ["C0000001", "C0000002", "42"]
    mine, theirs = [subject_ref(before, s) for s in ids], [subject_ref(other, s) for s in ids]
    assert not set(mine) & set(theirs)


def test_subject_refs_survive_a_key_rotation(keysets):
    before, after, _ = keysets
    for subject in ("C0000001", "C0000002", 42, "42"):
        assert subject_ref(after, subject) == subject_ref(before, subject)


def test_subject_refs_memo_equals_one_by_one(keysets):
    keyring = keysets[0]
    column = ["C0000001", 42, None, "42", "C0000001", 1, True, 42.0, 42, None, "C0000002", 1, ["x"], "C0000001"]
    assert subject_refs(keyring, column) == [subject_ref(keyring, s) for s in column]


# ---------------------------------------------------------------- partitions


def test_partition_of_is_in_range_and_stable(keysets):
    keyring = keysets[0]
    refs = [subject_ref(keyring, f"C{i:07d}") for i in range(500)]
    parts = [partition_of(ref) for ref in refs]
    assert all(0 <= p < PARTITIONS for p in parts)
    assert len(set(parts)) > PARTITIONS // 2  # spread, not all in one
    assert parts == [partition_of(ref) for ref in refs]
    assert all(0 <= partition_of(ref, 5) < 5 for ref in refs)
    assert partition_of(None) == 0


@pytest.mark.parametrize("partitions", [1, 3, PARTITIONS])
@pytest.mark.parametrize("kind", ["table", "batch"])
def test_split_by_partition_keeps_every_row_once_with_its_reference(keysets, partitions, kind):
    keyring = keysets[0]
    ids = [f"C{i:07d}" for i in range(60)] + [None, "C0000003", None]
    table = pa.table({"customer_id": ids, "row": list(range(len(ids)))})
    data = table.to_batches()[0] if kind == "batch" else table
    refs = subject_refs(keyring, ids)

    seen = []
    for part, rows in split_by_partition(data, refs, partitions):
        assert 0 <= part < partitions
        assert rows.schema.names == ["customer_id", "row", REF_COLUMN]
        assert type(rows) is type(data)
        for record in rows.to_pylist():
            assert record[REF_COLUMN] == subject_ref(keyring, record["customer_id"])
            assert partition_of(record[REF_COLUMN], partitions) == part
            seen.append(record["row"])
    assert sorted(seen) == list(range(len(ids)))


def test_split_by_partition_of_an_empty_table_yields_nothing():
    table = pa.table({"customer_id": pa.array([], pa.string())})
    assert list(split_by_partition(table, [])) == []
