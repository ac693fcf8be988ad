"""What the CLV estimators share: hyperparameters, learned state, saving without pickle."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np

from patronage.analytics.clv._checks import FloatArray, ModelNotReady, check_names
from patronage.analytics.clv._optimize import FitResult
from patronage.errors import ValidationFailed

FORMAT_VERSION = 1


class Estimator:
    """scikit-learn style: hyperparameters in __init__, learned attributes end in `_`.

    No randomness is involved (deterministic optimiser from a fixed start), so there is no
    random_state. `to_dict()` gives plain JSON types; `from_dict()` restores a model that
    predicts exactly as the saved one did.
    """

    MODEL: ClassVar[str]
    LABEL: ClassVar[str]
    PARAM_NAMES: ClassVar[tuple[str, ...]]

    params_: dict[str, float]
    log_likelihood_: float
    converged_: bool
    message_: str
    n_iter_: int
    n_customers_: int

    def __init__(self, penalizer: float = 0.0, tol: float = 1e-10, max_iter: int = 2000) -> None:
        self.penalizer = penalizer
        self.tol = tol
        self.max_iter = max_iter

    def get_params(self) -> dict[str, Any]:
        return {"penalizer": self.penalizer, "tol": self.tol, "max_iter": self.max_iter}

    def _check_hyperparameters(self) -> None:
        if not (math.isfinite(self.penalizer) and self.penalizer >= 0):
            raise ValidationFailed("penalizer must be a finite number >= 0")
        if not (self.tol > 0 and int(self.max_iter) >= 1):
            raise ValidationFailed("tol must be > 0 and max_iter >= 1")

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "converged_")

    def _learn(self, result: FitResult) -> None:
        self.params_ = dict(zip(self.PARAM_NAMES, map(float, result.params), strict=True))
        self.log_likelihood_ = result.log_likelihood
        self.converged_ = result.converged
        self.message_ = result.message
        self.n_iter_ = result.n_iter

    def _fail(self, message: str) -> None:
        self.params_ = {}
        self.log_likelihood_ = float("nan")
        self.converged_ = False
        self.message_ = message
        self.n_iter_ = 0

    def _param_array(self) -> FloatArray:
        if not self.is_fitted:
            raise ModelNotReady(f"the {self.LABEL} model is not fitted yet")
        usable = all(
            math.isfinite(self.params_.get(n, math.nan)) and self.params_[n] > 0
            for n in self.PARAM_NAMES
        )
        if not (self.converged_ and usable):
            raise ModelNotReady(f"the {self.LABEL} fit did not converge: {self.message_}")
        return np.array([self.params_[n] for n in self.PARAM_NAMES])

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, fitted: dict[str, Any]) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        fitted = None
        if self.is_fitted:
            fitted = {
                "params": {k: _json_float(v) for k, v in self.params_.items()},
                "log_likelihood": _json_float(self.log_likelihood_),
                "converged": self.converged_,
                "message": self.message_,
                "n_iter": self.n_iter_,
                "n_customers": self.n_customers_,
                **self._extra_state(),
            }
        return {
            "model": self.MODEL,
            "version": FORMAT_VERSION,
            "hyperparameters": self.get_params(),
            "fitted": fitted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if not isinstance(data, dict) or data.get("model") != cls.MODEL:
            raise ValidationFailed(f"not a saved {cls.MODEL}")
        if data.get("version") != FORMAT_VERSION:
            raise ValidationFailed(
                f"saved {cls.MODEL} has unsupported version {data.get('version')}"
            )
        check_names(data, ("hyperparameters", "fitted"), f"saved {cls.MODEL}")
        try:
            model = cls(**data["hyperparameters"])
            fitted = data["fitted"]
            if fitted is not None:
                params = fitted["params"]
                if fitted["converged"]:
                    check_names(params, cls.PARAM_NAMES, f"saved {cls.MODEL} params")
                model.params_ = {str(k): _float(v) for k, v in params.items()}
                model.log_likelihood_ = _float(fitted["log_likelihood"])
                model.converged_ = bool(fitted["converged"])
                model.message_ = str(fitted["message"])
                model.n_iter_ = int(fitted["n_iter"])
                model.n_customers_ = int(fitted["n_customers"])
                model._load_extra_state(fitted)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationFailed(f"saved {cls.MODEL} is malformed: {exc}") from exc
        return model


def _json_float(value: float) -> float | None:
    # JSON has no NaN/inf; None says "not available" instead of a number that is not one
    return float(value) if math.isfinite(value) else None


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)
