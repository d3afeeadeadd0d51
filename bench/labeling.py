"""Benchmark: labeling throughput, and the exemplar pass against a plain capture pass over the same images.

One command, one run, one table::

    python bench/labeling.py                   # DINOv2-S/14 at 56 px, blocks.6.mlp.hook_post, bundled images
    python bench/labeling.py --json bench-labeling.json

Methods, timed in one process, ``--rounds`` times in a rotating order (so a
burst of load from other processes hits every method alike; the table gives
medians over rounds and the ratio is the median of per-round ratios):

``capture pass`` (the peer)
    :func:`interp.capture.capture_activations` of the hook over the images in
    batches, keeping every activation in memory: what any labeling method must
    at least pay to see the layer.
``exemplar pass``
    :func:`interp.labeling.vit.collect_images` over the same forward passes: per
    unit the top-k images with their activation maps, the top patches, a
    reservoir of patches for the 0.99 quantile and samples, held-out activations.
``label (ViT)``
    :func:`interp.labeling.vit.label_vit` end to end (attribute probe,
    exemplar pass, PMI ranking, held-out scores): units labelled per second.
``label (text)``
    :func:`interp.labeling.label.label_units` on the planted text units
    (64k words, activations in memory): units labelled per second.

Target: exemplar pass <= 1.3x the capture pass.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

METHODS = ("capture pass", "exemplar pass", "label (ViT)", "label (text)")


def _setup(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from interp.labeling.planted import planted_activations, planted_units, word_probe
    from interp.labeling.vision import bundled_images
    from interp.models.registry import load_model

    model = load_model("dinov2-s14", image_size=args.image_size)
    data = bundled_images(args.images)
    probe = word_probe(n_tokens=args.words)
    units = planted_units(probe)
    units = units * max(1, args.text_units // len(units))
    acts = planted_activations(probe, units)
    with torch.inference_mode():
        model(model.prepare_inputs(data.images[: args.batch_size]), stop_at_layer=1)  # first-call costs
    return {"model": model, "data": data, "probe": probe, "acts": acts, "units": units}


def _run(method: str, s: dict[str, Any], args: argparse.Namespace) -> tuple[float, int]:
    """One timed pass; returns (seconds, units labelled or 0)."""
    import torch

    from interp.capture import capture_activations
    from interp.labeling.exemplars import array_batches
    from interp.labeling.label import LabelConfig, label_units
    from interp.labeling.vit import collect_images, label_vit, vit_unit_batches

    model, images = s["model"], s["data"].images
    t0 = time.perf_counter()
    if method == "capture pass":
        kept = [capture_activations(model, model.prepare_inputs(images[i:i + args.batch_size]), args.hook)[args.hook]
                for i in range(0, len(images), args.batch_size)]  # fmt: skip
        assert kept
        return time.perf_counter() - t0, 0
    if method == "exemplar pass":
        held = torch.arange(len(images)) % 5 == 4
        collect_images(vit_unit_batches(model, args.hook, images, batch_size=args.batch_size), held)
        return time.perf_counter() - t0, 0
    if method == "label (ViT)":
        labels = label_vit(model, args.hook, s["data"], units=list(range(args.vit_units)), batch_size=args.batch_size)
        return time.perf_counter() - t0, len(labels.units)
    labels = label_units(array_batches(s["acts"]), s["probe"], LabelConfig())
    return time.perf_counter() - t0, len(labels.units)


def _table(res: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [f"labeling benchmark: dinov2-s14 at {args.image_size}px, {args.hook}, {res['n_images']} bundled images "
             f"in batches of {args.batch_size}; {args.rounds} interleaved rounds, {res['threads']} torch threads", "",
             f"{'method':<16}{'seconds':>10}{'min-max':>16}{'units/s':>10}"]  # fmt: skip
    for m in METHODS:
        r = res[m]
        ups = f"{r['units_per_s']:,.1f}" if r["units_per_s"] else "-"
        lines.append(f"{m:<16}{r['seconds']:>10.2f}{r['min']:>8.2f}-{r['max']:<7.2f}{ups:>10}")
    ratio = res["exemplar_vs_capture"]
    met = "met" if ratio <= 1.3 else "MISSED"
    lines += ["", f"exemplar pass / capture pass  {ratio:5.2f}x   (target <= 1.3x: {met})",
              "", f"label (ViT): {args.vit_units} units; label (text): {res['text_units']} planted units over "
              f"{res['text_rows']:,} tokens. seconds: median over rounds."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hook", default="blocks.6.mlp.hook_post", help="ViT hook (default %(default)s)")
    p.add_argument("--image-size", type=int, default=56, help="DINOv2 input size (default %(default)s)")
    p.add_argument("--images", type=int, default=100, help="images per bundled set (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default %(default)s)")
    p.add_argument("--vit-units", type=int, default=256, help="ViT units labelled (default %(default)s)")
    p.add_argument("--text-units", type=int, default=64, help="planted text units labelled (default %(default)s)")
    p.add_argument("--words", type=int, default=64_000, help="tokens of the text probe (default %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default %(default)s)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    import torch

    s = _setup(args)
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    units: dict[str, int] = {}
    for r in range(args.rounds):
        for m in METHODS[r % len(METHODS):] + METHODS[: r % len(METHODS)]:
            secs, n = _run(m, s, args)
            times[m].append(secs)
            units[m] = n
            print(f"round {r + 1}/{args.rounds} {m:<14} {secs:7.2f}s", file=sys.stderr)
    res: dict[str, Any] = {"threads": torch.get_num_threads(), "n_images": len(s["data"]),
                           "text_units": len(s["units"]), "text_rows": len(s["probe"])}  # fmt: skip
    for m in METHODS:
        med = statistics.median(times[m])
        res[m] = {"seconds": med, "min": min(times[m]), "max": max(times[m]), "rounds": times[m],
                  "units_per_s": units[m] / med if units[m] else None}  # fmt: skip
    res["exemplar_vs_capture"] = statistics.median(
        e / c for e, c in zip(times["exemplar pass"], times["capture pass"], strict=True))
    print(_table(res, args))
    if args.json:
        Path(args.json).write_text(json.dumps({"hook": args.hook, "image_size": args.image_size, **res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
