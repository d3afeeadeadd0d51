"""Ground-truth models for scoring circuit discovery: shipped toy transformers whose circuit is measured.

Two attention-only :class:`~transformer_lens.HookedTransformer` models ship in
``circuits/data/models/`` with their weights, training record and an exact
edge-by-edge patching truth (``scripts/train_circuit_models.py`` writes all three):

- ``induction-2l``: 2 layers × 4 heads trained on random tokens with one repeated
  segment of random length and offset (a fixed one invites a positional
  shortcut). Measured: all four layer-1 heads are induction heads (attention
  0.67–0.80 on the token after the earlier copy), layer-0 heads 2 and 3 lean on
  the previous token and feed the induction heads' keys, heads 0 and 1 their
  values; loss on the repeated half 1.06 nats against 4.27 elsewhere.
- ``planted-4x8``: 4 layers × 8 heads (1,281 edges). The eight heads of
  ``induction-2l`` are planted (copied and frozen) into layers 1 and 2 among 24
  fresh heads, which are then trained on a mixture of three tasks told apart by
  a marker token at position 0: repeated segments (induction), a skip dependency
  (``x[t] = perm(x[t-3])``) and a map of the first token (``x[t] = sigma(x[1])``).
  The distractor heads learn the other two tasks while the whole model keeps
  doing induction, so they are active but (mostly) irrelevant to the induction
  metric. Which heads the metric really uses is measured, not assumed.

The task each truth is measured on (:func:`induction_task`) is seeded and token
level: clean prompts end inside a repeated segment, corrupt prompts have the
first occurrence replaced by fresh tokens, and the metric is the logit of the
token the repeat predicts minus the mean logit of the other tokens at the last
position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from jaxtyping import Int
from torch import Tensor
from transformer_lens import HookedTransformer, HookedTransformerConfig

from circuits.tasks import AnswerMetric, Task
from interp.errors import CorruptCacheError, InputError, UnknownNameError

__all__ = [
    "MODEL_NAMES",
    "MODEL_SPECS",
    "CircuitModelSpec",
    "load_circuit_model",
    "circuit_truth",
    "circuit_model_config",
    "induction_task",
    "repeat_batch",
    "mixture_batch",
]

DATA_DIR = Path(__file__).resolve().parent / "data" / "models"
N_MARKERS = 3  # planted-4x8: token ids 0..2 mark the task of a sequence (repeat, skip, first)


@dataclass(frozen=True)
class CircuitModelSpec:
    """Architecture and training data of one shipped ground-truth model."""

    n_layers: int
    """Attention layers (the models have no MLPs)."""
    n_heads: int
    """Heads per layer."""
    d_model: int
    """Residual width."""
    d_head: int
    """Width of each head."""
    d_vocab: int
    """Vocabulary size (token ids are abstract symbols)."""
    n_ctx: int
    """Training context length."""
    mixture: bool
    """Train on the three-task mixture (True) or on repeated segments only (False)."""
    graft: tuple[tuple[int, int, int, int], ...] = ()
    """Heads copied from ``induction-2l`` and frozen, ``(from layer, from head, to layer, to head)``; the
    embeddings, unembedding and the receiving layers' LayerNorms and ``b_O`` are copied and frozen too."""


# induction-2l's layer-0 heads go to layer 1 (heads 1, 4, 6, 7), its layer-1 heads to layer 2 (0, 3, 5, 6)
_PLANTED = ((0, 0, 1, 1), (0, 1, 1, 4), (0, 2, 1, 6), (0, 3, 1, 7),
            (1, 0, 2, 0), (1, 1, 2, 3), (1, 2, 2, 5), (1, 3, 2, 6))  # fmt: skip
MODEL_SPECS: dict[str, CircuitModelSpec] = {
    "induction-2l": CircuitModelSpec(n_layers=2, n_heads=4, d_model=64, d_head=16, d_vocab=64, n_ctx=40, mixture=False),
    "planted-4x8": CircuitModelSpec(
        n_layers=4, n_heads=8, d_model=64, d_head=16, d_vocab=64, n_ctx=40, mixture=True, graft=_PLANTED
    ),
}
MODEL_NAMES = tuple(MODEL_SPECS)


def _spec(name: str) -> CircuitModelSpec:
    if name not in MODEL_SPECS:
        raise UnknownNameError("circuit model", name, MODEL_NAMES, "Use one of circuits.models.MODEL_NAMES.")
    return MODEL_SPECS[name]


def circuit_model_config(name: str, seed: int = 0, split: bool = True) -> HookedTransformerConfig:
    """The TransformerLens config of a shipped model.

    Args:
        name: a name in :data:`MODEL_NAMES`.
        seed: initialisation seed.
        split: hook per-head q/k/v inputs and per-head results (``use_split_qkv_input``,
            ``use_attn_result``), which edge patching needs; same weights either way, but ~10× slower,
            so training turns it off.

    Returns:
        The config; ``HookedTransformer(cfg)`` builds the untrained model.

    Raises:
        UnknownNameError: for an unknown name.
    """
    s = _spec(name)
    return HookedTransformerConfig(
        n_layers=s.n_layers, n_heads=s.n_heads, d_model=s.d_model, d_head=s.d_head,
        d_vocab=s.d_vocab, n_ctx=s.n_ctx, attn_only=True, normalization_type="LN",
        positional_embedding_type="standard", seed=seed, device="cpu",
        use_split_qkv_input=split, use_attn_result=split, default_prepend_bos=False,
    )  # fmt: skip


def _segment_positions(length: int, n_ctx: int, g: torch.Generator) -> tuple[int, int, int]:
    """Random (segment length, first start, second start) with the two copies apart and in range."""
    seg = int(torch.randint(3, min(13, n_ctx // 3), (1,), generator=g))
    s2 = int(torch.randint(seg + 1, n_ctx - seg + 1, (1,), generator=g))
    s1 = int(torch.randint(length, s2 - seg + 1, (1,), generator=g))
    return seg, s1, s2


def repeat_batch(
    n: int, n_ctx: int, d_vocab: int, g: torch.Generator, lo: int = 0
) -> tuple[Int[Tensor, "n n_ctx"], Tensor]:
    """Random tokens in ``[lo, d_vocab)`` with one repeated segment of random length (3–12) and offset.

    Args:
        n: sequences.
        n_ctx: sequence length.
        d_vocab: vocabulary size.
        g: seeded generator.
        lo: smallest token id used (ids below are reserved markers).

    Returns:
        ``(tokens, mask)``; ``mask[i, t]`` is True where ``tokens[i, t + 1]`` is predictable by induction
        (the second copy, from its first token on).
    """
    toks = torch.randint(lo, d_vocab, (n, n_ctx), generator=g)
    mask = torch.zeros(n, n_ctx, dtype=torch.bool)
    for i in range(n):
        seg, s1, s2 = _segment_positions(1 if lo else 0, n_ctx, g)
        toks[i, s2 : s2 + seg] = toks[i, s1 : s1 + seg]
        mask[i, s2 : s2 + seg - 1] = True
    return toks, mask


def mixture_batch(n: int, n_ctx: int, d_vocab: int, g: torch.Generator) -> Int[Tensor, "n n_ctx"]:
    """The planted-4x8 training mixture: a marker token, then one of three tasks (40/30/30 %).

    Marker 0: a repeated segment (induction). Marker 1: ``x[t] = perm(x[t-3])`` with probability 0.8
    (a head looking three back). Marker 2: ``x[t] = sigma(x[1])`` with probability 0.5 (a head looking
    at the first content token). ``perm`` and ``sigma`` are fixed permutations of the content ids.
    """
    lo = N_MARKERS
    pg = torch.Generator().manual_seed(1234)  # fixed maps, independent of the batch seed
    perm = lo + torch.randperm(d_vocab - lo, generator=pg)
    sigma = lo + torch.randperm(d_vocab - lo, generator=pg)
    toks, _ = repeat_batch(n, n_ctx, d_vocab, g, lo=lo)
    kind = torch.multinomial(torch.tensor([0.4, 0.3, 0.3]), n, replacement=True, generator=g)
    toks[:, 0] = kind
    fresh = torch.randint(lo, d_vocab, (n, n_ctx), generator=g)
    for t in range(1, n_ctx):  # [n] per step; the task rows overwrite the repeat rows' tokens
        skip = (kind == 1) & (t >= 4) & (torch.rand(n, generator=g) < 0.8)
        first = (kind == 2) & (t >= 2) & (torch.rand(n, generator=g) < 0.5)
        col = fresh[:, t].clone()
        col[skip] = perm[toks[skip, t - 3] - lo]
        col[first] = sigma[toks[first, 1] - lo]
        toks[:, t] = torch.where(kind == 0, toks[:, t], col)
    return toks


def induction_task(name: str, n: int = 32, seed: int = 0, n_pos: int = 24) -> Task:
    """Seeded induction prompts for a shipped model (random repeat length and offset, like training).

    Clean prompts end inside the second copy of a repeated segment (so the next token is the segment's
    next token); corrupt prompts have the first copy replaced by fresh tokens (nothing to induct from).
    The metric is an :class:`~circuits.tasks.AnswerMetric` logit difference at the last position: the
    answer's logit minus the mean logit of every other token.

    Args:
        name: a name in :data:`MODEL_NAMES` (sets vocabulary and the task marker).
        n: number of prompt pairs.
        seed: data seed.
        n_pos: prompt length.

    Returns:
        A :class:`~circuits.tasks.Task` named ``induction``.

    Raises:
        UnknownNameError: for an unknown name.
        InputError: when ``n_pos`` does not fit a segment.
    """
    s = _spec(name)
    if not 12 <= n_pos <= s.n_ctx:
        raise InputError(f"induction_task n_pos={n_pos}: expected 12 <= n_pos <= n_ctx ({s.n_ctx}). Pick one in range.")
    lo = N_MARKERS if s.mixture else 0
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(lo, s.d_vocab, (n, n_pos), generator=g)
    corrupt = clean.clone()
    answer = torch.empty(n, dtype=torch.long)
    for i in range(n):
        seg = int(torch.randint(3, 9, (1,), generator=g))
        s1 = int(torch.randint(1, n_pos - 2 * seg + 1, (1,), generator=g))
        # second copy: seg-1 tokens ending at the last position, so the answer is the segment's last token
        clean[i, n_pos - seg + 1 :] = clean[i, s1 : s1 + seg - 1]
        answer[i] = clean[i, s1 + seg - 1]
        corrupt[i] = clean[i]
        corrupt[i, s1 : s1 + seg] = torch.randint(lo, s.d_vocab, (seg,), generator=g)
    if s.mixture:
        clean[:, 0] = corrupt[:, 0] = 0  # the repeat-task marker
    vocab = torch.arange(s.d_vocab)
    wrong = torch.stack([vocab[vocab != a] for a in answer.tolist()])  # [n, d_vocab - 1]: every other token
    metric = AnswerMetric(answer[:, None], wrong, torch.full((n,), -1), kind="logit_diff")
    meta = {"model": name, "seed": seed, "n_pos": n_pos, "builder": "circuits.models.induction_task"}
    return Task("induction", clean, corrupt, metric, meta)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise CorruptCacheError(
            f"shipped circuit file {path} is missing. Reinstall the package or rerun "
            "python scripts/train_circuit_models.py."
        ) from e


def load_circuit_model(name: str) -> tuple[HookedTransformer, dict]:
    """Load a shipped ground-truth model.

    Args:
        name: a name in :data:`MODEL_NAMES`.

    Returns:
        ``(model, meta)``: the eval-mode model on CPU and its training record (config, measured losses,
        head scores, the command that produced it).

    Raises:
        UnknownNameError: for an unknown name.
        CorruptCacheError: when the shipped files are missing.
    """
    from safetensors.torch import load_file

    _spec(name)
    meta = _read_json(DATA_DIR / f"{name}.json")
    model = HookedTransformer(circuit_model_config(name))
    weights = DATA_DIR / f"{name}.safetensors"
    if not weights.exists():
        _read_json(weights)  # raises the missing-file error
    # parameters only are shipped; TransformerLens rebuilds its buffers (causal masks, IGNORE)
    missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
    params = dict(model.named_parameters())
    if unexpected or any(k in params for k in missing):
        raise CorruptCacheError(
            f"{weights} does not match the {name} architecture (missing {[k for k in missing if k in params]}, "
            f"unexpected {unexpected}). Reinstall the package or rerun python scripts/train_circuit_models.py."
        )
    return model.eval(), meta


@cache
def _truth(name: str) -> str:
    return json.dumps(_read_json(DATA_DIR / f"{name}.truth.json"))


def circuit_truth(name: str) -> dict:
    """The exact edge-patching truth of a shipped model.

    Args:
        name: a name in :data:`MODEL_NAMES`.

    Returns:
        A dict with ``edges`` (edge name → exact patching effect), ``circuit_edges`` and ``circuit_nodes``
        (the true circuit under ``threshold``), the metric's clean and corrupt values, and ``command``.

    Raises:
        UnknownNameError: for an unknown name.
        CorruptCacheError: when the truth file is missing.
    """
    _spec(name)
    return json.loads(_truth(name))
