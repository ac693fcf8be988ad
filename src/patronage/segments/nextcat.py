"""Next category: the categories a customer is most likely to branch into next.

From the order lines (customer, order, category), with NumPy / SciPy sparse algebra only:

- transition: for every pair of consecutive orders of a customer, each category of order n
  "leads to" each category that is new to the customer in order n+1. `transition_[a, b]` is
  the share of orders holding `a` (and followed by another order) whose next order brought
  `b` for the first time;
- co-purchase: `copurchase_[a, b]` is the share of the customers who bought `a` who also
  bought `b` (at any time);
- popularity: the share of customers who bought the category.

A customer's score for a category they have not bought is
    transition_weight · mean over their last order's categories of transition_[a, ·]
  + copurchase_weight · mean over every category they bought of copurchase_[a, ·]
  + popularity_weight · popularity_.
With both the first weights at 0 this is the most-popular baseline.

`NextCategoryModel` follows the estimator contract (DESIGN.md): hyperparameters in
`__init__`, `fit -> self`, learned attributes end in `_`, `random_state`, JSON persistence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from patronage.errors import Conflict, ValidationFailed
from patronage.kit.estimator import Hyperparameters

FORMAT = "patronage.segments.nextcat/1"
Ints = NDArray[np.int64]
Floats = NDArray[np.float64]
CHUNK = 100_000  # customers scored at a time: a dense chunk x categories block


@dataclass(frozen=True)
class Lines:
    """Distinct (customer, order, category) rows; `placed` orders a customer's orders
    (microseconds), `order` breaks ties; `category` is an index in [0, n_categories)."""

    customer: Ints
    placed: Ints
    order: Ints
    category: Ints
    n_categories: int

    def __post_init__(self) -> None:
        n = len(self.customer)
        if not (len(self.placed) == len(self.order) == len(self.category) == n):
            raise ValidationFailed("order lines: every column must have the same length")
        if n and (self.category.min() < 0 or self.category.max() >= self.n_categories):
            raise ValidationFailed("order lines: category index out of range")

    def where(self, mask: NDArray[np.bool_]) -> Lines:
        return Lines(
            self.customer[mask],
            self.placed[mask],
            self.order[mask],
            self.category[mask],
            self.n_categories,
        )


@dataclass(frozen=True)
class Histories:
    """Per customer (rows, in `customers` order): every category bought, the last order's."""

    customers: Ints
    bought: sp.csr_matrix
    last: sp.csr_matrix


@dataclass(frozen=True)
class _Orders:
    lines: Lines  # sorted by customer, placed, order
    order_index: Ints  # per line: its order (0..n_orders-1, in sorted order)
    customer_index: Ints  # per line: its customer (0..n_customers-1)
    customers: Ints  # customer ids by index
    order_customer: Ints  # per order: its customer index


def _orders(lines: Lines) -> _Orders:
    sort = np.lexsort((lines.category, lines.order, lines.placed, lines.customer))
    s = Lines(
        lines.customer[sort],
        lines.placed[sort],
        lines.order[sort],
        lines.category[sort],
        lines.n_categories,
    )
    n = len(s.customer)
    new_order = np.ones(n, dtype=bool)
    if n > 1:
        new_order[1:] = (np.diff(s.customer) != 0) | (np.diff(s.order) != 0)
    order_index = np.cumsum(new_order) - 1
    customers, customer_index = np.unique(s.customer, return_inverse=True)
    return _Orders(s, order_index, customer_index, customers, customer_index[new_order])


def _binary(rows: Ints, cols: Ints, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=shape)
    m.data[:] = 1.0  # duplicates summed to >1: back to 0/1
    return m


def histories(lines: Lines) -> Histories:
    """Every customer's bought categories and last order's categories."""
    o = _orders(lines)
    n_customers, c = len(o.customers), lines.n_categories
    bought = _binary(o.customer_index, o.lines.category, (n_customers, c))
    last_order = np.full(n_customers, -1, dtype=np.int64)
    np.maximum.at(last_order, o.customer_index, o.order_index)
    in_last = o.order_index == last_order[o.customer_index]
    last = _binary(o.customer_index[in_last], o.lines.category[in_last], (n_customers, c))
    return Histories(o.customers, bought, last)


class NextCategoryModel(Hyperparameters):
    """Transition + co-purchase + popularity scores (see the module docstring)."""

    def __init__(
        self,
        transition_weight: float = 1.0,
        copurchase_weight: float = 0.5,
        popularity_weight: float = 0.1,
        random_state: int = 0,
    ) -> None:
        self.transition_weight = transition_weight
        self.copurchase_weight = copurchase_weight
        self.popularity_weight = popularity_weight
        self.random_state = random_state  # the model is deterministic; kept for the contract

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "popularity_")

    def fit(self, lines: Lines) -> Self:
        weights = (self.transition_weight, self.copurchase_weight, self.popularity_weight)
        if min(weights) < 0 or max(weights) == 0:
            raise ValidationFailed("weights must be >= 0 and not all 0")
        o = _orders(lines)
        c = lines.n_categories
        n_orders = int(o.order_index[-1]) + 1 if len(o.order_index) else 0
        n_customers = len(o.customers)
        in_order = _binary(o.order_index, o.lines.category, (n_orders, c))
        # a line is new when it is the customer's first order with that category
        pair = o.customer_index * c + o.lines.category
        _, first = np.unique(pair, return_index=True)
        is_new = np.zeros(len(pair), dtype=bool)
        is_new[first] = True
        new_in = _binary(o.order_index[is_new], o.lines.category[is_new], (n_orders, c))
        src = np.flatnonzero(o.order_customer[:-1] == o.order_customer[1:])
        followed = in_order[src]
        transitions = (followed.T @ new_in[src + 1]).toarray()
        base = np.asarray(followed.sum(axis=0)).ravel()
        self.transition_ = np.divide(
            transitions, base[:, None], out=np.zeros((c, c)), where=base[:, None] > 0
        )
        np.fill_diagonal(self.transition_, 0.0)
        bought = _binary(o.customer_index, o.lines.category, (n_customers, c))
        together = (bought.T @ bought).toarray()
        buyers = np.diag(together).copy()
        self.copurchase_ = np.divide(
            together, buyers[:, None], out=np.zeros((c, c)), where=buyers[:, None] > 0
        )
        np.fill_diagonal(self.copurchase_, 0.0)
        self.popularity_ = buyers / max(n_customers, 1)
        self.n_categories_ = c
        self.n_customers_ = n_customers
        self.n_transitions_ = len(src)
        return self

    def _check(self, h: Histories) -> None:
        if not self.is_fitted:
            raise Conflict("NextCategoryModel is not fitted: call fit() first")
        if h.bought.shape[1] != self.n_categories_:
            raise ValidationFailed(f"expected {self.n_categories_} categories")

    def scores(self, h: Histories, rows: slice) -> Floats:
        """Dense scores of the customers `rows`, bought categories at -inf."""
        self._check(h)
        bought, last = h.bought[rows], h.last[rows]
        out = np.zeros(bought.shape, dtype=np.float64)
        if self.transition_weight:
            n_last = np.maximum(np.asarray(last.sum(axis=1)), 1.0)
            out += self.transition_weight * np.asarray(last @ self.transition_) / n_last
        if self.copurchase_weight:
            n_bought = np.maximum(np.asarray(bought.sum(axis=1)), 1.0)
            out += self.copurchase_weight * np.asarray(bought @ self.copurchase_) / n_bought
        out += self.popularity_weight * self.popularity_[None, :]
        out[bought.nonzero()] = -np.inf
        return out

    def predict(self, h: Histories, k: int = 3) -> tuple[Ints, Floats]:
        """Top-k category indices and scores per customer, best first (ties: lower index);
        -1 / -inf pad rows with fewer than k categories left to branch into."""
        if k < 1:
            raise ValidationFailed("k must be at least 1")
        self._check(h)
        n, c = h.bought.shape
        k_eff = min(k, c)
        ids = np.full((n, k), -1, dtype=np.int64)
        best = np.full((n, k), -np.inf)
        for start in range(0, n, CHUNK):
            rows = slice(start, min(n, start + CHUNK))
            s = self.scores(h, rows)
            # stable order: score descending, then category index ascending
            top = np.argsort(-s, axis=1, kind="stable")[:, :k_eff]
            top_scores = np.take_along_axis(s, top, axis=1)
            top = np.where(np.isfinite(top_scores), top, -1)
            ids[rows, :k_eff] = top
            best[rows, :k_eff] = top_scores
        return ids, best

    def to_dict(self) -> dict[str, Any]:
        if not self.is_fitted:
            raise Conflict("NextCategoryModel is not fitted: call fit() first")
        return {
            "format": FORMAT,
            "params": self.get_params(),
            "transition": self.transition_.tolist(),
            "copurchase": self.copurchase_.tolist(),
            "popularity": self.popularity_.tolist(),
            "n_customers": self.n_customers_,
            "n_transitions": self.n_transitions_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NextCategoryModel:
        if data.get("format") != FORMAT:
            raise ValidationFailed(f"not a saved {cls.__name__} (format {data.get('format')!r})")
        model = cls(**data["params"])
        model.transition_ = np.asarray(data["transition"], dtype=np.float64)
        model.copurchase_ = np.asarray(data["copurchase"], dtype=np.float64)
        model.popularity_ = np.asarray(data["popularity"], dtype=np.float64)
        model.n_categories_ = len(model.popularity_)
        model.n_customers_ = int(data["n_customers"])
        model.n_transitions_ = int(data["n_transitions"])
        return model


# -- holdout evaluation ------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldoutResult:
    customers: int  # evaluated: history before the cut and a new category after it
    train_lines: int
    hit_rate: dict[int, float]  # k -> share of customers with a hit in their top k
    baseline_hit_rate: dict[int, float]
    recall: dict[int, float]  # k -> mean share of their new categories found in the top k
    baseline_recall: dict[int, float]


def _hits(
    top: Ints, actual: sp.csr_matrix, ks: list[int]
) -> tuple[dict[int, float], dict[int, float]]:
    n = top.shape[0]
    rows = np.repeat(np.arange(n), top.shape[1])
    cols = top.ravel()
    valid = cols >= 0
    flat = np.zeros(top.size, dtype=bool)
    flat[valid] = np.asarray(actual[rows[valid], cols[valid]]).ravel() > 0
    found = flat.reshape(top.shape)
    wanted = np.asarray(actual.sum(axis=1)).ravel()
    hit, recall = {}, {}
    for k in ks:
        in_top = found[:, :k].sum(axis=1)
        hit[k] = round(float((in_top > 0).mean()) if n else 0.0, 4)
        recall[k] = round(float((in_top / np.maximum(wanted, 1)).mean()) if n else 0.0, 4)
    return hit, recall


def holdout(
    lines: Lines,
    cut: int,
    ks: list[int],
    model: NextCategoryModel | None = None,
) -> HoldoutResult:
    """Fit on the lines before `cut` (microseconds); for every customer with orders before
    it and a category new to them after it, predict from the history before the cut and
    compare with the new categories actually bought after it. The most-popular baseline
    (popularity only, bought categories excluded) is scored on the same customers."""
    if not ks or min(ks) < 1:
        raise ValidationFailed("k values must be at least 1")
    model = model or NextCategoryModel()
    before = lines.placed < cut
    train = lines.where(before)
    test = lines.where(~before)
    fitted = NextCategoryModel(**model.get_params()).fit(train)
    h = histories(train)
    if len(h.customers) == 0:
        zeros = dict.fromkeys(ks, 0.0)
        return HoldoutResult(0, 0, zeros, zeros, zeros, zeros)
    # the test lines of customers with a history, as rows of h
    pos = np.searchsorted(h.customers, test.customer)
    pos_ok = np.minimum(pos, len(h.customers) - 1)
    known = h.customers[pos_ok] == test.customer
    after = _binary(pos_ok[known], test.category[known], h.bought.shape)
    new = after - after.multiply(h.bought)
    new.eliminate_zeros()
    rows = np.flatnonzero(np.asarray(new.sum(axis=1)).ravel() > 0)
    sub = Histories(h.customers[rows], h.bought[rows], h.last[rows])
    actual = new[rows]
    k_max = max(ks)
    top, _ = fitted.predict(sub, k_max)
    hit, recall = _hits(top, actual, ks)
    baseline = NextCategoryModel(0.0, 0.0, 1.0).fit(train)
    btop, _ = baseline.predict(sub, k_max)
    bhit, brecall = _hits(btop, actual, ks)
    return HoldoutResult(len(rows), len(train.customer), hit, bhit, recall, brecall)
