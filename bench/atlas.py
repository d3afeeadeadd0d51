"""Benchmark: the neuron atlas's weight scores and cross-model correlation pass against their peers.

One command, one run, one table::

    python bench/atlas.py                      # both parts
    python bench/atlas.py --part weights --json atlas.json
    python bench/atlas.py --part retrieval

Part 1, **weight scores** of all 30 x 1,536 MLP neurons of SmolLM2 (input-output
cosines, vocabulary mean/std/skew/kurtosis, top and bottom tokens, null-space
fraction, frequency alignment):

``ours``
    :func:`interp.atlas.weight_scores`: chunks of 512 neurons, one bfloat16
    ``w_out @ W_U`` product per chunk, exact mean/std/frequency cosine from
    ``W_U W_Uᵀ``, third and fourth moments as dot products; unigram counts cached.
``per-layer materialisation``
    TransformerLens style: ``W_out[L] @ W_U`` in float32 for a whole layer
    ([1536, 49152]), ``scipy.stats`` skew and kurtosis, ``topk``, ``np.corrcoef``
    for frequency; timed on ``--peer-layers`` layers and extrapolated to 30.
``per-neuron loop``
    the naive loop: one neuron at a time, same statistics; timed on
    ``--loop-neurons`` neurons and extrapolated to 46,080.

Part 2, **cross-model correlation** between all 512 x 512 MLP neuron pairs of one
layer (``--layer``) of each of the two shipped Bible LMs on the same ``--tokens``
held-out Bible tokens; the target compares it with a capture of the same two
layers:

``ours``
    :func:`interp.atlas.model_correlation`: both forward passes per batch,
    running sums with one GEMM per batch (bfloat16) plus the random-direction baseline's
    Gram matrices on every ``baseline_every``-th batch; no activation outlives its batch.
``capture``
    :func:`interp.capture.capture_activations` of the same two layers (that
    layer of each model) per batch, in memory, activations dropped: the floor,
    a capture that computes nothing.
``capture_to_store``
    :func:`interp.capture.capture_to_store` of both models (the store a
    two-pass method would write before reading it back for the correlation).
``ours_all_layers`` / ``capture_all_layers``
    the same for every layer of both models at once (1,024 x 1,024 pairs): shown
    for information; with these tiny models the all-pairs GEMM costs more than
    the forward pass, so this ratio sits below the target's.

Part 3 (``--part retrieval``, not in ``all``): precision@5 of retrieving a Bible
book's held-out chapters from five of its train chapters, by SAE codes (a
small top-k SAE on SmolLM2's ``blocks.3.hook_resid_post``, trained here unless
``--sae`` is given; max-pooled, weighted Jaccard and cosine), raw activations
(mean-pooled, cosine) and MiniLM sentence embeddings (cosine).

Every method runs once untimed (first-call costs), then ``--rounds`` times in one
process: each round runs ``ours`` and ``capture`` back to back (order alternating),
likewise the all-layers pair, and the groups rotate. The table gives medians,
and each ratio is the median of the rounds' ratios, so a machine whose speed
drifts (a shared VM) hits both sides of a ratio alike. Targets: weight scores
under 60 s on 2 cores; correlation pass >= 0.8x the in-memory capture.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

N_LAYERS, D_MLP = 30, 1536


def _peer_stats(w_out: Any, w_u: Any, null: Any, f_c: Any) -> dict:
    """The statistics a user would compute on a materialised ``[n, d_vocab]`` logit table."""
    import numpy as np
    import scipy.stats

    x = (w_out @ w_u).numpy()  # [n, d_vocab] float32
    top = np.argpartition(-x, 10, axis=1)[:, :10]
    bot = np.argpartition(x, 10, axis=1)[:, :10]
    xc = x - x.mean(1, keepdims=True)
    freq = (xc @ f_c) / (np.linalg.norm(xc, axis=1) * np.linalg.norm(f_c))
    return {"kurtosis": scipy.stats.kurtosis(x, axis=1, fisher=False), "skew": scipy.stats.skew(x, axis=1),
            "top": top, "bottom": bot, "freq": freq, "null": ((w_out @ null.T) ** 2).sum(1).numpy()}  # fmt: skip


def _weights_part(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    import interp
    from interp.atlas.frequency import log_frequency, unigram_counts
    from interp.atlas.weights import WeightConfig, null_space, weight_scores

    torch.set_num_threads(args.threads)
    model = interp.load_model("smollm2-135m")
    t0 = time.perf_counter()
    counts = unigram_counts(model, "bible", d_vocab=model.cfg.d_vocab)
    count_s = time.perf_counter() - t0
    ours, ours_cpu = [], []
    for r in range(args.rounds_weights):
        t0, c0 = time.perf_counter(), time.process_time()
        table = weight_scores(model, config=WeightConfig())
        ours.append(time.perf_counter() - t0)
        ours_cpu.append(time.process_time() - c0)
        print(f"weights round {r + 1}: ours {ours[-1]:.1f}s wall, {ours_cpu[-1]:.1f}s cpu", file=sys.stderr)
    w_u = model.W_U.detach().float()
    null, _ = null_space(w_u, 10)
    f = log_frequency(counts).numpy()
    f_c = f - f.mean()
    t0, c0 = time.perf_counter(), time.process_time()
    peer = {}
    for layer in range(args.peer_layers):
        peer[layer] = _peer_stats(model.blocks[layer].mlp.W_out.detach().float(), w_u, null, f_c)
    layer_s, layer_cpu = ((time.perf_counter() - t0) / args.peer_layers, (time.process_time() - c0) / args.peer_layers)
    t0, c0 = time.perf_counter(), time.process_time()
    w29 = model.blocks[29].mlp.W_out.detach().float()
    for i in range(args.loop_neurons):
        _peer_stats(w29[i : i + 1], w_u, null, f_c)
    neuron_s, neuron_cpu = ((time.perf_counter() - t0) / args.loop_neurons,
                            (time.process_time() - c0) / args.loop_neurons)  # fmt: skip
    t0_ = table[table.layer == 0]
    err = float(np.max(np.abs(t0_.vocab_kurtosis.to_numpy() - peer[0]["kurtosis"]) / peer[0]["kurtosis"]))
    return {"ours_s": statistics.median(ours), "ours_rounds": ours, "unigram_count_s_first_or_cached": count_s,
            "ours_cpu_s": statistics.median(ours_cpu), "per_layer_peer_cpu_s": layer_cpu * N_LAYERS,
            "per_neuron_peer_cpu_s": neuron_cpu * N_LAYERS * D_MLP, "load_average": os.getloadavg(),
            "per_layer_peer_s": layer_s * N_LAYERS, "per_layer_measured_layers": args.peer_layers,
            "per_neuron_peer_s": neuron_s * N_LAYERS * D_MLP, "per_neuron_measured": args.loop_neurons,
            "kurtosis_max_rel_err_vs_float32_peer": err, "threads": torch.get_num_threads(),
            "neurons": len(table)}  # fmt: skip


def _correlation_part(args: argparse.Namespace) -> dict:
    import torch

    from interp.atlas.bible_lms import load_bible_lm
    from interp.atlas.universal import comparison_tokens, model_correlation
    from interp.capture import TokenSource, capture_activations, capture_to_store

    torch.set_num_threads(args.threads)
    a, b = load_bible_lm("bible-lm-s0"), load_bible_lm("bible-lm-s1")
    tokens, _ = comparison_tokens(a, b, "bible", args.tokens)
    pair = [f"blocks.{args.layer}.mlp.hook_post"]  # the same layer of each model: the target's case
    every = [f"blocks.{i}.mlp.hook_post" for i in range(int(a.cfg.n_layers))]
    bs = args.batch_size
    result: dict[str, Any] = {}

    def correlate(layers: list[int] | None, key: str) -> Callable[[], None]:
        def run() -> None:
            result[key] = model_correlation(a, b, tokens, layers=layers, layers_b=layers, batch_size=bs)

        return run

    def capture(hooks: list[str]) -> Callable[[], None]:
        def run() -> None:
            for i in range(0, len(tokens), bs):
                for m in (a, b):
                    capture_activations(m, tokens[i : i + bs], hooks)

        return run

    def to_store() -> None:
        with tempfile.TemporaryDirectory(prefix="bench-atlas-") as tmp:
            for name, m in (("a", a), ("b", b)):
                capture_to_store(m, TokenSource(tokens, name="bench", bos=True), pair, Path(tmp) / name,
                                 batch_size=bs, progress=False)  # fmt: skip

    methods = {"ours": correlate([args.layer], "corr"), "capture": capture(pair), "capture_to_store": to_store,
               "ours_all_layers": correlate(None, "corr_all"), "capture_all_layers": capture(every)}  # fmt: skip
    for run in methods.values():  # warm-up: first-call costs (oneDNN kernels, buffers) are nobody's throughput
        run()
    rates: dict[str, list[float]] = {m: [] for m in methods}
    cpu_rates: dict[str, list[float]] = {m: [] for m in methods}
    # each method next to the capture it is compared with (order alternating), groups rotating
    groups = [["ours", "capture"], ["ours_all_layers", "capture_all_layers"], ["capture_to_store"]]
    for r in range(args.rounds):
        for m in (m for g in groups[r % 3 :] + groups[: r % 3] for m in (g if r % 2 == 0 else g[::-1])):
            t0, c0 = time.perf_counter(), time.process_time()
            methods[m]()
            rates[m].append(tokens.numel() / (time.perf_counter() - t0))
            cpu_rates[m].append(tokens.numel() / (time.process_time() - c0))
            print(f"correlation round {r + 1}: {m:<19} {rates[m][-1]:9.0f} tokens/s wall, {cpu_rates[m][-1]:9.0f} "
                  "tokens per cpu s", file=sys.stderr)  # fmt: skip

    def ratio(x: str, y: str, table: dict[str, list[float]]) -> float:
        return statistics.median(p / q for p, q in zip(table[x], table[y], strict=True))

    return {"tokens": tokens.numel(), "layer": args.layer, "rates": rates,
            "median": {m: statistics.median(v) for m, v in rates.items()},
            "ours_vs_capture": ratio("ours", "capture", rates),
            "ours_vs_capture_cpu": ratio("ours", "capture", cpu_rates),
            "all_layers_vs_capture": ratio("ours_all_layers", "capture_all_layers", rates),
            "summary": result["corr"].summary(), "summary_all_layers": result["corr_all"].summary(),
            "cpu_rates": cpu_rates, "cpu_median": {m: statistics.median(v) for m, v in cpu_rates.items()},
            "load_average": os.getloadavg(), "threads": torch.get_num_threads()}  # fmt: skip


def _retrieval_part(args: argparse.Namespace) -> dict:
    """Precision@5 of Bible-book retrieval by SAE codes, raw activations and MiniLM embeddings."""
    import torch

    import interp
    from interp.atlas.retrieval import evaluate_retrieval
    from sae_training.saelens_io import load_sae

    torch.set_num_threads(args.threads)
    layer = 3
    hook = f"blocks.{layer}.hook_resid_post"
    model = interp.load_model("smollm2-135m", n_layers=layer + 1)
    sae_dir = args.sae
    if sae_dir is None:  # a small top-k SAE, trained here (a few minutes on 2 cores)
        from sae_training import train_sae

        res = train_sae({"model": "smollm2-135m", "hook": hook, "dataset": "bible", "tokens": 100_000,
                         "context_size": 64, "arch": "topk", "d_sae": 2304, "k": 32, "batch_size": 1024, "lr": 1e-3,
                         "out": str(Path(tempfile.mkdtemp(prefix="bench-atlas-sae-"))), "eval": False,
                         "progress": False}, model=model)  # fmt: skip
        sae_dir = str(res.saes[hook])
    t0 = time.perf_counter()
    df = evaluate_retrieval(model, hook, load_sae(sae_dir), k=5)
    return {"sae": sae_dir, "hook": hook, "seconds": time.perf_counter() - t0,
            "rows": df.to_dict("records")}  # fmt: skip


def _retrieval_table(r: dict) -> list[str]:
    rows = [x for x in r["rows"] if x["book"] == -1]
    lines = [f"atlas part 3: retrieve a Bible book's held-out chapters from 5 of its train chapters "
             f"(books 19, 20, 5, 2, 24; SAE at {r['hook']})", "",
             f"{'representation':<16}{'similarity':<18}{'precision@5':>12}{'chance':>8}"]  # fmt: skip
    lines += [f"{x['representation']:<16}{x['similarity']:<18}{x['precision']:>12.2f}{x['chance']:>8.2f}" for x in rows]
    return lines + [""]


def _table(w: dict | None, c: dict | None) -> str:
    met = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    lines = []
    if w:
        lines += [f"atlas part 1: weight scores of {w['neurons']:,} SmolLM2 MLP neurons, {w['threads']} threads", "",
                  f"{'method':<34}{'wall s':>10}{'cpu s':>10}{'vs ours':>10}",
                  f"{'ours (interp.atlas.weight_scores)':<34}{w['ours_s']:>10.1f}{w['ours_cpu_s']:>10.1f}{1.0:>9.1f}x",
                  f"{'per-layer materialisation*':<34}{w['per_layer_peer_s']:>10.1f}{w['per_layer_peer_cpu_s']:>10.1f}"
                  f"{w['per_layer_peer_cpu_s'] / w['ours_cpu_s']:>9.1f}x",
                  f"{'per-neuron loop*':<34}{w['per_neuron_peer_s']:>10.1f}{w['per_neuron_peer_cpu_s']:>10.1f}"
                  f"{w['per_neuron_peer_cpu_s'] / w['ours_cpu_s']:>9.1f}x",
                  "", f"* extrapolated from {w['per_layer_measured_layers']} layers / {w['per_neuron_measured']} "
                  "neurons timed in this run",
                  f"unigram counts (first run tokenises the Bible, later runs read the cache): "
                  f"{w['unigram_count_s_first_or_cached']:.1f}s",
                  f"kurtosis, bf16 products vs float32 peer (layer 0): max relative error "
                  f"{w['kurtosis_max_rel_err_vs_float32_peer']:.2e}",
                  f"target: ours < 60 s on 2 cores: {met(w['ours_s'] < 60)} (wall); cpu s / 2 = "
                  f"{w['ours_cpu_s'] / 2:.1f} s: {met(w['ours_cpu_s'] / 2 < 60)}",
                  f"load average during the run: {w['load_average'][0]:.1f} (a shared machine inflates wall time; "
                  "'vs ours' compares cpu seconds)", ""]  # fmt: skip
    if c:
        s = c["summary"]
        lines += [f"atlas part 2: correlation of all 512 x 512 MLP neuron pairs of layer {c['layer']} of bible-lm-s0 "
                  f"and bible-lm-s1 on {c['tokens']:,} tokens, {c['threads']} threads", "",
                  f"{'method':<20}{'tokens/s':>12}{'tokens/cpu s':>14}"]  # fmt: skip
        lines += [f"{m:<20}{v:>12,.0f}{c['cpu_median'][m]:>14,.0f}" for m, v in c["median"].items()]
        ok, ok_cpu = met(c["ours_vs_capture"] >= 0.8), met(c["ours_vs_capture_cpu"] >= 0.8)
        lines += ["", f"ours / capture  {c['ours_vs_capture']:.2f}x wall (target >= 0.8x: {ok}), "
                  f"{c['ours_vs_capture_cpu']:.2f}x per cpu second ({ok_cpu}); load average {c['load_average'][0]:.1f}",
                  f"all layers (1,024 x 1,024 pairs, both layers) / capture of both layers: "
                  f"{c['all_layers_vs_capture']:.2f}x wall (not the target's case: the all-pairs GEMM then costs",
                  "more than these tiny models' forward pass)",
                  "universal neurons (max corr > 0.5) per model (a: s0, b: s1) and layer, against as many random",
                  "directions in the other model's activation space (baseline):"]  # fmt: skip
        for k in sorted(x for x in s if x.startswith(("a.", "b."))):
            lines.append(f"  {k}: {s[k]['universal']:.1%} universal (baseline {s[k]['baseline']:.1%}), "
                         f"median max corr {s[k]['median_max_corr']:.2f} "
                         f"(baseline {s[k]['median_baseline']:.2f})")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("all", "weights", "correlation", "retrieval"), default="all",
                   help="which part to run (all: weights and correlation)")  # fmt: skip
    p.add_argument("--sae", help="SAE folder for --part retrieval (default: train a small one)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    p.add_argument("--rounds-weights", type=int, default=1, help="timed runs of ours, part 1 (default %(default)s)")
    p.add_argument("--peer-layers", type=int, default=2, help="layers the per-layer peer is timed on")
    p.add_argument("--loop-neurons", type=int, default=32, help="neurons the per-neuron peer is timed on")
    p.add_argument("--tokens", type=int, default=32768, help="tokens of part 2 (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="contexts per batch in part 2 (default %(default)s)")
    p.add_argument("--layer", type=int, default=1, help="MLP layer correlated in part 2 (default %(default)s)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds of part 2 (default %(default)s)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    w = _weights_part(args) if args.part in ("all", "weights") else None
    c = _correlation_part(args) if args.part in ("all", "correlation") else None
    r = _retrieval_part(args) if args.part == "retrieval" else None
    print("\n".join(_retrieval_table(r)) if r else _table(w, c))
    if args.json:
        Path(args.json).write_text(json.dumps({"weights": w, "correlation": c, "retrieval": r}, indent=1,
                                              default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
