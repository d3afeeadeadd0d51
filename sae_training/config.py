"""Training configuration: four frozen dataclasses, one per concern, whose field docstrings are the CLI help.

``SAESpec`` (architecture), ``DataSpec`` (where activations come from),
``OptimSpec`` (optimizer and schedule) and ``RunSpec`` (output, seed,
checkpoints) make up :class:`TrainConfig`. Field names are unique across the
four, so a config file may be flat (``{"arch": "topk", "k": 32, ...}``) or
sectioned (``{"sae": {...}, "data": {...}}``), and every field is a CLI flag
(``k`` -> ``--k``, ``lr_warmup`` -> ``--lr-warmup``). This module imports no
torch, so ``--help`` stays instant.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import textwrap
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from interp.errors import InputError, UnknownNameError
from sae_training.archs import check_arch

__all__ = ["SAESpec", "DataSpec", "OptimSpec", "RunSpec", "TrainConfig", "field_docs", "load_config_file",
           "RESUME_MUTABLE"]  # fmt: skip

#: Fields that may change between a run and its resume.
RESUME_MUTABLE = frozenset({"progress", "threads", "eval", "eval_tokens", "eval_batch_size", "eval_model"})


@dataclass(frozen=True)
class SAESpec:
    """The SAE: architecture, width and sparsity hyperparameters."""

    arch: str = "topk"
    """Architecture: topk, batchtopk, standard, jumprelu or gated (saved as the SAELens class of that name;
    batchtopk is saved as jumprelu)."""
    d_sae: int = 0
    """Number of latents; 0 means expansion × d_in."""
    expansion: int = 8
    """Latents per input dimension when d_sae is 0."""
    k: float | int = 32
    """Active latents per token (topk; the batch average for batchtopk)."""
    aux_k: int = 0
    """Dead latents in the AuxK loss (topk, batchtopk); 0 means d_in / 2."""
    aux_k_coefficient: float | int = 1 / 32
    """Weight of the AuxK dead-latent loss (topk, batchtopk); 0 disables it."""
    l1_coefficient: float | int = 5.0
    """L1 sparsity weight (standard, gated)."""
    l0_coefficient: float | int = 1.0
    """L0 sparsity weight (jumprelu)."""
    jumprelu_bandwidth: float | int = 0.05
    """Straight-through estimator bandwidth (jumprelu)."""
    jumprelu_init_threshold: float | int = 0.01
    """Initial threshold (jumprelu)."""
    topk_threshold_lr: float | int = 0.01
    """Update rate of the running threshold saved with a batchtopk SAE."""
    b_dec_init: str = "median"
    """Decoder bias initialisation from the data: median (geometric median), mean or zeros."""
    normalize: str = "norm"
    """Input normalisation: norm (scale so that the mean token norm is sqrt(d_in); the scale is folded into the
    saved weights and recorded) or none."""

    def __post_init__(self) -> None:
        check_arch(self.arch)
        _choice("b_dec_init", self.b_dec_init, ("median", "mean", "zeros"))
        _choice("normalize", self.normalize, ("norm", "none"))
        if self.k <= 0 or self.d_sae < 0 or self.expansion < 1:
            raise InputError(f"k must be positive, d_sae >= 0 and expansion >= 1; got k={self.k}, "
                             f"d_sae={self.d_sae}, expansion={self.expansion}.")  # fmt: skip
        if self.arch == "topk" and self.k != int(self.k):
            raise InputError(f"topk needs a whole number k, got {self.k}. Use --arch batchtopk for a fractional k.")


@dataclass(frozen=True)
class DataSpec:
    """Where activations come from: an existing store, or a model + hook + dataset captured into one."""

    from_store: str | Path | None = None
    """Train from this activation store (a directory written by interp capture)."""
    model: str | None = None
    """Model to capture from (registry name, local directory or hub name) when no store is given."""
    hook: str | tuple[str, ...] | list[str] = ()
    """Hook name(s), e.g. blocks.6.hook_resid_post; several train several SAEs from one pass.
    Default: every hook of the store."""
    dataset: str = "bible"
    """Text corpus (bible, fortunes, pydoc or a file path) to capture; its heldout split is used for evaluation."""
    tokens: int = 300_000
    """Training tokens (also the capture budget when capturing)."""
    context_size: int = 128
    """Tokens per context when capturing and evaluating."""
    capture_batch_size: int = 16
    """Contexts per forward pass when capturing."""
    store_dtype: str = "float32"
    """Storage dtype of a captured store: float32, float16 or bfloat16."""
    on_nonfinite: str = "error"
    """What a batch holding NaN/Inf does: error (names the batch and hook) or skip."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hook", (self.hook,) if isinstance(self.hook, str) else tuple(self.hook))
        if self.from_store is not None:
            object.__setattr__(self, "from_store", str(self.from_store))
        _choice("on_nonfinite", self.on_nonfinite, ("error", "skip"))
        if self.from_store is None and (self.model is None or not self.hook):
            raise InputError("say where activations come from: --from-store DIR, or --model NAME with --hook HOOK "
                             "(and --dataset) to capture them.")  # fmt: skip
        if self.tokens < 1 or self.context_size < 2:
            raise InputError(f"tokens and context_size must be positive, got {self.tokens} and {self.context_size}.")


@dataclass(frozen=True)
class OptimSpec:
    """Optimizer (Adam) and learning-rate schedule."""

    batch_size: int = 2048
    """Tokens per training step."""
    lr: float | int = 4e-4
    """Peak learning rate."""
    lr_warmup: float | int = 0.05
    """Fraction of the steps spent warming the learning rate up linearly from 0."""
    lr_decay: float | int = 0.2
    """Fraction of the steps, at the end, over which the learning rate decays linearly to lr_end × lr."""
    lr_end: float | int = 0.0
    """Final learning rate as a fraction of lr."""
    adam_beta1: float | int = 0.9
    """Adam beta1."""
    adam_beta2: float | int = 0.999
    """Adam beta2."""
    grad_clip: float | int = 1.0
    """Clip the gradient norm to this (0: no clipping), as SAELens does."""
    dead_window: int = 100_000
    """A latent that has not fired for this many training tokens is dead (AuxK target, dead fraction in the
    progress bar)."""

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.lr <= 0 or not (0 <= self.lr_warmup + self.lr_decay <= 1):
            raise InputError(f"need batch_size >= 1, lr > 0 and lr_warmup + lr_decay in [0, 1]; got {self.batch_size}, "
                             f"{self.lr}, {self.lr_warmup} + {self.lr_decay}.")  # fmt: skip


@dataclass(frozen=True)
class RunSpec:
    """Output directory, seed, checkpoints, evaluation and progress."""

    out: str | Path = "runs/sae"
    """Run directory: config.json, checkpoints/, one SAELens SAE folder per hook, eval.json and eval.html."""
    seed: int = 0
    """Seed of the initialisation and of the data order."""
    checkpoint_every: int = 100
    """Steps between checkpoints (0: none until the end)."""
    keep_checkpoints: int = 2
    """Most recent checkpoints kept."""
    eval: bool = True
    """Evaluate on held-out data after training."""
    eval_tokens: int = 4096
    """Held-out tokens for the evaluation."""
    eval_batch_size: int = 8
    """Contexts per forward pass in the evaluation."""
    eval_model: str | None = None
    """Model for the CE/KL splice evaluation (default: the store's or --model, loaded in full)."""
    threads: int = 0
    """torch threads (0: torch's default)."""
    progress: bool = True
    """Show a progress bar (tokens/s, loss, L0, dead fraction)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", str(self.out))
        if min(self.checkpoint_every, self.eval_tokens, self.threads) < 0 or self.keep_checkpoints < 1:
            got = f"{self.checkpoint_every}, {self.eval_tokens}, {self.threads}, {self.keep_checkpoints}"
            raise InputError(f"checkpoint_every, eval_tokens and threads must be >= 0 and keep_checkpoints >= 1; "
                             f"got {got}.")


_SECTIONS = {"sae": SAESpec, "data": DataSpec, "optim": OptimSpec, "run": RunSpec}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; round-trips through JSON (``to_dict`` / ``from_dict``)."""

    data: DataSpec
    sae: SAESpec = field(default_factory=SAESpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    run: RunSpec = field(default_factory=RunSpec)

    def to_dict(self) -> dict[str, Any]:
        """Sectioned JSON-able dict."""
        return {name: _jsonable(asdict(getattr(self, name))) for name in _SECTIONS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a sectioned or flat dict (unknown keys are refused with the nearest names)."""
        flat: dict[str, Any] = {}
        for key, value in d.items():
            if key in _SECTIONS and isinstance(value, dict):
                flat.update(value)
            else:
                flat[key] = value
        owner = {f.name: sec for sec, c in _SECTIONS.items() for f in fields(c)}
        parts: dict[str, dict[str, Any]] = {sec: {} for sec in _SECTIONS}
        for key, value in flat.items():
            key = key.replace("-", "_")
            if key not in owner:
                raise UnknownNameError("config field", key, owner, fix="See python -m sae_training train --help.")
            parts[owner[key]][key] = tuple(value) if key == "hook" and isinstance(value, list) else value
        return cls(**{sec: _SECTIONS[sec](**parts[sec]) for sec in _SECTIONS})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with flat field changes (``cfg.replace(k=64, lr=1e-3)``)."""
        d = self.to_dict()
        for sec in d.values():
            for key in list(sec):
                if key in changes:
                    sec[key] = changes.pop(key)
        if changes:
            known = [f.name for c in _SECTIONS.values() for f in fields(c)]
            raise UnknownNameError("config field", next(iter(changes)), known)
        return TrainConfig.from_dict(d)

    def diff(self, other: TrainConfig, ignore: frozenset[str] = frozenset()) -> list[str]:
        """``section.field: old -> new`` for every field that differs (``ignore``: flat names to skip)."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{sec}.{k}: {a[sec][k]!r} -> {b[sec][k]!r}" for sec in a for k in a[sec]
                if k not in ignore and a[sec][k] != b[sec][k]]  # fmt: skip


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UnknownNameError(name, value, allowed, shown=allowed, fix=f"Use one of {', '.join(allowed)}.")


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of dataclass ``cls`` (read from its source)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())  # type: ignore[union-attr]
    return docs


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML config file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file {p} does not exist. Pass a .json or .yaml file.")
    text = p.read_text()
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001 - any parse error is the user's file
        raise InputError(f"cannot parse config file {p}: {e}. Write JSON (.json) or YAML (.yaml).") from e
    if not isinstance(data, dict):
        raise InputError(f"config file {p} must hold a mapping of field names to values, got {type(data).__name__}.")
    return data

