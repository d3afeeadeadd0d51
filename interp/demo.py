"""The main job: ``make demo`` / ``interp demo`` on the shipped defaults, offline, on CPU.

Stages, each writing ``runs/<name>/<stage>/`` and skipped when already done:

``models``
    Loads each packaged model through the registry (SmolLM2, MiniLM, DINOv2),
    records load time, hook points and a few activations, and checks each does
    its job: SmolLM2 answers a question, MiniLM ranks a paraphrase above an
    unrelated sentence, DINOv2 with the shipped probe classifies held-out digits.
``datasets``
    Loads the text corpora and image sets, reports train / held-out sizes, and
    packs Bible text into SmolLM2 contexts.
``capture``
    Captures ``blocks.6.hook_resid_post`` and ``blocks.6.mlp.hook_post`` of
    SmolLM2 over the Bible (train and held-out splits, context 128) into
    activation stores, stopping the forward pass after block 6.
``sae``
    Trains a TopK SAE (d_sae 2304, k 32) on the captured residual stream and
    evaluates it on held-out text (FVU, L0, CE loss recovered, KL).
``labels``
    Labels SAE latents and MLP neurons of the captured layer by PMI with their
    exemplars, scores each label on held-out documents, and writes HTML reports
    (plus the feature dashboard as one offline page and Neuronpedia records);
    then labels DINOv2's layer-6 MLP neurons over the bundled images (exemplar
    images with masks; colour, position, region, texture, dataset-class
    candidates) and scores them on held-out images.

``steering``
    Steers SmolLM2 with a labelled SAE latent (its decoder direction, and a
    clamp of the latent itself), sweeping the coefficient, and reports the
    effect (target log-probability lift) against the cost (KL on neutral text,
    held-out loss) beside a random vector of equal norm and a prompting
    baseline, with steered and unsteered generations.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from interp.errors import InputError

__all__ = ["DemoConfig", "run_demo", "register"]

STAGES = ("models", "datasets", "capture", "sae", "labels", "steering")


@dataclass(frozen=True)
class DemoConfig:
    """Configuration of the main job.

    Attributes:
        name: run name; results go to ``<runs_dir>/<name>/``.
        runs_dir: parent folder of run directories.
        seed: seed for every random choice.
        stages: stages to run, in order.
        lm: decoder LM for the text stages.
        encoder: text encoder.
        vit: vision transformer.
        question: prompt the LM answers in the ``models`` stage.
        context_size: tokens per packed context in the ``datasets`` stage.
        n_digits: held-out digit images the ViT probe classifies.
        layer: SmolLM2 block whose residual stream and MLP neurons are captured.
        capture_corpus: text corpus captured.
        train_tokens: tokens captured from the train split.
        heldout_tokens: tokens captured from the held-out split.
        d_sae: SAE width.
        k: active latents per token (TopK).
        sae_tokens: training tokens the SAE sees.
        label_units: how many SAE latents and MLP neurons are labelled (the first N of each), and
            how many MLP neurons of the ViT's ``vit_label_hook``.
        vit_label_hook: the ViT layer whose neurons the ``labels`` stage labels over the bundled images.
        vit_label_images: images taken from each bundled image set (digits, MNIST, LFW, scikit-image)
            for ViT labeling; one in five is held out for scoring.
    """

    name: str = "demo"
    runs_dir: str = "runs"
    seed: int = 0
    stages: tuple[str, ...] = STAGES
    lm: str = "smollm2-135m"
    encoder: str = "minilm-l6"
    vit: str = "dinov2-s14"
    question: str = "What is the capital of France?"
    context_size: int = 128
    n_digits: int = 64
    layer: int = 6
    capture_corpus: str = "bible"
    train_tokens: int = 300_000
    heldout_tokens: int = 50_000
    d_sae: int = 2304
    k: int = 32
    sae_tokens: int = 300_000
    label_units: int = 256
    vit_label_hook: str = "blocks.6.mlp.hook_post"
    vit_label_images: int = 100
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise InputError(f"unknown demo stage(s) {unknown}; expected a subset of {list(STAGES)}.")
        if self.context_size < 8 or self.n_digits < 1:
            raise InputError("context_size must be >= 8 and n_digits >= 1.")
        if min(self.train_tokens, self.heldout_tokens, self.sae_tokens, self.label_units) < 1:
            raise InputError("train_tokens, heldout_tokens, sae_tokens and label_units must be >= 1.")

    @property
    def hooks(self) -> tuple[str, str]:
        """The captured hooks: residual stream and MLP neurons of ``layer``."""
        return f"blocks.{self.layer}.hook_resid_post", f"blocks.{self.layer}.mlp.hook_post"


def _say(msg: str) -> None:
    print(f"[interp demo] {msg}", flush=True)


def _timed_load(name: str, **kw: Any) -> tuple[Any, float]:
    from interp.models.registry import load_model

    t0 = time.perf_counter()
    model = load_model(name, **kw)
    return model, time.perf_counter() - t0


class _SharedModel:
    """A registry model loaded on first use and kept for every stage that needs it; times the load."""

    def __init__(self, name: str):
        self.name, self.model, self.load_s = name, None, 0.0

    def __call__(self) -> Any:
        if self.model is None:
            self.model, self.load_s = _timed_load(self.name)
        return self.model


def _resid_norms(model: Any, inputs: Any) -> dict[str, float]:
    """Mean residual-stream norm after each block: a quick look inside the model."""
    import torch

    names = [f"blocks.{layer}.hook_resid_post" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(inputs, names_filter=lambda n: n in names)
    return {n: round(float(cache[n].norm(dim=-1).mean()), 3) for n in names}


def _stage_lm(cfg: DemoConfig, lm: _SharedModel) -> dict[str, Any]:
    from interp.models.contract import model_info, prepare_inputs

    model, secs = lm(), lm.load_s
    prompt = f"<|im_start|>user\n{cfg.question}<|im_end|>\n<|im_start|>assistant\n"
    answer = model.generate(prompt, max_new_tokens=16, do_sample=False, verbose=False)
    answer = answer.split("assistant\n", 1)[-1].strip()
    _say(f"{cfg.lm}: loaded in {secs:.1f}s, {len(model.hook_dict)} hook points; "
         f"Q: {cfg.question!r} -> {answer!r}")
    tokens = prepare_inputs(model, "In the beginning God created the heavens and the earth.")
    return {"load_s": round(secs, 2), "hook_points": len(model.hook_dict), "question": cfg.question,
            "answer": answer, "resid_norms": _resid_norms(model, tokens), "info": model_info(model).to_dict()}


def _stage_encoder(cfg: DemoConfig) -> dict[str, Any]:
    import torch

    from interp.models.contract import model_info, prepare_inputs

    model, secs = _timed_load(cfg.encoder)
    sents = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."]
    tokens = prepare_inputs(model, sents)
    mask = (tokens != model.cfg.pad_token_id).float()[..., None]
    with torch.no_grad():
        hidden = model(tokens)
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    para, unrel = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    _say(f"{cfg.encoder}: loaded in {secs:.1f}s, {len(model.hook_dict)} hook points; "
         f"cosine(paraphrase)={para:.3f} > cosine(unrelated)={unrel:.3f}")
    return {"load_s": round(secs, 2), "hook_points": len(model.hook_dict), "sentences": sents,
            "cos_paraphrase": round(para, 4), "cos_unrelated": round(unrel, 4),
            "resid_norms": _resid_norms(model, tokens), "info": model_info(model).to_dict()}


def _stage_vit(cfg: DemoConfig) -> dict[str, Any]:
    import torch

    from interp.datasets.images import load_images
    from interp.models.contract import model_info, prepare_inputs
    from interp.models.probes import digit_features, load_digit_probe

    probe, meta = load_digit_probe()
    model, secs = _timed_load(cfg.vit, image_size=meta["image_size"])
    digits = load_images("digits", split="heldout", limit=cfg.n_digits)
    pixels = prepare_inputs(model, digits.images)
    with torch.no_grad():
        pred = probe(digit_features(model, pixels)).argmax(-1)
    acc = float((pred == torch.tensor(digits.labels)).float().mean())
    _say(f"{cfg.vit}: loaded in {secs:.1f}s at {meta['image_size']}px, {len(model.hook_dict)} hook points; "
         f"shipped digit probe accuracy on {len(digits.images)} held-out digits: {acc:.3f} (chance 0.1)")
    return {"load_s": round(secs, 2), "hook_points": len(model.hook_dict), "probe_accuracy": round(acc, 4),
            "n_images": len(digits.images), "resid_norms": _resid_norms(model, pixels[:8]),
            "info": model_info(model).to_dict()}


def _stage_datasets(cfg: DemoConfig) -> dict[str, Any]:
    from interp.datasets.images import load_images
    from interp.datasets.text import load_texts, pack_contexts
    from interp.models.registry import load_model

    out: dict[str, Any] = {"text": {}, "images": {}}
    for name in ("bible", "fortunes", "pydoc"):
        train, held = load_texts(name, split="train"), load_texts(name, split="heldout")
        out["text"][name] = {"train_docs": len(train.docs), "heldout_docs": len(held.docs)}
        _say(f"text {name}: {len(train.docs)} train / {len(held.docs)} held-out documents")
    for name in ("digits", "mnist", "lfw", "skimage"):
        train, held = load_images(name, split="train"), load_images(name, split="heldout")
        out["images"][name] = {"train": len(train.images), "heldout": len(held.images)}
        _say(f"images {name}: {len(train.images)} train / {len(held.images)} held-out")
    model = load_model(cfg.lm, n_layers=1)
    packed = pack_contexts(load_texts("bible", split="train"), model.tokenizer, cfg.context_size,
                           max_tokens=50_000)
    out["packed_bible"] = {"contexts": int(packed.tokens.shape[0]), "context_size": cfg.context_size,
                           "tokens": int(packed.tokens.numel()),
                           "first_context": model.tokenizer.decode(packed.tokens[0][:24])}
    _say(f"packed {packed.tokens.shape[0]} Bible contexts of {cfg.context_size} tokens (BOS first)")
    return out


def _cli(*argv: str) -> None:
    """Run an ``interp`` subcommand in-process, as a user would type it."""
    from interp.cli import main

    code = main(list(argv))
    if code:
        raise InputError(f"`interp {' '.join(argv)}` failed with exit code {code}; see the message above.")


def _stage_capture(cfg: DemoConfig, run: Any) -> dict[str, Any]:
    from interp.store import open_store

    out: dict[str, Any] = {}
    for split, tokens in (("train", cfg.train_tokens), ("heldout", cfg.heldout_tokens)):
        path = run.path / "store" / split
        _say(f"capturing {','.join(cfg.hooks)} of {cfg.lm} over {cfg.capture_corpus}/{split} "
             f"({tokens:,} tokens, context {cfg.context_size}) -> {path}")
        _cli("capture", "--model", cfg.lm, "--hooks", ",".join(cfg.hooks), "--dataset", cfg.capture_corpus,
             "--split", split, "--context-size", str(cfg.context_size), "--max-tokens", str(tokens),
             "--out", str(path))
        store = open_store(path)  # `interp capture` printed its summary
        out[split] = {"path": str(path), "tokens": store.n_tokens, "hooks": store.hooks}
    return out


def _stage_sae(cfg: DemoConfig, run: Any, lm: Callable[[], Any]) -> dict[str, Any]:
    from sae_training import train_sae

    hook = cfg.hooks[0]
    model = lm()  # full model: the CE/KL evaluation splices the SAE into it
    result = train_sae({"from_store": str(run.path / "store" / "train"), "hook": [hook], "arch": "topk",
                        "d_sae": cfg.d_sae, "k": cfg.k, "tokens": cfg.sae_tokens, "seed": cfg.seed,
                        "out": str(run.path / "sae")}, eval_model=model)
    metrics = result.eval.get(hook, {}) if result.eval else {}
    shown = {k: metrics[k] for k in ("fvu", "l0", "ce_loss_recovered", "kl_div", "dead_fraction") if k in metrics}
    _say(f"SAE {hook}: " + ", ".join(f"{k}={v:.3f}" for k, v in shown.items()))
    return {"sae": str(result.saes[hook]), "eval": metrics, "tokens_per_s": result.tokens_per_s}


def _stage_labels(cfg: DemoConfig, run: Any, lm: Callable[[], Any]) -> dict[str, Any]:
    from interp.labeling.label import label_store
    from interp.reports.labels import write_label_report
    from sae_training.saelens_io import load_sae

    resid, mlp = cfg.hooks
    store = run.path / "store" / "train"
    sae_dir = run.read_json("sae/results.json")["sae"]
    units = list(range(cfg.label_units))
    out = {}
    targets = (("sae_latents", resid, load_sae(sae_dir), sae_dir), ("mlp_neurons", mlp, None, None))
    for what, hook, sae, sae_key in targets:
        dest = run.path / "labels" / what
        _say(f"labelling {cfg.label_units} {what.replace('_', ' ')} -> {dest}")
        labels = label_store(store, hook, model=lm(), sae=sae, sae_key=sae_key, units=units,
                             meta={"store": str(store), "hook": hook, "sae": sae_key, "model": cfg.lm})
        write_label_report(labels, dest)
        views = _write_views(labels, dest, f"{cfg.lm} {hook} {what.replace('_', ' ')}")
        aurocs = sorted(u.scores["auroc"] for u in labels.units if u.scores.get("auroc") is not None)
        median = aurocs[len(aurocs) // 2] if aurocs else None
        out[what] = {"report": str(dest / "labels.html"), "units": len(labels.units), "median_auroc": median} | views
        _say(f"{what}: median held-out detection AUROC {median if median is None else round(median, 3)}")
    out["vit_neurons"] = _label_vit_layer(cfg, run)
    return out


def _write_views(labels: Any, dest: Path, title: str) -> dict[str, str]:
    """Beside a label report: the feature dashboard as one offline page, and Neuronpedia records."""
    from interp.reports.neuronpedia import write_neuronpedia
    from interp.widgets.feature import FeatureDashboard

    page = FeatureDashboard(labels, title=title).export_html(dest / "dashboard.html", title=title)
    batches = write_neuronpedia(labels, dest / "neuronpedia")
    return {"dashboard": str(page), "neuronpedia": str(batches[0].parent) if batches else ""}


def _median(values: list[Any]) -> float | None:
    vals = sorted(v for v in values if isinstance(v, (int, float)) and v == v)
    return round(vals[len(vals) // 2], 4) if vals else None


def _label_vit_layer(cfg: DemoConfig, run: Any) -> dict[str, Any]:
    """Label ``cfg.label_units`` neurons of the ViT's ``vit_label_hook`` over the bundled images."""
    from interp.labeling.vision import bundled_images
    from interp.labeling.vit import label_vit
    from interp.models.probes import load_digit_probe
    from interp.reports.labels import write_label_report

    size = load_digit_probe()[1]["image_size"]
    model, _ = _timed_load(cfg.vit, image_size=size)
    data = bundled_images(cfg.vit_label_images)
    dest = run.path / "labels" / "vit_neurons"
    units = list(range(min(cfg.label_units, model.cfg.d_mlp)))
    _say(f"labelling {len(units)} {cfg.vit} neurons of {cfg.vit_label_hook} over {len(data)} images "
         f"({data.name}, {size}px) -> {dest}")
    t0 = time.perf_counter()
    labels = label_vit(model, cfg.vit_label_hook, data, units=units, meta={"model": cfg.vit})
    secs = time.perf_counter() - t0
    write_label_report(labels, dest, f"{cfg.vit} {cfg.vit_label_hook} neurons")
    views = _write_views(labels, dest, f"{cfg.vit} {cfg.vit_label_hook} neurons")
    res = views | {"report": str(dest / "labels.html"), "units": len(labels.units), "images": len(data),
           "seconds": round(secs, 1),
           "median_auroc": _median([u.scores.get("auroc") for u in labels.units]),
           "median_shuffled_auroc": _median([u.scores.get("shuffled_auroc") for u in labels.units]),
           "median_balanced_accuracy": _median([u.scores.get("balanced_accuracy") for u in labels.units]),
           "median_shuffled_balanced_accuracy": _median([u.scores.get("shuffled_balanced_accuracy")
                                                         for u in labels.units])}  # fmt: skip
    _say(f"vit_neurons: median held-out AUROC {res['median_auroc']} (shuffled {res['median_shuffled_auroc']}), "
         f"balanced accuracy {res['median_balanced_accuracy']} (shuffled {res['median_shuffled_balanced_accuracy']}) "
         f"in {secs:.0f}s")
    return res


def _stage_steering(cfg: DemoConfig, run: Any, lm: Callable[[], Any]) -> dict[str, Any]:
    from interp.steering.demo import steering_demo

    res = steering_demo(run.path, lm(), run.read_json("sae/results.json")["sae"],
                        run.path / "labels" / "sae_latents" / "labels.json")
    _say(f"steering with SAE latent {res['latent']} ({res['label']!r}, AUROC {res['auroc']:.3f}) "
         f"at {res['hook']}, target {res['target']!r}:")
    print(f"  {'method':<10} {'coef':>6} {'effect (nats)':>14} {'KL':>7} {'d loss':>7}", flush=True)
    for row in res["rows"]:
        coef = "-" if row.get("coefficient") is None else f"{row['coefficient']:g}"
        print(f"  {row['method']:<10} {coef:>6} {row['effect_mean']:>14.3f} {row['kl_mean']:>7.3f} "
              f"{row['loss_delta_mean']:>7.3f}", flush=True)
    gen = res["generation"]
    _say(f"unsteered: {gen['unsteered']!r}")
    _say(f"steered (coef {gen['coefficient']:g}): {gen['steered']!r}")
    return res


def run_demo(cfg: DemoConfig, overwrite: bool = False) -> str:
    """Run the main job; returns the run directory's path."""
    from interp.runs import RunDir, seed_everything

    # Which stages run is not part of a run's identity: `--stages sae` continues the same run.
    identity = {k: v for k, v in asdict(cfg).items() if k != "stages"}
    run = RunDir(cfg.name, identity, root=cfg.runs_dir, overwrite=overwrite)
    seed_everything(cfg.seed)
    _say(f"run directory {run.path} (config.json, env.json)")
    t0 = time.perf_counter()
    lm = _SharedModel(cfg.lm)  # the full LM, loaded once for every stage that needs it

    steps: dict[str, Callable[[], Any]] = {
        "models": lambda: {"lm": _stage_lm(cfg, lm), "encoder": _stage_encoder(cfg), "vit": _stage_vit(cfg)},
        "datasets": lambda: _stage_datasets(cfg),
        "capture": lambda: _stage_capture(cfg, run),
        "sae": lambda: _stage_sae(cfg, run, lm),
        "labels": lambda: _stage_labels(cfg, run, lm),
        "steering": lambda: _stage_steering(cfg, run, lm),
    }
    for stage in cfg.stages:
        if run.is_done(stage):
            _say(f"stage {stage}: already done, skipped (rerun with --overwrite to redo)")
            continue
        _say(f"stage {stage} …")
        result = steps[stage]()
        run.write_json(f"{stage}/results.json", result)
        run.mark_done(stage, {"seconds": round(time.perf_counter() - t0, 1)})
    _say(f"done in {time.perf_counter() - t0:.0f}s. Results: {run.path.resolve()}")
    return str(run.path)


def register(sub: Any) -> None:
    """Add ``interp demo`` to the CLI."""
    p = sub.add_parser(
        "demo", help="run the main job on the shipped defaults (offline, CPU)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default=DemoConfig.name, help="run name; results go to RUNS_DIR/NAME (default: demo)")
    p.add_argument("--runs-dir", default=DemoConfig.runs_dir, help="parent folder of run directories (default: runs)")
    p.add_argument("--stages", default=",".join(STAGES),
                   help=f"comma-separated stages to run (default: {','.join(STAGES)})")
    p.add_argument("--seed", type=int, default=DemoConfig.seed, help="random seed (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="rerun every stage even if already done")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    cfg = DemoConfig(name=args.name, runs_dir=args.runs_dir, seed=args.seed,
                     stages=tuple(s for s in args.stages.split(",") if s))
    run_demo(cfg, overwrite=args.overwrite)
    return 0
