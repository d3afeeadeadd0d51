"""Benchmark: capture-to-store throughput against TransformerLens and a bare forward pass.

One command, one run, one table::

    python bench/capture.py                 # SmolLM2, blocks.6.hook_resid_post
    python bench/capture.py --json bench.json

Three methods read the same token batches (``bible`` text packed into contexts
with SmolLM2's tokenizer):

``ours``
    :func:`interp.capture.capture_to_store` into a fresh store: the model loaded
    with the 7 blocks the hook needs, the forward pass stopped after block 6,
    BOS dropped, rows written to safetensors shards with checksums and fsync.
``run_with_cache``
    TransformerLens's ``run_with_cache(tokens, names_filter=hook)`` on the full
    30-layer model under ``torch.no_grad()``, keeping the hook's activations,
    as a user would write it; it runs all 30 layers and the unembedding.
``bare forward``
    ``model(tokens, stop_at_layer=7)`` under ``torch.inference_mode()`` with no
    hooks and nothing stored: the floor a capture cannot beat.

Throughput comes from one process that holds both models and runs the methods
one after another, ``--rounds`` times in a rotating order, so a burst of load
from other processes on a shared machine hits every method alike; the table
gives the median over rounds, and the ratios are medians of the per-round
ratios. Peak RSS comes from one subprocess per method that loads only what
that method needs and makes one pass. Timings cover the passes over the
batches (for ours: creating, filling and finishing the store), not loading.
Targets: ours >= 0.9x the bare forward pass and >= 2x run_with_cache.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

METHODS = ("ours", "run_with_cache", "bare forward")
MODEL = "smollm2-135m"


def _stop(hook: str) -> int:
    from interp.models.contract import layer_of_hook

    return 1 + layer_of_hook(hook)


def _load(method: str, hook: str) -> Any:
    import interp

    return interp.load_model(MODEL, n_layers=None if method == "run_with_cache" else _stop(hook))


def _pass(method: str, model: Any, tokens: Any, hook: str, batch_size: int) -> float:
    """One pass of ``method`` over ``tokens``; returns its wall-clock seconds."""
    import torch

    from interp.capture import TokenSource, capture_to_store

    t0 = time.perf_counter()
    if method == "ours":
        with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
            t0 = time.perf_counter()
            capture_to_store(model, TokenSource(tokens, name="bench", bos=True), hook, Path(tmp) / "store",
                             batch_size=batch_size, progress=False)  # fmt: skip
            return time.perf_counter() - t0
    if method == "run_with_cache":
        kept = []
        with torch.no_grad():
            for b in tokens.split(batch_size):
                _, cache = model.run_with_cache(b, names_filter=hook)
                kept.append(cache[hook][:, 1:].reshape(-1, model.cfg.d_model).clone())  # drop BOS, as ours does
        return time.perf_counter() - t0
    with torch.inference_mode():
        for b in tokens.split(batch_size):
            model(b, stop_at_layer=_stop(hook))
    return time.perf_counter() - t0


def _warm(model: Any, tokens: Any, hook: str, batch_size: int) -> None:
    """One untimed forward: first-call costs are nobody's throughput."""
    import torch

    with torch.inference_mode():
        model(tokens[:batch_size], stop_at_layer=_stop(hook))


def _throughput(args: argparse.Namespace) -> dict:
    """Interleaved passes of every method in this process: tokens/s per round."""
    import torch

    tokens = torch.load(args.tokens_file, weights_only=True)
    models = {"short": _load("ours", args.hook), "full": _load("run_with_cache", args.hook)}
    for m in models.values():
        _warm(m, tokens, args.hook, args.batch_size)
    rates: dict[str, list[float]] = {m: [] for m in METHODS}
    for r in range(args.rounds):
        for method in METHODS[r % 3 :] + METHODS[: r % 3]:  # rotate, so no method always goes first
            model = models["full" if method == "run_with_cache" else "short"]
            rates[method].append(tokens.numel() / _pass(method, model, tokens, args.hook, args.batch_size))
            print(f"round {r + 1}/{args.rounds} {method:<15} {rates[method][-1]:8.0f} tokens/s", file=sys.stderr)
    return {"rates": rates, "threads": torch.get_num_threads(), "tokens": tokens.numel()}


def _memory(args: argparse.Namespace) -> dict:
    """Peak RSS of one method: the whole process, and during its pass alone."""
    import torch

    from interp.store.memory import peak_rss, reset_peak_rss

    tokens = torch.load(args.tokens_file, weights_only=True)
    t0 = time.perf_counter()
    model = _load(args.child, args.hook)
    load_s = time.perf_counter() - t0
    _warm(model, tokens, args.hook, args.batch_size)
    before = peak_rss()  # loading's peak: read before the reset, which also clears ru_maxrss
    fresh = reset_peak_rss()
    _pass(args.child, model, tokens, args.hook, args.batch_size)
    if not fresh:
        return {"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "pass_peak_rss": None,
                "load_s": load_s}  # fmt: skip
    return {"peak_rss": max(before, peak_rss()), "pass_peak_rss": peak_rss(), "load_s": load_s}


def _prepare_tokens(path: str, n_tokens: int, context_size: int) -> None:
    """Pack ``bible`` text into contexts with SmolLM2's tokenizer and save the token tensor."""
    import torch

    import interp
    from interp.datasets.text import load_texts, pack_contexts

    model = interp.load_model(MODEL, n_layers=1)
    contexts = pack_contexts(load_texts("bible", "train"), model, context_size, max_tokens=n_tokens)
    torch.save(contexts.tokens.clone(), path)


def _child(role: str, tokens_file: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", role, "--tokens-file", tokens_file, "--hook", args.hook,
           "--batch-size", str(args.batch_size), "--rounds", str(args.rounds)]  # fmt: skip
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step {role!r} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summarise(tp: dict, mem: dict[str, dict]) -> dict:
    rates = tp["rates"]
    out: dict[str, Any] = {}
    for m in METHODS:
        out[m] = {"tokens_per_s": statistics.median(rates[m]), "min": min(rates[m]), "max": max(rates[m]),
                  "rounds": rates[m], **mem[m]}  # fmt: skip
    per_round = lambda a, b: statistics.median(x / y for x, y in zip(rates[a], rates[b], strict=True))  # noqa: E731
    out["ratios"] = {"ours_vs_bare": per_round("ours", "bare forward"),
                     "ours_vs_run_with_cache": per_round("ours", "run_with_cache")}  # fmt: skip
    return out


def _table(s: dict, args: argparse.Namespace, tp: dict) -> str:
    mib = 2**20
    lines = [
        f"capture benchmark: {MODEL}, hook {args.hook}, {tp['tokens']} tokens per pass in batches of "
        f"{args.batch_size} x {args.context_size}, {args.rounds} interleaved rounds, {tp['threads']} torch threads",
        "",
        f"{'method':<16}{'tokens/s':>10}{'min-max':>16}{'peak RSS':>12}{'pass peak':>12}{'load':>8}",
    ]
    for m in METHODS:
        r = s[m]
        spread = f"{r['min']:,.0f}-{r['max']:,.0f}"
        pass_peak = f"{r['pass_peak_rss'] / mib:,.0f} MiB" if r["pass_peak_rss"] else "n/a"
        lines.append(f"{m:<16}{r['tokens_per_s']:>10,.0f}{spread:>16}{r['peak_rss'] / mib:>8,.0f} MiB"
                     f"{pass_peak:>12}{r['load_s']:>7.1f}s")  # fmt: skip
    ra = s["ratios"]
    met = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    lines += [
        "",
        f"ours / bare forward     {ra['ours_vs_bare']:6.2f}x   (target >= 0.9x: {met(ra['ours_vs_bare'] >= 0.9)})",
        f"ours / run_with_cache   {ra['ours_vs_run_with_cache']:6.2f}x   "
        f"(target >= 2x:   {met(ra['ours_vs_run_with_cache'] >= 2.0)})",
        "",
        "tokens/s: input tokens (BOS included) per wall-clock second, median over rounds; ratios: median of",
        "per-round ratios. peak RSS: the method's own subprocess, model loading included; pass peak: its peak",
        "during the timed pass.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hook", default="blocks.6.hook_resid_post", help="hook to capture (default %(default)s)")
    p.add_argument("--tokens", type=int, default=4096, help="tokens per pass (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=8, help="contexts per batch (default %(default)s)")
    p.add_argument("--context-size", type=int, default=128, help="tokens per context (default %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default %(default)s)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--child", choices=(*METHODS, "throughput"), help=argparse.SUPPRESS)
    p.add_argument("--tokens-file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_throughput(args) if args.child == "throughput" else _memory(args)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        tokens_file = os.path.join(tmp, "tokens.pt")
        _prepare_tokens(tokens_file, args.tokens, args.context_size)
        tp = _child("throughput", tokens_file, args)
        mem = {m: _child(m, tokens_file, args) for m in METHODS}
    summary = _summarise(tp, mem)
    print(_table(summary, args, tp))
    if args.json:
        Path(args.json).write_text(json.dumps({"model": MODEL, "hook": args.hook, "tokens": tp["tokens"],
                                               "batch_size": args.batch_size, "context_size": args.context_size,
                                               "threads": tp["threads"], **summary}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
