"""``interp label`` and ``interp report``: label a layer's units, and write the report of a labeling.

The main CLI (:mod:`interp.cli`) calls :func:`register`. Heavy imports happen
inside :func:`run_label` / :func:`run_report`, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from interp.errors import InputError

__all__ = ["register", "run_label", "run_report", "parse_units"]

LABEL_DESCRIPTION = """\
Label every unit of a layer MILAN-style, offline: gather exemplars in one pass
over an activation store (top-k contexts with masks at the unit's 0.99
quantile), propose candidate descriptions (tokens, bigrams, next tokens and
logit-lens output tokens, lexical classes, positions, and/or/not compositions),
pick the one maximising log p(d|E) - lambda log p(d), and score it on held-out
documents (AUROC, balanced accuracy, correlation, with constant and shuffled
baselines). With --images, label a ViT layer over images instead: top-k
exemplar images with masks (patch maps at the 0.99 quantile), candidates from
colours, image regions, region sizes, textures, dataset classes and concept
masks, scored on held-out images. Writes labels.html (+ units/*.js detail
files), labels.json, labels.csv and labels.parquet to --out.

examples:
  interp label --store runs/bible-l1/store --hook blocks.1.mlp.hook_post \\
      --model smollm2-135m --units 0:64 --out runs/bible-l1/labels
  interp label --store runs/bible-l6/store --hook blocks.6.hook_resid_post \\
      --sae runs/sae-l6/sae --units 0:256 --out runs/sae-l6/labels
  interp label --planted --out runs/planted-labels     # planted units with known truth
  interp label --model dinov2-s14 --image-size 56 --images bundled \\
      --hook blocks.6.mlp.hook_post --units 0:256 --out runs/dino-l6/labels    # a ViT layer over images
  interp label ... --describer local                   # phrase labels with SmolLM2 (scores unchanged)
"""

REPORT_DESCRIPTION = """\
Write the HTML report (plus JSON, CSV and Parquet) of a labeling run: a
sortable, searchable summary page (labels.html, under 2 MB up to thousands of
units) and per-unit detail in units/*.js, loaded when a unit is opened: the
label, its PMI, held-out scores beside constant and shuffled baselines,
exemplars with active tokens (or image patches) marked, lower-quantile and
non-activating samples, an activation histogram and the top output tokens.
Opens from file:// with no server and no network; keep units/ beside the page.
Also writes milan.csv (layer, unit, description, score) and, with
--neuronpedia, Neuronpedia feature records (gzipped JSONL batches).

examples:
  interp report runs/bible-l1/labels
  interp report runs/bible-l1/labels/labels.json --out /tmp/report --title "layer 1 neurons"
  interp report runs/sae-l6/labels --neuronpedia --model-id smollm2-135m --logits
"""


def parse_units(spec: str | None) -> list[int] | None:
    """``"0:64"`` / ``"3,5,9"`` / ``None`` -> unit indices (``None`` = all)."""
    if spec is None:
        return None
    try:
        if ":" in spec:
            lo, hi = spec.split(":", 1)
            return list(range(int(lo or 0), int(hi)))
        return [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"cannot read --units {spec!r}. Write a range 0:64 or a list 3,5,9.") from None


def register(subparsers: Any) -> None:
    """Add the ``label`` and ``report`` subcommands."""
    raw = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("label", help="label a layer's units (neurons, heads, SAE latents), with scores",
                              description=LABEL_DESCRIPTION, formatter_class=raw)
    p.add_argument("--store", help="activation store directory (a text store written by `interp capture`)")
    p.add_argument("--hook", help="hook of the units: blocks.L.mlp.hook_post (neurons), blocks.L.attn.hook_z "
                   "(heads), or the SAE's input hook")
    p.add_argument("--sae", help="SAELens SAE directory: label its latents (sae.encode of the stored activations)")
    p.add_argument("--units", help="units to label: a range 0:64 or a list 3,5,9 (default all)")
    p.add_argument("--model", help="model (registry name or directory) for token strings and logit-lens output tokens")
    p.add_argument("--planted", action="store_true", help="label the planted units (known truth) and print accuracy")
    p.add_argument("--images", help="label a ViT (--model) over images instead of a store: bundled (digits, MNIST, "
                   "LFW, scikit-image, labelled), concepts (synthetic, with concept masks), a load_images name or "
                   "a folder")
    p.add_argument("--n-images", type=int, default=200, help="images per set for --images (default 200)")
    p.add_argument("--image-size", type=int, help="ViT input size in pixels for --images (default the model's)")
    p.add_argument("--describer", default="offline", choices=("offline", "local", "openai"),
                   help="who phrases each label: offline (the candidate's text, default), local (SmolLM2 chat), "
                   "openai (an OpenAI-compatible endpoint; key from $OPENAI_API_KEY). Scores are the candidate's.")
    p.add_argument("--describer-url", help="base URL of the openai describer's server (default $OPENAI_BASE_URL)")
    p.add_argument("--describer-model", default="gpt-4o-mini", help="model name sent to the openai describer")
    p.add_argument("--out", required=True, help="output directory (labels.json, labels.csv, labels.html)")
    p.add_argument("--k", type=int, default=15, help="exemplar contexts per unit (default 15, as MILAN)")
    p.add_argument("--lam", type=float, default=0.2, help="lambda in log p(d|E) - lambda log p(d) (default 0.2)")
    p.add_argument("--quantile", type=float, default=0.99, help="active-threshold quantile (default 0.99)")
    p.add_argument("--heldout-every", type=int, default=5, help="hold out one document in N for scoring (default 5)")
    p.add_argument("--ground-rows", type=int, default=200,
                   help="also ground in the active rows among each unit's top N rows (default 200; 0: masks only)")
    p.set_defaults(func=run_label)
    r = subparsers.add_parser("report", help="write the self-contained HTML/JSON/CSV report of a labeling",
                              description=REPORT_DESCRIPTION, formatter_class=raw)
    r.add_argument("labels", help="labels.json or the directory holding it")
    r.add_argument("--out", help="output directory (default: next to labels.json)")
    r.add_argument("--title", default="unit labels", help="page title")
    r.add_argument("--atlas", help="an `interp atlas` run directory: show its per-neuron columns (IO class, vocabulary "
                   "kurtosis/skew, null-space fraction, firing rate, cross-model correlation) beside the labels")
    r.add_argument("--neuronpedia", nargs="?", const="", metavar="DIR",
                   help="also write Neuronpedia feature records as DIR/batch-N.jsonl.gz (default DIR: OUT/neuronpedia)")
    r.add_argument("--model-id", help="Neuronpedia model id (default: the labels' model, lowercased)")
    r.add_argument("--layer-id", help="Neuronpedia source id, e.g. 6-res-mysae (default: from the hook, 6-res-sae)")
    r.add_argument("--batch-size", type=int, default=256, help="Neuronpedia records per batch file (default 256)")
    r.add_argument("--logits", action="store_true", help="load the labels' model (and SAE) to add ± logit values "
                   "and the logits histogram to the Neuronpedia records")
    r.set_defaults(func=run_report)


def _config(args: argparse.Namespace) -> Any:
    from interp.labeling.label import LabelConfig

    return LabelConfig(k=args.k, lam=args.lam, quantile=args.quantile, heldout_every=args.heldout_every,
                       ground_rows=args.ground_rows)


def _planted(args: argparse.Namespace) -> Any:
    """Label the planted units and print the accuracy table."""
    from interp.labeling.exemplars import array_batches
    from interp.labeling.label import label_units
    from interp.labeling.planted import evaluate, planted_activations, planted_units, word_probe

    probe = word_probe()
    units = planted_units(probe)
    labels = label_units(array_batches(planted_activations(probe, units)), probe, _config(args),
                         meta={"source": "planted units (fortunes, word tokens)"})
    print(evaluate(labels, units).table())
    return labels


def _from_store(args: argparse.Namespace) -> Any:
    """Label the units of ``--hook`` in ``--store``."""
    from interp.labeling.label import label_store

    if not args.store or not args.hook:
        raise InputError("`interp label` needs --store and --hook (or --planted). See `interp label --help`.")
    model = sae = None
    if args.model:
        from interp.models.registry import load_model

        model = load_model(args.model)
    if args.sae:
        from sae_training.saelens_io import load_sae

        sae = load_sae(args.sae)  # validates the folder; any SAELens-layout SAE works
    return label_store(args.store, args.hook, _config(args), model=model, sae=sae, sae_key=args.sae,
                       units=parse_units(args.units),
                       meta={"store": str(args.store), "hook": args.hook, "sae": args.sae, "model": args.model})


def _from_images(args: argparse.Namespace) -> Any:
    """Label the units of ``--hook`` of the ViT ``--model`` over ``--images``."""
    from interp.labeling.vision import bundled_images
    from interp.labeling.vit import label_vit
    from interp.models.registry import load_model

    if not args.model or not args.hook:
        raise InputError("`interp label --images` needs --model (a ViT) and --hook. See `interp label --help`.")
    model = load_model(args.model, **({"image_size": args.image_size} if args.image_size else {}))
    if args.images == "bundled":
        data: Any = bundled_images(args.n_images)
    elif args.images == "concepts":
        from interp.datasets.concepts import concept_images

        data = concept_images(args.n_images, split="heldout", size=model.cfg.image_size)
    else:
        from interp.datasets.images import load_images

        data = load_images(args.images, "all", limit=args.n_images)
    return label_vit(model, args.hook, data, _config(args), units=parse_units(args.units), progress=True,
                     meta={"model": args.model, "images": args.images})


def run_label(args: argparse.Namespace) -> int:
    """``interp label``."""
    from interp.labeling.describe import describe_labels, describer
    from interp.reports.labels import write_label_report

    labels = _planted(args) if args.planted else _from_images(args) if args.images else _from_store(args)
    kw = {"base_url": args.describer_url, "model": args.describer_model} if args.describer == "openai" else {}
    describe_labels(labels, describer(args.describer, **kw))
    paths = write_label_report(labels, args.out)
    print(f"labelled {len(labels.units)} units -> {paths['html']} (+ labels.json, labels.csv)")
    return 0


def run_report(args: argparse.Namespace) -> int:
    """``interp report``."""
    from interp.labeling.results import LabelSet
    from interp.reports.labels import write_label_report

    labels = LabelSet.load(args.labels)
    src = Path(args.labels)
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent)
    extra = None
    if args.atlas:
        from interp.atlas import atlas_columns, load_atlas

        extra = atlas_columns(load_atlas(args.atlas))
    paths = write_label_report(labels, out, args.title, extra=extra)
    print(f"report: {paths['html']} (+ labels.json, labels.csv, labels.parquet, milan.csv)")
    if args.neuronpedia is not None:
        from interp.reports.neuronpedia import write_neuronpedia

        model = sae = None
        if args.logits:
            from interp.models.registry import load_model

            if not labels.meta.get("model"):
                raise InputError("--logits needs the labels' model, but labels.json names none (meta['model']).")
            model = load_model(labels.meta["model"])
            if labels.meta.get("sae"):
                from sae_training.saelens_io import load_sae

                sae = load_sae(labels.meta["sae"])
        dest = Path(args.neuronpedia) if args.neuronpedia else out / "neuronpedia"
        files = write_neuronpedia(labels, dest, model_id=args.model_id, layer_id=args.layer_id,
                                  batch_size=args.batch_size, model=model, sae=sae)
        print(f"neuronpedia: {len(labels.units)} features in {len(files)} batch file(s) -> {dest}")
    return 0
