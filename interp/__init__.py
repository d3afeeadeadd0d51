"""interp: a notebook-first workbench for mechanistic interpretability.

The public facade is short and lazy: importing ``interp`` imports nothing heavy
(no torch, no TransformerLens), so ``interp --help`` is instant. Names resolve on
first use.

>>> import interp
>>> model = interp.load_model("smollm2-135m", n_layers=4)   # doctest: +SKIP
>>> logits, cache = model.run_with_cache("The capital of France is")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "interp.models.registry",
    "list_models": "interp.models.registry",
    "ModelInfo": "interp.models.contract",
    "model_info": "interp.models.contract",
    "prepare_inputs": "interp.models.contract",
    "InterpError": "interp.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from interp.errors import InterpError
    from interp.models.contract import ModelInfo, model_info, prepare_inputs
    from interp.models.registry import list_models, load_model


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'interp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
