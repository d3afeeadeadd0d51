"""Weight-based scores for every MLP neuron: no data, one pass over the weights.

For neuron ``i`` of layer ``L`` with input weight ``w_in = W_in[:, i]``, gate
weight ``w_gate = W_gate[:, i]`` (gated MLPs: SwiGLU in SmolLM2) and output
weight ``w_out = W_out[i]``, :func:`weight_scores` computes, for all neurons of
all layers:

* **input-output cosines** ``cos_in_out``, ``cos_gate_out``, ``cos_gate_in`` and an
  ``io_class`` ("Understanding Gated Neurons in Transformers from Their
  Input-Output Functionality", Gerstner & Schütze 2025): *enrichment* neurons add
  the direction they read, *depletion* neurons remove it. Our classes, with
  threshold ``t`` (:attr:`WeightConfig.io_threshold`): when ``|cos_gate_in| >= t`` the
  neuron reads one direction (the gate's, signed by ``cos_gate_in``), so its class
  follows ``sign(cos_gate_in) * cos_gate_out``; otherwise gate and input read
  different directions and the class follows ``cos_in_out`` (*conditional*
  enrichment / depletion: the gate decides whether the input direction is
  amplified or removed). Small cosines give *orthogonal output*. Non-gated MLPs use
  ``cos_in_out`` alone. Weights are the loaded model's, after TransformerLens's
  processing (RMSNorm / LayerNorm weights folded into ``W_in`` / ``W_gate`` / ``W_U``).
* **vocabulary-space moments** of ``w_out @ W_U`` over the vocabulary: mean, std,
  skew, kurtosis ("Universal Neurons in GPT-2", Gurnee et al. 2024: prediction
  neurons have high kurtosis and positive skew, suppression neurons high kurtosis
  and negative skew), with the top and bottom tokens;
* **output norm and null-space fraction**: ``||w_out||`` and the fraction of
  ``||w_out||²`` in the span of the ``null_k`` left singular vectors of ``W_U`` with
  the smallest singular values (entropy-neuron candidates, "Confidence Regulation
  Neurons in Language Models", Stolfo et al. 2024); ``null_norm`` is the norm of
  that component, the ranking used for the causal check;
* **token-frequency alignment** ``freq_cos``: the cosine, over the vocabulary,
  between the neuron's centred logit effect and the centred log-unigram frequency
  (:mod:`interp.atlas.frequency`).

``W_U`` comes from the shared :func:`~interp.labeling.vocab.vocab_projection`.
The ``[chunk, d_vocab]`` products are the only large intermediates; mean, std
and ``freq_cos`` are exact (from ``W_U W_Uᵀ`` and ``W_U f`` in float64), skew,
kurtosis and top tokens come from the product in ``matmul_dtype`` (bfloat16
by default: about 4x faster on CPUs with bf16 units; kurtosis agrees with
float32 to ~1e-2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from interp.errors import InputError
from interp.labeling.vocab import vocab_projection

__all__ = ["WeightConfig", "weight_scores", "layer_weight_scores", "null_space", "io_class", "IO_CLASSES"]

IO_CLASSES = ("enrichment", "depletion", "conditional enrichment", "conditional depletion", "orthogonal output")


@dataclass(frozen=True)
class WeightConfig:
    """How :func:`weight_scores` scores neurons.

    Attributes:
        k_tokens: top and bottom tokens kept per neuron.
        null_k: dimensions of ``W_U``'s effective null space (its ``null_k`` smallest
            singular directions). SmolLM2's (norm-folded) ``W_U`` has no sharp null space:
            singular values run from 346 down to ~15, with one outlier at 7.7; 10
            directions (1.7% of d_model, so a random vector has null_frac ≈ 0.017) is a
            convention of the order Stolfo et al. use for GPT-2.
        io_threshold: cosine above which weights count as aligned for ``io_class``.
        matmul_dtype: dtype of the ``w_out @ W_U`` products (``bfloat16`` or ``float32``).
        chunk: neurons per product (bounds memory at ``chunk * d_vocab`` floats).
        frequency_corpus: corpus whose unigram counts give ``freq_cos``; ``None`` skips it.
    """

    k_tokens: int = 10
    null_k: int = 10
    io_threshold: float = 0.3
    matmul_dtype: str = "bfloat16"
    chunk: int = 512
    frequency_corpus: str | None = "bible"

    def __post_init__(self) -> None:
        if self.k_tokens < 1 or self.null_k < 1 or self.chunk < 1:
            raise InputError(f"k_tokens, null_k and chunk must be positive, got {self.k_tokens}, {self.null_k}, "
                             f"{self.chunk}.")  # fmt: skip
        if not 0 < self.io_threshold < 1:
            raise InputError(f"io_threshold must lie in (0, 1), got {self.io_threshold}.")
        if self.matmul_dtype not in ("bfloat16", "float32"):
            raise InputError(f"matmul_dtype must be 'bfloat16' or 'float32', got {self.matmul_dtype!r}.")


def null_space(w_u: Float[Tensor, "d_model d_vocab"], k: int) -> tuple[Float[Tensor, "k d_model"], Tensor]:
    """The ``k`` left singular directions of ``W_U`` with the smallest singular values, and all singular values.

    Returns:
        ``(basis, singular_values)``: orthonormal rows ``[k, d_model]``, smallest first;
        singular values ``[d_model]`` in descending order.
    """
    if not 0 < k < w_u.shape[0]:
        raise InputError(f"null_k must lie in 1..{w_u.shape[0] - 1} (d_model is {w_u.shape[0]}), got {k}.")
    return _null_from_gram((w_u.float() @ w_u.float().T).double(), k)  # gram: [d_model, d_model]


def _null_from_gram(gram: Float[Tensor, "d d"], k: int) -> tuple[Float[Tensor, "k d"], Tensor]:
    evals, evecs = torch.linalg.eigh(gram)  # ascending: eigenvalues of W_U W_Uᵀ are squared singular values
    return evecs[:, :k].T.float(), evals.clamp_min(0).sqrt().flip(0).float()


def io_class(cos_gate_in: Tensor | None, cos_gate_out: Tensor | None, cos_in_out: Tensor, t: float) -> list[str]:
    """The input-output class of each neuron (rules in the module docstring)."""

    def by_sign(c: Tensor, prefix: str) -> list[str]:
        return [f"{prefix}enrichment" if v >= t else f"{prefix}depletion" if v <= -t else "orthogonal output"
                for v in c.tolist()]  # fmt: skip

    if cos_gate_in is None or cos_gate_out is None:
        return by_sign(cos_in_out, "")
    single = by_sign(torch.sign(cos_gate_in) * cos_gate_out, "")
    cond = by_sign(cos_in_out, "conditional ")
    return [s if abs(g) >= t else c for s, c, g in zip(single, cond, cos_gate_in.tolist(), strict=True)]


def _cos(a: Float[Tensor, "n d"], b: Float[Tensor, "n d"]) -> Float[Tensor, " n"]:
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-30)


class _Vocab:
    """Per-model quantities shared by every layer: ``W_U`` in both dtypes, its Gram matrix, null space, f."""

    def __init__(self, model: Any, config: WeightConfig):
        w_u = vocab_projection(model).W_U  # [d_model, d_vocab] float32
        self.d_vocab = w_u.shape[1]
        self.w_u = w_u.to(getattr(torch, config.matmul_dtype))
        # float32 products (a float64 GEMM over the vocabulary costs seconds), then float64 arithmetic
        self.gram = (w_u @ w_u.T).double()  # [d_model, d_model]: sums of squares over the vocabulary
        self.u_mean = w_u.mean(1).double()  # [d_model]
        if not 0 < config.null_k < w_u.shape[0]:
            null_space(w_u, config.null_k)  # raises with the message
        self.null, self.singular_values = _null_from_gram(self.gram, config.null_k)
        self.f_dir = None
        if config.frequency_corpus and getattr(model, "tokenizer", None) is not None:
            from interp.atlas.frequency import log_frequency, unigram_counts

            f = log_frequency(unigram_counts(model, config.frequency_corpus, d_vocab=self.d_vocab)).double()
            f_c = f - f.mean()  # [d_vocab]
            self.f_dir = (w_u @ f_c.float()).double() / f_c.norm()  # [d_model]: w . f_dir = <x, f_c> / |f_c|


def _vocab_stats(w: Float[Tensor, "n d_model"], v: _Vocab, k: int) -> dict[str, Tensor]:
    """Moments, frequency cosine and top/bottom tokens of ``w @ W_U`` for one chunk of neurons."""
    wd = w.double()
    mean = wd @ v.u_mean  # [n]
    var = (((wd @ v.gram) * wd).sum(1) / v.d_vocab - mean**2).clamp_min(1e-30)  # [n]
    x = (w.to(v.w_u.dtype) @ v.w_u).float()  # [n, d_vocab]
    top, bot = x.topk(k, dim=1), x.topk(k, dim=1, largest=False)
    x.sub_(mean.float()[:, None])  # centred in place: no second [n, d_vocab] buffer
    x2 = x * x
    m3 = torch.bmm(x2.unsqueeze(1), x.unsqueeze(2)).flatten().double() / v.d_vocab  # [n]: sum x^3 as a dot
    m4 = torch.linalg.vector_norm(x2, dim=1).double() ** 2 / v.d_vocab  # [n]: sum x^4
    out = {"vocab_mean": mean, "vocab_std": var.sqrt(), "vocab_skew": m3 / var**1.5, "vocab_kurtosis": m4 / var**2,
           "top_ids": top.indices, "top_logit": top.values[:, 0], "bottom_ids": bot.indices,
           "bottom_logit": bot.values[:, 0]}  # fmt: skip
    if v.f_dir is not None:
        out["freq_cos"] = (wd @ v.f_dir) / (var * v.d_vocab).sqrt()
    return out


def _mlp_weights(model: Any, layer: int) -> tuple[Tensor, Tensor | None, Tensor]:
    mlp = model.blocks[layer].mlp
    w_gate = getattr(mlp, "W_gate", None)
    return (mlp.W_in.detach().float().cpu(), None if w_gate is None else w_gate.detach().float().cpu(),
            mlp.W_out.detach().float().cpu())  # fmt: skip


def layer_weight_scores(model: Any, layer: int, config: WeightConfig = WeightConfig(), *,
                        _vocab: _Vocab | None = None) -> dict[str, Any]:  # fmt: skip
    """Weight scores of every MLP neuron of ``layer`` as columns (see the module docstring).

    Returns:
        ``{column: tensor or list}``, one entry per neuron; token columns hold ids
        (``top_ids`` / ``bottom_ids`` ``[d_mlp, k_tokens]``).
    """
    v = _vocab or _Vocab(model, config)
    w_in, w_gate, w_out = _mlp_weights(model, layer)  # [d_model, d_mlp] x2, [d_mlp, d_model]
    cols: dict[str, Any] = {"layer": torch.full((w_out.shape[0],), layer), "neuron": torch.arange(w_out.shape[0])}
    cols["cos_in_out"] = _cos(w_in.T, w_out)
    cols["cos_gate_out"] = None if w_gate is None else _cos(w_gate.T, w_out)
    cols["cos_gate_in"] = None if w_gate is None else _cos(w_gate.T, w_in.T)
    cols["io_class"] = io_class(cols["cos_gate_in"], cols["cos_gate_out"], cols["cos_in_out"], config.io_threshold)
    norm = w_out.norm(dim=1)
    cols["w_out_norm"] = norm
    null_sq = ((w_out @ v.null.T) ** 2).sum(1)  # [d_mlp]
    cols["null_frac"] = null_sq / norm.pow(2).clamp_min(1e-30)
    cols["null_norm"] = null_sq.sqrt()
    parts = [_vocab_stats(c, v, config.k_tokens) for c in w_out.split(config.chunk)]
    for key in parts[0]:
        cols[key] = torch.cat([p[key] for p in parts])
    return {k: c for k, c in cols.items() if c is not None}


def weight_scores(model: Any, layers: int | list[int] | None = None, config: WeightConfig = WeightConfig(), *,
                  progress: bool = False) -> Any:  # fmt: skip
    """Weight-based scores of every MLP neuron of ``layers`` (default all) as one pandas DataFrame.

    Args:
        model: a ``HookedTransformer`` (needs ``W_U``; a tokenizer for ``freq_cos`` and token strings).
        layers: a layer, a list, or ``None`` for all loaded layers.
        config: see :class:`WeightConfig`.
        progress: show a progress bar over layers.

    Returns:
        One row per neuron: ``layer``, ``neuron``, the columns of the module docstring,
        ``top_tokens`` / ``bottom_tokens`` (lists of strings, or ids without a tokenizer).

    Raises:
        InputError: a layer out of range, or a model without MLP weights or ``W_U``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    n = int(model.cfg.n_layers)
    ids = list(range(n)) if layers is None else [layers] if isinstance(layers, int) else list(layers)
    bad = [x for x in ids if not 0 <= x < n]
    if bad:
        raise InputError(f"layers {bad} are out of range: the model has {n} layers loaded (0..{n - 1}).")
    if getattr(model.cfg, "attn_only", False) or not hasattr(model.blocks[0], "mlp"):
        raise InputError(f"{model.cfg.model_name} has no MLP layers, so it has no neurons to score.")
    v = _Vocab(model, config)
    names = _token_names(model, v.d_vocab)
    frames = []
    for layer in tqdm(ids, desc="atlas: weight scores", unit="layer", disable=not progress):
        cols = layer_weight_scores(model, layer, config, _vocab=v)
        top, bot = cols.pop("top_ids"), cols.pop("bottom_ids")
        df = pd.DataFrame({k: (c.numpy() if isinstance(c, Tensor) else c) for k, c in cols.items()})
        df["top_tokens"] = [[names[i] for i in row] for row in top.tolist()]
        df["bottom_tokens"] = [[names[i] for i in row] for row in bot.tolist()]
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out.attrs["null_k"] = config.null_k
    out.attrs["singular_values_tail"] = v.singular_values[-(config.null_k + 5) :].tolist()
    return out


def _token_names(model: Any, d_vocab: int) -> list[Any]:
    """Each token id's text (decoded once per call), or the id itself without a tokenizer."""
    shipped = getattr(model, "atlas_token_names", None)  # the Bible LMs' compact vocabulary
    if shipped is not None and len(shipped) == d_vocab:
        return list(shipped)
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        return list(range(d_vocab))
    n = min(d_vocab, len(tok))
    names = tok.batch_decode([[i] for i in range(n)])
    return names + [f"<{i}>" for i in range(n, d_vocab)]
