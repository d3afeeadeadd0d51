"""Capture: record hook activations in memory or into an activation store.

In memory, :func:`capture` is a context manager that records chosen hooks
during forward passes and always removes its hooks; :func:`capture_activations`
also runs the (early-stopped) forward pass. To disk, :func:`capture_to_store`
runs a model over a dataset and writes every requested hook in one pass,
resumably; :func:`capture_parallel` splits the same work over N worker
processes writing disjoint shards of one store. ``interp capture`` is the CLI.

Names resolve on first use, so importing this package (as ``interp --help``
does, for the CLI) imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interp._lazy import callable_module, lazy_exports

_EXPORTS = {
    "capture": "interp.capture.memory",
    "capture_activations": "interp.capture.memory",
    "Activations": "interp.capture.memory",
    "HookNotReachedError": "interp.capture.memory",
    "resolve_hooks": "interp.capture.memory",
    "stop_layer": "interp.capture.memory",
    "capture_to_store": "interp.capture.to_store",
    "capture_parallel": "interp.capture.workers",
    "CaptureBatch": "interp.capture.batches",
    "BatchSource": "interp.capture.batches",
    "TokenSource": "interp.capture.batches",
    "TextSource": "interp.capture.batches",
    "ImageSource": "interp.capture.batches",
    "as_source": "interp.capture.batches",
}

__all__ = [
    "Activations",
    "BatchSource",
    "CaptureBatch",
    "HookNotReachedError",
    "ImageSource",
    "TextSource",
    "TokenSource",
    "as_source",
    "capture",
    "capture_activations",
    "capture_parallel",
    "capture_to_store",
    "resolve_hooks",
    "stop_layer",
]

if TYPE_CHECKING:  # pragma: no cover
    from interp.capture.batches import BatchSource, CaptureBatch, ImageSource, TextSource, TokenSource, as_source
    from interp.capture.memory import (
        Activations,
        HookNotReachedError,
        capture,
        capture_activations,
        resolve_hooks,
        stop_layer,
    )
    from interp.capture.to_store import capture_to_store
    from interp.capture.workers import capture_parallel


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)



def _capture() -> Any:
    from interp.capture.memory import capture

    return capture


callable_module(__name__, _capture)  # interp.capture(model, hooks) works after the package is imported
