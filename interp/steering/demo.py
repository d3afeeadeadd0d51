"""The main job's steering step: steer SmolLM2 with a labelled SAE latent and report effect against cost.

:func:`steering_demo` takes the well-scored single-token labels among the SAE's
latents (:func:`candidate_latents`), keeps the one whose decoder direction moves
its token the most against a random vector (:func:`screen_latents`), steers the model
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

from torch import Tensor

from interp.cache import atomic_write_text
from interp.errors import InputError

__all__ = ["steering_demo", "pick_latent", "candidate_latents", "screen_latents", "DEMO_PROMPTS", "DEMO_NEUTRAL",
           "DEMO_HELDOUT"]  # fmt: skip

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


def candidate_latents(labels: dict[str, Any], d_sae: int, min_auroc: int | float = 0.9,
                      n: int = 12) -> list[dict[str, Any]]:  # fmt: skip
    """Labelled latents worth steering with, best first, each with the token its steering should promote.

    A label ``before 'X'`` (key ``next:ID``) says the latent encodes "the next
    token is X", so steering it should promote X; these come first. Otherwise a
    single-token label ``token 'X'`` (key ``tok:ID``) targets X itself. Among
    latents with held-out AUROC >= ``min_auroc`` a higher correlation ranks first
    (AUROC saturates near 1; correlation also rewards firing *only* on the label).

    Raises:
        InputError: no latent has such a label.
    """
    found = []
    for u in labels.get("units", []):
        m = _LABEL_KEY.match(str(u.get("key") or ""))
        scores = u.get("scores") or {}
        if not m or not 0 <= int(u["unit"]) < d_sae or float(scores.get("auroc") or 0.0) < min_auroc:
            continue
        key = (m.group(1) == "next", float(scores.get("correlation") or 0.0), float(scores["auroc"]))
        found.append((key, u | {"token_id": int(m.group(2)), "label_kind": m.group(1)}))
    if not found:
        raise InputError(f"no latent in the labels has a single-token label (key 'next:ID' or 'tok:ID') with "
                         f"held-out AUROC >= {min_auroc}. Label the SAE's latents first (interp label --sae ...).")
    found.sort(key=lambda kv: kv[0], reverse=True)
    return [u for _, u in found[:n]]


def pick_latent(labels: dict[str, Any], d_sae: int, min_auroc: int | float = 0.9) -> dict[str, Any]:
    """The best-labelled latent by :func:`candidate_latents`'s order (no model run needed)."""
    return candidate_latents(labels, d_sae, min_auroc, n=1)[0]


def _direction(sae: Any, unit: dict[str, Any]) -> Any:
    """The latent's decoder direction at its largest observed activation: coefficient 1 = the latent at its max."""
    return sae.W_dec[int(unit["unit"])].detach().float() * float(unit.get("max") or 1.0)  # [d_model]


def screen_latents(model: Any, sae: Any, hook: str, candidates: list[dict[str, Any]], prompts: list[str] | Tensor,
                   coefficient: float = 2.0, seed: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """Measure each candidate's steering effect on ``prompts`` against a random vector of equal norm.

    A label says what a latent *reads*; whether adding its direction makes the model
    *write* the label's token is an empirical question, so the demo asks it of each
    candidate: the mean lift of the target's log-probability at ``coefficient``, minus
    the same for a random direction of equal norm (one forward pass per prompt set each).

    Returns:
        One dict per candidate (``unit``, ``label``, ``target``, ``effect``, ``random``, ``margin``), best margin first.
    """
    from interp.steering.evaluate import random_like, target_lift
    from interp.steering.vectors import Steer

    rows = []
    for i, unit in enumerate(candidates):
        v = _direction(sae, unit)
        tid = unit["token_id"]
        eff = target_lift(model, prompts, tid, [Steer(hook, v, scale=coefficient)])
        rnd = target_lift(model, prompts, tid, [Steer(hook, random_like(v, seed + i), scale=coefficient)])
        e, r = sum(eff) / len(eff), sum(rnd) / len(rnd)
        tok = getattr(model, "tokenizer", None)
        rows.append({"unit": int(unit["unit"]), "label": unit.get("label"), "target": tok.decode([tid]) if tok else tid,
                     "effect": e, "random": r, "margin": e - r})  # fmt: skip
    return sorted(rows, key=lambda r: r["margin"], reverse=True)


def _sweep(model: Any, sae: Any, hook: str, unit: dict[str, Any], coefs: list[float]) -> Any:
    from interp.steering.evaluate import steering_sweep
    from interp.steering.vectors import SAEEdit

    i, scale = int(unit["unit"]), float(unit.get("max") or 1.0)
    word = model.tokenizer.decode([unit["token_id"]]).strip()
    return steering_sweep(
        model, {hook: _direction(sae, unit)}, unit["token_id"], list(DEMO_PROMPTS), list(DEMO_NEUTRAL),
        list(DEMO_HELDOUT), coefficients=coefs, n_random=1, prompt_prefix=f"Say the word {word}.",
        methods={"sae-clamp": lambda h, c: [SAEEdit(h, sae=sae, latents=[i], value=float(c * scale))]})  # fmt: skip


def _within_budget(result: Any, kl_budget: float) -> float:
    """The coefficient whose effect beats the random vector's by most with mean neutral KL <= ``kl_budget``.

    Without one within budget, the best margin overall.
    """
    def margin(c: float) -> float:
        eff = {r.method: r.means()["effect_mean"] for r in result.rows if r.coefficient == c}
        return eff["vector"] - eff.get("random", 0.0)

    rows = [r for r in result.rows if r.method == "vector"]
    ok = [r.coefficient for r in rows if r.means()["kl_mean"] <= kl_budget] or [r.coefficient for r in rows]
    return max(ok, key=margin)


def steering_demo(run_dir: str | Path, model: Any, sae_path: str | Path, labels_json: str | Path,
                  coefficients: tuple[int | float, ...] = (0.5, 1.0, 2.0, 4.0), n_candidates: int = 12,
                  kl_budget: float = 2.5, max_new_tokens: int = 12) -> dict[str, Any]:  # fmt: skip
    """Steer ``model`` with a labelled SAE latent; write and return effect-vs-cost numbers and generations.

    The ``n_candidates`` best-labelled single-token latents (:func:`candidate_latents`)
    are screened by measured effect against a random vector (:func:`screen_latents`);
    the winner is swept over ``coefficients`` with random-vector, SAE-clamp and
    prompting baselines, and the generation uses the coefficient that beats the random
    vector by most while its KL on neutral text stays within ``kl_budget``.

    Args:
        run_dir: the run directory; outputs go to ``<run_dir>/steering/``.
        model: the full decoder model the SAE was trained on (SmolLM2), with its tokenizer.
        sae_path: the SAE folder (SAELens layout).
        labels_json: the labels of that SAE's latents (``labels.json`` of ``interp label --sae``).
        coefficients: steering scales, in units of the latent's largest observed activation.
        n_candidates: labelled latents screened.
        kl_budget: most mean KL (nats/token) on neutral text the generation's coefficient may cost.
        max_new_tokens: length of the steered and unsteered generations.

    Returns:
        ``{"latent", "label", "auroc", "hook", "target", "screen": [...], "rows": [{method, coefficient,
        effect_mean, kl_mean, loss_delta_mean, ...}], "generation": {"prompt", "unsteered", "steered",
        "coefficient"}, "files", "seconds"}``.
    """
    from interp.steering.generate import generate
    from interp.steering.vectors import Steer
    from sae_training.saelens_io import load_sae

    t0 = time.perf_counter()
    sae = load_sae(sae_path)
    hook = sae.cfg.metadata.hook_name
    candidates = candidate_latents(json.loads(Path(labels_json).read_text()), int(sae.cfg.d_sae), n=n_candidates)
    screen = screen_latents(model, sae, hook, candidates, list(DEMO_PROMPTS), coefficient=max(coefficients))
    unit = next(u for u in candidates if int(u["unit"]) == screen[0]["unit"])
    result = _sweep(model, sae, hook, unit, [float(c) for c in coefficients])
    out = Path(run_dir) / "steering"
    files = result.save(out)
    pick = _within_budget(result, kl_budget)
    prompt = DEMO_PROMPTS[0]
    plain = generate(model, prompt, max_new_tokens=max_new_tokens).text[0]
    steered = generate(model, prompt, Steer(hook, _direction(sae, unit), scale=pick),
                       max_new_tokens=max_new_tokens).text[0]  # fmt: skip
    summary = {
        "latent": int(unit["unit"]), "label": unit.get("label"), "auroc": unit["scores"]["auroc"],
        "correlation": unit["scores"].get("correlation"), "hook": hook,
        "target": model.tokenizer.decode([unit["token_id"]]), "screen": screen, "kl_budget": kl_budget,
        "rows": [{"method": r.method, "coefficient": r.coefficient} | r.means() for r in result.rows],
        "generation": {"prompt": prompt, "unsteered": plain, "steered": steered, "coefficient": pick},
        "files": {k: str(v) for k, v in files.items()}, "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    atomic_write_text(out / "demo.json", json.dumps(summary, indent=2) + "\n")
    return summary
