"""Train the shipped concept ViTs (``concepts`` and ``spurious``) on synthetic concept images.

Writes ``interp/data/concept_vit/{variant}.safetensors`` (the HookedViT state dict
plus ``head.weight`` / ``head.bias``) and ``{variant}.json`` (config, designated
units, held-out metrics, seed, the exact command, versions).

- ``concepts``: loss = BCE of the CLS head's concept-presence logits + balanced
  per-patch BCE on the pre-activation of one designated MLP neuron per concept
  (target 1 where the concept covers ≥ half the patch, 0 where it covers none,
  ignored in between); the neurons are listed in the record as the truth.
- ``spurious``: the trunk is first pretrained to tell, at every patch of the
  last block's MLP neurons (``SPURIOUS_READOUT``), which concepts cover it (so
  those neurons become local feature detectors); then, trunk frozen, a sparse
  (L1) linear head on their mean over patches is fitted with cross-entropy of
  circle vs bar on the ``train`` split, where a red or blue object's colour
  follows the class 95% of the time and 30% of the objects are green or yellow
  (no cue). Every cue the head uses passes through units that can be labelled
  and ablated. Accuracy is then measured on the ``heldout``, colour-``reversed``
  and shape-only splits.

Deterministic (seeded, one thread by default). Usage::

    python scripts/train_concept_vit.py                     # both variants, ~10 min on 1 core
    python scripts/train_concept_vit.py --variant spurious  # only the spurious one (concepts files untouched)
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
    SPURIOUS_READOUT,
    VARIANTS,
    concept_vit_config,
    designated_unit_aurocs,
    patch_targets,
    plan_designated_units,
    pooled_units,
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
DEFAULT_EPOCHS = {"concepts": 12, "spurious": 20}
#: How the spurious variant is trained (recorded with it; see fit_spurious).
SPURIOUS_TRAINING = (
    "stage 1 (pretrain_epochs): the whole ViT and a discarded Linear(d_mlp, 17) applied at every patch of "
    f"{SPURIOUS_READOUT}, BCE of each concept per patch (patch_targets: 1 where it covers >= 0.5 of the patch, "
    "0 where it covers none, ignored in between) on concept_images(n_train, seed, 'train', task='concepts'); "
    "stage 2 (epochs): the trunk frozen, the class head fitted on the patch-means of the spurious train split "
    "(cross-entropy + probe_l1 * |head.weight|_1, a sparse decision layer)"
)
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
    loss = F.binary_cross_entropy_with_logits(logits, batch[1])
    for hook, units in designated.items():
        idx = [int(u) for u in units]
        cols = [CONCEPTS.index(c) for c in units.values()]
        acts = pre[hook.replace("hook_post", "hook_pre")][:, 1:, idx].transpose(1, 2)  # [b, unit, patch]
        loss = loss + unit_loss(acts, batch[2][:, cols], batch[3][:, cols], hard_weight)
    return loss


def tensors_for(cset: ConceptSet) -> list[Tensor]:
    """The training tensors of a concepts split: pixels, presence labels and per-patch targets."""
    return [cset.pixels(), cset.present().float(), patch_targets(cset), patch_targets(cset, negatives="objects")]


def fit(params: list[Tensor], loss_fn, data: list[Tensor], args, name: str, epochs: int) -> list[float]:
    """AdamW with a one-cycle schedule over ``epochs`` shuffled passes; returns the loss per epoch.

    ``loss_fn(batch)`` is the loss of one batch (a list of row-slices of ``data``).
    """
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    n = data[0].shape[0]
    steps = epochs * (n // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(args.seed)
    losses = []
    for epoch in tqdm(range(epochs), desc=f"train {name}", disable=not args.progress):
        order, total = torch.randperm(n, generator=gen), 0.0
        for start in range(0, n - args.batch_size + 1, args.batch_size):
            idx = order[start : start + args.batch_size]
            loss = loss_fn([t[idx] for t in data])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        losses.append(round(total / n, 4))
        print(f"{name} epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}", flush=True)
    return losses


def fit_spurious(model: HookedViT, head: nn.Linear, args) -> list[float]:
    """Pretrain the trunk on per-patch concepts, then fit the class head as a linear probe (trunk frozen).

    Stage 1 (``--pretrain-epochs``): BCE of a throw-away ``Linear(d_mlp, 17)`` applied at every patch
    of :data:`SPURIOUS_READOUT`, predicting which of the 17 concepts cover that patch in images of the
    ``concepts`` task (attributes independent), so the readout units become local feature detectors
    (colours, shapes, textures ...), like a CNN's pretrained last layer, rather than two class
    detectors that mix colour and shape in every unit. Per-patch targets matter: pretrained on
    image-level presence instead, colour spreads to units that fire on the background of a red
    image, which patch-level labels call "class circle" or "top or bottom", and ablating the units
    labelled red or blue then recovers little or nothing, depending on the labelling images.
    Stage 2 (``--epochs``): cross-entropy of the circle/bar head on the frozen units' patch-means
    over the confounded ``spurious`` train split: it leans on the easy colour units and some shape
    units, as a classifier fine-tuned on biased data does. An L1 penalty (``--probe-l1``) makes it
    a sparse decision layer (Wong et al. 2021, "Leveraging sparse linear layers for debuggable deep
    networks"): each class reads fewer units, so the colour shortcut sits in fewer of them.
    Returns the loss per epoch of both stages.
    """
    pre_head = nn.Linear(model.cfg.d_mlp, len(CONCEPTS))
    cset = concept_images(args.n_train, args.seed, "train", task="concepts")
    data = [cset.pixels(), patch_targets(cset).transpose(1, 2)]  # [n, patch, concept]: 1, 0 or NaN (left out)

    def presence_loss(batch: list[Tensor]) -> Tensor:
        acts: list[Tensor] = []
        with model.hooks(fwd_hooks=[(SPURIOUS_READOUT, lambda act, hook: acts.append(act[:, 1:]))]):
            model(batch[0], stop_at_layer=model.cfg.n_layers)
        logits, target = pre_head(acts[0]), batch[1]  # [b, patch, concept] each
        keep = ~target.isnan()
        return F.binary_cross_entropy_with_logits(logits[keep], target[keep])

    params = list(model.parameters()) + list(pre_head.parameters())
    losses = fit(params, presence_loss, data, args, "spurious pretrain", args.pretrain_epochs)
    model.eval().requires_grad_(False)
    train = concept_images(args.n_train, args.seed, "train", task="spurious", neutral_fraction=args.neutral_fraction)
    with torch.no_grad():
        feats = torch.cat([pooled_units(model, x, SPURIOUS_READOUT) for x in train.pixels().split(256)])
    data = [feats, torch.from_numpy(train.labels)]  # [n, d_mlp] pooled units, [n] class

    def probe_loss(batch: list[Tensor]) -> Tensor:  # L1 keeps the decision layer sparse (few units per class)
        return F.cross_entropy(head(batch[0]), batch[1]) + args.probe_l1 * head.weight.abs().sum()

    return losses + fit(list(head.parameters()), probe_loss, data, args, "spurious probe", args.epochs)


@torch.no_grad()
def evaluate(model, head, designated, variant: str, args) -> dict:
    """Held-out metrics: unit AUROCs and presence accuracy, or accuracy per spurious split."""
    model.eval()
    if variant == "spurious":
        out = {}
        for name, split, neutral in SPURIOUS_EVALS:
            nf = args.neutral_fraction if neutral is None else neutral
            cset = concept_images(args.n_eval, args.seed, split, task="spurious", neutral_fraction=nf)
            pred = head(pooled_units(model, cset.pixels(), SPURIOUS_READOUT)).argmax(-1)
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
    if variant == "concepts":
        head = nn.Linear(cfg.d_model, len(CONCEPTS))
    else:
        head = nn.Linear(cfg.d_mlp, len(SPURIOUS_CLASSES))
    designated = plan_designated_units(cfg.d_mlp, args.seed) if variant == "concepts" else {}
    if variant == "spurious":
        losses = fit_spurious(model, head, args)
    else:
        train = concept_images(args.n_train, args.seed, "train", task=variant)
        params = list(model.parameters()) + list(head.parameters())
        loss_fn = lambda b: batch_loss(model, head, designated, b, args.hard_negative_weight)  # noqa: E731
        losses = fit(params, loss_fn, tensors_for(train), args, variant, args.epochs)
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
        "head": f"nn.Linear({cfg.d_model}, {head.out_features}) on the final-LN CLS token; classes in 'classes'"
        if variant == "concepts"
        else f"nn.Linear({cfg.d_mlp}, {head.out_features}) on the mean over patches (CLS excluded) of "
        f"{SPURIOUS_READOUT}; classes in 'classes'",
        **({"readout": SPURIOUS_READOUT, "training": SPURIOUS_TRAINING} if variant == "spurious" else {}),
        "classes": list(CONCEPTS) if variant == "concepts" else list(SPURIOUS_CLASSES),
        "designated_units": plan_designated_units(cfg.d_mlp, args.seed) if variant == "concepts" else {},
        **units,
        "dataset": f"interp.datasets.concepts.concept_images(n, seed={args.seed}, split, task={variant!r}, "
        f"size=48, neutral_fraction={nf})",
        "n_train": args.n_train,
        "n_eval": args.n_eval,
        "metrics": metrics,
        "train_loss_per_epoch": losses,
        "hyperparameters": {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "seed", "threads")}
        | ({"pretrain_epochs": args.pretrain_epochs, "probe_l1": args.probe_l1} if variant == "spurious" else {}),
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
    opts += ("pretrain_epochs", "probe_l1") if variant == "spurious" else ()
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
        help="passes over the training images (default: 12 for concepts, 20 for the spurious probe)",
    )
    ap.add_argument("--pretrain-epochs", type=int, default=8, help="spurious: passes of concept-presence pretraining")
    ap.add_argument("--probe-l1", type=float, default=3e-3, help="spurious: L1 weight on the class head")
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
