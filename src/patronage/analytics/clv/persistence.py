"""Save and load fitted CLV models as JSON (never pickle: a saved model is data, not code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from patronage.analytics.clv.bgnbd import BetaGeoFitter
from patronage.analytics.clv.gamma_gamma import GammaGammaFitter
from patronage.errors import ValidationFailed

Model = BetaGeoFitter | GammaGammaFitter
MODELS: dict[str, type[BetaGeoFitter] | type[GammaGammaFitter]] = {
    "BetaGeoFitter": BetaGeoFitter,
    "GammaGammaFitter": GammaGammaFitter,
}


def dumps(model: Model) -> str:
    return json.dumps(model.to_dict(), allow_nan=False, sort_keys=True)


def from_dict(data: dict[str, Any]) -> Model:
    kind = data.get("model") if isinstance(data, dict) else None
    if kind not in MODELS:
        raise ValidationFailed(f"unknown saved model {kind!r}")
    return MODELS[kind].from_dict(data)


def loads(text: str) -> Model:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"saved model is not valid JSON: {exc.msg}") from exc
    return from_dict(data)


def save(model: Model, path: Path) -> None:
    path.write_text(dumps(model) + "\n", encoding="utf-8")


def load(path: Path) -> Model:
    return loads(path.read_text(encoding="utf-8"))
