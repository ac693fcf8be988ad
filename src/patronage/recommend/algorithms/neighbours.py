"""Item → item tables (top-K neighbours per item) and the operations every list uses on them.

A table is a CSR items x items matrix: row i holds i's neighbours and their scores (at most K
per row). "Also bought", "bought together", cross-sell and upsell are all such tables;
personalised lists score a history through one (`score_histories`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from patronage.errors import NotFound, ValidationFailed
from patronage.recommend.algorithms.base import top_row
from patronage.recommend.interactions import binarize


def top_k_per_row(matrix: sp.csr_matrix, k: int, *, positive_only: bool = True) -> sp.csr_matrix:
    """Keep the k largest entries of each row (ties by lower column), as sorted CSR.

    The input must not hold duplicate entries; its column order within rows does not matter.
    """
    m = sp.csr_matrix(matrix)
    counts = np.diff(m.indptr)
    keep = np.ones(m.nnz, dtype=bool)
    if positive_only:
        keep &= m.data > 0
    for r in np.flatnonzero(counts > k):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        row_keep = keep[lo:hi]
        pos = np.flatnonzero(row_keep)
        if pos.size <= k:
            continue
        vals = m.data[lo:hi][pos]
        kth = np.partition(vals, pos.size - k)[pos.size - k]
        near = vals >= kth  # only these can make the top k; ties go to the lower column
        pos, vals = pos[near], vals[near]
        order = np.lexsort((m.indices[lo:hi][pos], -vals))[:k]
        row_keep[:] = False
        row_keep[pos[order]] = True
    row_of = np.repeat(np.arange(m.shape[0]), counts)
    out = sp.csr_matrix(
        (m.data[keep], (row_of[keep], m.indices[keep])), shape=m.shape, dtype=m.dtype
    )
    out.sort_indices()
    return out


def neighbours_of(
    table: sp.csr_matrix, item: int, n: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """An item's neighbours, best first."""
    if not 0 <= item < table.shape[0]:
        raise NotFound("unknown item")
    lo, hi = table.indptr[item], table.indptr[item + 1]
    return top_row(table.indices[lo:hi].astype(np.int64), table.data[lo:hi], n)


def score_histories(table: sp.csr_matrix, histories: sp.csr_matrix) -> sp.csr_matrix:
    """Sum of the neighbour scores of every item in each history (rows x items)."""
    if histories.shape[1] != table.shape[0]:
        raise ValidationFailed("history columns do not match the table's items")
    return sp.csr_matrix(binarize(histories) @ table)


def reasons(
    table: sp.csr_matrix, history: NDArray[np.int64], items: NDArray[np.int64]
) -> NDArray[np.int64]:
    """For each recommended item, the history item that contributed most to it (-1 if none).

    This is the "because you bought X" of a personalised list.
    """
    history = np.asarray(history, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    out = np.full(items.size, -1, dtype=np.int64)
    if history.size == 0 or items.size == 0:
        return out
    valid = items >= 0
    block = table[history][:, items[valid]].toarray()
    best = np.argmax(block, axis=0)
    has = block[best, np.arange(block.shape[1])] > 0
    picked = np.where(has, history[best], -1)
    out[valid] = picked
    return out
