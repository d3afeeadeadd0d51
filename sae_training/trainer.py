"""The training loop: several SAEs from one activation stream, checkpointed, resumable bit for bit.

:func:`train_sae` resolves the data (an existing store, or a capture into
``<out>/store``), initialises one SAE per hook (decoder bias from the data's
geometric median or mean, input scale so that the mean token norm is
``sqrt(d_in)``), and runs Adam with a linear warm-up, a constant phase and a
linear decay. Every ``checkpoint_every`` steps it writes an atomic checkpoint;
rerunning the same command (or ``resume``) continues from the newest one and
ends with the same weights as an uninterrupted run; rerunning a finished run
returns at once (``train.json`` is the done marker; ``overwrite`` retrains).
Under torchrun the processes train data-parallel (:mod:`sae_training.distributed`). At the end each SAE is
saved in SAELens's layout under ``<out>/<hook>/`` and, unless disabled,
evaluated on held-out data (:mod:`sae_training.evaluate`).

While it trains, rank 0 appends to ``<out>/metrics.jsonl`` one flushed JSON line
per hook every ``max(1, steps // 1000)`` steps and at the last step: ``step``
(steps done), ``tokens``, ``hook``, ``loss``, ``mse``, ``l0``, ``dead_fraction``,
``lr``, ``tokens_per_s`` (since the previous line) and ``time`` (Unix seconds);
non-finite numbers are written as ``null``. A resume first drops the lines past
its checkpoint's step, so the file never repeats a step; a fresh start empties it.
:class:`interp.widgets.TrainingDashboard` follows this file live.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from interp.cache import atomic_write_text
from interp.errors import InputError
from sae_training.archs import get_arch
from sae_training.archs.base import StepStats, TrainableSAE
from sae_training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from sae_training.config import RESUME_MUTABLE, OptimSpec, TrainConfig
from sae_training.data import (
    d_in_of,
    finite_or_skip,
    input_stats,
    open_training_store,
    resolve_hooks,
    sample_rows,
    stream,
)
from sae_training.distributed import SINGLE, Dist, setup

__all__ = ["train_sae", "TrainResult", "lr_factor", "METRICS_FILE"]

log = logging.getLogger("sae_training")
_STATS_ROWS = 8192  # tokens sampled for the input scale and the decoder-bias initialisation
METRICS_FILE = "metrics.jsonl"  #: per-step training metrics in the run directory (see the module docstring)


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        out: the run directory.
        saes: hook -> SAELens SAE folder.
        steps: optimizer steps taken (in total, across resumes).
        tokens: training tokens per SAE.
        seconds: wall time of the loop in this invocation.
        tokens_per_s: training tokens per second in this invocation (per SAE).
        final: hook -> last-step loss, mse, l0 and dead fraction.
        eval: hook -> evaluation metrics (None when not evaluated).
        config: the resolved configuration.
        reused: the run had already finished with this configuration; nothing was trained.
        rank: this process's rank in a data-parallel run (only rank 0 wrote outputs).
    """

    out: Path
    saes: dict[str, Path]
    steps: int
    tokens: int
    seconds: float
    tokens_per_s: float
    final: dict[str, dict[str, float]]
    eval: dict[str, dict[str, Any]] | None
    config: TrainConfig
    trained: dict[str, TrainableSAE] = field(default_factory=dict, repr=False)
    reused: bool = False
    rank: int = 0

    def load(self, hook: str | None = None) -> Any:
        """The saved SAE of ``hook`` (default: the only/first one) as a SAELens SAE."""
        from sae_training.saelens_io import load_sae

        return load_sae(self.saes[hook or next(iter(self.saes))])


@dataclass
class _HookState:
    sae: TrainableSAE
    optimizer: torch.optim.Optimizer
    scale: float
    since_fired: torch.Tensor  # [d_sae] training tokens since each latent last fired
    fired_late: torch.Tensor  # [d_sae] firings during the last quarter of training (saved as sparsity)
    tokens_late: int = 0
    last: StepStats | None = None


def lr_factor(step: int, total: int, o: OptimSpec) -> float:
    """Learning-rate multiplier at ``step`` of ``total``: linear warm-up, constant, linear decay to ``lr_end``."""
    warm, decay = round(o.lr_warmup * total), round(o.lr_decay * total)
    if step < warm:
        return (step + 1) / warm
    if decay and step >= total - decay:
        return o.lr_end + (1 - o.lr_end) * (total - step) / decay
    return 1.0


def _optimizer(sae: TrainableSAE, o: OptimSpec) -> torch.optim.Optimizer:
    params = [p for p in sae.parameters() if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=o.lr, betas=(o.adam_beta1, o.adam_beta2), fused=True)
    except (RuntimeError, ValueError):  # fused Adam missing for this device/dtype
        return torch.optim.Adam(params, lr=o.lr, betas=(o.adam_beta1, o.adam_beta2))


def _new_state(cfg: TrainConfig, store: Any, hook: str, i: int) -> _HookState:
    d_in = d_in_of(store, hook)
    d_sae = cfg.sae.d_sae or cfg.sae.expansion * d_in
    sae = get_arch(cfg.sae.arch)(d_in, d_sae, cfg.sae, torch.Generator().manual_seed(cfg.run.seed + i))
    scale, b_dec = input_stats(sample_rows(store, hook, _STATS_ROWS, cfg.run.seed), cfg.sae.normalize,
                               cfg.sae.b_dec_init)  # fmt: skip
    with torch.no_grad():
        sae.b_dec.copy_(b_dec)
    return _HookState(sae, _optimizer(sae, cfg.optim), scale, torch.zeros(d_sae, dtype=torch.float64),
                      torch.zeros(d_sae, dtype=torch.float64))  # fmt: skip


def _state_dict(states: dict[str, _HookState]) -> dict[str, Any]:
    return {h: {"sae": s.sae.state_dict(), "optim": s.optimizer.state_dict(), "scale": s.scale,
                "since_fired": s.since_fired, "fired_late": s.fired_late, "tokens_late": s.tokens_late}
            for h, s in states.items()}  # fmt: skip


def _restore(cfg: TrainConfig, store: Any, saved: dict[str, Any]) -> dict[str, _HookState]:
    states = {}
    for hook, d in saved.items():
        d_in, d_sae = d["sae"]["W_dec"].shape[1], d["sae"]["W_dec"].shape[0]
        if d_in != d_in_of(store, hook):
            raise InputError(f"the checkpointed SAE of {hook} has d_in {d_in}, but the store's {hook} has "
                             f"{d_in_of(store, hook)}. Resume with the store the run was started with.")  # fmt: skip
        sae = get_arch(cfg.sae.arch)(d_in, d_sae, cfg.sae)
        sae.load_state_dict(d["sae"])
        opt = _optimizer(sae, cfg.optim)
        opt.load_state_dict(d["optim"])
        states[hook] = _HookState(sae, opt, d["scale"], d["since_fired"], d["fired_late"], d["tokens_late"])
    return states


def _reduce(stats: StepStats, d: Dist) -> StepStats:
    """The step's statistics over the whole global batch (firing counts summed, losses averaged)."""
    names = list(stats.terms)
    loss, mse, *terms = d.mean_floats([stats.loss, stats.mse, *stats.terms.values()])
    fired = d.sum_tensor(stats.fired.clone())  # [d_sae]
    return StepStats(loss, mse, fired, stats.n_tokens * d.world, dict(zip(names, terms, strict=True)))


def _train_step(st: _HookState, x: Float[Tensor, "batch d_in"], step: int, total: int, o: OptimSpec,
                d: Dist = SINGLE) -> None:  # fmt: skip
    for group in st.optimizer.param_groups:
        group["lr"] = o.lr * lr_factor(step, total, o)
    stats = st.sae.step(x * st.scale, st.since_fired >= o.dead_window)
    if d.active:  # after the custom backward: see sae_training.distributed for why not DDP's hooks
        d.average_grads(st.sae)
        stats = _reduce(stats, d)
    st.sae.project_decoder_grad()
    if o.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_([p for p in st.sae.parameters() if p.grad is not None], o.grad_clip)
    st.optimizer.step()
    st.optimizer.zero_grad(set_to_none=True)
    st.sae.constrain()
    st.sae.after_step(stats)
    d.average_buffers(st.sae)
    st.since_fired += stats.n_tokens
    st.since_fired[stats.fired > 0] = 0
    if step >= total - max(1, total // 4):
        st.fired_late += stats.fired.double()
        st.tokens_late += stats.n_tokens
    st.last = stats


def _summary(st: _HookState, o: OptimSpec) -> dict[str, float]:
    s = st.last
    dead = float((st.since_fired >= o.dead_window).double().mean())
    return {"loss": s.loss, "mse": s.mse, "l0": s.l0, "dead_fraction": dead} if s else {"dead_fraction": dead}


def _progress(cfg: TrainConfig, total: int, start: int, show: bool) -> Any:
    from tqdm.auto import tqdm

    bs = cfg.optim.batch_size
    return tqdm(total=total * bs, initial=start * bs, unit="tok", unit_scale=True, dynamic_ncols=True,
                desc=f"train {cfg.sae.arch}", disable=not (cfg.run.progress and show), smoothing=0.1)  # fmt: skip


class _MetricsLog:
    """Rank 0's ``metrics.jsonl`` writer (format in the module docstring); a no-op on the other ranks."""

    def __init__(self, out: Path, start: int, total: int, o: OptimSpec, enabled: bool) -> None:
        self.every, self.total, self.o, self.file = max(1, total // 1000), total, o, None
        self.t, self.tokens = time.perf_counter(), start * o.batch_size
        if enabled:
            path = out / METRICS_FILE
            _drop_metrics_after(path, start)
            self.file = path.open("a", encoding="utf-8")

    def write(self, done: int, states: dict[str, _HookState]) -> None:
        if self.file is None or (done % self.every and done != self.total):
            return
        now, tokens = time.perf_counter(), done * self.o.batch_size
        rate, self.t, self.tokens = (tokens - self.tokens) / max(now - self.t, 1e-9), now, tokens
        common = {"lr": self.o.lr * lr_factor(done - 1, self.total, self.o), "tokens_per_s": rate, "time": time.time()}
        for hook, st in states.items():
            row = {"step": done, "tokens": tokens, "hook": hook, **_summary(st, self.o), **common}
            row = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
            self.file.write(json.dumps(row) + "\n")
        self.file.flush()  # a dashboard reading the file sees whole lines as soon as they are written

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _drop_metrics_after(path: Path, start: int) -> None:
    """Keep only the metric lines of steps ``<= start`` (the resumed checkpoint); remove the file for a fresh start."""
    if not path.is_file():
        return
    if start == 0:
        path.unlink()
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= start:
                keep.append(line + "\n")
        except (ValueError, AttributeError):  # a line cut short by the crash that made this a resume
            continue
    atomic_write_text(path, "".join(keep))


def _loop(cfg: TrainConfig, store: Any, states: dict[str, _HookState], start: int, total: int, d: Dist) -> None:
    o, out = cfg.optim, Path(cfg.run.out)
    rows = d.local_rows(o.batch_size)
    metrics = _MetricsLog(out, start, total, o, d.main)
    with _progress(cfg, total, start, d.main) as bar, closing(metrics):
        for step, batch in stream(store, list(states), o.batch_size, cfg.run.seed, start, total, rows):
            for hook, st in states.items():
                if _finite(batch[hook], hook, step, cfg.data.on_nonfinite, d):
                    _train_step(st, batch[hook], step, total, o, d)
            bar.update(o.batch_size)
            if step % 5 == 0 or step == total - 1:
                first = _summary(next(iter(states.values())), o)
                bar.set_postfix(loss=f"{first.get('loss', 0):.4g}", l0=f"{first.get('l0', 0):.1f}",
                                dead=f"{first['dead_fraction']:.3f}", refresh=False)  # fmt: skip
            done = step + 1
            metrics.write(done, states)
            if d.main and cfg.run.checkpoint_every and done % cfg.run.checkpoint_every == 0 and done < total:
                save_checkpoint(out, done, {"step": done, "config": cfg.to_dict(), "hooks": _state_dict(states)},
                                cfg.run.keep_checkpoints)  # fmt: skip


def _finite(x: Float[Tensor, "batch d_in"], hook: str, step: int, on_nonfinite: str, d: Dist) -> bool:
    """Whether to train on this batch; in a data-parallel run every rank decides alike."""
    if not d.active:
        return finite_or_skip(x, hook, step, on_nonfinite)
    here = bool(torch.isfinite(x).all())
    n_bad = d.sum_tensor(torch.tensor([0.0 if here else 1.0])).item()
    if not here:
        return finite_or_skip(x, hook, step, on_nonfinite)  # raises naming the batch and hook, or skips
    if n_bad == 0:
        return True
    if on_nonfinite == "skip":
        return False
    raise InputError(f"activation batch {step} of hook {hook} holds NaN/Inf values in another process's rows. "
                     "Recapture the store, or pass --on-nonfinite skip to skip such batches.")  # fmt: skip


def _check_run_dir(out: Path, cfg: TrainConfig, resume: bool) -> None:
    """Refuse to mix runs: an existing ``config.json`` must match (save for the fields a resume may change)."""
    saved = out / "config.json"
    if not saved.is_file():
        if resume:
            raise InputError(f"{out} holds no training run to resume (no config.json). Start one with "
                             f"python -m sae_training train --out {out} ...")  # fmt: skip
        return
    old = TrainConfig.from_dict(json.loads(saved.read_text()))
    changed = old.diff(cfg, ignore=RESUME_MUTABLE)
    if changed:
        raise InputError(f"{out} holds a run with another configuration; these fields differ: {'; '.join(changed)}. "
                         "Resume with the original settings, train into a new --out, or pass --overwrite to "
                         "discard the old run.")  # fmt: skip


def _metadata(cfg: TrainConfig, store: Any, hook: str, steps: int) -> dict[str, Any]:
    model = dict(store.manifest.model or {})
    segs = store.manifest.segments
    dataset = segs[0].dataset.get("name") if segs else cfg.data.dataset
    return {"model_name": model.get("name") or cfg.data.model, "hook_name": hook, "hook_head_index": None,
            "context_size": cfg.data.context_size, "prepend_bos": True, "dataset_path": dataset,
            "model_from_pretrained_kwargs": model.get("processing") or {},
            "training_tokens": steps * cfg.optim.batch_size, "trained_with": "interp sae_training"}  # fmt: skip


def _finish(cfg: TrainConfig, store: Any, states: dict[str, _HookState], total: int) -> dict[str, Path]:
    from sae_training.saelens_io import save_sae

    out, paths = Path(cfg.run.out), {}
    for hook, st in states.items():
        freq = st.fired_late / max(st.tokens_late, 1)
        paths[hook] = save_sae(st.sae, out / hook, _metadata(cfg, store, hook, total), st.scale, freq)
    return paths


def _finished(out: Path, cfg: TrainConfig) -> TrainResult | None:
    """The result of a run in ``out`` that already finished (``train.json`` and every SAE folder present)."""
    done = out / "train.json"
    if not done.is_file():
        return None
    summary = json.loads(done.read_text())
    saes = {h: Path(p) for h, p in summary.get("saes", {}).items()}
    if not saes or not all((p / "cfg.json").is_file() for p in saes.values()):
        return None
    return TrainResult(out, saes, summary["steps"], summary["tokens"], summary["seconds"], summary["tokens_per_s"],
                       summary["final"], summary["eval"], cfg, reused=True)  # fmt: skip


def _clear_run(out: Path, cfg: TrainConfig) -> None:
    """Remove what a previous training run left in ``out`` (``--overwrite``); a captured store stays if reusable."""
    saved = out / "config.json"
    if (out / "train.json").is_file():
        for p in json.loads((out / "train.json").read_text()).get("saes", {}).values():
            shutil.rmtree(p, ignore_errors=True)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    for name in ("train.json", "eval.json", "eval.html"):
        (out / name).unlink(missing_ok=True)
    if saved.is_file() and cfg.data.from_store is None:
        old = TrainConfig.from_dict(json.loads(saved.read_text()))
        if old.data != cfg.data:  # the store was captured for other data
            shutil.rmtree(out / "store", ignore_errors=True)


def train_sae(cfg: TrainConfig | dict[str, Any], *, model: Any = None, store: Any = None, eval_model: Any = None,
              eval_data: Any = None, resume: bool = False, overwrite: bool = False) -> TrainResult:  # fmt: skip
    """Train one SAE per hook as ``cfg`` describes; rerunning the same call resumes, or returns at once when done.

    Under ``torchrun --nproc_per_node N`` the processes train data-parallel
    (:mod:`sae_training.distributed`); only rank 0 writes outputs.

    Args:
        cfg: a :class:`TrainConfig` or a (flat or sectioned) dict of its fields.
        model: an already loaded model to capture from (instead of loading ``cfg.data.model``).
        store: an already opened store (instead of ``cfg.data.from_store``).
        eval_model: the model for the CE/KL evaluation (default: loaded from the store's model name).
        eval_data: held-out data for that model (default: the heldout split of the store's dataset).
        resume: require an existing run in ``cfg.run.out`` (``resume`` subcommand).
        overwrite: discard a previous run in ``cfg.run.out`` (finished or not, any configuration) and train anew.

    Returns:
        A :class:`TrainResult`; the SAEs are in ``<out>/<hook>/`` in SAELens's layout.
        ``result.reused`` is true when the run had already finished and nothing was trained.
    """
    cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)
    d = setup(cfg.optim.batch_size)
    try:
        result = _train(cfg, d, model, store, eval_model, eval_data, resume, overwrite)
        d.finish()  # every rank waits for rank 0's writing and evaluation before any leaves the group
        return result
    finally:
        d.close()


def _train(cfg: TrainConfig, d: Dist, model: Any, store: Any, eval_model: Any, eval_data: Any, resume: bool,
           overwrite: bool) -> TrainResult:  # fmt: skip
    out = Path(cfg.run.out)
    if not overwrite:
        _check_run_dir(out, cfg, resume)
        done = _finished(out, cfg)
        if done is not None:
            log.info("%s already finished training with this configuration; pass --overwrite to retrain", out)
            done.rank = d.rank
            return done
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    if d.main:
        from interp.runs import RunDir

        if overwrite:
            _clear_run(out, cfg)
        RunDir(out.name, cfg.to_dict(), root=out.parent, overwrite=True)  # config.json + env.json
        store = store if store is not None else open_training_store(cfg.data, out, model, cfg.run.progress)
    d.barrier()  # rank 0 has cleared the run and captured the store; the others now read it
    if not d.main:
        store = store if store is not None else open_training_store(cfg.data, out, model, False)
    hooks = resolve_hooks(store, cfg.data.hook)
    total = cfg.data.tokens // cfg.optim.batch_size
    if total < 1:
        raise InputError(f"--tokens {cfg.data.tokens} is less than one batch of {cfg.optim.batch_size}. Raise it.")
    ckpt = latest_checkpoint(out)
    if ckpt is not None:
        saved = load_checkpoint(ckpt)
        start, states = saved["step"], _restore(cfg, store, saved["hooks"])
        log.info("resuming %s from step %d", out, start)
    else:
        torch.manual_seed(cfg.run.seed)
        start, states = 0, {h: _new_state(cfg, store, h, i) for i, h in enumerate(hooks)}
    for st in states.values():
        d.broadcast_module(st.sae)  # identical by construction; made certain
    t0 = time.perf_counter()
    _loop(cfg, store, states, start, total, d)
    seconds = time.perf_counter() - t0
    final = {h: _summary(st, cfg.optim) for h, st in states.items()}
    paths = _finish(cfg, store, states, total) if d.main else {h: out / h for h in states}
    result = TrainResult(out, paths, total, total * cfg.optim.batch_size, seconds,
                         (total - start) * cfg.optim.batch_size / max(seconds, 1e-9), final, None, cfg,
                         {h: st.sae for h, st in states.items()}, rank=d.rank)  # fmt: skip
    if not d.main:
        return result
    if cfg.run.eval:
        from sae_training.evaluate import evaluate_run

        result.eval = evaluate_run(result, store, model=eval_model, data=eval_data)
    summary = {"saes": {h: str(p) for h, p in paths.items()}, "steps": total, "tokens": result.tokens,
               "seconds": seconds, "tokens_per_s": result.tokens_per_s, "processes": d.world, "final": final,
               "eval": result.eval}  # fmt: skip
    atomic_write_text(out / "train.json", json.dumps(summary, indent=2, default=str) + "\n")  # also the done marker
    return result
