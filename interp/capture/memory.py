"""In-memory capture: record chosen hook points of a forward pass.

>>> with capture(model, ["blocks.0.hook_resid_post"]) as acts:   # doctest: +SKIP
...     model(tokens)
>>> acts["blocks.0.hook_resid_post"].shape                      # doctest: +SKIP
torch.Size([batch, pos, d_model])

:func:`capture` adds its hooks through the model's own ``hooks()`` context
manager, so they are removed when the block ends, also when it raises. The
:class:`Activations` it returns is a plain name -> tensor mapping that holds
no reference to the model (unlike TransformerLens's ``ActivationCache``), so
keeping results never keeps a model alive.

:func:`capture_activations` does the forward pass too, stopping it after the
last block any requested hook needs (:func:`stop_layer`). The same hook
resolution (:func:`resolve_hooks`: exact names, ``*`` patterns, nearest-name
suggestions) serves the capture-to-store path and the interventions.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from interp.errors import InputError
from interp.models.contract import check_hook_names, layer_of_hook, prepare_inputs

__all__ = ["Activations", "capture", "capture_activations", "resolve_hooks", "stop_layer", "HookNotReachedError"]

#: Hook names outside the blocks that run before block 0; every other
#: non-block hook (``ln_final.*``, ``unembed.*``) needs the full forward pass.
_PRE_BLOCK_PREFIXES = ("hook_embed", "hook_pos_embed", "hook_full_embed", "hook_tokens", "embed.", "pos_embed.")


class HookNotReachedError(InputError):
    """A hook lies beyond the requested ``stop_at_layer``, or never ran in the forward pass."""


class Activations(Mapping[str, Tensor]):
    """Name -> tensor mapping filled by :func:`capture`; holds no reference to the model.

    A hook that fires more than once inside one ``with`` block (several forward
    passes) yields its activations concatenated along the batch dimension.
    """

    def __init__(self) -> None:
        self._parts: dict[str, list[Tensor]] = {}

    def _record(self, name: str, t: Tensor) -> None:
        self._parts.setdefault(name, []).append(t)

    def __getitem__(self, name: str) -> Tensor:
        parts = self._parts[name]
        if len(parts) > 1:  # several forward passes: keep one concatenated tensor
            self._parts[name] = parts = [torch.cat(parts)]
        return parts[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def clear(self) -> None:
        """Forget everything recorded so far (the hooks stay)."""
        self._parts.clear()

    def __repr__(self) -> str:
        return "Activations({" + ", ".join(f"{k!r}: {tuple(self[k].shape)}" for k in self) + "})"


def resolve_hooks(model: Any, hooks: str | Sequence[str]) -> list[str]:
    """Validate hook names against ``model.hook_dict``; expand ``*`` patterns.

    Args:
        model: a registry model.
        hooks: a name, a comma-separated string of names, or a list; a name with
            ``*`` / ``?`` (``blocks.*.hook_resid_post``) selects every match, in
            ``hook_dict`` order.

    Returns:
        The hook names, without duplicates, in the order given.

    Raises:
        UnknownNameError: a name that is not a hook point (nearest names listed).
        HookNotReachedError: a block hook beyond the blocks the model has loaded.
        InputError: no hooks, or a pattern that matches nothing.
    """
    names = [h.strip() for h in hooks.split(",")] if isinstance(hooks, str) else list(hooks)
    names = [h for h in names if h]
    if not names:
        raise InputError("no hook names given. Pass e.g. hooks=['blocks.0.hook_resid_post'].")
    out: list[str] = []
    for h in names:
        if any(c in h for c in "*?["):
            hits = [k for k in model.hook_dict if fnmatch.fnmatchcase(k, h)]
            if not hits:
                name = getattr(model.cfg, "model_name", "the model")
                raise InputError(
                    f"hook pattern {h!r} matches no hook point of {name}. List them with sorted(model.hook_dict)."
                )
            out += hits
        else:
            _check_loaded_layers(model, h)
            out += check_hook_names(model, [h])
    return list(dict.fromkeys(out))


def _check_loaded_layers(model: Any, hook: str) -> None:
    """Raise :class:`HookNotReachedError` for a block hook beyond the blocks the model has loaded."""
    layer, n = layer_of_hook(hook), int(getattr(model.cfg, "n_layers", 0))
    if layer is not None and layer >= n and hook.replace(f"blocks.{layer}.", "blocks.0.", 1) in model.hook_dict:
        name = getattr(model.cfg, "model_name", type(model).__name__)
        raise HookNotReachedError(
            f"hook {hook!r} lies in block {layer}, but {name} has only {n} blocks loaded (0..{n - 1}). "
            f"Load at least {layer + 1} layers (interp.load_model(..., n_layers={layer + 1}), "
            f"`--n-layers {layer + 1}` or `--n-layers all`), or choose a hook in blocks 0..{n - 1}."
        )


def stop_layer(model: Any, hooks: Sequence[str], stop_at_layer: int | None = None) -> int | None:
    """The ``stop_at_layer`` that runs just far enough to reach every hook in ``hooks``.

    Returns ``1 + max(block index)`` over the hooks, ``0`` when all lie before the
    first block, and ``None`` (full pass) when one lies after the blocks
    (``ln_final.*``, ``unembed``). With ``stop_at_layer`` given, checks that it
    reaches every hook and returns it.

    Raises:
        HookNotReachedError: a hook lies at or beyond ``stop_at_layer``.
    """
    need = 0
    for h in hooks:
        layer = layer_of_hook(h)
        if layer is not None:
            need = None if need is None else max(need, layer + 1)
        elif not h.startswith(_PRE_BLOCK_PREFIXES):
            need = None
    if stop_at_layer is None:
        return need
    n = int(model.cfg.n_layers)
    stop = stop_at_layer + n if stop_at_layer < 0 else stop_at_layer
    if need is None or need > stop:
        far = [h for h in hooks if (layer_of_hook(h) is None and not h.startswith(_PRE_BLOCK_PREFIXES))
               or (layer_of_hook(h) or 0) >= stop]  # fmt: skip
        raise HookNotReachedError(
            f"hook(s) {far} are not reached when the forward pass stops at layer {stop_at_layer} "
            f"(blocks 0..{stop - 1} run). Raise stop_at_layer to {need if need is not None else 'None (full pass)'} "
            "or drop those hooks."
        )
    return stop


@contextmanager
def capture(model: Any, hooks: str | Sequence[str], *, copy: bool = True) -> Iterator[Activations]:
    """Record ``hooks`` during every forward pass run inside the block.

    Args:
        model: a registry model.
        hooks: hook names (see :func:`resolve_hooks`).
        copy: store detached copies (safe against later in-place edits by other
            hooks); ``False`` keeps the tensors the model produced.

    Yields:
        An :class:`Activations` mapping, filled as the model runs.
    """
    names = resolve_hooks(model, hooks)
    acts = Activations()

    def record(t: Tensor, hook: Any) -> None:
        acts._record(hook.name, t.detach().clone() if copy else t.detach())

    with model.hooks(fwd_hooks=[(n, record) for n in names]):
        yield acts


def capture_activations(
    model: Any,
    inputs: Any,
    hooks: str | Sequence[str],
    *,
    stop_at_layer: int | None | str = "auto",
    **forward_kwargs: Any,
) -> dict[str, Tensor]:
    """Run ``model`` on ``inputs`` and return the activations at ``hooks``.

    Args:
        model: a registry model.
        inputs: anything :func:`~interp.models.contract.prepare_inputs` takes (text, token ids, images).
        hooks: hook names or patterns.
        stop_at_layer: ``"auto"`` stops after the last block the hooks need; an int stops
            there (checked to reach every hook); ``None`` runs the full model.
        **forward_kwargs: passed to the forward pass.

    Returns:
        ``{hook: tensor}`` with TransformerLens shapes (``[batch, pos, d_model]`` for the
        residual stream), detached, holding no reference to the model.

    Raises:
        HookNotReachedError: a hook beyond ``stop_at_layer``, or one that did not run
            (a hook point the model disables, e.g. ``attn.hook_result`` without
            ``model.set_use_attn_result(True)``).
    """
    names = resolve_hooks(model, hooks)
    stop = stop_layer(model, names) if stop_at_layer == "auto" else stop_layer(model, names, stop_at_layer)
    x = prepare_inputs(model, inputs)
    if stop is not None:
        forward_kwargs["stop_at_layer"] = stop
    with torch.no_grad(), capture(model, names, copy=False) as acts:
        model(x, **forward_kwargs)
    check_fired(model, names, acts, stop)
    return {n: acts[n] for n in names}


def check_fired(model: Any, hooks: Sequence[str], acts: Mapping[str, Tensor], stop: int | None) -> None:
    """Raise :class:`HookNotReachedError` for hooks in ``hooks`` that did not run."""
    missing = [h for h in hooks if h not in acts]
    if missing:
        name = getattr(model.cfg, "model_name", type(model).__name__)
        raise HookNotReachedError(
            f"hook(s) {missing} did not run in the forward pass of {name} (stop_at_layer={stop}). "
            "The model skips these hook points in its current configuration: e.g. attn.hook_result "
            "needs model.set_use_attn_result(True), hook_attn_in needs model.set_use_attn_in(True). "
            "Enable them or choose other hooks."
        )
