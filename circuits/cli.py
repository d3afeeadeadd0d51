"""``interp circuits``: run a circuit-discovery method on a model and a named task; write JSON and HTML.

The main CLI (:mod:`interp.cli`) calls :func:`register`. Heavy imports happen
inside :func:`run_circuits`, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from interp.errors import InputError

__all__ = ["register", "run_circuits", "METHODS", "TASK_NAMES"]

METHODS = ("eap", "eap-ig", "exact", "acdc")
#: The names of :data:`circuits.tasks.TASKS` (listed here so ``--help`` does not import torch).
TASK_NAMES = ("induction", "ioi", "greater-than", "docstring", "multiple-choice")

DESCRIPTION = """\
Score every edge of the model's graph (input, heads, MLPs, logits; q/k/v inputs
separate) on a task's clean/corrupt pairs with one method, select a circuit
(--top-k, or ACDC's own threshold), measure its faithfulness, and write
circuit.json (all edge scores + the selection) and circuit.html (interactive
plotly graph that opens offline) to --out.

examples:
  interp circuits --model smollm2-135m --task induction --method eap --n 16 --seq-len 64 --top-k 100 --out runs/c
  interp circuits --model tests/capture/tiny.py:tiny_model --task induction --method acdc --tau 0.02 --out runs/t
"""


def register(subparsers: Any) -> None:
    """Add the ``circuits`` subcommand."""
    p = subparsers.add_parser(
        "circuits",
        help="circuit discovery: score edges, select a circuit, write JSON + HTML",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        default="smollm2-135m",
        help="registry name, local directory, or a factory file.py:function (default smollm2-135m)",
    )
    p.add_argument("--task", default="induction", choices=TASK_NAMES, help="task (default induction)")
    p.add_argument("--method", default="eap", choices=METHODS, help="scoring method (default eap)")
    p.add_argument("--n", type=int, default=16, help="examples (default 16)")
    p.add_argument("--seq-len", type=int, default=32, help="induction: tokens per example (default 32)")
    p.add_argument("--top-k", type=int, default=50, help="edges kept in the circuit (not for acdc; default 50)")
    p.add_argument("--tau", type=float, default=0.01, help="acdc threshold (default 0.01)")
    p.add_argument("--steps", type=int, default=5, help="eap-ig interpolation steps (default 5)")
    p.add_argument("--ablation", default="corrupt", choices=("corrupt", "mean", "zero", "resample"),
                   help="what patched / ablated edges carry (default corrupt)")  # fmt: skip
    p.add_argument("--batch-size", type=int, help="examples per forward pass (default: as many as fit in 512 tokens)")
    p.add_argument("--seed", type=int, default=0, help="task seed (default 0)")
    p.add_argument("--out", required=True, help="output directory (circuit.json, circuit.html, summary.json)")
    p.set_defaults(func=run_circuits)


def _load_model(spec: str) -> Any:
    from interp.capture.workers import is_factory, load_factory

    if is_factory(spec):
        return load_factory(spec)()
    from interp.models.registry import load_model

    return load_model(spec)


def run_circuits(args: argparse.Namespace) -> int:
    """Run the ``circuits`` subcommand; returns the exit code."""
    from circuits.acdc import acdc
    from circuits.attribution import eap, eap_ig
    from circuits.figure import circuit_figure
    from circuits.patching import patch_edges
    from circuits.result import faithfulness
    from circuits.tasks import induction_task, make_task
    from interp.cache import atomic_write_text
    from interp.reports.offline import write_figures_html

    if args.n < 1 or args.top_k < 0:
        raise InputError(f"--n must be >= 1 and --top-k >= 0; got {args.n} and {args.top_k}.")
    model = _load_model(args.model)
    if args.task == "induction":
        task = induction_task(model, n=args.n, seq_len=args.seq_len, seed=args.seed)
    else:
        task = make_task(args.task, model, n=args.n, seed=args.seed)
    common = {"ablation": args.ablation, "batch_size": args.batch_size, "progress": True}
    if args.method == "acdc":
        circuit = acdc(model, task, tau=args.tau, **common)
    else:
        scored = {"eap": lambda: eap(model, task, **common), "eap-ig": lambda: eap_ig(model, task, steps=args.steps,
                  **common), "exact": lambda: patch_edges(model, task, **common)}[args.method]()  # fmt: skip
        circuit = scored.top_k(args.top_k)
    faith = faithfulness(model, task, circuit, args.ablation)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    circuit.to_json(out / "circuit.json")
    title = f"{args.method} on {task.name}: {circuit.n_edges} edges, faithfulness {faith.score:.3f}"
    write_figures_html(circuit_figure(circuit, title=title), out / "circuit.html", title=title)
    summary = {
        "model": args.model,
        "task": task.name,
        "method": args.method,
        "n_edges": circuit.n_edges,
        "n_graph_edges": circuit.graph.n_edges,
        "faithfulness": faith.__dict__,
        "settings": {k: v for k, v in vars(args).items() if k != "func"},
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    print(f"{args.method}: {circuit.n_edges} of {circuit.graph.n_edges} edges, faithfulness {faith.score:.3f} "
          f"-> {out / 'circuit.json'}, {out / 'circuit.html'}")  # fmt: skip
    return 0
