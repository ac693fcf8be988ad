"""Personas: k-means on standardised customer features, k chosen by silhouette, clusters
described in words, and matched to the previous run's so ids and names stay stable.

`PersonaModel` follows the estimator contract (DESIGN.md): hyperparameters in `__init__`,
`fit(X) -> self`, learned attributes end in `_`, `random_state`, saved as JSON
(`to_dict` / `from_dict`), never pickled.

Why MiniBatchKMeans: a full k-means pass over 1M rows for every candidate k costs seconds
each; mini-batches reach the same centroids on this kind of data at a fraction of the time.
The silhouette costs O(n²), so it is computed on a fixed-size random sample.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import MiniBatchKMeans  # type: ignore[import-untyped]
from sklearn.exceptions import ConvergenceWarning  # type: ignore[import-untyped]
from sklearn.metrics import silhouette_score  # type: ignore[import-untyped]

from patronage.errors import Conflict, ValidationFailed
from patronage.kit.estimator import Hyperparameters

FORMAT = "patronage.segments.personas/1"
Array = NDArray[np.float64]


class PersonaModel(Hyperparameters):
    """k-means personas; `k_` is the k in [k_min, k_max] with the best sampled silhouette."""

    def __init__(
        self,
        k_min: int = 3,
        k_max: int = 8,
        silhouette_sample: int = 3_000,
        fit_sample: int = 50_000,
        refine_iter: int = 2,
        batch_size: int = 4_096,
        n_init: int = 1,
        max_iter: int = 100,
        random_state: int = 0,
    ) -> None:
        self.k_min = k_min
        self.k_max = k_max
        self.silhouette_sample = silhouette_sample
        self.fit_sample = fit_sample
        self.refine_iter = refine_iter
        self.batch_size = batch_size
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state

    def _check_params(self) -> None:
        if not 2 <= self.k_min <= self.k_max <= 50:
            raise ValidationFailed("k must satisfy 2 <= k_min <= k_max <= 50")
        if self.silhouette_sample < 100 or self.fit_sample < 1_000:
            raise ValidationFailed("samples must hold at least 100 (silhouette), 1,000 (fit)")
        if not 0 <= self.refine_iter <= 100:
            raise ValidationFailed("refine_iter must be in [0, 100]")

    @staticmethod
    def _matrix(X: Any) -> Array:
        matrix = np.asarray(X, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] == 0:
            raise ValidationFailed("personas need a 2-d matrix of customers x features")
        if not np.isfinite(matrix).all():
            raise ValidationFailed("feature values must be finite (impute missing values first)")
        return matrix

    def fit(self, X: Any, feature_names: list[str] | None = None) -> Self:
        self._check_params()
        matrix = self._matrix(X)
        n = matrix.shape[0]
        k_max = min(self.k_max, n - 1)
        if n < 3 or k_max < self.k_min:
            raise ValidationFailed(
                f"{n} customers are too few for {self.k_min} to {self.k_max} personas"
            )
        names = feature_names or [f"x{i}" for i in range(matrix.shape[1])]
        if len(names) != matrix.shape[1]:
            raise ValidationFailed("one feature name per column")
        self.mean_ = matrix.mean(axis=0)
        scale = matrix.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        # float32 for the distance work: half the memory traffic, same clusters
        z = ((matrix - self.mean_) / self.scale_).astype(np.float32)
        rng = np.random.default_rng(self.random_state)
        sample = np.sort(rng.choice(n, size=min(n, self.silhouette_sample), replace=False))
        fit_rows = z if n <= self.fit_sample else z[rng.choice(n, self.fit_sample, replace=False)]
        z_sample = z[sample]
        best: tuple[float, int, Array] | None = None
        scores: dict[int, float] = {}
        for k in range(self.k_min, k_max + 1):
            with warnings.catch_warnings():
                # fewer distinct customers than k: the silhouette below says how good it is
                warnings.simplefilter("ignore", ConvergenceWarning)
                km = MiniBatchKMeans(
                    n_clusters=k,
                    batch_size=self.batch_size,
                    n_init=self.n_init,
                    max_iter=self.max_iter,
                    random_state=self.random_state,
                ).fit(fit_rows)
            centers = km.cluster_centers_.astype(np.float64)
            labels = _nearest(z_sample, centers)
            score = (
                float(silhouette_score(z_sample, labels)) if len(np.unique(labels)) > 1 else -1.0
            )
            score = round(score, 6)
            scores[k] = score
            if best is None or score > best[0] + 1e-9:
                best = (score, k, centers)
        assert best is not None
        self.silhouette_, self.k_, centers = best
        centers = _refine(z, centers, self.refine_iter)
        self.silhouettes_ = scores
        self.feature_names_in_ = list(names)
        self.n_features_in_ = matrix.shape[1]
        self.cluster_centers_ = centers * self.scale_ + self.mean_  # in the input's units
        self.labels_ = self.predict(matrix)
        return self

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "cluster_centers_")

    def predict(self, X: Any) -> NDArray[np.int64]:
        if not self.is_fitted:
            raise Conflict("PersonaModel is not fitted: call fit() first")
        matrix = self._matrix(X)
        if matrix.shape[1] != self.n_features_in_:
            raise ValidationFailed(f"expected {self.n_features_in_} features")
        z = ((matrix - self.mean_) / self.scale_).astype(np.float32)
        return _nearest(z, self.z_centers())

    def z_centers(self) -> Array:
        """Centroids in standard units: a cluster mean's z-score against all customers."""
        return np.asarray((self.cluster_centers_ - self.mean_) / self.scale_, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        if not self.is_fitted:
            raise Conflict("PersonaModel is not fitted: call fit() first")
        return {
            "format": FORMAT,
            "params": self.get_params(),
            "feature_names": self.feature_names_in_,
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "centers": self.cluster_centers_.tolist(),
            "k": self.k_,
            "silhouette": self.silhouette_,
            "silhouettes": {str(k): v for k, v in self.silhouettes_.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersonaModel:
        if data.get("format") != FORMAT:
            raise ValidationFailed(f"not a saved {cls.__name__} (format {data.get('format')!r})")
        model = cls(**data["params"])
        model.feature_names_in_ = list(data["feature_names"])
        model.n_features_in_ = len(model.feature_names_in_)
        model.mean_ = np.asarray(data["mean"], dtype=np.float64)
        model.scale_ = np.asarray(data["scale"], dtype=np.float64)
        model.cluster_centers_ = np.asarray(data["centers"], dtype=np.float64)
        model.k_ = int(data["k"])
        model.silhouette_ = float(data["silhouette"])
        model.silhouettes_ = {int(k): float(v) for k, v in data["silhouettes"].items()}
        return model


def _nearest(z: NDArray[Any], centers: Array, chunk: int = 200_000) -> NDArray[np.int64]:
    """Index of the nearest centre of each row (chunked: the distance matrix stays small)."""
    out = np.empty(len(z), dtype=np.int64)
    centers = centers.astype(z.dtype)
    c2 = (centers**2).sum(axis=1)
    for i in range(0, len(z), chunk):
        block = z[i : i + chunk]
        out[i : i + chunk] = np.argmin(c2 - 2.0 * block @ centers.T, axis=1)
    return out


def _refine(z: NDArray[Any], centers: Array, iterations: int) -> Array:
    """Full-data Lloyd steps from centres found on a sample (an empty cluster keeps its
    centre)."""
    k = len(centers)
    for _ in range(iterations):
        labels = _nearest(z, centers)
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centers)
        for j in range(z.shape[1]):
            sums[:, j] = np.bincount(labels, weights=z[:, j].astype(np.float64), minlength=k)
        centers = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centers)
    return centers


# -- stable labels -----------------------------------------------------------------------------


def match(
    centers: Array,
    names: list[str],
    previous: dict[int, dict[str, float]],
    scale: Array,
    max_distance: float = 1.0,
) -> dict[int, int]:
    """New cluster index -> previous persona id, by the Hungarian algorithm on the distance
    between centroids (in the new run's standard units, over the features both runs share).
    A pair further apart than `max_distance` (root mean square per feature) is a new persona."""
    if not previous or len(centers) == 0:
        return {}
    ids = list(previous)
    shared = [i for i, name in enumerate(names) if all(name in previous[p] for p in ids)]
    if not shared:
        return {}
    new = centers[:, shared] / scale[shared]
    old = np.array([[previous[p][names[i]] for i in shared] for p in ids]) / scale[shared]
    cost = np.sqrt(((new[:, None, :] - old[None, :, :]) ** 2).mean(axis=2))
    rows, cols = linear_sum_assignment(cost)
    return {
        int(r): ids[int(c)] for r, c in zip(rows, cols, strict=True) if cost[r, c] <= max_distance
    }


# -- words -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Words:
    """How a feature reads when a cluster is low / high on it (None: not worth saying)."""

    low: str | None
    high: str | None
    kind: str  # adjective (before "customers"), frequency, basket, verb


WORDS: dict[str, Words] = {
    "age": Words("young", "older", "adjective"),
    "metropolitan": Words("remote", "metropolitan", "adjective"),
    "tenure_days": Words("new", "long-standing", "adjective"),
    "recency_days": Words("recently active", "lapsed", "adjective"),
    "total_spend_minor": Words("low-spending", "high-spending", "adjective"),
    "orders": Words("rarely", "often", "frequency"),
    "aov_minor": Words("in small baskets", "in large baskets", "basket"),
    "sessions_30d": Words("rarely visit", "visit often", "verb"),
    "product_views_30d": Words("browse little", "browse a lot", "verb"),
    "abandoned_carts": Words(None, "abandon carts", "verb"),
    "return_rate": Words(None, "return a lot", "verb"),
    "discount_rate": Words(None, "buy on discount", "verb"),
    "distinct_categories": Words(None, "buy across many categories", "verb"),
    "support_contacts": Words(None, "contact support often", "verb"),
}
ORDER_BASED = {
    "orders",
    "total_spend_minor",
    "aov_minor",
    "recency_days",
    "distinct_categories",
    "return_rate",
    "discount_rate",
}
CATEGORY_PREFIX = "category:"  # share of a customer's items in a category: "buy <name>"


def _words(feature: str, labels: dict[str, str]) -> Words | None:
    if feature.startswith(CATEGORY_PREFIX):
        return Words(None, labels.get(feature, feature[len(CATEGORY_PREFIX) :]), "category")
    return WORDS.get(feature)


@dataclass(frozen=True)
class Description:
    name: str
    text: str
    traits: list[dict[str, Any]]  # the distinguishing features, most distinguishing first
    longer: str = ""  # the name with its first clause, for when two personas share a name


def describe(
    z: Array,
    names: list[str],
    labels: dict[str, str] | None = None,
    *,
    threshold: float = 0.3,
    most: int = 5,
    never_bought: bool = False,
) -> Description:
    """Plain words from a centroid's z-scores: the features furthest from the average (at
    least `threshold` standard deviations, at most `most` of them), e.g. "young metropolitan
    customers who buy electronics often in small baskets". A cluster that has `never_bought`
    is said so; its order-based features (all at their floor) are not described."""
    labels = labels or {}
    order = sorted(range(len(names)), key=lambda i: (-abs(float(z[i])), names[i]))
    chosen: list[tuple[str, float, str, str]] = []  # feature, z, kind, phrase
    category_seen = False
    for i in order:
        value = float(z[i])
        if abs(value) < threshold or len(chosen) == most:
            break
        words = _words(names[i], labels)
        phrase = None if words is None else (words.high if value > 0 else words.low)
        if words is None or phrase is None:
            continue
        if never_bought and (names[i] in ORDER_BASED or words.kind == "category"):
            continue
        if words.kind == "category":
            if category_seen:
                continue
            category_seen = True
        chosen.append((names[i], round(value, 3), words.kind, phrase))
    by_kind: dict[str, list[str]] = {}
    for _, _, kind, phrase in chosen:
        by_kind.setdefault(kind, []).append(phrase)
    adjectives = by_kind.get("adjective", [])
    buy = [
        " ".join(
            [
                "buy",
                *by_kind.get("category", []),
                *by_kind.get("frequency", []),
                *by_kind.get("basket", []),
            ]
        )
    ]
    buys = ["have not ordered yet"] if never_bought else buy if len(buy[0]) > 3 else []
    verbs = buys + by_kind.get("verb", [])
    subject = " ".join([*adjectives, "customers"])
    if verbs:
        clause = verbs[0] if len(verbs) == 1 else ", ".join(verbs[:-1]) + " and " + verbs[-1]
        text = f"{subject} who {clause}"
    else:
        text = subject if adjectives else "customers close to the average"
    categories = by_kind.get("category", [])
    longer = ""
    if never_bought:
        name = " ".join([*adjectives[:1], "customers who have not ordered yet"])
    elif adjectives or categories:
        head = " ".join(adjectives[:2] + categories[:1])
        name = f"{head} {'buyers' if categories else 'customers'}"
        rest = [v for v in verbs if not categories or v is not verbs[0]]
        longer = f"{name} who {rest[0]}" if rest else ""
    elif verbs:
        name = f"customers who {verbs[0]}"
    else:
        name = "average customers"
    traits = [{"feature": f, "z": value, "phrase": phrase} for f, value, _, phrase in chosen]
    return Description(
        name=name[:1].upper() + name[1:],
        text=text,
        traits=traits,
        longer=longer[:1].upper() + longer[1:],
    )


def unique_names(names: list[str], taken: set[str], longer: list[str] | None = None) -> list[str]:
    """The names; where one is taken (or repeated), its longer form, else " (2)", " (3)" …"""
    out: list[str] = []
    used = set(taken)
    repeated = {n for n in names if names.count(n) > 1 or n in taken}
    for i, name in enumerate(names):
        if name in repeated and longer and longer[i] and longer[i] not in used:
            name = longer[i]
        candidate, n = name, 1
        while candidate in used:
            n += 1
            candidate = f"{name} ({n})"
        used.add(candidate)
        out.append(candidate)
    return out
