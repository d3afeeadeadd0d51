"""interp: a notebook-first workbench for mechanistic interpretability.

The public facade is short and lazy: importing ``interp`` imports nothing heavy
(no torch, no TransformerLens), so ``interp --help`` is instant. Names resolve on
first use.

>>> import interp
>>> model = interp.load_model("smollm2-135m", n_layers=4)   # doctest: +SKIP
>>> logits, cache = model.run_with_cache("The capital of France is")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interp._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "interp.models.registry",
    "list_models": "interp.models.registry",
    "ModelInfo": "interp.models.contract",
    "model_info": "interp.models.contract",
    "prepare_inputs": "interp.models.contract",
    "InterpError": "interp.errors",
    "capture": "interp.capture.memory",
    "capture_activations": "interp.capture.memory",
    "capture_to_store": "interp.capture.to_store",
    "open_store": "interp.store.reader",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from interp.capture.memory import capture, capture_activations  # noqa: F401
    from interp.capture.to_store import capture_to_store  # noqa: F401
    from interp.errors import InterpError  # noqa: F401
    from interp.models.contract import ModelInfo, model_info, prepare_inputs  # noqa: F401
    from interp.models.registry import list_models, load_model  # noqa: F401
    from interp.store.reader import open_store  # noqa: F401


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
