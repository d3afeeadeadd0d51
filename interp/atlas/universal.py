"""Universal (Rosetta) neurons: activation correlations between all MLP neurons of two models, in one pass.

:func:`model_correlation` runs two models on the same tokens, batch by batch,
and feeds each batch's ``blocks.L.mlp.hook_post`` activations (all chosen
layers side by side, the first position dropped: BOS activations are outliers
shared by every model) into a :class:`~interp.atlas.activations.RunningCorrelation`;
no activation outlives its batch. The result gives every neuron its best
match in the other model and the same maximum against random directions
in the other model's activation space.

Models with different tokenizers cannot see "the same inputs"; the project's
Bible LMs use a compact subset of SmolLM2's vocabulary
(:mod:`interp.atlas.bible_lms`), so they line up position by position with
each other and with SmolLM2 (:func:`comparison_tokens`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from interp.atlas.activations import RunningCorrelation, mlp_hooks
from interp.errors import InputError

__all__ = ["CorrelationResult", "model_correlation", "comparison_tokens", "UNIVERSAL"]

UNIVERSAL = 0.5  # max-correlation threshold of a universal neuron (Gurnee et al. 2024 on GPT-2 seeds)


@dataclass
class CorrelationResult:
    """Per-neuron best matches between two models, with the random-direction baseline.

    Attributes:
        table: one row per neuron of either model: ``side`` (``a`` / ``b``), ``layer``,
            ``neuron``, ``max_corr``, ``match_layer``, ``match_neuron``, ``baseline_max_corr``.
        threshold: max-correlation threshold of a universal neuron.
        n_tokens: tokens (rows) the correlations were computed on.
        models: names of models A and B.
        extra: anything else worth recording (batch size, seconds).
    """

    table: Any
    threshold: float
    n_tokens: int
    models: tuple[str, str]
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Fraction of universal neurons per side and layer, against the random-direction baseline."""
        out: dict[str, Any] = {"models": list(self.models), "n_tokens": self.n_tokens, "threshold": self.threshold}
        for (side, layer), g in self.table.groupby(["side", "layer"]):
            out[f"{side}.L{layer}"] = {"universal": float((g.max_corr > self.threshold).mean()),
                                        "baseline": float((g.baseline_max_corr > self.threshold).mean()),
                                        "median_max_corr": float(g.max_corr.median()),
                                        "median_baseline": float(g.baseline_max_corr.median())}  # fmt: skip
        return out | self.extra


def _smol_tokenizer(*models: Any) -> Any:
    for m in models:
        if getattr(m, "tokenizer", None) is not None:
            return m.tokenizer
    from transformers import AutoTokenizer

    from interp.models.smollm2 import smollm2_hf_dir

    return AutoTokenizer.from_pretrained(smollm2_hf_dir(), local_files_only=True)


def comparison_tokens(model_a: Any, model_b: Any, data: str, n_tokens: int,
                      context: int = 64) -> tuple[Int[Tensor, "n ctx"], Int[Tensor, "n ctx"]]:  # fmt: skip
    """The same text as token ids for each model: ``data``'s held-out split, packed into contexts.

    Models with ``compact_to_smol`` (the Bible LMs) get SmolLM2 ids mapped to their
    compact vocabulary; other models must share one tokenizer.

    Raises:
        InputError: the models' tokenizers differ, or one has none.
    """
    from interp.atlas.bible_lms import to_compact
    from interp.datasets.text import load_texts, pack_contexts

    compact = [hasattr(m, "compact_to_smol") for m in (model_a, model_b)]
    if any(compact):
        tok = _smol_tokenizer(*(m for m, c in zip((model_a, model_b), compact, strict=True) if not c))
    else:
        toks = [getattr(m, "tokenizer", None) for m in (model_a, model_b)]
        if any(t is None for t in toks) or toks[0].get_vocab() != toks[1].get_vocab():
            raise InputError("the two models do not share a tokenizer, so they cannot read the same tokens. "
                             "Compare models of one family, or pass a token tensor as data.")  # fmt: skip
        tok = toks[0]
    max_tokens = math.ceil(n_tokens / (context - 1)) * context
    ids = pack_contexts(load_texts(data, "heldout"), tok, context, max_tokens=max_tokens).tokens
    if len(ids) == 0:
        raise InputError(f"corpus {data!r} has too little held-out text for one context of {context} tokens.")
    out = [to_compact(ids, m.compact_to_smol, bos_id=tok.bos_token_id) if c else ids
           for m, c in zip((model_a, model_b), compact, strict=True)]  # fmt: skip
    return out[0], out[1]


def _name(model: Any) -> str:
    return str(getattr(model.cfg, "model_name", type(model).__name__))


def model_correlation(model_a: Any, model_b: Any, data: str | Tensor, *, layers: list[int] | None = None,
                      layers_b: list[int] | None = None, n_tokens: int = 32768, batch_size: int = 32,
                      threshold: float = UNIVERSAL, seed: int = 0, matmul_dtype: str = "bfloat16",
                      baseline_every: int = 8, progress: bool = False) -> CorrelationResult:  # fmt: skip
    """Correlate every MLP neuron of ``model_a`` with every MLP neuron of ``model_b`` on the same tokens.

    Args:
        model_a / model_b: hooked models with ``blocks.L.mlp.hook_post``.
        data: a corpus name (see :func:`comparison_tokens`), or token ids ``[n, ctx]`` both models read.
        layers / layers_b: layers of each model (default all).
        n_tokens: tokens to read from a corpus.
        batch_size: contexts per forward pass.
        threshold: max correlation of a universal neuron.
        seed: seed of the random directions.
        matmul_dtype / baseline_every: see :class:`~interp.atlas.activations.RunningCorrelation`
            (defaults: bfloat16 GEMMs, baseline variances from every 8th batch, the first included).
        progress: show a progress bar.

    Returns:
        A :class:`CorrelationResult`.
    """
    import time

    import pandas as pd
    from tqdm.auto import tqdm

    if isinstance(data, Tensor):
        ta = tb = data
    else:
        ctx = min(64, int(model_a.cfg.n_ctx), int(model_b.cfg.n_ctx))
        ta, tb = comparison_tokens(model_a, model_b, data, n_tokens, ctx)
    if ta.shape[1] < 2:
        raise InputError(f"contexts need at least 2 positions (the first is dropped); got {ta.shape[1]}.")
    hooks = (mlp_hooks(int(model_a.cfg.n_layers), layers), mlp_hooks(int(model_b.cfg.n_layers), layers_b))
    d = (int(model_a.cfg.d_mlp), int(model_b.cfg.d_mlp))
    rc = RunningCorrelation(d[0] * len(hooks[0]), d[1] * len(hooks[1]), baseline_every=baseline_every,
                            matmul_dtype=matmul_dtype, seed=seed)  # fmt: skip
    t0 = time.perf_counter()
    for x, y in tqdm(_paired_batches((model_a, model_b), (ta, tb), hooks, batch_size), desc="atlas: correlation",
                     total=math.ceil(len(ta) / batch_size), disable=not progress):  # fmt: skip
        rc.update(x, y)
    seconds = time.perf_counter() - t0
    corr, base = rc.correlation(), rc.random_correlation("b")
    ids = [[int(h.split(".")[1]) for h in hs] for hs in hooks]
    table = pd.concat([_side(corr, base, ids[0], ids[1], d, "a"),
                       _side(corr.T, rc.random_correlation("a").T, ids[1], ids[0], d[::-1], "b")],
                      ignore_index=True)  # fmt: skip
    return CorrelationResult(table, threshold, rc.n, (_name(model_a), _name(model_b)),
                             {"seconds": round(seconds, 2), "batch_size": batch_size,
                                                                   "matmul_dtype": matmul_dtype,
                                                                   "baseline_every": baseline_every})  # fmt: skip


def _paired_batches(models: tuple[Any, Any], tokens: tuple[Tensor, Tensor], hooks: tuple[list[str], list[str]],
                    batch_size: int):  # fmt: skip
    """Yield ``(x, y)``: each batch's activations of both models, layers side by side, first position dropped."""
    acts: dict[str, Tensor] = {}

    def keep(t: Tensor, hook: Any) -> None:
        acts[hook.name] = t

    stops = [1 + max(int(h.split(".")[1]) for h in hs) for hs in hooks]
    with torch.inference_mode():
        for i in range(0, len(tokens[0]), batch_size):
            pair = []
            for m, tok, hs, stop in zip(models, tokens, hooks, stops, strict=True):
                acts.clear()
                with m.hooks(fwd_hooks=[(h, keep) for h in hs]):
                    m(tok[i : i + batch_size], stop_at_layer=stop)
                parts = [acts[h][:, 1:] for h in hs]  # [batch, pos - 1, d_mlp] views, no copy
                pair.append(parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1))
            yield pair[0], pair[1]  # [batch, pos - 1, layers_a * d_mlp_a], [batch, pos - 1, layers_b * d_mlp_b]


def _side(corr: Tensor, base: Tensor, layers: list[int], other: list[int], d: tuple[int, int], side: str) -> Any:
    """One model's rows: best match in the other model and the maximum over random directions."""
    import pandas as pd

    best = corr.max(1)
    idx = best.indices
    rows = torch.arange(corr.shape[0])
    return pd.DataFrame({"side": side, "layer": torch.tensor(layers)[rows // d[0]].numpy(),
                         "neuron": (rows % d[0]).numpy(), "max_corr": best.values.numpy(),
                         "match_layer": torch.tensor(other)[idx // d[1]].numpy(), "match_neuron": (idx % d[1]).numpy(),
                         "baseline_max_corr": base.max(1).values.numpy()})  # fmt: skip
