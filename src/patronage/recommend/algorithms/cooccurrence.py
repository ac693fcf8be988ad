"""Co-occurrence tables: frequently bought together (same basket) and cross-sell (sequential).

Both count pairs only where they occur (sparse products or per-customer pair lists), never a
dense items x items matrix, and keep the top K per item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from patronage.errors import ValidationFailed
from patronage.recommend.algorithms.base import check_matrix, check_n
from patronage.recommend.algorithms.neighbours import top_k_per_row
from patronage.recommend.interactions import binarize, to_epoch_seconds

RankBy = Literal["confidence", "lift"]
PAIRS_PER_BLOCK = 1 << 23


@dataclass(frozen=True)
class Associations:
    """A "bought together" table plus the rule measures of each kept pair (same pattern).

    `table` ranks (it holds the `rank_by` measure); `confidence` = P(Y | X),
    `lift` = P(X, Y) / (P(X) P(Y)), `baskets` = baskets containing both.
    """

    table: sp.csr_matrix
    confidence: sp.csr_matrix
    lift: sp.csr_matrix
    baskets: sp.csr_matrix


def frequently_bought_together(
    baskets: Any,
    *,
    n_neighbours: int = 20,
    min_baskets: int = 2,
    min_lift: float = 1.0,
    rank_by: RankBy = "confidence",
    block_items: int = 2048,
) -> Associations:
    """Association rules X → Y from a baskets x items matrix.

    Keeps pairs seen in at least `min_baskets` baskets whose lift exceeds `min_lift` (so a
    bestseller that is in every other basket anyway is not "bought together" with
    everything), ranked by confidence (default) or lift.
    """
    if rank_by not in ("confidence", "lift"):
        raise ValidationFailed(f"unknown rank_by {rank_by!r}")
    k = check_n(n_neighbours)
    B = binarize(check_matrix(baskets))
    n_baskets = float(B.shape[0])
    n_items = B.shape[1]
    Bt = sp.csr_matrix(B.T)
    count = np.diff(Bt.indptr).astype(np.float64)
    step = max(1, min(block_items, (1 << 25) // max(n_items, 1)))
    parts: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []
    for start in range(0, n_items, step):
        stop = min(n_items, start + step)
        co = sp.csr_matrix(Bt[start:stop] @ B).tocoo()
        rows = co.row.astype(np.int64) + start
        cols = co.col.astype(np.int64)
        both = co.data.astype(np.float64)
        lift = both * n_baskets / (count[rows] * count[cols])
        keep = (rows != cols) & (both >= min_baskets) & (lift > min_lift)
        parts.append((rows[keep], cols[keep], both[keep]))
    rows = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
    cols = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
    both = np.concatenate([p[2] for p in parts]) if parts else np.empty(0)
    confidence = both / count[rows]
    lift = both * n_baskets / (count[rows] * count[cols])
    rank = confidence if rank_by == "confidence" else lift
    shape = (n_items, n_items)
    table = top_k_per_row(_csr(rows, cols, rank, shape), k)
    keep_rows = np.repeat(np.arange(n_items), np.diff(table.indptr))
    kept = _positions(rows, cols, keep_rows, table.indices.astype(np.int64), n_items)
    return Associations(
        table=table,
        confidence=_csr(keep_rows, table.indices, confidence[kept], shape),
        lift=_csr(keep_rows, table.indices, lift[kept], shape),
        baskets=_csr(keep_rows, table.indices, both[kept], shape),
    )


def cross_sell(
    users: ArrayLike,
    items: ArrayLike,
    times: ArrayLike,
    categories: ArrayLike,
    *,
    n_items: int,
    n_neighbours: int = 20,
    min_co_buyers: int = 2,
) -> sp.csr_matrix:
    """Complements from other categories, learned from the order customers buy in.

    A customer counts for A → B when they first bought A strictly before their last purchase
    of B and the two items' categories differ (both known). The score is the sequential
    co-buyer count normalised like a cosine, N_{A→B} / sqrt(N_A · N_B), kept from
    `min_co_buyers` up; top `n_neighbours` per item.
    """
    k = check_n(n_neighbours)
    u = np.asarray(users)
    it = np.asarray(items, dtype=np.int64)
    t = to_epoch_seconds(times)
    cats = np.asarray(categories, dtype=np.int64)
    if not (u.shape == it.shape == t.shape):
        raise ValidationFailed("users, items and times must have one value per line")
    if cats.shape != (n_items,):
        raise ValidationFailed("categories must have one value per item")
    if it.size and (it.min() < 0 or it.max() >= n_items):
        raise ValidationFailed("item index out of range")
    shape = (n_items, n_items)
    if it.size == 0:
        return sp.csr_matrix(shape, dtype=np.float32)
    # one record per (customer, item): first and last purchase time
    _, ucode = np.unique(u, return_inverse=True)
    key = ucode.reshape(-1).astype(np.int64) * n_items + it
    order = np.lexsort((t, key))
    key, t = key[order], t[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    first = t[starts]
    last = np.maximum.reduceat(t, starts)
    rec_key = key[starts]
    rec_user = rec_key // n_items
    rec_item = rec_key % n_items
    buyers = np.bincount(rec_item, minlength=n_items).astype(np.float64)
    user_start = np.flatnonzero(np.r_[True, rec_user[1:] != rec_user[:-1]])
    sizes = np.diff(np.r_[user_start, rec_user.size])
    counts = sp.csr_matrix(shape, dtype=np.float64)
    for lo, hi in _user_blocks(sizes):
        a, b = _pairs(user_start[lo:hi], sizes[lo:hi])
        ok = (first[a] < last[b]) & (cats[rec_item[a]] >= 0) & (cats[rec_item[b]] >= 0)
        ok &= cats[rec_item[a]] != cats[rec_item[b]]
        a, b = a[ok], b[ok]
        counts = counts + sp.csr_matrix((np.ones(a.size), (rec_item[a], rec_item[b])), shape=shape)
    coo = counts.tocoo()
    keep = coo.data >= min_co_buyers
    r, c, n_ab = coo.row[keep], coo.col[keep], coo.data[keep]
    scores = n_ab / np.sqrt(buyers[r] * buyers[c])
    return top_k_per_row(_csr(r, c, scores, shape), k)


def _user_blocks(sizes: NDArray[np.int64]) -> list[tuple[int, int]]:
    """Consecutive customer ranges holding about PAIRS_PER_BLOCK ordered pairs each."""
    cum = np.cumsum(sizes.astype(np.int64) ** 2)
    blocks = []
    lo = 0
    while lo < sizes.size:
        base = cum[lo - 1] if lo else 0
        hi = int(np.searchsorted(cum, base + PAIRS_PER_BLOCK, side="right"))
        hi = max(hi, lo + 1)
        blocks.append((lo, hi))
        lo = hi
    return blocks


def _pairs(
    starts: NDArray[np.int64], sizes: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Every ordered pair (a, b), a ≠ b, of records within each customer's run."""
    per_record = np.repeat(sizes, sizes)
    # the customers of a block are consecutive, so are their records
    record = np.arange(starts[0], starts[-1] + sizes[-1])
    run_start = np.repeat(starts, sizes)
    a = np.repeat(record, per_record)
    offsets = np.arange(a.size) - np.repeat(np.cumsum(per_record) - per_record, per_record)
    b = np.repeat(run_start, per_record) + offsets
    keep = a != b
    return a[keep], b[keep]


def _csr(
    rows: NDArray[Any], cols: NDArray[Any], vals: NDArray[Any], shape: tuple[int, int]
) -> sp.csr_matrix:
    m = sp.csr_matrix(
        (np.asarray(vals, dtype=np.float32), (np.asarray(rows), np.asarray(cols))), shape=shape
    )
    m.sort_indices()
    return m


def _positions(
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    want_rows: NDArray[np.int64],
    want_cols: NDArray[np.int64],
    n_items: int,
) -> NDArray[np.int64]:
    """Index into (rows, cols) of each wanted (row, col) pair (all present)."""
    keys = rows * n_items + cols
    order = np.argsort(keys, kind="stable")
    pos = np.searchsorted(keys[order], want_rows * n_items + want_cols)
    return order[pos].astype(np.int64)
