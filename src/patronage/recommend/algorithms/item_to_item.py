"""Item-to-item collaborative filtering (Linden, Smith & York 2003; Smith & Linden 2017).

The similar-items table is built from co-bought pairs only: for a block of items X the
sparse product Bᵀ[X] @ B gives N_XY, the number of customers who bought both X and Y, and
only those pairs are scored. Nothing items x items is ever dense except, when it is cheaper,
one block of rows of the *expected* counts (see `_expected`).

Scores (docs/recommendations.md):
- "cosine" (2003): cos(X, Y) = N_XY / sqrt(N_X · N_Y) on binary purchase vectors.
- "conditional": P(Y | X) damped by Y's popularity, N_XY / (N_X · N_Y^alpha) (Deshpande &
  Karypis 2004; alpha = 0 is the association-rule confidence).
- "smith_linden" (2017): observed versus expected co-buyers. A buyer c of X who bought
  n_c other items would have bought Y by chance with probability 1 - (1 - P_Y)^{n_c}, P_Y being
  Y's share of all purchases; E_XY sums that over X's buyers and the score is
  (N_XY - E_XY) / sqrt(E_XY), so heavy buyers and bestsellers do not dominate.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from patronage.errors import ValidationFailed
from patronage.recommend.algorithms.base import (
    Recommender,
    check_matrix,
    check_n,
    popularity,
    popularity_order,
    rank_sparse,
)
from patronage.recommend.algorithms.neighbours import (
    neighbours_of,
    reasons,
    score_histories,
    top_k_per_row,
)
from patronage.recommend.interactions import binarize

Similarity = Literal["cosine", "conditional", "smith_linden"]
SIMILARITIES = ("cosine", "conditional", "smith_linden")
# one dense block of expected counts holds at most this many cells (float32: 128 MiB)
BLOCK_CELLS = 1 << 25
GATHER_PAIRS = 1 << 20


class ItemToItem(Recommender):
    """Similar-items table (top `n_neighbours` per item) and "for you" scoring through it.

    Hyperparameters:
    - similarity: "conditional" (default: best measured for personal lists), "cosine" or
      "smith_linden" (the relatedness of "also bought" tables).
    - alpha: popularity damping of "conditional" (0 = plain confidence, 0.5 = cosine); 0.3
      measured best on both the groceries baskets and the demo-like data.
    - n_neighbours: K, neighbours kept per item.
    - min_co_buyers: pairs with fewer co-buyers are never related (one shared buyer is
      no evidence, and under "smith_linden" it would give two rare items a huge score).
    - fill_popular: top up short personal lists with the most popular items.
    - random_state: accepted for the shared contract; the build is deterministic.
    - block_items: items per block of the build (bounds memory).
    - num_threads: blocks built concurrently (1 or 2 on this machine).
    """

    _learned: ClassVar[tuple[str, ...]] = ("neighbours_", "popularity_")

    def __init__(
        self,
        similarity: Similarity = "conditional",
        n_neighbours: int = 50,
        alpha: float = 0.3,
        min_co_buyers: int = 2,
        fill_popular: bool = True,
        random_state: int | None = None,
        block_items: int = 2048,
        num_threads: int = 1,
    ) -> None:
        self.similarity = similarity
        self.n_neighbours = n_neighbours
        self.alpha = alpha
        self.min_co_buyers = min_co_buyers
        self.fill_popular = fill_popular
        self.random_state = random_state
        self.block_items = block_items
        self.num_threads = num_threads

    def fit(self, X: Any) -> Self:
        if self.similarity not in SIMILARITIES:
            raise ValidationFailed(f"unknown similarity {self.similarity!r}")
        check_n(self.n_neighbours)
        B = binarize(check_matrix(X))
        self.neighbours_ = build_table(
            B,
            similarity=self.similarity,
            k=self.n_neighbours,
            min_co_buyers=max(1, int(self.min_co_buyers)),
            alpha=float(self.alpha),
            block_items=self.block_items,
            num_threads=self.num_threads,
        )
        self.popularity_ = popularity(B)
        return self

    def similar_items(
        self, item: int, n: int = 10
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Customers who bought `item` also bought: its neighbours, best first."""
        self.check_fitted()
        return neighbours_of(self.neighbours_, int(item), check_n(n))

    def score(self, user_items: Any) -> sp.csr_matrix:
        """Item scores per history row: the sum of the similarities of the items bought."""
        self.check_fitted()
        histories = self._check_items(user_items, self.neighbours_.shape[0])
        return score_histories(self.neighbours_, histories)

    def recommend(
        self,
        user_items: Any,
        n: int = 10,
        *,
        exclude_seen: bool = True,
        repeatable: NDArray[np.bool_] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        n = check_n(n)
        scores = self.score(user_items)
        exclude = seen_mask(user_items, repeatable) if exclude_seen else None
        fallback = popularity_order(self.popularity_) if self.fill_popular else None
        return rank_sparse(scores, n, exclude=exclude, fallback=fallback)

    def explain(self, history: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.int64]:
        """The bought item behind each recommended item ("because you bought X"), -1 if none."""
        self.check_fitted()
        return reasons(self.neighbours_, history, items)


def seen_mask(user_items: Any, repeatable: NDArray[np.bool_] | None) -> sp.csr_matrix:
    """Bought items per row, minus the items flagged repeat-purchase."""
    seen = binarize(sp.csr_matrix(user_items))
    if repeatable is not None:
        rep = np.asarray(repeatable, dtype=bool)
        if rep.shape != (seen.shape[1],):
            raise ValidationFailed("repeatable must have one flag per item")
        seen = sp.csr_matrix(seen @ sp.diags((~rep).astype(np.float32)))
        seen.eliminate_zeros()
    return seen


def build_table(
    B: sp.csr_matrix,
    *,
    similarity: Similarity,
    k: int,
    min_co_buyers: int = 1,
    alpha: float = 0.0,
    block_items: int = 2048,
    num_threads: int = 1,
) -> sp.csr_matrix:
    """Top-k related items per item from a binary users x items matrix."""
    co, scores = pair_scores(
        B,
        similarity=similarity,
        min_co_buyers=min_co_buyers,
        alpha=alpha,
        block_items=block_items,
        num_threads=num_threads,
    )
    table = sp.csr_matrix((scores.astype(np.float32), co.indices, co.indptr), shape=co.shape)
    return top_k_per_row(table, k)


def pair_scores(
    B: sp.csr_matrix,
    *,
    similarity: Similarity,
    min_co_buyers: int = 1,
    alpha: float = 0.0,
    block_items: int = 2048,
    num_threads: int = 1,
) -> tuple[sp.csr_matrix, NDArray[np.float64]]:
    """The co-buyer counts N (CSR) and the float64 score of each of its stored pairs.

    The table keeps the scores as float32 (`build_table`); the Spark build is checked against
    these float64 values (tests/recommend/test_spark.py).
    """
    co = co_buyers(B, min_count=min_co_buyers, block_items=block_items, num_threads=num_threads)
    n_items = B.shape[1]
    buyers = np.bincount(B.indices, minlength=n_items).astype(np.float64)
    expected = _Expected(B, buyers) if similarity == "smith_linden" else None
    rows = np.repeat(np.arange(n_items, dtype=np.int64), np.diff(co.indptr))
    cols = co.indices.astype(np.int64)
    n_xy = co.data.astype(np.float64)
    if similarity == "cosine":
        scores = n_xy / np.sqrt(buyers[rows] * buyers[cols])
    elif expected is None:
        scores = n_xy / (buyers[rows] * buyers[cols] ** alpha)
    else:
        e_xy = expected.at(rows, cols)
        scores = (n_xy - e_xy) / np.sqrt(e_xy)
    return co, np.asarray(scores, dtype=np.float64)


def co_buyers(
    B: sp.csr_matrix, *, min_count: int = 1, block_items: int = 2048, num_threads: int = 1
) -> sp.csr_matrix:
    """N_XY, the number of rows of binary B holding both X and Y, for X != Y, from min_count.

    Only co-bought pairs are ever materialised. N is symmetric, so each block of items X is
    multiplied only with the items Y >= the block's first item (half the work of Bᵀ @ B) and
    the strict upper triangle is mirrored. Blocks are independent: `num_threads` > 1 runs
    them concurrently (SciPy's sparse product releases the GIL); the result does not depend
    on it.
    """
    n_users, n_items = B.shape
    # float32 counts are exact below 2^24 co-buyers; beyond that take float64
    B = sp.csr_matrix(B, dtype=np.float32 if n_users < (1 << 24) else np.float64)
    Bt = sp.csr_matrix(B.T)
    step = max(1, min(block_items, BLOCK_CELLS // max(n_items, 1)))
    starts = list(range(0, n_items, step))
    # the right-hand operand of each block is B without the columns before the block; it is
    # built by filtering the previous block's operand, which only ever shrinks
    rows = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(B.indptr))
    cols, data = B.indices, B.data

    def upper(
        start: int, right: sp.csr_matrix
    ) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int32]]:
        stop = min(n_items, start + step)
        prod = sp.csr_matrix(Bt[start:stop] @ right)
        r = np.repeat(np.arange(start, stop, dtype=np.int32), np.diff(prod.indptr))
        c = prod.indices.astype(np.int32)
        sel = (c > r) & (prod.data >= min_count)
        return r[sel], c[sel], prod.data[sel].astype(np.int32)

    parts: list[tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int32]]] = []
    workers = max(1, num_threads)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for lo in range(0, len(starts), workers):
            batch = []
            for start in starts[lo : lo + workers]:
                keep = cols >= start
                rows, cols, data = rows[keep], cols[keep], data[keep]
                indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_users))]
                batch.append((start, sp.csr_matrix((data, cols, indptr), shape=B.shape)))
            parts.extend(pool.map(lambda job: upper(*job), batch))
    r = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int32)
    c = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int32)
    n = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, np.int32)
    del parts
    return _symmetric(r, c, n, n_items)


def _symmetric(
    r: NDArray[np.int32], c: NDArray[np.int32], n: NDArray[np.int32], size: int
) -> sp.csr_matrix:
    """The CSR matrix of strict-upper entries (r < c, grouped by ascending r) plus its mirror.

    The transpose and the sum are SciPy's linear-time CSR kernels (no sort of the pairs).
    """
    indptr = np.r_[0, np.cumsum(np.bincount(r, minlength=size))]
    upper = sp.csr_matrix((n, c, indptr), shape=(size, size))
    return sp.csr_matrix(upper + sp.csr_matrix(upper.T))


class _Expected:
    """Expected co-buyers E_XY = Σ_{c bought X} 1 - (1 - P_Y)^{n_c} (Smith & Linden 2017).

    n_c counts the *other* items c bought (c bought X, so only the rest could be Y). Buyers
    are grouped by n_c: with H[X, d] = number of X's buyers with n_c = v_d and
    W[d, Y] = 1 - (1 - P_Y)^{v_d}, E = H @ W, a sum over the D distinct purchase counts
    instead of over customers.

    W is smooth: with l_Y = log(1 - P_Y), W[d, Y] / -l_Y = (1 - e^{v_d l_Y}) / -l_Y varies
    gently in both v and l, so its singular values fall by orders of magnitude (about 12 terms
    reach float64 rounding on the demo matrix). E is evaluated through that truncated SVD,
    E_XY = -l_Y · (H U_r S_r)[X] · V_r[Y], the rank chosen so that every entry of W is
    reproduced to 1e-9 relative error (checked, the rank grows until it is): r multiply-adds
    per co-bought pair instead of D.
    """

    TOLERANCE = 1e-9

    def __init__(self, B: sp.csr_matrix, buyers: NDArray[np.float64]) -> None:
        n_users, n_items = B.shape
        others = np.diff(B.indptr).astype(np.int64) - 1
        active = np.flatnonzero(others >= 1)
        values, group = np.unique(others[active], return_inverse=True)
        if values.size == 0:
            values, group = np.ones(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        # H[X, d] by one bincount over the purchases of customers with other purchases
        slot = np.full(n_users, -1, dtype=np.int64)
        slot[active] = group.reshape(-1)
        user_of = np.repeat(slot, np.diff(B.indptr))
        counted = user_of >= 0
        H = (
            np.bincount(
                B.indices[counted].astype(np.int64) * values.size + user_of[counted],
                minlength=n_items * values.size,
            )
            .reshape(n_items, values.size)
            .astype(np.float64)
        )
        share = np.minimum(buyers / max(float(B.nnz), 1.0), 1.0 - 1e-12)
        self.scale = -np.log1p(-share)  # -l_Y >= 0
        v = values[:, None].astype(np.float64)
        safe = np.where(self.scale > 0, self.scale, 1.0)[None, :]
        scaled = np.where(self.scale[None, :] > 0, -np.expm1(-v * safe) / safe, v)
        # the tall orientation is the fast one for LAPACK; one BLAS thread (a shared machine
        # makes a spinning BLAS pool many times slower)
        with threadpool_limits(1, "blas"):
            V, S, Ut = np.linalg.svd(scaled.T, full_matrices=False)
        U = Ut.T
        rank = max(1, int(np.sum(S[0] * 1e-13 < S))) if S[0] > 0 else 1
        while True:
            approx = (U[:, :rank] * S[:rank]) @ V[:, :rank].T
            error = np.abs(approx - scaled) / np.maximum(np.abs(scaled), 1e-300)
            if rank >= S.size or float(error.max()) <= self.TOLERANCE:
                break
            rank += 1
        self.rank = rank
        self.left_t = np.ascontiguousarray((H @ (U[:, :rank] * S[:rank])).T)  # r x items
        self.right_t = np.ascontiguousarray(V[:, :rank].T)  # r x items

    def at(self, rows: NDArray[np.int64], cols: NDArray[np.int64]) -> NDArray[np.float64]:
        """E for the pairs (rows, cols): r multiply-adds each, one factor column at a time
        (each column is a small cache-resident vector, so the gathers stay cheap)."""
        out = np.empty(rows.size, dtype=np.float64)
        for lo in range(0, rows.size, GATHER_PAIRS):
            r = rows[lo : lo + GATHER_PAIRS]
            c = cols[lo : lo + GATHER_PAIRS]
            acc = np.zeros(r.size)
            for j in range(self.rank):
                acc += self.left_t[j][r] * self.right_t[j][c]
            out[lo : lo + r.size] = acc * self.scale[c]
        return out
