"""Evaluation on held-out data, without W&B: reconstruction metrics and, for LMs, the splice into the model.

With a model, held-out contexts of the dataset (its ``heldout`` split) run
through the model three ways per hook: clean, with the hook's activation
replaced by the SAE's reconstruction (spliced), and zero-ablated. That gives CE
loss recovered and KL(clean ‖ spliced); the clean activations at content
positions give L0, MSE, FVU / explained variance, dead and dense fractions and
the latent frequency histogram. With only a store, the reconstruction metrics
are computed on its rows. Results are JSON plus a plotly HTML page.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch

from interp.cache import atomic_write_text
from interp.errors import InputError, InterpError
from sae_training.metrics import ReconStats, SpliceStats

__all__ = ["evaluate_sae", "evaluate_run"]

log = logging.getLogger("sae_training")


def _as_saes(sae: Any, hook: str | None) -> dict[str, Any]:
    """``{hook: SAELens SAE}`` from a path, an SAE, or a dict of either."""
    from sae_training.saelens_io import load_sae

    if isinstance(sae, dict):
        return {h: load_sae(s) if isinstance(s, (str, Path)) else s for h, s in sae.items()}
    s = load_sae(sae) if isinstance(sae, (str, Path)) else sae
    name = hook or s.cfg.metadata.hook_name
    if not name:
        raise InputError("the SAE's config names no hook. Pass hook='blocks.L.hook_...'.")
    return {name: s}


def _check_width(hook: str, sae: Any, width: int) -> None:
    if int(sae.cfg.d_in) != width:
        raise InputError(f"the SAE for {hook} has d_in {sae.cfg.d_in}, but {hook} has {width} values per token. "
                         "Evaluate it on the hook (and model) it was trained on.")  # fmt: skip


@torch.no_grad()
def _apply(sae: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(recon, acts)`` of SAELens SAE ``sae`` on flat rows ``x [n, d_in]``."""
    acts = sae.encode(x.float())
    return sae.decode(acts), acts


class _flat_io:
    """Let an SAE take flat ``hook_z`` rows for the duration (we flatten heads ourselves)."""

    def __init__(self, saes: dict[str, Any]):
        self.saes = saes

    def __enter__(self) -> None:
        for s in self.saes.values():
            s.turn_off_forward_pass_hook_z_reshaping()

    def __exit__(self, *exc: Any) -> None:
        for s in self.saes.values():
            if s.cfg.reshape_activations == "hook_z":
                s.turn_on_forward_pass_hook_z_reshaping()


def _splice_hook(sae: Any) -> Any:
    def fn(act: torch.Tensor, hook: Any = None) -> torch.Tensor:
        recon, _ = _apply(sae, act.reshape(-1, int(sae.cfg.d_in)))  # [n * pos, d_in]
        return recon.reshape(act.shape).to(act.dtype)

    return fn


def _logits(model: Any, tokens: torch.Tensor, hooks: list[tuple[str, Any]]) -> torch.Tensor:
    with model.hooks(fwd_hooks=hooks):
        return model(tokens)


@torch.no_grad()
def _eval_model(saes: dict[str, Any], model: Any, dataset: Any, n_tokens: int, context_size: int,
                batch_size: int) -> tuple[dict[str, ReconStats], dict[str, SpliceStats]]:  # fmt: skip
    from interp.capture.batches import as_source, keep_mask

    source = as_source(dataset, model, context_size=context_size, split="heldout")
    recon = {h: ReconStats(int(s.cfg.d_in), int(s.cfg.d_sae)) for h, s in saes.items()}
    splice = {h: SpliceStats() for h in saes}
    for batch in source.batches(batch_size):
        tokens, keep = batch.load(), keep_mask(batch, "content")  # [n, pos] each
        seen: dict[str, torch.Tensor] = {}
        grab = [(h, lambda a, hook, h=h, seen=seen: seen.__setitem__(h, a.detach().clone())) for h in saes]
        clean = _logits(model, tokens, grab)
        for h, sae in saes.items():
            act = seen[h]  # [n, pos, *shape]
            _check_width(h, sae, math.prod(act.shape[2:]))
            x = act[keep.to(act.device)].reshape(-1, int(sae.cfg.d_in))  # [m, d_in]
            r, a = _apply(sae, x)
            recon[h].add(x, r, a)
            logits = {"clean": clean, "spliced": _logits(model, tokens, [(h, _splice_hook(sae))]),
                      "zero": _logits(model, tokens, [(h, lambda a, hook: torch.zeros_like(a))])}  # fmt: skip
            splice[h].add(logits, tokens, keep[:, 1:])
        if min(r.n for r in recon.values()) >= n_tokens:
            break
    return recon, splice


@torch.no_grad()
def _eval_store(saes: dict[str, Any], store: Any, n_tokens: int, batch_size: int = 1024) -> dict[str, ReconStats]:
    recon = {h: ReconStats(int(s.cfg.d_in), int(s.cfg.d_sae)) for h, s in saes.items()}
    for h, sae in saes.items():
        _check_width(h, sae, math.prod(store.shape(h)))
    for batch in store.batches(list(saes), batch_size, shuffle=False):
        for h, sae in saes.items():
            x = batch[h].reshape(batch[h].shape[0], -1).float()  # [n, d_in]
            r, a = _apply(sae, x)
            recon[h].add(x, r, a)
        if min(r.n for r in recon.values()) >= n_tokens:
            break
    return recon


def evaluate_sae(sae: Any, hook: str | None = None, *, model: Any = None, dataset: Any = "bible", store: Any = None,
                 n_tokens: int = 4096, context_size: int = 128, batch_size: int = 8,
                 out: str | Path | None = None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Evaluate SAE(s) on held-out data.

    Args:
        sae: a SAELens SAE folder (ours or SAELens's), a SAELens SAE, or ``{hook: either}``.
        hook: the hook of a single SAE (default: the one in its config).
        model: a model to splice into (CE loss recovered, KL); ``None`` for reconstruction metrics only.
        dataset: text corpus whose ``heldout`` split the model reads (or anything ``as_source`` takes).
        store: a store (or its path) to read activations from when there is no model.
        n_tokens: held-out tokens to evaluate (at least; whole batches).
        context_size: tokens per context with a model.
        batch_size: contexts per forward pass with a model.
        out: folder for ``eval.json`` and ``eval.html`` (not written when ``None``).

    Returns:
        ``{hook: metrics}`` (JSON-able); see :class:`~sae_training.metrics.ReconStats`
        and :class:`~sae_training.metrics.SpliceStats` for the keys.
    """
    from sae_training.saelens_io import quiet_saelens

    saes = _as_saes(sae, hook)
    with _flat_io(saes), quiet_saelens():
        if model is not None and not _is_lm(model):
            raise InputError(f"{getattr(model.cfg, 'model_name', 'the model')} is not a language model: the CE/KL "
                             "splice needs next-token logits. Evaluate on its activations with store=... instead.")
        if model is not None:
            recon, splice = _eval_model(saes, model, dataset, n_tokens, context_size, batch_size)
            results = {h: recon[h].result() | splice[h].result() for h in saes}
        elif store is not None:
            from interp.store import open_store

            recon = _eval_store(saes, open_store(store) if isinstance(store, (str, Path)) else store, n_tokens)
            results = {h: recon[h].result() for h in saes}
        else:
            raise InputError("evaluate_sae needs a model (to splice into) or a store of activations. "
                             "Pass model=... or store=...")  # fmt: skip
    if out is not None:
        from sae_training.plots import write_eval_html

        out = Path(out)
        atomic_write_text(out / "eval.json", json.dumps(results, indent=2) + "\n")
        write_eval_html(results, {h: recon[h].frequency for h in saes}, out / "eval.html")
    return results


def _load_eval_model(name: str | None) -> Any:
    if not name:
        return None
    import interp

    try:
        return interp.load_model(name)
    except InterpError as e:
        log.warning("cannot load %s for the splice evaluation (%s); reporting reconstruction metrics only", name, e)
        return None


def _is_lm(model: Any) -> bool:
    from interp.models.contract import model_info

    return model_info(model).kind == "decoder"


def evaluate_run(result: Any, store: Any, model: Any = None, data: Any = None) -> dict[str, dict[str, Any]]:
    """Evaluate the SAEs of a finished training run; writes ``eval.json`` / ``eval.html`` into the run folder.

    ``data`` is the held-out data for ``model`` (default: the store's dataset, its heldout split).
    """
    cfg = result.config
    segs = store.manifest.segments
    dataset = data if data is not None else segs[0].dataset.get("name") if segs else cfg.data.dataset
    kind = (store.manifest.model or {}).get("kind", "decoder")
    if model is None and kind == "decoder":
        model = _load_eval_model(cfg.run.eval_model or cfg.data.model or (store.manifest.model or {}).get("name"))
    if model is not None and not _is_lm(model):
        log.info("%s is not a language model: no CE/KL splice, reconstruction metrics only", kind)
        model = None
    kw = {"n_tokens": cfg.run.eval_tokens, "context_size": cfg.data.context_size, "batch_size": cfg.run.eval_batch_size}
    if model is not None:
        return evaluate_sae(result.saes, model=model, dataset=dataset, out=result.out, **kw)
    log.warning("no model for %s: evaluating on the training store (in-sample)", result.out)
    return evaluate_sae(result.saes, store=store, out=result.out, n_tokens=cfg.run.eval_tokens)
