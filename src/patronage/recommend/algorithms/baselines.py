"""The reference libraries, used exactly as their documentation shows, for side-by-side runs.

These are what patronage's own models are measured against: `implicit`'s ALS and its BM25
item-kNN (`implicit.nearest_neighbours.BM25Recommender`). They follow the same `recommend`
shape as patronage's models so one evaluation loop runs them all; they are not persisted.
"""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from patronage.recommend.algorithms.base import Recommender, check_matrix, check_n


class ImplicitModel(Recommender):
    """Wraps an `implicit` recommender; `users` are the training rows being scored."""

    def __init__(
        self,
        kind: str = "bm25",
        num_threads: int = 1,
        random_state: int | None = 0,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.kind = kind
        self.num_threads = num_threads
        self.random_state = random_state
        self.options = options

    def _make(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        opts = dict(self.options or {})
        if self.kind == "bm25":
            return BM25Recommender(num_threads=self.num_threads, **opts)
        if self.kind == "cosine":
            return CosineRecommender(num_threads=self.num_threads, **opts)
        if self.kind == "als":
            return AlternatingLeastSquares(
                num_threads=self.num_threads, random_state=self.random_state, **opts
            )
        raise ValueError(f"unknown implicit model {self.kind!r}")

    def fit(self, X: Any) -> Self:
        counts = check_matrix(X)
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            # the item-kNN models convert their own weighted COO input to CSR and say so
            warnings.simplefilter("ignore", category=Warning)
            model = self._make()
            model.fit(counts, show_progress=False)
        self.model_ = model
        self.train_ = counts
        return self

    def recommend(
        self,
        user_items: Any,
        n: int = 10,
        *,
        users: NDArray[np.int64] | None = None,
        exclude_seen: bool = True,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        self.check_fitted()
        n = check_n(n)
        histories = self._check_items(user_items, self.train_.shape[1])
        rows = np.arange(histories.shape[0]) if users is None else np.asarray(users)
        with threadpool_limits(1, "blas"):
            ids, scores = self.model_.recommend(
                rows, histories, N=n, filter_already_liked_items=exclude_seen
            )
        ids = np.asarray(ids, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64)
        # implicit pads short rows with id -1 / score -inf, or with an item of score -inf
        bad = ~np.isfinite(scores)
        ids[bad] = -1
        return ids, scores

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "model_")
