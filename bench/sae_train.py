"""Benchmark: our TopK SAE trainer against SAELens's ``SAETrainer`` on the same cached activations.

Same architecture (TopK, d_in 576, d_sae 4608, k 32), batch size, steps,
learning rate (constant), gradient clipping and AuxK settings. Each run is its
own subprocess (so its peak RSS is its own) and runs alternate ours / SAELens
(interleaved, so load on a shared machine hits both alike). The roofline is the
GEMM FLOP/s measured in this run at the step's shape (``[batch, d_in] @
[d_in, d_sae]``) divided by ``6 · d_in · d_sae`` FLOP per token (forward and
backward of a dense encoder and decoder). FVU is measured for both on the same
held-out rows after the same number of steps.

Activations: a store holding ``--hook`` (real SmolLM2 activations) when
``--store`` is given or one is found under ``runs/``; otherwise synthetic
activations with realistic structure (a mean offset, sparse non-negative
combinations of a few thousand feature directions with heavy-tailed
magnitudes, and dense low-rank noise).

    python bench/sae_train.py --json bench-sae.json   # 200 steps per run, about 8 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

HOOK = "blocks.6.hook_resid_post"


def _find_store(hook: str) -> str | None:
    for manifest in sorted(Path("runs").glob("*/**/manifest.json")):
        if hook in json.loads(manifest.read_text()).get("hooks", []):
            return str(manifest.parent)
    return None


def _synthetic(n: int, d_in: int, seed: int = 0) -> torch.Tensor:
    """``n`` rows of structured activations: offset + sparse feature sums + low-rank noise."""
    g = torch.Generator().manual_seed(seed)
    n_feat, active = 6 * d_in, 24
    feats = torch.nn.functional.normalize(torch.randn(n_feat, d_in, generator=g), dim=1)
    probs = 1 / torch.arange(1, n_feat + 1).float() ** 0.7  # Zipf-like feature frequencies
    idx = torch.multinomial(probs.expand(n, -1), active, replacement=False, generator=g)  # [n, active]
    mag = torch.empty(n, active).exponential_(1.0, generator=g) * 3  # heavy-tailed magnitudes
    x = torch.nn.functional.embedding_bag(idx, feats, per_sample_weights=mag, mode="sum")  # [n, d_in]
    low = torch.randn(n, 16, generator=g) @ torch.randn(16, d_in, generator=g) * 0.3
    return x + low + torch.randn(d_in, generator=g) * 2


def _data(args: argparse.Namespace) -> tuple[torch.Tensor, str]:
    n = args.steps * args.batch_size + args.eval_rows
    store = args.store or _find_store(args.hook)
    if store:
        from interp.store import open_store

        s = open_store(store)
        rows = s.get(torch.arange(min(n, s.n_tokens)), args.hook).float().reshape(-1, args.d_in)
        g = torch.Generator().manual_seed(0)
        rows = rows[torch.randperm(len(rows), generator=g)]
        reps = math.ceil(n / len(rows))
        return rows.repeat(reps, 1)[:n], f"store {store} ({s.n_tokens} tokens of {args.hook}, cycled)"
    return _synthetic(n, args.d_in), "synthetic structured activations"


def _fvu(forward, x: torch.Tensor) -> float:
    with torch.no_grad():
        err = sum(float((forward(c) - c).pow(2).sum()) for c in x.split(2048))
    return err / float((x - x.mean(0)).pow(2).sum())


def _run_ours(args, train: torch.Tensor, held: torch.Tensor) -> dict:
    from sae_training.archs.topk import TopKSAE
    from sae_training.config import OptimSpec, SAESpec
    from sae_training.trainer import _HookState, _optimizer, _train_step

    torch.manual_seed(0)
    spec = SAESpec(arch="topk", k=args.k, aux_k_coefficient=args.aux_coef, normalize="none", b_dec_init="zeros")
    optim = OptimSpec(batch_size=args.batch_size, lr=args.lr, lr_warmup=0, lr_decay=0, dead_window=args.dead_window)
    sae = TopKSAE(args.d_in, args.d_sae, spec, torch.Generator().manual_seed(0))
    st = _HookState(sae, _optimizer(sae, optim), 1.0, torch.zeros(args.d_sae, dtype=torch.float64),
                    torch.zeros(args.d_sae, dtype=torch.float64))  # fmt: skip
    t0 = time.perf_counter()
    for step, x in enumerate(train.split(args.batch_size)):
        _train_step(st, x, step, args.steps, optim)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "fvu": _fvu(sae, held)}


def _run_saelens(args, train: torch.Tensor, held: torch.Tensor) -> dict:
    warnings.filterwarnings("ignore")
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=args.d_in, d_sae=args.d_sae, k=args.k,
                                                aux_loss_coefficient=args.aux_coef))  # fmt: skip
    cfg = SAETrainerConfig(total_training_samples=args.steps * args.batch_size,
                           train_batch_size_samples=args.batch_size,
                           lr=args.lr, lr_end=args.lr, dead_feature_window=max(1, args.dead_window // args.batch_size),
                           feature_sampling_window=10**9)  # fmt: skip
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=iter(train.split(args.batch_size)))
    t0 = time.perf_counter()
    with open(os.devnull, "w") as null, _redirect_stderr(null):
        trainer.fit()
    seconds = time.perf_counter() - t0
    sae.eval()
    return {"seconds": seconds, "fvu": _fvu(sae, held)}


class _redirect_stderr:
    def __init__(self, f):
        self.f = f

    def __enter__(self):
        self.old, sys.stderr = sys.stderr, self.f

    def __exit__(self, *exc):
        sys.stderr = self.old


def _worker(args) -> None:
    data = torch.load(args.data, weights_only=True)
    n_train = args.steps * args.batch_size
    fn = _run_ours if args.worker == "ours" else _run_saelens
    out = fn(args, data[:n_train], data[n_train:])
    # VmHWM, this process's own peak: ru_maxrss survives exec on Linux, so it would report the parent's
    # peak (the synthetic data's generation) for every worker.
    from interp.store.memory import peak_rss

    hwm = peak_rss()
    out["peak_rss_mb"] = (hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    out["tokens_per_s"] = n_train / out["seconds"]
    print("RESULT " + json.dumps(out))


def _gemm_flops(batch: int, d_in: int, d_sae: int, repeats: int = 5) -> float:
    a, b = torch.randn(batch, d_in), torch.randn(d_in, d_sae)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * batch * d_in * d_sae / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _spawn(method: str, args, data_path: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--data", data_path] + [
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
        if k in ("steps", "batch_size", "d_in", "d_sae", "k", "lr", "aux_coef", "dead_window")]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode or not line:
        raise RuntimeError(f"{method} run failed:\n{out.stderr[-3000:]}")
    return json.loads(line[-1][7:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=200,
                   help="training steps per run (default %(default)s: FVU after fewer steps says little)")
    p.add_argument("--batch-size", type=int, default=4096, help="tokens per step")
    p.add_argument("--d-in", type=int, default=576)
    p.add_argument("--d-sae", type=int, default=4608)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--aux-coef", type=float, default=1 / 32, help="AuxK coefficient (both)")
    p.add_argument("--dead-window", type=int, default=1_000_000, help="tokens without firing before a latent is dead")
    p.add_argument("--repeats", type=int, default=2, help="interleaved runs per method")
    p.add_argument("--eval-rows", type=int, default=8192, help="held-out rows for FVU")
    p.add_argument("--store", help="store with real activations of --hook (default: one found under runs/)")
    p.add_argument("--hook", default=HOOK)
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--worker", choices=["ours", "saelens"], help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return _worker(args)
    data, source = _data(args)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "acts.pt")
        torch.save(data, path)
        del data
        runs = {"ours": [], "saelens": []}
        for _ in range(args.repeats):
            for method in ("ours", "saelens"):
                runs[method].append(_spawn(method, args, path))
    flops = _gemm_flops(args.batch_size, args.d_in, args.d_sae)
    roofline = flops / (6 * args.d_in * args.d_sae)
    best = {m: max(r, key=lambda x: x["tokens_per_s"]) for m, r in runs.items()}
    rows = []
    for m in ("ours", "saelens"):
        b = best[m]
        rows.append({"method": m, "tokens_per_s": b["tokens_per_s"],
                     "vs_saelens": b["tokens_per_s"] / best["saelens"]["tokens_per_s"],
                     "roofline_fraction": b["tokens_per_s"] / roofline,
                     "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[m]),
                     "fvu": b["fvu"], "runs_tokens_per_s": [r["tokens_per_s"] for r in runs[m]]})  # fmt: skip
    print(f"data: {source}; TopK d_in {args.d_in} d_sae {args.d_sae} k {args.k}, batch {args.batch_size}, "
          f"{args.steps} steps, {args.repeats} interleaved runs each, {torch.get_num_threads()} threads")  # fmt: skip
    print(f"GEMM {flops / 1e9:.1f} GFLOP/s at [{args.batch_size}x{args.d_in}]@[{args.d_in}x{args.d_sae}] -> "
          f"roofline {roofline:,.0f} tokens/s (6·d_in·d_sae FLOP/token)")  # fmt: skip
    print(f"{'method':<9}{'tokens/s':>11}{'x SAELens':>11}{'roofline':>10}{'peak RSS MB':>13}{'FVU':>9}")
    for r in rows:
        print(f"{r['method']:<9}{r['tokens_per_s']:>11,.0f}{r['vs_saelens']:>10.2f}x{r['roofline_fraction']:>10.2f}"
              f"{r['peak_rss_mb']:>13,.0f}{r['fvu']:>9.4f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"source": source, "gemm_flops": flops, "roofline_tokens_per_s": roofline,
                                               "args": {k: v for k, v in vars(args).items()
                                                        if k not in ("worker", "data")},
                                               "rows": rows}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
