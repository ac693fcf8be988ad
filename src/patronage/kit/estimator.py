"""What every model shares under the estimator contract of DESIGN.md: its hyperparameters
are the arguments of its `__init__`, kept as attributes of the same names."""

from __future__ import annotations

import inspect
from typing import Any


class Hyperparameters:
    """`get_params()` and a repr that shows them, read from the subclass's `__init__`."""

    def get_params(self) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
