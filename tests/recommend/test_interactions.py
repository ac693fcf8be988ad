"""Interaction matrices, id vocabularies and the evaluation splits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from patronage.errors import ValidationFailed
from patronage.recommend.interactions import (
    build_interactions,
    leave_one_out_split,
    lookup,
    read_baskets,
    temporal_split,
    to_epoch_seconds,
)


def test_build_sums_duplicates_and_keeps_sorted_ids() -> None:
    inter = build_interactions(["c2", "c1", "c2", "c2"], [30, 10, 30, 20], quantities=[1, 2, 3, 1])
    assert inter.user_ids.tolist() == ["c1", "c2"]
    assert inter.item_ids.tolist() == [10, 20, 30]
    assert inter.matrix.toarray().tolist() == [[2, 0, 0], [0, 1, 4]]
    assert inter.binary().toarray().tolist() == [[1, 0, 0], [0, 1, 1]]
    counts = build_interactions(["a", "a"], [1, 1], quantities=[5, 5], weight="count")
    assert counts.matrix.toarray().tolist() == [[2]]
    assert inter.user_index(["c2", "nobody"]).tolist() == [1, -1]
    assert inter.item_index([30, 99, 10]).tolist() == [2, -1, 0]


def test_build_with_vocabularies_drops_unknown_ids() -> None:
    inter = build_interactions([1, 2, 9], [5, 6, 5], user_ids=[1, 2], item_ids=[5, 6, 7])
    assert inter.matrix.shape == (2, 3)
    assert inter.matrix.toarray().tolist() == [[1, 0, 0], [0, 1, 0]]
    with pytest.raises(ValidationFailed):
        build_interactions([1], [5], item_ids=[6, 5])
    with pytest.raises(ValidationFailed):
        build_interactions([1, 2], [5])
    with pytest.raises(ValidationFailed):
        build_interactions([1, 2], [5, 6], quantities=[1])


def test_lookup_of_ids_of_another_kind_finds_nothing() -> None:
    assert lookup(np.array([], dtype=np.int64), [1]).tolist() == [-1]
    assert lookup(np.array([1, 2]), ["1", "1' OR 1=1 --"]).tolist() == [-1, -1]
    assert lookup(np.array(["a", "b"]), [1, 2]).tolist() == [-1, -1]
    assert lookup(np.array(["a", "b"]), ["b", "a'; DROP TABLE products; --"]).tolist() == [1, -1]


def test_epoch_seconds_from_every_time_kind() -> None:
    t = datetime(2025, 1, 2, tzinfo=UTC)
    assert to_epoch_seconds([t]).tolist() == [1735776000]
    assert to_epoch_seconds([datetime(2025, 1, 2)]).tolist() == [1735776000]  # naive = UTC
    assert to_epoch_seconds(np.array(["2025-01-02"], dtype="datetime64[D]")).tolist() == [
        1735776000
    ]
    assert to_epoch_seconds([1.5e9]).tolist() == [1500000000]
    with pytest.raises(ValidationFailed):
        to_epoch_seconds(["yesterday"])


def test_temporal_split_keeps_known_users_and_items_only() -> None:
    day = timedelta(days=1)
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    lines = [
        ("ann", "p1", t0),
        ("ann", "p2", t0 + day),
        ("bob", "p1", t0 + 2 * day),
        ("ann", "p3", t0 + 20 * day),  # test: new for ann
        ("ann", "p1", t0 + 21 * day),  # test: ann bought p1 before -> not a target
        ("bob", "p2", t0 + 22 * day),  # test
        ("cid", "p1", t0 + 22 * day),  # test: cid unknown in train
        ("bob", "p9", t0 + 23 * day),  # test: p9 unknown in train
    ]
    users, items, times = zip(*lines, strict=True)
    split = temporal_split(users, items, times, test_days=7, now=t0 + 25 * day)
    assert split.train.user_ids.tolist() == ["ann", "bob"]
    assert split.train.item_ids.tolist() == ["p1", "p2"]
    # p3 was first seen in the test window, so it is not in the train catalogue either
    assert split.test.toarray().tolist() == [[0, 0], [0, 1]]
    assert split.eval_users.tolist() == [1]
    assert split.stats["train_lines"] == 3
    assert split.stats["test_lines"] == 5
    keep_seen = temporal_split(
        users, items, times, test_days=7, now=t0 + 25 * day, exclude_seen=False
    )
    assert keep_seen.test.toarray().tolist() == [[1, 0], [0, 1]]
    with pytest.raises(ValidationFailed):
        temporal_split(users, items, times, test_days=0)
    with pytest.raises(ValidationFailed):
        temporal_split(users, items, times, test_days=100)
    with pytest.raises(ValidationFailed):
        temporal_split([], [], [], test_days=1)


def test_leave_one_out_holds_out_one_item_per_row_with_two_or_more() -> None:
    inter = build_interactions([0, 0, 0, 1, 2, 2], ["a", "b", "c", "a", "b", "c"], weight="binary")
    split = leave_one_out_split(inter, random_state=3)
    test = split.test.toarray()
    train = split.train.matrix.toarray()
    assert test.sum(axis=1).tolist() == [1, 0, 1]
    assert np.array_equal(train + test, inter.matrix.toarray())
    assert split.eval_users.tolist() == [0, 2]
    again = leave_one_out_split(inter, random_state=3)
    assert np.array_equal(again.test.toarray(), test)
    with pytest.raises(ValidationFailed):
        leave_one_out_split(inter, min_items=1)


def test_read_baskets(tmp_path: Path) -> None:
    path = tmp_path / "baskets.csv"
    path.write_text("milk,bread\n\nbread , butter,milk\nmilk\n", encoding="utf-8")
    inter = read_baskets(path)
    assert inter.item_ids.tolist() == ["bread", "butter", "milk"]
    assert inter.matrix.toarray().tolist() == [[1, 0, 1], [1, 1, 1], [0, 0, 1]]
