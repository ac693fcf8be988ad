"""The estimator contract every recommendation model follows, and ranking helpers.

Contract (DESIGN.md): hyperparameters in `__init__` (stored under the same names), `fit(X)`
returns `self`, learned attributes end in `_`, `random_state` for reproducibility, and
`save` / `load` write one `.npz` of arrays plus the hyperparameters as JSON, never pickle.

`recommend(user_items, n)` takes the histories of the users to recommend for (one CSR row
each, items as columns) and returns `(ids, scores)`, two arrays of shape (rows, n), best
first, padded with -1 / -inf when a row has fewer than n candidates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from patronage.errors import Conflict, ValidationFailed
from patronage.kit.estimator import Hyperparameters

FORMAT = "patronage.recommend/1"
SPARSE_PARTS = ("data", "indices", "indptr", "shape")


class Recommender(Hyperparameters):
    """Base class: parameter introspection, persistence, input checks."""

    # learned attributes written by save(); ndarrays or CSR matrices
    _learned: ClassVar[tuple[str, ...]] = ()

    @property
    def is_fitted(self) -> bool:
        return all(hasattr(self, name) for name in self._learned)

    def check_fitted(self) -> None:
        if not self.is_fitted:
            raise Conflict(f"{type(self).__name__} is not fitted: call fit() first")

    def fit(self, X: Any) -> Self:
        raise NotImplementedError

    def recommend(
        self, user_items: Any, n: int = 10, *, exclude_seen: bool = True
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        raise NotImplementedError

    # -- persistence -------------------------------------------------------------------------

    def save(self, path: Path | str) -> Path:
        """Write hyperparameters (JSON) and learned arrays to one `.npz` file."""
        self.check_fitted()
        meta = {"format": FORMAT, "class": type(self).__name__, "params": self.get_params()}
        arrays: dict[str, NDArray[Any]] = {
            "__meta__": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        }
        for name in self._learned:
            value = getattr(self, name)
            if sp.issparse(value):
                csr = sp.csr_matrix(value)
                arrays[f"{name}.data"] = csr.data
                arrays[f"{name}.indices"] = csr.indices
                arrays[f"{name}.indptr"] = csr.indptr
                arrays[f"{name}.shape"] = np.asarray(csr.shape, dtype=np.int64)
            else:
                arrays[name] = np.asarray(value)
        target = Path(path)
        with target.open("wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        return target

    @classmethod
    def load(cls, path: Path | str) -> Self:
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(bytes(data["__meta__"]).decode())
            if meta.get("format") != FORMAT or meta.get("class") != cls.__name__:
                raise ValidationFailed(
                    f"{Path(path).name} is not a saved {cls.__name__} ({meta.get('class')})"
                )
            model = cls(**meta["params"])
            for name in cls._learned:
                if f"{name}.data" in data:
                    shape = tuple(int(x) for x in data[f"{name}.shape"])
                    value: Any = sp.csr_matrix(
                        (data[f"{name}.data"], data[f"{name}.indices"], data[f"{name}.indptr"]),
                        shape=shape,
                    )
                else:
                    value = data[name]
                setattr(model, name, value)
        return model

    # -- helpers for subclasses ----------------------------------------------------------------

    def _check_items(self, user_items: sp.spmatrix | NDArray[Any], n_items: int) -> sp.csr_matrix:
        if not sp.issparse(user_items):
            raise ValidationFailed("user_items must be a sparse matrix (rows x items)")
        csr = sp.csr_matrix(user_items, dtype=np.float32)
        if csr.shape[1] != n_items:
            raise ValidationFailed(
                f"user_items has {csr.shape[1]} item columns, the model knows {n_items}"
            )
        return csr


def check_matrix(X: Any) -> sp.csr_matrix:
    """A users x items CSR float32 matrix with at least one row and column."""
    if not sp.issparse(X):
        raise ValidationFailed("expected a sparse users x items matrix")
    csr = sp.csr_matrix(X, dtype=np.float32)
    if csr.shape[0] == 0 or csr.shape[1] == 0:
        raise ValidationFailed("the interaction matrix is empty")
    csr.sum_duplicates()
    return csr


def check_n(n: int) -> int:
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValidationFailed("n must be a positive integer")
    return int(n)


def popularity(X: sp.csr_matrix) -> NDArray[np.float64]:
    """Number of distinct buyers per item."""
    binary = sp.csr_matrix(X, copy=True)
    binary.eliminate_zeros()
    return np.bincount(binary.indices, minlength=X.shape[1]).astype(np.float64)


def popularity_order(pop: NDArray[np.float64]) -> NDArray[np.int64]:
    """Items by popularity, most popular first, ties by lower index (deterministic)."""
    return np.lexsort((np.arange(pop.size), -pop)).astype(np.int64)


def top_row(
    cols: NDArray[np.int64], vals: NDArray[Any], n: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The n best (col, val) pairs of one row: highest value first, ties by lower column."""
    if cols.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    if cols.size > n:
        # a partition finds the n-th value; only entries reaching it are sorted
        kth = np.partition(vals, cols.size - n)[cols.size - n]
        sel = vals >= kth
        cols, vals = cols[sel], vals[sel]
    order = np.lexsort((cols, -vals))[:n]
    return cols[order].astype(np.int64), vals[order].astype(np.float64)


def rank_sparse(
    scores: sp.csr_matrix,
    n: int,
    *,
    exclude: sp.csr_matrix | None = None,
    fallback: NDArray[np.int64] | None = None,
    keep_nonpositive: bool = False,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Top n columns per row of a sparse score matrix.

    Entries present in `exclude` (same shape) are skipped; rows with fewer than n positive
    candidates are topped up from `fallback` (an item order, e.g. most popular first) with
    score 0, skipping excluded and already chosen items.
    """
    rows = scores.shape[0]
    ids = np.full((rows, n), -1, dtype=np.int64)
    out = np.full((rows, n), -np.inf, dtype=np.float64)
    scores = sp.csr_matrix(scores)
    for r in range(rows):
        lo, hi = scores.indptr[r], scores.indptr[r + 1]
        cols = scores.indices[lo:hi].astype(np.int64)
        vals = scores.data[lo:hi]
        seen = (
            exclude.indices[exclude.indptr[r] : exclude.indptr[r + 1]]
            if exclude is not None
            else None
        )
        mask = np.ones(cols.size, dtype=bool) if keep_nonpositive else vals > 0
        if seen is not None and seen.size:
            mask &= ~np.isin(cols, seen)
        c, v = top_row(cols[mask], vals[mask], n)
        ids[r, : c.size] = c
        out[r, : c.size] = v
        if c.size < n and fallback is not None:
            _fill(ids[r], out[r], c.size, fallback, c, seen)
    return ids, out


def rank_dense(
    scores: NDArray[np.floating[Any]],
    n: int,
    *,
    exclude: sp.csr_matrix | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Top n columns per row of a dense score block, ties by lower column."""
    block = np.array(scores, dtype=np.float64, copy=True)
    if exclude is not None:
        coo = exclude.tocoo()
        block[coo.row, coo.col] = -np.inf
    rows, n_items = block.shape
    k = min(n, n_items)
    ids = np.full((rows, n), -1, dtype=np.int64)
    out = np.full((rows, n), -np.inf, dtype=np.float64)
    if k == 0:
        return ids, out
    kth = np.partition(block, n_items - k, axis=1)[:, n_items - k]
    r_idx, c_idx = np.nonzero((block >= kth[:, None]) & np.isfinite(block))
    v = block[r_idx, c_idx]
    order = np.lexsort((c_idx, -v, r_idx))
    r_idx, c_idx, v = r_idx[order], c_idx[order], v[order]
    starts = np.searchsorted(r_idx, np.arange(rows))
    rank = np.arange(r_idx.size) - starts[r_idx]
    take = rank < k
    ids[r_idx[take], rank[take]] = c_idx[take]
    out[r_idx[take], rank[take]] = v[take]
    return ids, out


def _fill(
    ids: NDArray[np.int64],
    out: NDArray[np.float64],
    start: int,
    fallback: NDArray[np.int64],
    chosen: NDArray[np.int64],
    seen: NDArray[Any] | None,
) -> None:
    need = ids.size - start
    # the first need + |chosen| + |seen| fallback items always suffice
    limit = need + chosen.size + (0 if seen is None else seen.size)
    cand = fallback[:limit]
    mask = ~np.isin(cand, chosen)
    if seen is not None and seen.size:
        mask &= ~np.isin(cand, seen)
    extra = cand[mask][:need]
    ids[start : start + extra.size] = extra
    out[start : start + extra.size] = 0.0
