"""Applying edits to a model: a context manager and functions that return outputs.

>>> with intervene(model, Ablate("blocks.3.attn.hook_z", heads=[5])):   # doctest: +SKIP
...     logits = model(tokens)
>>> logits = run_with_interventions(model, tokens, Add("blocks.6.hook_resid_post", v, scale=4))  # doctest: +SKIP

Edits are added through the model's own ``hooks()`` context manager, so they
are removed when the block ends, also on exceptions, and nest: an inner
``intervene`` adds to an outer one. Several edits of one hook apply in the
order given. Circuits, steering, labeling's editing and the atlas all go
through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import Tensor

from interp.capture.memory import capture, capture_activations, resolve_hooks
from interp.errors import InputError
from interp.interventions.edits import Intervention, Patch, Positions
from interp.models.contract import prepare_inputs

__all__ = ["intervene", "run_with_interventions", "patch_from"]


def _flatten(items: Iterable[Any]) -> list[Intervention]:
    out: list[Intervention] = []
    for it in items:
        if isinstance(it, Intervention):
            out.append(it)
        elif isinstance(it, Iterable) and not isinstance(it, (str, Tensor)):
            out += _flatten(it)
        else:
            raise InputError(
                f"expected Intervention objects (Patch, Ablate, Add, Clamp, ProjectOut), got {type(it).__name__}."
            )
    return out


@contextmanager
def intervene(model: Any, *interventions: Intervention | Sequence[Intervention]) -> Iterator[Any]:
    """Apply ``interventions`` to every forward pass inside the block; always remove them.

    Args:
        model: a registry model.
        *interventions: edits, or lists of edits (applied in order).

    Yields:
        The model.

    Raises:
        UnknownNameError: an edit names an unknown hook (nearest names listed).
    """
    edits = _flatten(interventions)
    if edits:
        resolve_hooks(model, [e.hook for e in edits])
    with model.hooks(fwd_hooks=[(e.hook, e) for e in edits]):
        yield model


def run_with_interventions(
    model: Any,
    inputs: Any,
    *interventions: Intervention | Sequence[Intervention],
    capture_hooks: str | Sequence[str] | None = None,
    grad: bool = False,
    **forward_kwargs: Any,
) -> Any:
    """Run ``model`` on ``inputs`` with the edits applied; return the edited outputs.

    Args:
        model: a registry model.
        inputs: anything :func:`~interp.models.contract.prepare_inputs` takes.
        *interventions: edits, or lists of edits.
        capture_hooks: also record these hooks (after the edits) and return them.
        grad: keep the autograd graph (for attribution); default no gradients.
        **forward_kwargs: passed to the forward pass (``stop_at_layer``, ``return_type``, …).

    Returns:
        The model output, or ``(output, {hook: activation})`` with ``capture_hooks``.
    """
    x = prepare_inputs(model, inputs)
    recorder = capture(model, capture_hooks) if capture_hooks else nullcontext({})
    with torch.set_grad_enabled(grad), intervene(model, *interventions), recorder as acts:
        out = model(x, **forward_kwargs)
    return out if capture_hooks is None else (out, dict(acts))


def patch_from(
    model: Any,
    source_inputs: Any,
    hooks: str | Sequence[str],
    *,
    positions: Positions = None,
    heads: Sequence[int] | None = None,
) -> list[Patch]:
    """Patches that put ``hooks``' activations from a run on ``source_inputs`` into another run.

    >>> edits = patch_from(model, clean_tokens, "blocks.4.hook_resid_pre", positions=[-1])  # doctest: +SKIP
    >>> patched_logits = run_with_interventions(model, corrupt_tokens, edits)              # doctest: +SKIP
    """
    acts = capture_activations(model, source_inputs, hooks)
    return [Patch(h, a, positions=positions, heads=heads) for h, a in acts.items()]
