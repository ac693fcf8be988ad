"""Matrix factorisation for implicit feedback: `implicit`'s ALS (Hu, Koren & Volinsky 2008).

The library fits the factors; this class keeps them as plain arrays (saved without pickle)
and scores new histories by folding them in — the exact least-squares user update of ALS,
solved here with NumPy, so serving needs neither the training matrix nor `implicit`.
"""

from __future__ import annotations

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
    rank_dense,
)
from patronage.recommend.algorithms.item_to_item import seen_mask

Weighting = Literal["bm25", "none"]
ROWS_PER_BLOCK = 2048


class ALS(Recommender):
    """Alternating least squares on (optionally BM25-weighted) purchase counts.

    Hyperparameters follow `implicit.cpu.als.AlternatingLeastSquares` (factors,
    regularization, alpha = confidence scale, iterations), plus the input weighting
    ("bm25" with `bm25_k1`, `bm25_b`, or "none") and `num_threads` (1 or 2 here).
    """

    _learned: ClassVar[tuple[str, ...]] = (
        "user_factors_",
        "item_factors_",
        "idf_",
        "mean_length_",
        "popularity_",
    )

    def __init__(
        self,
        factors: int = 32,
        regularization: float = 1.0,
        alpha: float = 1.0,
        iterations: int = 15,
        weighting: Weighting = "bm25",
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        num_threads: int = 1,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.weighting = weighting
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads
        self.random_state = random_state

    def fit(self, X: Any) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares

        if self.weighting not in ("bm25", "none"):
            raise ValidationFailed(f"unknown weighting {self.weighting!r}")
        check_n(self.factors)
        check_n(self.iterations)
        counts = check_matrix(X)
        self.popularity_ = popularity(counts)
        df = self.popularity_
        self.idf_ = np.log(float(counts.shape[0])) - np.log1p(df)
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        self.mean_length_ = np.asarray(max(float(lengths.mean()), 1e-12))
        weighted = self._weight(counts)
        # implicit warns (and is slow) when BLAS runs its own thread pool beside its own
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                num_threads=self.num_threads,
                random_state=self.random_state,
            )
            model.fit(weighted, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        return self

    def _weight(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        out = sp.csr_matrix(counts, dtype=np.float32, copy=True)
        if self.weighting == "none":
            return out
        lengths = np.asarray(out.sum(axis=1)).ravel()
        norm = (1.0 - self.bm25_b) + self.bm25_b * lengths / float(self.mean_length_)
        row_of = np.repeat(np.arange(out.shape[0]), np.diff(out.indptr))
        k1 = self.bm25_k1
        data = out.data.astype(np.float64)
        out.data = (data * (k1 + 1.0) / (k1 * norm[row_of] + data) * self.idf_[out.indices]).astype(
            np.float32
        )
        # an item in every row has idf 0 (or below): keep it as a weak positive
        out.data = np.maximum(out.data, np.float32(1e-6))
        return out

    def fold_in(self, user_items: Any) -> NDArray[np.float32]:
        """User factors for histories, by one exact ALS least-squares step on the item factors.

        x_u = (YᵀY + λI + Σ_i (c_ui - 1) y_i y_iᵀ)⁻¹ Σ_i c_ui y_i, c_ui = alpha · weight_ui.
        """
        self.check_fitted()
        histories = self._check_items(user_items, self.item_factors_.shape[0])
        conf = self._weight(histories)
        conf.data *= np.float32(self.alpha)
        Y = self.item_factors_.astype(np.float64)
        f = Y.shape[1]
        base = Y.T @ Y + self.regularization * np.eye(f)
        out = np.zeros((histories.shape[0], f), dtype=np.float32)
        for r in range(histories.shape[0]):
            lo, hi = conf.indptr[r], conf.indptr[r + 1]
            if lo == hi:
                continue
            Yi = Y[conf.indices[lo:hi]]
            c = conf.data[lo:hi].astype(np.float64)
            A = base + (Yi * (c - 1.0)[:, None]).T @ Yi
            b = Yi.T @ c
            out[r] = np.linalg.solve(A, b)
        return out

    def recommend(
        self,
        user_items: Any,
        n: int = 10,
        *,
        users: NDArray[np.int64] | None = None,
        exclude_seen: bool = True,
        repeatable: NDArray[np.bool_] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Top n per history row; `users` (training row indices) reuse the fitted factors."""
        self.check_fitted()
        n = check_n(n)
        histories = self._check_items(user_items, self.item_factors_.shape[0])
        if users is not None:
            idx = np.asarray(users, dtype=np.int64)
            if idx.shape != (histories.shape[0],):
                raise ValidationFailed("users must have one index per history row")
            factors = self.user_factors_[idx]
        else:
            factors = self.fold_in(histories)
        exclude = seen_mask(histories, repeatable) if exclude_seen else None
        ids = np.full((histories.shape[0], n), -1, dtype=np.int64)
        scores = np.full((histories.shape[0], n), -np.inf)
        for lo in range(0, histories.shape[0], ROWS_PER_BLOCK):
            hi = min(histories.shape[0], lo + ROWS_PER_BLOCK)
            block = factors[lo:hi] @ self.item_factors_.T
            ids[lo:hi], scores[lo:hi] = rank_dense(
                block, n, exclude=None if exclude is None else exclude[lo:hi]
            )
        return ids, scores

    def explain(self, history: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.int64]:
        """The bought item whose factors are closest (cosine) to each recommended item."""
        self.check_fitted()
        history = np.asarray(history, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.full(items.size, -1, dtype=np.int64)
        if history.size == 0 or items.size == 0:
            return out
        Y = self.item_factors_.astype(np.float64)
        norms = np.linalg.norm(Y, axis=1)
        norms[norms == 0] = 1.0
        unit = Y / norms[:, None]
        valid = items >= 0
        sims = unit[history] @ unit[items[valid]].T
        out[valid] = history[np.argmax(sims, axis=0)]
        return out
