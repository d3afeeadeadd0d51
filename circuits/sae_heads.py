"""Circuit heads from sparse-autoencoder codes (O'Neill & Bui 2024, "Sparse Autoencoders Enable
Scalable and Reliable Circuit Identification in Language Models").

One tiny TopK SAE per attention head is trained on the head's output ``z``
(``blocks.L.attn.hook_z``) over positive (clean) and negative (corrupt) examples
of a task. Each activation is then discretised into a code: the set of its
active latents (with ``k = 1``, one integer, the paper's discrete code). A head
doing task-specific work emits different codes on positive and negative
examples. The default score is paired: the share of rows whose code flips
between a clean prompt and its corrupt partner, measured at two sites and the
larger kept: where the answer is read out (the metric's positions: induction
heads, and the heads that move their output) and where the corrupted
information enters (the corrupted positions and the one after each: the
previous-token and value heads that induction reads from). Histogram scores
(total variation, or the paper's share of positive codes unique to positives)
are available too. On ``planted-4x8`` the paired two-site score ranks the true
heads with ROC-AUC ≈ 0.95, the paper's histogram score at the answer position
≈ 0.6 (it misses the heads whose output is read elsewhere).

Why an in-memory loop and not :func:`sae_training.train_sae`: the SAEs are tiny
(``d_head`` inputs, a few dozen latents) and there are ``n_layers × n_heads`` of
them on a few thousand rows, so all of them train together as one batched
``[head, d_head, d_sae]`` einsum in well under a second; the store-fed trainer
would pay file, config and per-SAE start-up costs many times over for nothing,
and the SAEs are throwaway (only their codes are used).

No ablations are run, so this takes seconds; being correlational, it finds heads
whose output *differs* between clean and corrupt inputs at the scored sites,
not heads whose output is *used*: a head that reads a changed token but feeds
nothing downstream is a false positive.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from interp.errors import InputError

__all__ = ["SAEHeadConfig", "HeadScores", "head_outputs", "train_head_saes", "head_codes", "sae_code_heads"]


@dataclass(frozen=True)
class SAEHeadConfig:
    """Settings of :func:`sae_code_heads`."""

    d_sae: int = 32
    """Latents per head SAE."""
    k: int = 1
    """Active latents per activation (TopK); 1 makes every code a single integer, as in the paper."""
    steps: int = 400
    """Adam steps (full batch: all rows of all heads at once)."""
    lr: float = 1e-2
    """Adam learning rate."""
    positions: Literal["sites", "metric", "all"] = "sites"
    """Rows scored: ``sites`` compares two sites separately and keeps each head's larger score: the metric's
    positions (where the answer is read out) and the corrupted positions with the one after each (where
    the corrupted information enters; a previous-token head reads it one position later); ``metric``:
    the metric's positions only; ``all``: every position."""
    score: Literal["flip", "tv", "unique"] = "flip"
    """``flip``: share of rows whose code differs between a clean prompt and its corrupt partner (paired);
    ``tv``: total variation between the clean and the corrupt code histograms; ``unique``: share of clean
    rows whose code never occurs on corrupt ones (the paper's overlap measure)."""
    seed: int = 0
    """Initialisation seed."""

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.d_sae or self.steps < 1 or self.lr <= 0:
            raise InputError(f"SAEHeadConfig needs 1 <= k ({self.k}) <= d_sae ({self.d_sae}), steps >= 1 and lr > 0.")
        if self.positions not in ("sites", "metric", "all") or self.score not in ("flip", "tv", "unique"):
            raise InputError(f"SAEHeadConfig positions must be 'sites', 'metric' or 'all' (got {self.positions!r}) "
                             f"and score 'flip', 'tv' or 'unique' (got {self.score!r}).")  # fmt: skip


@dataclass(frozen=True)
class HeadScores:
    """Per-head scores: how differently each head's SAE codes fire on positive and negative examples.

    Attributes:
        scores: ``[layer, head]`` in ``[0, 1]``; higher = more task-specific.
        fvu: ``[layer, head]`` fraction of variance the head's SAE leaves unexplained.
        config: the settings used.
        seconds: wall time.
    """

    scores: Float[Tensor, "layer head"]
    fvu: Float[Tensor, "layer head"]
    config: SAEHeadConfig
    seconds: float

    @property
    def names(self) -> list[str]:
        """Head names in :mod:`circuits.graph` convention, row-major (``a0.h0``, ``a0.h1``, …)."""
        n_layers, n_heads = self.scores.shape
        return [f"a{layer}.h{h}" for layer in range(n_layers) for h in range(n_heads)]

    def as_dict(self) -> dict[str, float]:
        """``{head name: score}``."""
        return dict(zip(self.names, self.scores.flatten().tolist(), strict=True))

    def ranking(self) -> list[str]:
        """Head names, most task-specific first."""
        d = self.as_dict()
        return sorted(d, key=lambda h: -d[h])

    def top(self, n: int) -> list[str]:
        """The ``n`` highest-scoring heads."""
        return self.ranking()[:n]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"scores": self.as_dict(), "fvu": dict(zip(self.names, self.fvu.flatten().tolist(), strict=True)),
                "config": asdict(self.config), "seconds": self.seconds}  # fmt: skip


@torch.no_grad()
def head_outputs(
    model: Any, tokens: Tensor, positions: Bool[Tensor, "batch pos"] | None = None
) -> Float[Tensor, "rows layer head d_head"]:
    """Every head's ``hook_z`` at the selected positions, one forward pass.

    Args:
        model: a ``HookedTransformer``.
        tokens: ``[batch, pos]`` input ids.
        positions: rows to keep (``None``: all positions).

    Returns:
        ``[rows, layer, head, d_head]`` float32 on the CPU.
    """
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens.to(model.cfg.device), names_filter=lambda n: n in names)
    z = torch.stack([cache[n] for n in names], 2).float().cpu()  # [batch, pos, layer, head, d_head]
    if positions is not None:
        return z[positions]  # [rows, layer, head, d_head]
    return z.flatten(0, 1)


def _topk_encode(x: Tensor, w_enc: Tensor, b_enc: Tensor, b_dec: Tensor, k: int) -> Tensor:
    """TopK codes of every head's rows: ``[heads, rows, d_sae]`` (k non-zeros per row)."""
    pre = torch.einsum("hrd,hds->hrs", x - b_dec[:, None], w_enc) + b_enc[:, None]  # [heads, rows, d_sae]
    vals, idx = pre.relu().topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, vals)


def train_head_saes(
    x: Float[Tensor, "heads rows d_head"], cfg: SAEHeadConfig
) -> tuple[dict[str, Tensor], Float[Tensor, " heads"]]:
    """Train one TopK SAE per head, all at once (full-batch Adam).

    Args:
        x: each head's rows.
        cfg: settings (``d_sae``, ``k``, ``steps``, ``lr``, ``seed``).

    Returns:
        ``(params, fvu)``: ``W_enc [heads, d_head, d_sae]``, ``b_enc``, ``W_dec [heads, d_sae, d_head]``,
        ``b_dec``; and each head's fraction of variance unexplained.
    """
    n_heads, _, d = x.shape
    g = torch.Generator().manual_seed(cfg.seed)
    scale = x.flatten(1).std(1).clamp_min(1e-6)[:, None, None]  # per-head scale so one lr fits all heads
    xs = x / scale
    w_dec = torch.nn.functional.normalize(torch.randn(n_heads, cfg.d_sae, d, generator=g), dim=-1)
    params = {
        "W_enc": w_dec.transpose(1, 2).clone().requires_grad_(True),
        "b_enc": torch.zeros(n_heads, cfg.d_sae, requires_grad=True),
        "W_dec": w_dec.requires_grad_(True),
        "b_dec": xs.mean(1).clone().requires_grad_(True),
    }
    opt = torch.optim.Adam(params.values(), lr=cfg.lr)
    with torch.enable_grad():
        for _ in range(cfg.steps):
            codes = _topk_encode(xs, params["W_enc"], params["b_enc"], params["b_dec"], cfg.k)
            recon = torch.einsum("hrs,hsd->hrd", codes, params["W_dec"]) + params["b_dec"][:, None]
            loss = (recon - xs).pow(2).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                params["W_dec"].data = torch.nn.functional.normalize(params["W_dec"].data, dim=-1)
    with torch.no_grad():
        codes = _topk_encode(xs, params["W_enc"], params["b_enc"], params["b_dec"], cfg.k)
        recon = torch.einsum("hrs,hsd->hrd", codes, params["W_dec"]) + params["b_dec"][:, None]
        fvu = (recon - xs).pow(2).sum((1, 2)) / (xs - xs.mean(1, keepdim=True)).pow(2).sum((1, 2)).clamp_min(1e-12)
    out = {n: p.detach() for n, p in params.items()}
    out["scale"] = scale[:, 0, 0]
    return out, fvu


@torch.no_grad()
def head_codes(x: Float[Tensor, "heads rows d_head"], params: dict[str, Tensor], k: int) -> Tensor:
    """Discrete codes: the sorted indices of each row's active latents, ``[heads, rows, k]`` (-1 if inactive)."""
    codes = _topk_encode(x / params["scale"][:, None, None], params["W_enc"], params["b_enc"], params["b_dec"], k)
    vals, idx = codes.topk(k, dim=-1)
    return torch.where(vals > 0, idx, -1).sort(-1).values


def _code_ids(codes: Tensor, d_sae: int) -> Tensor:
    """One integer per code (the active set), ``[heads, rows]``."""
    base = (d_sae + 1) ** torch.arange(codes.shape[-1])  # [k]; -1 (inactive) maps to digit 0
    return ((codes + 1) * base).sum(-1)


def _code_divergence(pos: Tensor, neg: Tensor, how: str) -> Float[Tensor, " heads"]:
    """Per head: paired flip rate, total variation between code histograms, or the share of positive codes
    unseen in negatives (``pos``/``neg``: ``[heads, rows]`` code ids, row ``i`` of both from one prompt pair)."""
    if how == "flip":
        return (pos != neg).float().mean(1)
    out = torch.empty(len(pos))
    for h in range(len(pos)):
        ids, inv = torch.unique(torch.cat([pos[h], neg[h]]), return_inverse=True)
        p = torch.bincount(inv[: pos.shape[1]], minlength=len(ids)).float() / pos.shape[1]
        q = torch.bincount(inv[pos.shape[1] :], minlength=len(ids)).float() / neg.shape[1]
        out[h] = 0.5 * (p - q).abs().sum() if how == "tv" else p[q == 0].sum()
    return out


def _sites(task: Any, how: str) -> list[Bool[Tensor, "batch pos"]]:
    """The position groups scored separately (see :attr:`SAEHeadConfig.positions`)."""
    batch, n_pos = task.clean.shape
    metric = task.metric.positions_mask(batch, n_pos).bool()
    if how == "metric":
        return [metric]
    if how == "all":
        return [torch.ones(batch, n_pos, dtype=torch.bool)]
    changed = task.clean != task.corrupt
    after = torch.zeros_like(changed)
    after[:, 1:] = changed[:, :-1]  # [batch, pos]: the position after a corrupted token
    return [metric, changed | after]


def sae_code_heads(model: Any, task: Any, cfg: SAEHeadConfig | None = None) -> HeadScores:
    """Rank attention heads by how differently their SAE codes fire on clean and corrupt inputs.

    Args:
        model: a ``HookedTransformer``.
        task: a :class:`~circuits.tasks.Task` (clean = positive, corrupt = negative examples, paired by row).
        cfg: settings (default :class:`SAEHeadConfig`).

    Returns:
        :class:`HeadScores` (``ranking()`` lists heads most task-specific first).

    Raises:
        InputError: a task whose sites select no positions.
    """
    cfg = cfg or SAEHeadConfig()
    t0 = time.perf_counter()
    sites = [m for m in _sites(task, cfg.positions) if m.any()]
    if not sites:
        raise InputError(f"task {task.name!r}: no positions to score (the metric selects none and clean equals "
                         "corrupt); use SAEHeadConfig(positions='all').")  # fmt: skip
    union = torch.stack(sites).any(0)  # [batch, pos]: every scored row trains the SAEs
    pos, neg = head_outputs(model, task.clean, union), head_outputs(model, task.corrupt, union)
    n_layers, n_heads = pos.shape[1:3]
    x = torch.cat([pos, neg]).flatten(1, 2).transpose(0, 1)  # [layer*head, rows, d_head]
    params, fvu = train_head_saes(x, cfg)
    ids = _code_ids(head_codes(x, params, cfg.k), cfg.d_sae)  # [layer*head, 2 * rows]
    clean_ids, corrupt_ids = ids[:, : len(pos)], ids[:, len(pos) :]
    scores = torch.stack([_code_divergence(clean_ids[:, m[union]], corrupt_ids[:, m[union]], cfg.score)
                          for m in sites]).amax(0)  # fmt: skip
    return HeadScores(scores.reshape(n_layers, n_heads), fvu.reshape(n_layers, n_heads), cfg,
                      round(time.perf_counter() - t0, 3))  # fmt: skip
