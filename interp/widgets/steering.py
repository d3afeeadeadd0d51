"""Steering playground: pick a direction, move a coefficient, read steered and unsteered generations side by side.

The view needs fresh model output, so it calls a function you pass in:
``generate(prompt, direction, coefficient) -> str``. Changing the direction
(a vector, an SAE latent's decoder row, a neuron's output weights — any named
option), the coefficient slider or the prompt sets a synced trait; the Python
side calls your function and sets the ``steered`` and ``unsteered`` traits, and
the view redraws. The unsteered text is ``generate(prompt, direction, 0.0)``.
Results are cached by their arguments, so moving the slider back costs nothing
(deterministic functions, e.g. greedy decoding, are assumed; ``clear_cache()``
otherwise). While a call runs the view shows a busy state; an exception from
your function is shown in the view (and logged, and kept in
``view.last_exception``), never swallowed.

:meth:`SteeringPlayground.for_model` builds the function from
:func:`interp.steering.generate` (greedy decoding) and named ``(hook, vector)``
pairs, each added as :class:`interp.steering.Steer` ``(hook, vector, scale=coefficient)``.

An exported page (``view.export_html``) shows the last generations with the
controls disabled: regenerating needs a running kernel.

>>> view = SteeringPlayground.for_model(model, {                                    # doctest: +SKIP
...     "love-hate": ("blocks.6.hook_resid_post", v),
...     "latent 123": (sae.cfg.metadata.hook_name, sae.W_dec[123]),
...     "neuron 4.77": ("blocks.4.hook_mlp_out", model.W_out[4, 77]),
... }, prompt="I think dogs are", coefficient=4.0)
>>> view                                    # in a notebook                          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
import traitlets

from interp.errors import InputError, UnknownNameError
from interp.widgets._base import View

__all__ = ["SteeringPlayground"]

log = logging.getLogger(__name__)
_CACHE_SIZE = 256  # generations kept per view

_ESM = r"""export default {
  render({ model, el }) {
    el.classList.add("interp-steering");
    el.innerHTML = `<div class="sp-controls">
      <label>direction <select data-role="direction"></select></label>
      <label>coefficient <input type="range" data-role="coefficient">
        <output data-role="coefficient-value"></output></label></div>
      <div class="sp-prompt-row"><textarea data-role="prompt" rows="2" placeholder="prompt"></textarea>
        <button data-role="run" title="Ctrl+Enter">Generate</button></div>
      <div data-role="status" class="sp-status"></div>
      <div data-role="error" class="sp-error"></div>
      <div class="sp-cols">
        <div><div class="sp-h">unsteered (coefficient 0)</div><div data-role="unsteered" class="sp-out"></div></div>
        <div><div class="sp-h" data-role="steered-label">steered</div>
          <div data-role="steered" class="sp-out"></div></div>
      </div>`;
    const q = (r) => el.querySelector(`[data-role="${r}"]`);
    const sel = q("direction"), coef = q("coefficient"), prompt = q("prompt"), run = q("run");
    let localBusy = false;
    const put = (k, v) => {
      if (model.get(k) === v) return false;
      localBusy = true; model.set(k, v); model.save_changes(); status(); return true;
    };
    function output(node, text) {
      node.textContent = "";
      const p = document.createElement("span"); p.className = "sp-p"; p.textContent = model.get("prompt");
      const g = document.createElement("span"); g.className = "sp-g"; g.textContent = text;
      node.append(p, g);
    }
    function status() {
      const busy = !!model.get("busy") || localBusy;
      el.classList.toggle("sp-busy", busy);
      const s = q("status");
      s.setAttribute("data-busy", busy ? "1" : "0");
      s.textContent = busy ? "generating…" : model.standalone
        ? "Exported view: these are the generations at export time; regenerating needs a running kernel." : "";
    }
    function draw() {
      const dirs = model.get("directions") || [], cur = model.get("direction");
      if (sel.options.length !== dirs.length || dirs.some((d, i) => sel.options[i].value !== d)) {
        sel.textContent = "";
        for (const d of dirs) {
          const o = document.createElement("option"); o.value = o.textContent = d; sel.append(o);
        }
      }
      sel.value = cur;
      coef.min = model.get("coefficient_min"); coef.max = model.get("coefficient_max");
      coef.step = model.get("coefficient_step"); coef.value = model.get("coefficient");
      q("coefficient-value").textContent = String(model.get("coefficient"));
      if (document.activeElement !== prompt) prompt.value = model.get("prompt");
      output(q("unsteered"), model.get("unsteered"));
      output(q("steered"), model.get("steered"));
      q("steered-label").textContent = `steered (${cur} × ${model.get("coefficient")})`;
      const err = model.get("error") || "";
      q("error").textContent = err; q("error").style.display = err ? "" : "none";
      for (const c of [sel, coef, prompt, run]) c.disabled = !!model.standalone;
      status();
    }
    sel.addEventListener("change", () => put("direction", sel.value));
    coef.addEventListener("input", () => { q("coefficient-value").textContent = coef.value; });
    coef.addEventListener("change", () => put("coefficient", parseFloat(coef.value)));
    const submit = () => {
      if (!put("prompt", prompt.value)) { localBusy = true; status(); model.send({ event: "regenerate" }); }
    };
    run.addEventListener("click", submit);
    prompt.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) submit(); });
    model.on("change:busy", () => { if (!model.get("busy")) localBusy = false; status(); });
    for (const k of ["steered", "unsteered", "error", "directions", "direction", "coefficient", "prompt",
                     "coefficient_min", "coefficient_max", "coefficient_step"]) model.on(`change:${k}`, draw);
    draw();
  },
};
"""

_CSS = """
.interp-steering{font:13px system-ui,sans-serif}
.interp-steering .sp-controls label{margin-right:1.5em}
.interp-steering input[type=range]{width:14em;vertical-align:middle}
.interp-steering .sp-prompt-row{display:flex;gap:.5em;margin:.5em 0}
.interp-steering textarea{flex:1;font:inherit}
.interp-steering .sp-status{color:#777;min-height:1.2em}
.interp-steering .sp-error{color:#b2182b;white-space:pre-wrap;font-family:ui-monospace,monospace}
.interp-steering .sp-cols{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.interp-steering .sp-h{font-weight:600;margin-bottom:.3em}
.interp-steering .sp-out{white-space:pre-wrap;border:1px solid #ddd;border-radius:4px;padding:.5em;min-height:3em}
.interp-steering .sp-p{color:#888}
.interp-steering .sp-g{font-weight:600}
.interp-steering.sp-busy .sp-out{opacity:.5}
"""


def _check_directions(directions: Any) -> list[str]:
    if isinstance(directions, str) or not isinstance(directions, Sequence) or not directions:
        raise InputError(f"directions should be a non-empty list of names, got {directions!r}. "
                         "Fix: pass e.g. ['love-hate', 'latent 123'].")  # fmt: skip
    names = list(directions)
    bad = [d for d in names if not isinstance(d, str)]
    if bad:
        raise InputError(f"directions should be strings (the names shown in the selector); got {bad[:3]!r}.")
    if len(set(names)) != len(names):
        dup = sorted({d for d in names if names.count(d) > 1})
        raise InputError(f"directions have duplicate names {dup}; give each option its own name.")
    return names


class SteeringPlayground(View):
    """Steered and unsteered generations side by side, regenerated when the direction, coefficient or prompt changes.

    Args:
        generate: ``generate(prompt, direction, coefficient) -> str``, the continuation of ``prompt``
            with ``direction`` added ``coefficient`` times; ``coefficient == 0.0`` must mean unsteered.
        directions: the names offered in the selector (vectors, latents, neurons).
        prompt: the starting prompt.
        direction: the starting direction (default: the first).
        coefficient: the starting coefficient.
        coefficient_range: ``(min, max)`` of the slider.
        coefficient_step: the slider's step (default: 1/100 of the range).

    Synced traits: ``directions``, ``direction``, ``coefficient`` (with ``coefficient_min``,
    ``coefficient_max``, ``coefficient_step``), ``prompt``, ``steered``, ``unsteered``, ``busy``, ``error``.

    Raises:
        InputError: ``generate`` not callable, bad directions, an unknown direction, a coefficient outside
            the range. Errors raised by ``generate`` itself are shown in the view, not raised.

    Example::

        def gen(prompt, direction, coefficient):
            return my_generate(prompt, vectors[direction] * coefficient)

        view = SteeringPlayground(gen, ["formal", "pirate"], prompt="Tell me about ships", coefficient=6.0)
        view.coefficient = 8.0      # regenerates; view.steered holds the new text
        view.export_html("steering.html")
    """

    _esm = _ESM
    _css = _CSS
    directions = traitlets.List(traitlets.Unicode()).tag(sync=True)
    direction = traitlets.Unicode("").tag(sync=True)
    coefficient = traitlets.Float(0.0).tag(sync=True)
    coefficient_min = traitlets.Float(-10.0).tag(sync=True)
    coefficient_max = traitlets.Float(10.0).tag(sync=True)
    coefficient_step = traitlets.Float(0.1).tag(sync=True)
    prompt = traitlets.Unicode("").tag(sync=True)
    steered = traitlets.Unicode("").tag(sync=True)
    unsteered = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, generate: Callable[[str, str, float], str], directions: Sequence[str], *, prompt: str = "",
                 direction: str | None = None, coefficient: float | int = 1.0,
                 coefficient_range: Sequence[float | int] = (-10.0, 10.0), coefficient_step: float | int | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        if not callable(generate):
            raise InputError(f"generate should be a function (prompt, direction, coefficient) -> str, got "
                             f"{type(generate).__name__}. Fix: pass a function, or use "
                             "SteeringPlayground.for_model.")  # fmt: skip
        names = _check_directions(directions)
        lo, hi = (float(x) for x in coefficient_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise InputError(f"coefficient_range should be finite (min, max) with min < max, got {coefficient_range}.")
        if not lo <= coefficient <= hi:
            raise InputError(f"coefficient {coefficient} is outside coefficient_range ({lo}, {hi}); "
                             "widen the range or pick a coefficient inside it.")  # fmt: skip
        direction = names[0] if direction is None else direction
        if direction not in names:
            raise UnknownNameError("direction", direction, names, fix="Pick one of the directions you passed.")
        self._generate = generate
        self._cache: OrderedDict[tuple[str, str, float], str] = OrderedDict()
        self.last_exception: BaseException | None = None
        step = coefficient_step or (hi - lo) / 100
        super().__init__(directions=names, direction=direction, coefficient=float(coefficient), coefficient_min=lo,
                         coefficient_max=hi, coefficient_step=step, prompt=prompt, **kwargs)  # fmt: skip
        self.observe(self._changed, names=["prompt", "direction", "coefficient"])
        self.on_msg(self._message)
        self.regenerate()

    @traitlets.validate("direction")
    def _check_direction(self, proposal: Any) -> str:
        if self.directions and proposal["value"] not in self.directions:
            raise UnknownNameError("direction", proposal["value"], self.directions,
                                   fix="Pick one of the directions the playground was built with.")  # fmt: skip
        return proposal["value"]

    def _changed(self, change: Any) -> None:
        self.regenerate()

    def _message(self, widget: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "regenerate":
            self.regenerate(fresh=True)

    def _call(self, prompt: str, direction: str, coefficient: float) -> str:
        key = (prompt, direction, float(coefficient))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        text = self._generate(prompt, direction, float(coefficient))
        if not isinstance(text, str):
            raise InputError(f"generate({prompt!r}, {direction!r}, {coefficient}) returned {type(text).__name__}, "
                             "expected the generated text as a str. Fix: return e.g. generation.text[0].")  # fmt: skip
        self._cache[key] = text
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return text

    def regenerate(self, fresh: bool = False) -> None:
        """Call ``generate`` for the current prompt, direction and coefficient and update the view.

        Args:
            fresh: call ``generate`` even when these arguments are cached (the view's Generate button
                with nothing changed does this).

        An exception from ``generate`` is shown in the view's error line, logged with its traceback and
        kept in ``last_exception``; the texts it could not produce are cleared so nothing stale stands
        beside the error.
        """
        prompt, direction, coefficient = self.prompt, self.direction, self.coefficient
        if fresh:
            for c in (0.0, float(coefficient)):
                self._cache.pop((prompt, direction, c), None)
        self.busy = True  # sent at once: the view shows the busy state while generate runs
        unsteered = steered = error = ""
        try:
            unsteered = self._call(prompt, direction, 0.0)
            steered = unsteered if coefficient == 0 else self._call(prompt, direction, coefficient)
            self.last_exception = None
        except Exception as e:  # noqa: BLE001 - the user's function may raise anything; it is shown, not hidden
            self.last_exception, error = e, f"{type(e).__name__}: {e}"
            log.error("steering playground: generate(%r, %r, %s) failed", prompt, direction, coefficient,
                      exc_info=True)  # fmt: skip
        with self.hold_sync():
            self.unsteered, self.steered, self.error, self.busy = unsteered, steered, error, False

    def clear_cache(self) -> None:
        """Forget cached generations (for a ``generate`` that samples, or after changing the model)."""
        self._cache.clear()

    @classmethod
    def for_model(cls, model: Any, vectors: dict[str, Any], *, max_new_tokens: int = 20, **kwargs: Any
                  ) -> SteeringPlayground:  # fmt: skip
        """A playground that steers ``model`` with named vectors, greedy decoding (deterministic).

        Args:
            model: a decoder ``HookedTransformer`` with a tokenizer (``interp.load_model(name)``).
            vectors: ``{name: (hook, vector [d])}``, added as ``Steer(hook, vector, scale=coefficient)`` at
                every position; or ``{name: edit}`` with ``edit(coefficient)`` returning an
                :class:`~interp.interventions.Intervention` (e.g. an ``SAEEdit`` or a neuron clamp).
                A latent's direction is its decoder row ``(sae.cfg.metadata.hook_name, sae.W_dec[i])``;
                a neuron's is ``(f"blocks.{L}.hook_mlp_out", model.W_out[L, i])``.
            max_new_tokens: tokens generated per call.
            **kwargs: the playground's own arguments (``prompt``, ``coefficient``, ``coefficient_range``, ...).

        Raises:
            InputError: an empty ``vectors``, a vector that is not a finite 1-D tensor, a bad entry.
            UnknownNameError: a hook the model does not have (nearest names listed).
        """
        from interp.steering.generate import generate as steer_generate

        if not isinstance(vectors, dict) or not vectors:
            raise InputError(f"vectors should be a non-empty dict {{name: (hook, vector)}}, got {vectors!r:.80}.")
        edits = {name: _edit_factory(model, name, spec) for name, spec in vectors.items()}
        if max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")

        def generate(prompt: str, direction: str, coefficient: float) -> str:
            edit = [] if coefficient == 0 else [edits[direction](coefficient)]
            return steer_generate(model, prompt, *edit, max_new_tokens=max_new_tokens, temperature=0.0).text[0]

        return cls(generate, list(vectors), **kwargs)


def _edit_factory(model: Any, name: str, spec: Any) -> Callable[[float], Any]:
    """``coefficient -> Intervention`` for one entry of :meth:`SteeringPlayground.for_model`'s ``vectors``."""
    from interp.steering.vectors import Steer

    if callable(spec):
        return spec
    if not (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str)):
        raise InputError(f"vectors[{name!r}] should be (hook, vector) or a function coefficient -> edit, got "
                         f"{type(spec).__name__}. Fix: e.g. ('blocks.6.hook_resid_post', v).")  # fmt: skip
    hook, vec = spec
    hooks = getattr(model, "hook_dict", {})
    if hook not in hooks:
        raise UnknownNameError("hook", hook, hooks, fix=f"Use one of the model's hook points for {name!r}.")
    if not isinstance(vec, torch.Tensor) or vec.ndim != 1 or not bool(torch.isfinite(vec).all()):
        got = f"shape {tuple(vec.shape)}" if isinstance(vec, torch.Tensor) else type(vec).__name__
        raise InputError(f"vectors[{name!r}] should hold a finite 1-D tensor [d], got {got}. "
                         "Fix: pass one direction, e.g. sae.W_dec[i] or steering_vector(...).")  # fmt: skip
    vec = vec.detach()
    return lambda coefficient: Steer(hook, vec, scale=float(coefficient))
