"""The main job's steering step: steer SmolLM2 with a labelled SAE latent and report effect against cost.

:func:`steering_demo` picks a well-scored single-token label among the SAE's
latents (:func:`pick_latent`), steers the model
with that latent's decoder direction (and, for comparison, clamps the latent
itself through :class:`~interp.steering.vectors.SAEEdit`), sweeps the
coefficient against a random vector of equal norm and a prompting baseline,
and generates with and without steering. Everything is written to
``<run_dir>/steering/``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from interp.cache import atomic_write_text
from interp.errors import InputError

__all__ = ["steering_demo", "pick_latent", "DEMO_PROMPTS", "DEMO_NEUTRAL", "DEMO_HELDOUT"]

#: Prompts whose next token is measured (the effect).
DEMO_PROMPTS = ("And he said unto them,", "In the morning the people went", "The king sent word to",
                "Then I looked, and")  # fmt: skip
#: Texts whose next-token distributions should not move (KL cost).
DEMO_NEUTRAL = ("The weather was mild and the fields were green.", "She opened the door and called her brother.",
                "They counted the sheep and returned home.")  # fmt: skip
#: Texts for the held-out loss change.
DEMO_HELDOUT = ("The river ran through the valley toward the sea.", "He wrote a letter to his friends in the city.",
                "In those days there was no bread in the land.")  # fmt: skip
_LABEL_KEY = re.compile(r"^(next|tok):(\d+)$")


def pick_latent(labels: dict[str, Any], d_sae: int, min_auroc: int | float = 0.9) -> dict[str, Any]:
    """The labelled latent to steer with, and the token its steering should promote.

    A label ``before 'X'`` (key ``next:ID``) says the latent encodes "the next
    token is X", so steering it should promote X; these come first. Otherwise a
    single-token label ``token 'X'`` (key ``tok:ID``) targets X itself. Among
    latents with held-out AUROC >= ``min_auroc`` the highest correlation wins
    (AUROC saturates near 1; correlation also rewards firing *only* on the label).
    """
    best, best_key = None, None
    for u in labels.get("units", []):
        m = _LABEL_KEY.match(str(u.get("key") or ""))
        scores = u.get("scores") or {}
        if not m or not 0 <= int(u["unit"]) < d_sae or float(scores.get("auroc") or 0.0) < min_auroc:
            continue
        key = (m.group(1) == "next", float(scores.get("correlation") or 0.0), float(scores["auroc"]))
        if best_key is None or key > best_key:
            best, best_key = u | {"token_id": int(m.group(2)), "label_kind": m.group(1)}, key
    if best is None:
        raise InputError(f"no latent in the labels has a single-token label (key 'next:ID' or 'tok:ID') with "
                         f"held-out AUROC >= {min_auroc}. Label the SAE's latents first (interp label --sae ...).")
    return best


def _sweep(model: Any, sae: Any, hook: str, unit: dict[str, Any], coefs: list[float]) -> Any:
    from interp.steering.evaluate import steering_sweep
    from interp.steering.vectors import SAEEdit

    i = int(unit["unit"])
    scale = float(unit.get("max") or 1.0)  # coefficient 1 = the latent at its largest observed activation
    direction = sae.W_dec[i].detach().float() * scale  # [d_model]
    word = model.tokenizer.decode([unit["token_id"]]).strip()
    return steering_sweep(
        model, {hook: direction}, unit["token_id"], list(DEMO_PROMPTS), list(DEMO_NEUTRAL), list(DEMO_HELDOUT),
        coefficients=coefs, n_random=1, prompt_prefix=f"Say the word {word}.",
        methods={"sae-clamp": lambda h, c: [SAEEdit(h, sae=sae, latents=[i], value=float(c * scale))]})  # fmt: skip


def steering_demo(run_dir: str | Path, model: Any, sae_path: str | Path, labels_json: str | Path,
                  coefficients: tuple[int | float, ...] = (0.5, 1.0, 2.0),
                  max_new_tokens: int = 12) -> dict[str, Any]:
    """Steer ``model`` with a labelled SAE latent; write and return effect-vs-cost numbers and generations.

    Args:
        run_dir: the run directory; outputs go to ``<run_dir>/steering/``.
        model: the full decoder model the SAE was trained on (SmolLM2), with its tokenizer.
        sae_path: the SAE folder (SAELens layout).
        labels_json: the labels of that SAE's latents (``labels.json`` of ``interp label --sae``).
        coefficients: steering scales, in units of the latent's largest observed activation.
        max_new_tokens: length of the steered and unsteered generations.

    Returns:
        ``{"latent", "label", "auroc", "hook", "target", "rows": [{method, coefficient, effect_mean, kl_mean,
        loss_delta_mean, ...}], "generation": {"prompt", "unsteered", "steered", "coefficient"},
        "files", "seconds"}``.
    """
    from interp.steering.generate import generate
    from interp.steering.vectors import Steer
    from sae_training.saelens_io import load_sae

    t0 = time.perf_counter()
    sae = load_sae(sae_path)
    hook = sae.cfg.metadata.hook_name
    unit = pick_latent(json.loads(Path(labels_json).read_text()), int(sae.cfg.d_sae))
    coefs = [float(c) for c in coefficients]
    result = _sweep(model, sae, hook, unit, coefs)
    out = Path(run_dir) / "steering"
    files = result.save(out)
    vector_rows = [r for r in result.rows if r.method == "vector"]
    pick = vector_rows[len(vector_rows) // 2].coefficient  # the middle coefficient: visible effect, moderate cost
    direction = sae.W_dec[int(unit["unit"])].detach().float() * float(unit.get("max") or 1.0)
    prompt = DEMO_PROMPTS[0]
    plain = generate(model, prompt, max_new_tokens=max_new_tokens).text[0]
    steered = generate(model, prompt, Steer(hook, direction, scale=pick), max_new_tokens=max_new_tokens).text[0]
    summary = {
        "latent": int(unit["unit"]), "label": unit.get("label"), "auroc": unit["scores"]["auroc"],
        "correlation": unit["scores"].get("correlation"), "hook": hook,
        "target": model.tokenizer.decode([unit["token_id"]]),
        "rows": [{"method": r.method, "coefficient": r.coefficient} | r.means() for r in result.rows],
        "generation": {"prompt": prompt, "unsteered": plain, "steered": steered, "coefficient": pick},
        "files": {k: str(v) for k, v in files.items()}, "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    atomic_write_text(out / "demo.json", json.dumps(summary, indent=2) + "\n")
    return summary
