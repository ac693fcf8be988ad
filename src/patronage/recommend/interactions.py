"""User x item interaction matrices (SciPy CSR) and the splits that evaluation needs.

Everything downstream (the models, the list functions, evaluation) works on row and column
*indices*; an `Interactions` carries the external ids of its rows (customers, orders or
baskets) and columns (products) so callers can translate back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from patronage.errors import ValidationFailed
from patronage.kit.clock import as_utc

Weight = Literal["quantity", "count", "binary"]
DAY = 86_400


@dataclass(frozen=True)
class Interactions:
    """A users x items CSR matrix (float32) plus the external ids of its rows and columns."""

    matrix: sp.csr_matrix
    user_ids: NDArray[Any]
    item_ids: NDArray[Any]

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    def binary(self) -> sp.csr_matrix:
        """The same pattern with every stored value 1 (bought / not bought)."""
        return binarize(self.matrix)

    def user_index(self, ids: ArrayLike) -> NDArray[np.int64]:
        """Row index of each id, -1 where the id is unknown."""
        return lookup(self.user_ids, ids)

    def item_index(self, ids: ArrayLike) -> NDArray[np.int64]:
        """Column index of each id, -1 where the id is unknown."""
        return lookup(self.item_ids, ids)


@dataclass(frozen=True)
class Split:
    """Train interactions and the held-out items per train user (same shape, binary).

    Only rows with at least one held-out item are evaluated (`eval_users`).
    """

    train: Interactions
    test: sp.csr_matrix
    protocol: str
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def eval_users(self) -> NDArray[np.int64]:
        return np.flatnonzero(np.diff(self.test.indptr) > 0).astype(np.int64)


def binarize(matrix: sp.csr_matrix) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.sum_duplicates()
    out.eliminate_zeros()
    out.data[:] = 1.0
    return out


def lookup(vocabulary: NDArray[Any], ids: ArrayLike) -> NDArray[np.int64]:
    """Position of each id in a sorted vocabulary, -1 where absent.

    Ids of another kind than the vocabulary's (text for numeric ids or the reverse) are
    absent: "1" is not the product 1.
    """
    values = np.asarray(ids)
    if vocabulary.size == 0 or values.size == 0 or _kind(values) != _kind(vocabulary):
        return np.full(values.shape, -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(vocabulary, values), vocabulary.size - 1)
    found = vocabulary[pos] == values
    return np.where(found, pos, -1).astype(np.int64)


def _kind(values: NDArray[Any]) -> str:
    return "number" if values.dtype.kind in "iufb" else "text"


def build_interactions(
    users: ArrayLike,
    items: ArrayLike,
    quantities: ArrayLike | None = None,
    *,
    user_ids: ArrayLike | None = None,
    item_ids: ArrayLike | None = None,
    weight: Weight = "quantity",
) -> Interactions:
    """One row per distinct user, one column per distinct item; duplicates are summed.

    `weight`: "quantity" sums quantities, "count" counts lines, "binary" stores 1.
    With `user_ids` / `item_ids` (sorted unique vocabularies) the matrix uses them as its
    rows / columns and lines with ids outside them are dropped.
    """
    u = np.asarray(users)
    i = np.asarray(items)
    if u.ndim != 1 or u.shape != i.shape:
        raise ValidationFailed("users and items must be 1-D arrays of the same length")
    if quantities is None or weight != "quantity":
        q = np.ones(u.shape[0], dtype=np.float32)
    else:
        q = np.asarray(quantities, dtype=np.float32)
        if q.shape != u.shape:
            raise ValidationFailed("quantities must have one value per line")
    urows, uvocab = _encode(u, user_ids)
    icols, ivocab = _encode(i, item_ids)
    keep = (urows >= 0) & (icols >= 0)
    if not keep.all():
        urows, icols, q = urows[keep], icols[keep], q[keep]
    matrix = sp.csr_matrix((q, (urows, icols)), shape=(uvocab.size, ivocab.size), dtype=np.float32)
    matrix.sum_duplicates()
    if weight == "binary":
        matrix = binarize(matrix)
    return Interactions(matrix=matrix, user_ids=uvocab, item_ids=ivocab)


def _encode(
    values: NDArray[Any], vocabulary: ArrayLike | None
) -> tuple[NDArray[np.int64], NDArray[Any]]:
    if vocabulary is None:
        vocab, inverse = np.unique(values, return_inverse=True)
        return inverse.astype(np.int64).reshape(-1), vocab
    vocab = np.asarray(vocabulary)
    if vocab.size > 1 and not bool(np.all(vocab[1:] > vocab[:-1])):
        raise ValidationFailed("an id vocabulary must be sorted and unique")
    return lookup(vocab, values), vocab


def to_epoch_seconds(times: ArrayLike | Sequence[datetime]) -> NDArray[np.int64]:
    """Aware datetimes, numpy datetime64 or numbers (epoch seconds) → int64 epoch seconds."""
    arr = np.asarray(times)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[s]").astype(np.int64)
    if arr.dtype.kind in "iuf":
        return arr.astype(np.int64)
    if arr.dtype == object:
        return np.fromiter(
            (int(as_utc(t).timestamp()) for t in arr.reshape(-1)), dtype=np.int64, count=arr.size
        )
    raise ValidationFailed("times must be datetimes, datetime64 or epoch seconds")


def temporal_split(
    users: ArrayLike,
    items: ArrayLike,
    times: ArrayLike | Sequence[datetime],
    quantities: ArrayLike | None = None,
    *,
    test_days: float,
    now: datetime | None = None,
    weight: Weight = "quantity",
    exclude_seen: bool = True,
) -> Split:
    """The last `test_days` (before `now`, default the latest line) are the test set.

    Train is everything before the cut-off. Test keeps only users and items known in train
    (a model cannot score what it never saw); with `exclude_seen` a test item the user had
    already bought in train is not a target either, since the lists never show it again.
    """
    if test_days <= 0:
        raise ValidationFailed("test_days must be positive")
    u = np.asarray(users)
    i = np.asarray(items)
    t = to_epoch_seconds(times)
    if t.shape != u.shape or u.shape != i.shape:
        raise ValidationFailed("users, items and times must have one value per line")
    if u.size == 0:
        raise ValidationFailed("no interactions to split")
    q = None if quantities is None else np.asarray(quantities)
    end = int(as_utc(now).timestamp()) if now is not None else int(t.max()) + 1
    cutoff = end - round(test_days * DAY)
    in_train = t < cutoff
    in_test = (t >= cutoff) & (t < end)
    if not in_train.any():
        raise ValidationFailed("no interactions before the test window")
    train = build_interactions(
        u[in_train], i[in_train], None if q is None else q[in_train], weight=weight
    )
    test_full = build_interactions(
        u[in_test],
        i[in_test],
        user_ids=train.user_ids,
        item_ids=train.item_ids,
        weight="binary",
    )
    test = test_full.matrix
    if exclude_seen:
        test = binarize(test - test.multiply(train.binary()))
    stats = {
        "cutoff": int(cutoff),
        "end": int(end),
        "train_lines": int(in_train.sum()),
        "test_lines": int(in_test.sum()),
        "test_users": int(np.unique(u[in_test]).size),
    }
    split = Split(
        train=train, test=test, protocol=f"temporal, last {test_days:g} days", stats=stats
    )
    stats["evaluated_users"] = int(split.eval_users.size)
    return split


def leave_one_out_split(
    interactions: Interactions, *, random_state: int | None = 0, min_items: int = 2
) -> Split:
    """Hold out one random item of every row that has at least `min_items` distinct items.

    Rows with fewer items stay whole in train (they still count as buyers) and are not
    evaluated. Used for basket data without time, one basket = one buyer.
    """
    if min_items < 2:
        raise ValidationFailed("min_items must be at least 2 (a row must keep an item)")
    binary = interactions.binary()
    counts = np.diff(binary.indptr)
    rows = np.flatnonzero(counts >= min_items)
    rng = np.random.default_rng(random_state)
    picks = binary.indptr[rows] + np.floor(rng.random(rows.size) * counts[rows]).astype(np.int64)
    held_cols = binary.indices[picks]
    test = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, held_cols)), shape=binary.shape
    )
    keep = np.ones(binary.nnz, dtype=bool)
    keep[picks] = False
    train_matrix = _drop_entries(interactions.matrix, binary, keep)
    train = Interactions(train_matrix, interactions.user_ids, interactions.item_ids)
    stats = {"rows": interactions.n_users, "evaluated_users": int(rows.size)}
    return Split(train=train, test=test, protocol="leave one item out per row", stats=stats)


def _drop_entries(
    matrix: sp.csr_matrix, pattern: sp.csr_matrix, keep: NDArray[np.bool_]
) -> sp.csr_matrix:
    """Rebuild `matrix` (canonical) keeping only the entries of `pattern` flagged in `keep`."""
    canon = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    canon.sum_duplicates()
    canon.eliminate_zeros()
    row_of = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr))
    out = sp.csr_matrix((canon.data[keep], (row_of[keep], canon.indices[keep])), shape=canon.shape)
    return out


def read_baskets(path: Path | str) -> Interactions:
    """A basket file (one basket per line, items comma-separated) as a baskets x items matrix.

    Row ids are line numbers (0-based, non-empty lines only); item names are stripped.
    """
    rows: list[int] = []
    names: list[str] = []
    with Path(path).open(encoding="utf-8") as fh:
        basket = 0
        for line in fh:
            items = _basket_items(line.split(","))
            if not items:
                continue
            rows.extend([basket] * len(items))
            names.extend(items)
            basket += 1
    return build_interactions(np.asarray(rows, dtype=np.int64), np.asarray(names), weight="binary")


def _basket_items(parts: Iterable[str]) -> list[str]:
    return [p.strip() for p in parts if p.strip()]
