"""Train the ground-truth circuit models shipped in ``circuits/data/models/`` and measure their truth.

For each model (see :mod:`circuits.models`) this writes:

- ``{name}.safetensors``: the weights (attention-only HookedTransformer, fp32);
- ``{name}.json``: config, seed, steps, measured losses (on the positions a repeat
  predicts vs the others), per-head previous-token and induction scores, runtime,
  versions and the exact command;
- ``{name}.truth.json`` (unless ``--no-truth``): the exact patching effect of every
  edge on :func:`circuits.models.induction_task`, the true circuit under the
  threshold, its node set and faithfulness (see :func:`measure_truth`).

``planted-4x8`` is built from ``induction-2l`` (its heads are planted, then the
distractors trained), so train ``induction-2l`` first (the default order).
Everything is seeded and single-threaded, so a rerun reproduces the files.
Measured on the shared 2-core machine (heavily loaded): induction-2l 698 s of
training (3,500 steps), planted-4x8 238 s (800 steps), truth 38 s and 1,070 s
(1,281 edges × 64 prompts); a quiet core is several times faster.

Usage::

    python scripts/train_circuit_models.py                     # train both, then measure their truth
    python scripts/train_circuit_models.py --models induction-2l --no-truth
    python scripts/train_circuit_models.py --truth-only        # re-measure truth from the shipped weights
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor
from transformer_lens import HookedTransformer

from circuits.models import (
    DATA_DIR,
    MODEL_NAMES,
    MODEL_SPECS,
    N_MARKERS,
    circuit_model_config,
    mixture_batch,
    repeat_batch,
)
from interp.cache import atomic_write_text

STEPS = {"induction-2l": 3500, "planted-4x8": 800}
LR = {"induction-2l": 1e-3, "planted-4x8": 2e-3}
THRESHOLD = 0.02  # an edge is in the true circuit when |effect| ≥ 2 % of |clean − corrupt| metric gap


def _batch(name: str, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    s = MODEL_SPECS[name]
    if s.mixture:
        toks = mixture_batch(n, s.n_ctx, s.d_vocab, g)
        return toks, torch.ones_like(toks, dtype=torch.bool)
    return repeat_batch(n, s.n_ctx, s.d_vocab, g)


def graft(model: HookedTransformer, name: str, source: HookedTransformer) -> dict[str, tuple[Tensor, Tensor]]:
    """Copy the planted heads (and embeddings, unembedding, receiving LayerNorms, ``b_O``) from ``source``.

    Returns:
        ``{parameter name: (mask, value)}``: the frozen entries, restored after every optimiser step.
    """
    src = dict(source.named_parameters())
    params = dict(model.named_parameters())
    frozen: dict[str, tuple[Tensor, Tensor]] = {}

    def freeze(pname: str, index: Any, value: Tensor) -> None:
        mask, val = frozen.get(pname, (torch.zeros_like(params[pname], dtype=torch.bool), params[pname].detach()))
        mask, val = mask.clone(), val.clone()
        mask[index], val[index] = True, value
        frozen[pname] = (mask, val)

    for pname in ("embed.W_E", "pos_embed.W_pos", "unembed.W_U", "unembed.b_U", "ln_final.w", "ln_final.b"):
        freeze(pname, slice(None), src[pname].detach())
    with torch.no_grad():  # distractors start silent, so training starts from a working induction circuit
        for block in model.blocks:
            block.attn.W_O.zero_()
    for f_layer, f_head, t_layer, t_head in MODEL_SPECS[name].graft:
        for w in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V"):
            freeze(f"blocks.{t_layer}.attn.{w}", t_head, src[f"blocks.{f_layer}.attn.{w}"][f_head].detach())
        for w in ("ln1.w", "ln1.b", "attn.b_O"):
            freeze(f"blocks.{t_layer}.{w}", slice(None), src[f"blocks.{f_layer}.{w}"].detach())
    _restore(model, frozen)
    return frozen


@torch.no_grad()
def _restore(model: HookedTransformer, frozen: dict[str, tuple[Tensor, Tensor]]) -> None:
    params = dict(model.named_parameters())
    for pname, (mask, val) in frozen.items():
        params[pname].copy_(torch.where(mask, val, params[pname]))


def train(name: str, steps: int, seed: int, batch: int = 64, lr: float = 1e-3,
          source: HookedTransformer | None = None) -> tuple[HookedTransformer, dict]:  # fmt: skip
    """Train one model from its seeded config (grafting from ``source`` first); returns it and its loss curve."""
    torch.manual_seed(seed)
    model = HookedTransformer(circuit_model_config(name, seed=seed, split=False))
    frozen = graft(model, name, source) if MODEL_SPECS[name].graft else {}
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / 100))
    g = torch.Generator().manual_seed(seed + 1)
    curve = {}
    for step in range(steps):
        toks, _ = _batch(name, batch, g)
        loss = model(toks, return_type="loss")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        _restore(model, frozen)
        if step % 250 == 0 or step == steps - 1:
            curve[step] = round(float(loss), 4)
            print(f"{name} step {step} loss {float(loss):.4f}", flush=True)
    return model.eval(), curve


@torch.no_grad()
def measure(model: HookedTransformer, name: str, seed: int = 99, n: int = 256) -> dict:
    """Held-out losses and per-head previous-token / induction scores."""
    s = MODEL_SPECS[name]
    g = torch.Generator().manual_seed(seed)
    lo = N_MARKERS if s.mixture else 0
    toks, mask = repeat_batch(n, s.n_ctx, s.d_vocab, g, lo=lo)
    if s.mixture:
        toks[:, 0] = 0
    loss = model(toks, return_type="loss", loss_per_token=True)  # [n, n_ctx - 1]
    m = mask[:, :-1]
    out = {
        "loss_repeated": round(float(loss[m].mean()), 4),
        "loss_other": round(float(loss[~m].mean()), 4),
        "loss_uniform": round(float(torch.log(torch.tensor(float(s.d_vocab - lo)))), 4),
    }
    # head scores on [marker?] x x (a random half repeated once): attention to t-1 and to t-half+1
    half = (s.n_ctx - 1) // 2 if s.mixture else s.n_ctx // 2
    x = torch.randint(lo, s.d_vocab, (64, half), generator=g)
    rep = torch.cat([x, x], 1)
    if s.mixture:
        rep = torch.cat([torch.zeros(64, 1, dtype=torch.long), rep], 1)
    _, cache = model.run_with_cache(rep, names_filter=lambda h: h.endswith("hook_pattern"))
    off = 1 if s.mixture else 0
    prev, ind = [], []
    for layer in range(s.n_layers):
        pat = cache[f"blocks.{layer}.attn.hook_pattern"]  # [batch, head, q, k]
        q = torch.arange(off + half, rep.shape[1])  # second-half queries
        prev.append([round(float(v), 3) for v in pat[:, :, q, q - 1].mean((0, 2))])
        ind.append([round(float(v), 3) for v in pat[:, :, q, q - half + 1].mean((0, 2))])
    out["prev_token_score"], out["induction_score"] = prev, ind
    if s.mixture:
        out["mixture_loss"] = round(float(model(mixture_batch(n, s.n_ctx, s.d_vocab, g), return_type="loss")), 4)
    return out


def _versions() -> dict:
    import transformer_lens

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformer_lens": getattr(transformer_lens, "__version__", "unknown")}  # fmt: skip


def _write(path: Path, record: dict) -> None:
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    os.chmod(path, 0o644)


def save(model: HookedTransformer, name: str, record: dict, out_dir: Path) -> None:
    """Write the weights (parameters only) and the JSON record atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in model.named_parameters()}
    fd, tmp = tempfile.mkstemp(suffix=".safetensors.tmp", dir=out_dir)
    os.close(fd)
    save_file(tensors, tmp, metadata={"name": name})
    os.replace(tmp, out_dir / f"{name}.safetensors")
    os.chmod(out_dir / f"{name}.safetensors", 0o644)
    _write(out_dir / f"{name}.json", record)


def load_from(out_dir: Path, name: str) -> HookedTransformer:
    """A model from the weights in ``out_dir`` (the shipped folder or the one this run writes)."""
    from safetensors.torch import load_file

    model = HookedTransformer(circuit_model_config(name))
    model.load_state_dict(load_file(out_dir / f"{name}.safetensors"), strict=False)  # buffers are rebuilt
    return model.eval()


def measure_truth(name: str, out_dir: Path = DATA_DIR, n: int = 64, seed: int = 0) -> dict:
    """Exact patching of every edge on the model's induction task; the true circuit under :data:`THRESHOLD`.

    Also checks the circuit: its faithfulness (everything outside it patched with corrupt outputs,
    :func:`circuits.result.faithfulness`), and the node-level truth (heads touched by a true edge).
    """
    from circuits.models import induction_task
    from circuits.patching import patch_edges, patch_heads
    from circuits.result import faithfulness

    model = load_from(out_dir, name)
    task = induction_task(name, n=n, seed=seed)
    t = time.perf_counter()
    exact = patch_edges(model, task, edges_per_pass=16)
    seconds = time.perf_counter() - t
    with torch.no_grad():
        clean = float(task.metric(model(task.clean)).mean())
        corrupt = float(task.metric(model(task.corrupt)).mean())
    gap = clean - corrupt
    circuit = exact.threshold(THRESHOLD * abs(gap))
    faith = faithfulness(model, task, circuit)
    edges = exact.to_dict()["edges"]
    heads = [v for v in circuit.nodes() if v.startswith("a")]
    head_effects = patch_heads(model, task)  # [layer, head]: node-level patching, for reference
    names = [f"a{i}.h{h}" for i in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    return {
        "model": name,
        "task": f"circuits.models.induction_task({name!r}, n={n}, seed={seed})",
        "task_n": n,
        "task_seed": seed,
        "metric": "logit of the answer minus the mean logit of the other tokens at the last position, "
        "mean over prompts (AnswerMetric logit_diff)",
        "metric_clean": round(clean, 5),
        "metric_corrupt": round(corrupt, 5),
        "threshold": f"|effect| >= {THRESHOLD} * |metric_clean - metric_corrupt|",
        "threshold_value": round(THRESHOLD * abs(gap), 6),
        "effect_definition": "circuits.patching.patch_edges (ablation 'corrupt'): metric of the clean run with "
        "only this edge carrying its sender's corrupt-run output, minus metric_clean",
        "n_edges": len(edges),
        "edges": {e["edge"]: round(e["score"], 6) for e in edges},
        "circuit_edges": sorted(circuit.edges()),
        "circuit_nodes": heads,
        "node_definition": "a head is in the circuit when one of its edges (in or out) is",
        "head_effects": dict(zip(names, [round(v, 6) for v in head_effects.flatten().tolist()], strict=True)),
        "circuit_faithfulness": round(faith.score, 4),
        "circuit_metric": round(faith.circuit, 5),
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Train, measure and write the shipped models (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--no-truth", action="store_true", help="skip the exact edge-patching truth")
    ap.add_argument("--truth-only", action="store_true", help="only re-measure the truth of the shipped weights")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    command = "python scripts/train_circuit_models.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    for name in args.models:
        if not args.truth_only:
            t = time.perf_counter()
            source = load_from(args.out_dir, "induction-2l") if MODEL_SPECS[name].graft else None
            model, curve = train(name, STEPS[name], args.seed, lr=LR[name], source=source)
            record = {"name": name, "config": dataclasses.asdict(MODEL_SPECS[name]), "seed": args.seed,
                      "steps": STEPS[name], "batch_size": 64, "lr": LR[name], "loss_curve": curve}  # fmt: skip
            record["train_seconds"] = round(time.perf_counter() - t, 1)
            record.update(measure(model, name))
            record["versions"], record["command"] = _versions(), command
            save(model, name, record, args.out_dir)
            print(json.dumps({k: v for k, v in record.items() if k != "loss_curve"}, indent=1))
        if not args.no_truth:
            truth = measure_truth(name, args.out_dir)
            truth["command"] = command
            _write(args.out_dir / f"{name}.truth.json", truth)
            print(f"{name}: {len(truth['circuit_edges'])}/{truth['n_edges']} edges, nodes {truth['circuit_nodes']}")


if __name__ == "__main__":
    main()
