"""Benchmark: circuit-discovery methods scored against the exact patching truth of the shipped models.

For each ground-truth model (:mod:`circuits.models`: ``induction-2l``, 81 edges;
``planted-4x8``, 1,281 edges) and each method, on the model's induction task
(the same seeded prompts the truth was measured on):

- edge methods (EAP, EAP-IG, ACDC): ROC-AUC of |score| against the true edges,
  precision and recall of the method's own selection (EAP / EAP-IG: edges whose
  estimated effect is ≥ the truth's threshold, 2 % of the clean−corrupt gap;
  ACDC with the metric objective and the same threshold: the edges it keeps),
  faithfulness of that selection, runtime;
- node methods (activation patching of each head, SAE-code heads, direct logit
  attribution: :func:`circuits.logit.direct_logit_attribution`, which sees only
  the heads that write to the logits directly): ROC-AUC over
  heads against the true heads, precision / recall of the selection (patching
  and DLA: |effect| ≥ the truth's threshold; SAE codes: score ≥ 0.9 × the best
  head's), the faithfulness of the circuit made of every edge among the
  selected heads.

The speed peer is our own ACDC (auto-circuit cannot be installed here), measured
in the same run; ``EAP speed-up`` is ACDC's runtime over EAP's.

    python bench/circuits.py --json bench-circuits.json        # a few minutes on 2 cores
    python bench/circuits.py --quick                          # induction-2l only, no ACDC on planted
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# Run as a script, this file's folder comes first on sys.path and this module would shadow the package
# ``circuits``; drop the folder so the imports below find the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from circuits.graph import Graph  # noqa: E402
from circuits.models import MODEL_NAMES, circuit_truth, induction_task, load_circuit_model  # noqa: E402
from circuits.result import Circuit, compare_to_truth, faithfulness  # noqa: E402

SAE_RELATIVE = 0.9  # SAE-code heads: selected when their code-flip score is within 10 % of the best head's


def _auc(scores: dict[str, float], positives: set[str]) -> float:
    from sklearn.metrics import roc_auc_score

    names = sorted(scores)
    y = [n in positives for n in names]
    return float(roc_auc_score(y, [abs(scores[n]) for n in names])) if 0 < sum(y) < len(y) else float("nan")


def _node_circuit(graph: Graph, heads: set[str]) -> Circuit:
    """Every edge whose sender is the input or a selected head and whose receiver is a selected head or logits."""
    keep = torch.zeros_like(graph.valid)
    for j, r in enumerate(graph.receivers):
        if r == "logits" or graph.receiver_node(r) in heads:
            for i, u in enumerate(graph.upstream):
                keep[i, j] = u == "input" or u in heads
    keep &= graph.valid
    return Circuit(graph, keep.float(), keep, "nodes")


def _edge_row(model: Any, task: Any, truth: dict, circuit: Circuit, seconds: float) -> dict:
    true = set(truth["circuit_edges"])
    cmp = compare_to_truth(circuit, true)
    faith = faithfulness(model, task, circuit).score
    return {"level": "edge", "roc_auc": cmp["roc_auc"], "precision": cmp["precision"], "recall": cmp["recall"],
            "n_selected": cmp["n_selected"], "faithfulness": faith, "seconds": seconds}  # fmt: skip


def _node_row(model: Any, task: Any, truth: dict, graph: Graph, scores: dict[str, float], selected: set[str],
              seconds: float) -> dict:  # fmt: skip
    true = set(truth["circuit_nodes"])
    tp = len(true & selected)
    faith = faithfulness(model, task, _node_circuit(graph, selected)).score
    return {"level": "node", "roc_auc": _auc(scores, true), "precision": tp / max(len(selected), 1),
            "recall": tp / max(len(true), 1), "n_selected": len(selected), "faithfulness": faith,
            "seconds": seconds}  # fmt: skip


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def run_model(name: str, *, acdc: bool = True, n: int | None = None) -> dict[str, dict]:
    """Every method on one shipped model; ``{method: row}``.

    The methods see the first ``n`` prompts of the truth's task (all of them when ``None``).
    """
    from circuits.attribution import eap, eap_ig
    from circuits.patching import patch_heads
    from circuits.sae_heads import sae_code_heads

    model, _ = load_circuit_model(name)
    truth = circuit_truth(name)
    task = induction_task(name, n=truth["task_n"], seed=truth["task_seed"]).select(slice(0, n))
    graph = Graph.from_model(model)
    tau = truth["threshold_value"]
    rows: dict[str, dict] = {}
    for method, fn in (("EAP", lambda: eap(model, task)), ("EAP-IG", lambda: eap_ig(model, task, steps=5))):
        scored, secs = _timed(fn)
        rows[method] = _edge_row(model, task, truth, scored.threshold(tau), secs)
    if acdc:
        from circuits.acdc import acdc as run_acdc

        found, secs = _timed(lambda: run_acdc(model, task, tau=tau, objective="metric"))
        rows["ACDC"] = _edge_row(model, task, truth, found, secs)
    heads = [f"a{layer}.h{h}" for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    effects, secs = _timed(lambda: patch_heads(model, task))
    scores = dict(zip(heads, effects.flatten().tolist(), strict=True))
    rows["act. patching (heads)"] = _node_row(model, task, truth, graph, scores,
                                              {h for h, v in scores.items() if abs(v) >= tau}, secs)  # fmt: skip
    sae, secs = _timed(lambda: sae_code_heads(model, task))
    scores = sae.as_dict()
    top = max(scores.values())
    rows["SAE-code heads"] = _node_row(model, task, truth, graph, scores,
                                       {h for h, v in scores.items() if v >= SAE_RELATIVE * top}, secs)  # fmt: skip
    scores, secs = _dla(model, task, heads)
    rows["DLA (heads)"] = _node_row(model, task, truth, graph, scores,
                                        {h for h, v in scores.items() if abs(v) >= tau}, secs)  # fmt: skip
    return rows


def _dla(model: Any, task: Any, heads: list[str]) -> tuple[dict[str, float], float]:
    """Direct logit attribution per head (its contribution to the answer's logit difference) and runtime."""
    from circuits.logit import direct_logit_attribution

    out, secs = _timed(lambda: direct_logit_attribution(model, task).by_head)
    return dict(zip(heads, out.flatten().tolist(), strict=True)), secs


def _table(results: dict[str, dict[str, dict]]) -> str:
    lines = [f"{'model':<14}{'method':<24}{'level':<6}{'ROC-AUC':>8}{'prec':>7}{'recall':>8}{'n sel':>7}"
             f"{'faithful':>10}{'seconds':>10}"]  # fmt: skip
    for name, rows in results.items():
        for method, r in rows.items():
            if "skipped" in r:
                lines.append(f"{name:<14}{method:<24}{r['level']:<6}  skipped: {r['skipped']}")
                continue
            auc = f"{r['roc_auc']:>8.3f}" if r["roc_auc"] == r["roc_auc"] else f"{'n/a':>8}"
            lines.append(f"{name:<14}{method:<24}{r['level']:<6}{auc}{r['precision']:>7.2f}"
                         f"{r['recall']:>8.2f}{r['n_selected']:>7d}{r['faithfulness']:>10.3f}"
                         f"{r['seconds']:>10.2f}")  # fmt: skip
    return "\n".join(lines)


def targets(results: dict[str, dict[str, dict]]) -> dict[str, dict[str, Any]]:
    """The benchmark's targets, each with its measured value and whether it is met."""
    out: dict[str, dict[str, Any]] = {}
    ind = results.get("induction-2l", {})
    if "EAP-IG" in ind:
        v = ind["EAP-IG"]["roc_auc"]
        out["EAP-IG ROC-AUC on induction-2l >= 0.95"] = {"value": v, "met": v >= 0.95}
    for name, rows in results.items():
        v = rows.get("SAE-code heads", {}).get("roc_auc", float("nan"))
        if v == v:  # NaN when every head is in the true circuit (induction-2l): no ranking to score
            out[f"SAE-code head ROC-AUC on {name} >= 0.85"] = {"value": v, "met": v >= 0.85}
    big = results.get("planted-4x8", {})
    if "EAP" in big and "seconds" in big.get("ACDC", {}):
        speed = big["ACDC"]["seconds"] / big["EAP"]["seconds"]
        gap = big["ACDC"]["roc_auc"] - big["EAP"]["roc_auc"]
        out["EAP speed-up over ACDC on planted-4x8 >= 100x"] = {"value": speed, "met": speed >= 100}
        out["EAP ROC-AUC within 0.05 of ACDC on planted-4x8"] = {"value": gap, "met": gap <= 0.05}
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    p.add_argument("--quick", action="store_true", help="induction-2l only (a smoke run)")
    p.add_argument("--no-acdc", action="store_true", help="skip ACDC (the slow peer)")
    p.add_argument("--n", type=int, default=32, help="prompts the methods see (the truth used 64; default %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    models = ["induction-2l"] if args.quick else args.models
    t0 = time.perf_counter()
    results = {name: run_model(name, acdc=not args.no_acdc, n=args.n) for name in models}
    met = targets(results)
    print(f"circuit discovery vs exact edge-patching truth; {torch.get_num_threads()} torch threads\n")
    print(_table(results))
    print()
    for k, v in met.items():
        print(f"{k:<52}{v['value']:>9.3f}  {'met' if v['met'] else 'MISSED'}")
    total = time.perf_counter() - t0
    print(f"\ntotal {total:.0f} s. AUC: |score| ranking of true edges (edge level) or heads (node level; n/a when "
          "every head is in the true circuit); faithfulness: metric of the selection alone (the rest patched to "
          "corrupt), 0 = corrupt run, 1 = full model.")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "targets": met, "seconds": total}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
