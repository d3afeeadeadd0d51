"""``interp steer``: sweep a steering vector's coefficient (and layer), effect against cost, from the command line.

The main CLI (:mod:`interp.cli`) calls :func:`register`. Heavy imports happen
inside :func:`run_steer`, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from interp.errors import InputError

__all__ = ["register", "run_steer"]

DESCRIPTION = """\
Sweep the coefficient of a steering intervention (and optionally the layer) and
measure effect against cost: the target tokens' log-probability lift at the end
of --prompts, KL(unsteered || steered) on --neutral texts, and the next-token
loss change on --heldout texts, per sample and on average. Baselines: random
vectors of equal norm at the same hooks and coefficients, and prompting with
--prompt-prefix. Writes sweep.json and sweep.html (plotly, opens offline) to --out.

The steering direction comes from exactly one of:
  --positive/--negative   a prompt pair (ActAdd), or two sets separated by '||' (CAA mean difference)
  --sae DIR --latent I    an SAE latent's decoder direction (also swept as an SAE clamp)
  --neuron L:I            an MLP neuron's output weights (W_out[L][I])

examples:
  interp steer --model smollm2-135m --hook blocks.6.hook_resid_post --positive " love" --negative " hate" \\
      --target " love" --coefficients 0,2,4,8 --prompt-prefix "Talk about love." --out runs/steer-love
  interp steer --model smollm2-135m --sae runs/full/sae/blocks.6.hook_resid_post --latent 155 \\
      --target "'t" --coefficients 0.5,1,2 --out runs/steer-latent
  interp steer --model smollm2-135m --layers 4,6,8 --positive "I am happy" --negative "I am sad" \\
      --target " happy" --out runs/steer-layers      # a layer sweep at blocks.L.hook_resid_post

Vision (DINOv2 with the shipped digit probe): --target-class C switches to images.
Steering adds the class-mean difference of blocks.L.hook_resid_post (CAA on images)
and measures the class's log-probability lift on other digits, KL over the other
classes and their held-out loss; --ablate N,N,... instead ablates the N MLP neurons of
blocks.L.mlp.hook_post most attributed to the class (gradient x activation) and
measures the class's drop on its own images, against N random neurons:
  interp steer --model dinov2-s14 --target-class 3 --layers 8 --coefficients 0,1,2,4 --out runs/steer-digit3
  interp steer --model dinov2-s14 --target-class 3 --layers 8 --ablate 4,16,64 --out runs/ablate-digit3
"""

_PROMPTS = ["I went outside and", "The best thing about today is", "She told me that", "We talked about"]
_NEUTRAL = ["The train leaves the station at nine in the morning.", "He put the books back on the shelf.",
            "Water boils at one hundred degrees Celsius."]  # fmt: skip
_HELDOUT = ["The committee will meet again next week to discuss the budget.",
            "A small bird sat on the fence and sang."]  # fmt: skip


def register(subparsers: Any) -> None:
    """Add the ``steer`` subcommand."""
    p = subparsers.add_parser("steer", help="sweep a steering intervention: effect against cost, with baselines",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m", help="registry name or local directory (default smollm2-135m)")
    p.add_argument("--hook", help="hook to steer (default blocks.6.hook_resid_post; the SAE's hook with --sae)")
    p.add_argument("--layers", help="layer sweep: comma-separated layers, steering blocks.L.hook_resid_post each")
    p.add_argument("--positive", help="positive prompt, or several separated by '||'")
    p.add_argument("--negative", help="negative prompt, or several separated by '||'")
    p.add_argument("--sae", help="SAELens SAE directory (steer with --latent's decoder direction)")
    p.add_argument("--latent", type=int, help="SAE latent index")
    p.add_argument("--neuron", help="MLP neuron L:I (steer with its output weights at blocks.L.hook_resid_post)")
    p.add_argument("--target", help="token(s) to promote, separated by '||' (e.g. ' dog'); text models")
    p.add_argument("--target-class", type=int, help="ViT: the digit class to steer toward (or whose units to ablate)")
    p.add_argument(
        "--ablate", help="ViT: comma-separated numbers of attributed MLP neurons to ablate (instead of steering)"
    )
    p.add_argument("--n-images", type=int, default=32, help="ViT: images per set (effect, neutral; default 32)")
    p.add_argument("--coefficients", default="0,2,4,8", help="comma-separated scales (default 0,2,4,8)")
    p.add_argument("--prompts", help="text file, one prompt per line (default: four generic prompts)")
    p.add_argument("--neutral", help="text file, one neutral text per line (KL cost)")
    p.add_argument("--heldout", help="text file, one held-out text per line (loss cost)")
    p.add_argument("--prompt-prefix", help="instruction for the prompting baseline (default: none)")
    p.add_argument("--n-random", type=int, default=1, help="random equal-norm vectors per hook (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random vectors (default 0)")
    p.add_argument("--out", required=True, help="output directory (sweep.json, sweep.html)")
    p.set_defaults(func=run_steer)


def _split(s: str | None) -> list[str]:
    return [x for x in (s or "").split("||") if x]


def _lines(path: str | None, default: list[str]) -> list[str]:
    if path is None:
        return default
    p = Path(path)
    if not p.is_file():
        raise InputError(f"text file {p} does not exist. Pass a file with one text per line.")
    return [ln for ln in p.read_text().splitlines() if ln.strip()]


def _coefficients(spec: str) -> list[float]:
    try:
        return [float(c) for c in spec.split(",") if c.strip()]
    except ValueError:
        raise InputError(f"cannot read --coefficients {spec!r}. Write numbers separated by commas: 0,2,4,8.") from None


def _directions(args: argparse.Namespace, model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``({hook: vector}, extra methods)`` from exactly one of the direction sources."""
    from interp.steering.vectors import SAEEdit, steering_vector

    sources = [args.positive is not None or args.negative is not None, args.sae is not None, args.neuron is not None]
    if sum(sources) != 1:
        raise InputError("give exactly one direction source: --positive/--negative, --sae with --latent, or --neuron.")
    hooks = ([f"blocks.{int(x)}.hook_resid_post" for x in args.layers.split(",")] if args.layers
             else [args.hook or "blocks.6.hook_resid_post"])  # fmt: skip
    if sources[0]:
        if not args.positive or not args.negative:
            raise InputError("--positive and --negative go together.")
        pos, neg = _split(args.positive), _split(args.negative)
        return {h: steering_vector(model, pos, neg, h) for h in hooks}, {}
    if sources[1]:
        from sae_training.saelens_io import load_sae

        if args.latent is None:
            raise InputError("--sae needs --latent I: the latent to steer with.")
        sae = load_sae(args.sae)
        hook = args.hook or sae.cfg.metadata.hook_name
        probe = SAEEdit(hook, sae=sae, latents=[args.latent])  # validates the index and the hook
        clamp = {"sae-clamp": lambda h, c: [SAEEdit(h, sae=sae, latents=[args.latent], value=c)]}
        return {hook: probe.sae.W_dec[args.latent].detach().float()}, clamp
    try:
        layer, unit = (int(x) for x in args.neuron.split(":"))
    except ValueError:
        raise InputError(f"cannot read --neuron {args.neuron!r}. Write LAYER:INDEX, e.g. 29:808.") from None
    vec = model.blocks[layer].mlp.W_out[unit].detach().float()  # [d_model]
    return {f"blocks.{layer}.hook_resid_post": vec}, {}


def run_steer(args: argparse.Namespace) -> int:
    """Run the sweep the arguments describe, print its table and write its files."""
    import interp
    from interp.steering.evaluate import steering_sweep

    if args.target_class is not None:
        return _run_vision(args)
    if not args.target:
        raise InputError("--target is required for a text model: the token(s) to promote, e.g. --target ' dog'. "
                         "For a ViT give --target-class instead.")  # fmt: skip
    model = interp.load_model(args.model)
    vectors, methods = _directions(args, model)
    result = steering_sweep(model, vectors, _split(args.target) or [args.target], _lines(args.prompts, _PROMPTS),
                            _lines(args.neutral, _NEUTRAL), _lines(args.heldout, _HELDOUT),
                            coefficients=_coefficients(args.coefficients), n_random=args.n_random,
                            prompt_prefix=args.prompt_prefix, methods=methods, seed=args.seed)  # fmt: skip
    print(result.table())
    files = result.save(args.out)
    print(f"\nwrote {files['json']} and {files['html']}")
    return 0


def _run_vision(args: argparse.Namespace) -> int:
    """The vision sweep: DINOv2 and the shipped digit probe, steering or ablating at one layer."""
    import torch

    from interp.datasets.images import load_images, preprocess
    from interp.steering.vision import ablation_sweep, digit_readout, vision_sweep

    if args.model not in ("dinov2-s14", "dinov2"):
        raise InputError(f"--target-class needs a classifier over the model; the shipped one is the digit probe on "
                         f"dinov2-s14, not {args.model!r}. Pass --model dinov2-s14.")  # fmt: skip
    layer = int((args.layers or "8").split(",")[0])
    readout = digit_readout()
    held = load_images("digits", "heldout")
    x_held, y_held = preprocess(held.images, readout.image_size), torch.tensor(held.labels)
    t, n = args.target_class, args.n_images
    others, same = x_held[y_held != t], x_held[y_held == t]
    if args.ablate:
        counts = [int(c) for c in args.ablate.split(",") if c.strip()]
        result = ablation_sweep(readout, f"blocks.{layer}.mlp.hook_post", t, same[:n], others[:n], x_held, y_held,
                                counts, n_random=args.n_random, seed=args.seed)  # fmt: skip
    else:
        train = load_images("digits", "train", limit=400)  # the class-mean difference direction comes from these
        x_train, y_train = preprocess(train.images, readout.image_size), torch.tensor(train.labels)
        result = vision_sweep(readout, f"blocks.{layer}.hook_resid_post", t, others[:n], others[n : 2 * n], x_held,
                              y_held, _coefficients(args.coefficients), train=(x_train, y_train),
                              n_random=args.n_random, seed=args.seed)  # fmt: skip
    print(result.table())
    files = result.save(args.out)
    print(f"\nwrote {files['json']} and {files['html']}")
    return 0
