"""Train the shipped concept ViTs (``concepts`` and ``spurious``) on synthetic concept images.

Writes ``interp/data/concept_vit/{variant}.safetensors`` (the HookedViT state dict
plus ``head.weight`` / ``head.bias``) and ``{variant}.json`` (config, designated
units, held-out metrics, seed, the exact command, versions).

- ``concepts``: loss = BCE of the CLS head's concept-presence logits + balanced
  per-patch BCE on the pre-activation of one designated MLP neuron per concept
  (target 1 where the concept covers ≥ half the patch, 0 where it covers none,
  ignored in between); the neurons are listed in the record as the truth.
- ``spurious``: cross-entropy of circle vs bar on the ``train`` split, where a
  red or blue object's colour follows the class 95% of the time and 30% of the
  objects are green or yellow (no cue); accuracy is then measured on the
  ``heldout``, colour-``reversed`` and shape-only splits.

Deterministic (seeded, one thread by default). Usage::

    python scripts/train_concept_vit.py                  # both variants, ~3-5 min on 1 core
    python scripts/train_concept_vit.py --variant spurious --out-dir /tmp/cvit
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save
from torch import Tensor, nn
from tqdm import tqdm

from interp.cache import atomic_write, atomic_write_text
from interp.datasets.concepts import CONCEPTS, SPURIOUS_CLASSES, ConceptSet, concept_images
from interp.models.concept_vit import (
    VARIANTS,
    concept_vit_config,
    designated_unit_aurocs,
    patch_targets,
    plan_designated_units,
)
from interp.models.vit import HookedViT

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "interp" / "data" / "concept_vit"
#: How the designated units were trained and scored (recorded with the concepts variant).
UNIT_TARGETS = (
    "per patch: 1 where the concept covers >= 0.5 of the patch, 0 where it covers none, ignored in between; "
    "trained with balanced BCE on blocks.{{L}}.mlp.hook_pre (logit) of the unit (hard-negative weight {w}). "
    "heldout_unit_auroc uses all negatives; heldout_unit_auroc_vs_other_objects only patches >= 0.5 covered by "
    "objects without the concept (interp.models.concept_vit.patch_targets, negatives='all' / 'objects')"
)
#: Default passes over the training images per variant (fewer for spurious, so colour still dominates shape).
DEFAULT_EPOCHS = {"concepts": 12, "spurious": 8}
#: Accuracy splits of the spurious variant: (name, split, neutral_fraction; None = the training one).
SPURIOUS_EVALS = (
    ("train", "train", None),
    ("heldout", "heldout", None),
    ("heldout_confounded", "heldout", 0.0),  # red and blue only, colour follows the class 95%
    ("reversed", "reversed", 0.0),  # red and blue only, colour contradicts the class 95%
    ("shape_only", "heldout", 1.0),  # green and yellow only: what shape alone gives
)


def unit_loss(pre: Tensor, target: Tensor, hard: Tensor, hard_weight: float = 0.0) -> Tensor:
    """Balanced BCE of pre-activations ``[b, unit, patch]``, mean over units.

    Positives (``target == 1``) and negatives (``target == 0``, mostly background) weigh the same;
    ``hard_weight`` adds a term for hard negatives (``hard == 0``: patches of objects without the
    concept). It is off by default: at this size the model cannot tell the inside of a circle from
    the inside of a square, and the term only makes the shape units hedge (AUROC 0.97 -> 0.71).
    """
    pos, neg = target == 1, target == 0

    def mean(loss: Tensor, where: Tensor) -> Tensor:  # [b, unit, patch] -> [unit]
        return (loss * where).sum((0, 2)) / where.sum((0, 2)).clamp(min=1)

    loss = mean(F.softplus(-pre), pos) + mean(F.softplus(pre), neg)
    if hard_weight:
        loss = loss + hard_weight * mean(F.softplus(pre), hard == 0)
    return loss.mean()


def batch_loss(model, head, designated, batch, hard_weight: float = 0.0) -> Tensor:
    """Loss of one batch; ``batch`` is ``(pixels, labels[, patch targets, hard patch targets])``."""
    pre: dict[str, Tensor] = {}

    def keep(act: Tensor, hook) -> Tensor:
        pre[hook.name] = act
        return act

    hooks = [(h.replace("hook_post", "hook_pre"), keep) for h in designated]
    with model.hooks(fwd_hooks=hooks):
        logits = head(model(batch[0])[:, 0])  # CLS of the final LN output -> [b, classes]
    if not designated:
        return F.cross_entropy(logits, batch[1])
    loss = F.binary_cross_entropy_with_logits(logits, batch[1])
    for hook, units in designated.items():
        idx = [int(u) for u in units]
        cols = [CONCEPTS.index(c) for c in units.values()]
        acts = pre[hook.replace("hook_post", "hook_pre")][:, 1:, idx].transpose(1, 2)  # [b, unit, patch]
        loss = loss + unit_loss(acts, batch[2][:, cols], batch[3][:, cols], hard_weight)
    return loss


def tensors_for(cset: ConceptSet, variant: str) -> list[Tensor]:
    """The training tensors of a split: pixels, labels and (concepts) per-patch targets."""
    if variant == "spurious":
        return [cset.pixels(), torch.from_numpy(cset.labels)]
    return [cset.pixels(), cset.present().float(), patch_targets(cset), patch_targets(cset, negatives="objects")]


def fit(model, head, designated, data: list[Tensor], args, variant: str) -> list[float]:
    """AdamW with a cosine schedule over ``args.epochs`` shuffled passes; returns the loss per epoch."""
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    n = data[0].shape[0]
    steps = args.epochs * (n // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(args.seed)
    losses = []
    for epoch in tqdm(range(args.epochs), desc=f"train {variant}", disable=not args.progress):
        order, total = torch.randperm(n, generator=gen), 0.0
        for start in range(0, n - args.batch_size + 1, args.batch_size):
            idx = order[start : start + args.batch_size]
            loss = batch_loss(model, head, designated, [t[idx] for t in data], args.hard_negative_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        losses.append(round(total / n, 4))
        print(f"{variant} epoch {epoch + 1}/{args.epochs}: loss {losses[-1]:.4f}", flush=True)
    return losses


@torch.no_grad()
def evaluate(model, head, designated, variant: str, args) -> dict:
    """Held-out metrics: unit AUROCs and presence accuracy, or accuracy per spurious split."""
    model.eval()
    if variant == "spurious":
        out = {}
        for name, split, neutral in SPURIOUS_EVALS:
            nf = args.neutral_fraction if neutral is None else neutral
            cset = concept_images(args.n_eval, args.seed, split, task="spurious", neutral_fraction=nf)
            pred = head(model(cset.pixels())[:, 0]).argmax(-1)
            out[f"{name}_accuracy"] = round(float((pred == torch.from_numpy(cset.labels)).float().mean()), 4)
        return out
    cset = concept_images(args.n_eval, args.seed, "heldout")
    present = cset.present().float()  # [n, concept]
    pred = (head(model(cset.pixels())[:, 0]) > 0).float()
    aurocs = designated_unit_aurocs(model, designated, cset)
    hard = designated_unit_aurocs(model, designated, cset, negatives="objects")
    correct = (pred == present).float()  # [n, concept]
    per_concept = [round(v, 4) for v in correct.mean(0).tolist()]
    majority = torch.maximum(present.mean(0), 1 - present.mean(0))  # [concept]
    return {
        "heldout_presence_accuracy": round(float(correct.mean()), 4),
        "heldout_presence_accuracy_per_concept": dict(zip(CONCEPTS, per_concept, strict=True)),
        "majority_baseline_presence_accuracy": round(float(majority.mean()), 4),
        "heldout_unit_auroc": aurocs,
        "min_heldout_unit_auroc": min(aurocs.values()),
        "heldout_unit_auroc_vs_other_objects": hard,
        "min_heldout_unit_auroc_vs_other_objects": min(hard.values()),
    }


def train_variant(variant: str, args) -> dict:
    """Train, evaluate and write one variant; returns its record."""
    t0 = time.perf_counter()
    args = argparse.Namespace(**{**vars(args), "epochs": args.epochs or DEFAULT_EPOCHS[variant]})
    torch.manual_seed(args.seed)
    cfg = concept_vit_config(variant)
    model = HookedViT(cfg)
    head = nn.Linear(cfg.d_model, len(CONCEPTS) if variant == "concepts" else len(SPURIOUS_CLASSES))
    designated = plan_designated_units(cfg.d_mlp, args.seed) if variant == "concepts" else {}
    nf = args.neutral_fraction if variant == "spurious" else 0.0
    train = concept_images(args.n_train, args.seed, "train", task=variant, neutral_fraction=nf)
    losses = fit(model, head, designated, tensors_for(train, variant), args, variant)
    metrics = evaluate(model, head, designated, variant, args)
    record = make_record(variant, args, head, metrics, losses, round(time.perf_counter() - t0, 1))
    write(model, head, record, args.out_dir, variant)
    print(f"{variant}: {json.dumps(metrics)} ({record['seconds']} s)", flush=True)
    return record


def make_record(variant: str, args, head: nn.Linear, metrics: dict, losses: list[float], seconds: float) -> dict:
    """The JSON record shipped next to the weights."""
    cfg = concept_vit_config(variant)
    nf = args.neutral_fraction if variant == "spurious" else 0.0
    units = {"unit_targets": UNIT_TARGETS.format(w=args.hard_negative_weight)} if variant == "concepts" else {}
    return {
        "name": f"concept-vit-{variant}",
        "variant": variant,
        "config": cfg.to_dict(),
        "head": f"nn.Linear({cfg.d_model}, {head.out_features}) on the final-LN CLS token; classes in 'classes'",
        "classes": list(CONCEPTS) if variant == "concepts" else list(SPURIOUS_CLASSES),
        "designated_units": plan_designated_units(cfg.d_mlp, args.seed) if variant == "concepts" else {},
        **units,
        "dataset": f"interp.datasets.concepts.concept_images(n, seed={args.seed}, split, task={variant!r}, "
        f"size=48, neutral_fraction={nf})",
        "n_train": args.n_train,
        "n_eval": args.n_eval,
        "metrics": metrics,
        "train_loss_per_epoch": losses,
        "hyperparameters": {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "seed", "threads")},
        "neutral_fraction": nf,
        "seconds": seconds,
        "command": reproduce_command(variant, args),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
    }


def reproduce_command(variant: str, args) -> str:
    """The command that rebuilds this variant (every option that changes the result, none that do not)."""
    opts = (
        "n_train",
        "n_eval",
        "epochs",
        "batch_size",
        "lr",
        "neutral_fraction",
        "hard_negative_weight",
        "seed",
        "threads",
    )
    flags = " ".join(f"--{k.replace('_', '-')} {getattr(args, k)}" for k in opts)
    return f"python scripts/train_concept_vit.py --variant {variant} {flags}"


def write(model, head, record: dict, out_dir: Path, variant: str) -> None:
    """Write the weights and the record atomically (weights first, so a record never lacks its weights)."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    state |= {f"head.{k}": v.detach().contiguous() for k, v in head.state_dict().items()}
    blob = save(state, metadata={"variant": variant})
    atomic_write(out_dir / f"{variant}.safetensors", lambda f: f.write(blob))
    atomic_write_text(out_dir / f"{variant}.json", json.dumps(record, indent=1) + "\n")


def main(argv: list[str] | None = None) -> list[dict]:
    """Parse arguments and train the chosen variants."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", choices=(*VARIANTS, "all"), default="all", help="which variant(s) to train")
    ap.add_argument("--n-train", type=int, default=3000, help="training images")
    ap.add_argument("--n-eval", type=int, default=1000, help="held-out images for the metrics")
    ap.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="passes over the training images (default: 12 for concepts, 8 for spurious)",
    )
    ap.add_argument("--batch-size", type=int, default=64, help="images per step")
    ap.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate (one-cycle schedule)")
    ap.add_argument("--neutral-fraction", type=float, default=0.3, help="spurious: share of cue-free colours")
    ap.add_argument(
        "--hard-negative-weight", type=float, default=0.0, help="concepts: weight of other objects' patches"
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the data, the init and the unit choice")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 keeps runs bit-identical)")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="where the weight and record files go")
    ap.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    variants = VARIANTS if args.variant == "all" else (args.variant,)
    return [train_variant(v, args) for v in variants]


if __name__ == "__main__":
    main()
