"""Steering and editing, measured as effect against cost.

Builds on :mod:`interp.interventions` (every edit here is an ``Intervention``)
and sits beside labeling in the pipeline: SAEs from :mod:`sae_training`,
labels from :mod:`interp.labeling`, neuron decoding through the shared
:func:`interp.labeling.vocab.vocab_projection`.

* :mod:`~interp.steering.vectors` — steering vectors (ActAdd pair, CAA mean
  difference), SVD subspaces, :class:`Steer`, :class:`SubspaceSteer`,
  :class:`SAEEdit` (exact when empty), neuron clamp/ablate.
* :mod:`~interp.steering.generate` — generation with edits at every step,
  with or without the KV cache (same tokens), streamed.
* :mod:`~interp.steering.neurons` — MLP neurons decoded through the
  unembedding, searched by token, clamped.
* :mod:`~interp.steering.evaluate` — coefficient/layer sweeps: effect against
  KL and loss cost, random and prompting baselines; JSON + plotly HTML.
* :mod:`~interp.steering.demo` — the main job's SmolLM2 steering step.

Nothing heavy is imported here; the names load on first use.
"""

from __future__ import annotations

from interp._lazy import lazy_exports

_V, _G = "interp.steering.vectors", "interp.steering.generate"
_N, _E = "interp.steering.neurons", "interp.steering.evaluate"
_EXPORTS = {
    **dict.fromkeys(["Steer", "SubspaceSteer", "SAEEdit", "steering_vector", "steering_subspace",
                     "prompt_activations", "neuron_clamp", "neuron_ablate"], _V),
    **dict.fromkeys(["generate", "print_stream", "Generation"], _G),
    **dict.fromkeys(["find_neurons", "neuron_table", "neuron_scores", "neuron_effect"], _N),
    **dict.fromkeys(["steering_sweep", "SweepResult", "SweepRow"], _E),
    "steering_demo": "interp.steering.demo",
}  # fmt: skip
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
