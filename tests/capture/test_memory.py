"""In-memory capture: hooks recorded, always removed, no model kept alive, early stop."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from interp.capture import HookNotReachedError, capture, capture_activations, resolve_hooks, stop_layer
from interp.errors import UnknownNameError


def _n_hooks(model) -> int:
    return sum(len(hp._forward_hooks) for hp in model.hook_dict.values())


def test_capture_records_and_matches_run_with_cache(model, tiny):
    toks = tiny.tokens(4, 8)
    names = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern"]
    with capture(model, names) as acts:
        model(toks)
    _, cache = model.run_with_cache(toks, names_filter=names)
    assert set(acts) == set(names)
    for n in names:
        assert torch.equal(acts[n], cache[n])
    assert _n_hooks(model) == 0


def test_capture_removes_hooks_on_exception(model, tiny):
    with pytest.raises(RuntimeError, match="boom"), capture(model, "blocks.0.hook_resid_post"):
        model(tiny.tokens(1, 4))
        assert _n_hooks(model) == 1
        raise RuntimeError("boom")
    assert _n_hooks(model) == 0


def test_activations_keep_no_model_alive(tiny):
    model = tiny.tiny_model()
    ref = weakref.ref(model)
    acts = capture_activations(model, tiny.tokens(2, 4), "blocks.1.hook_resid_post")
    del model
    gc.collect()
    assert ref() is None
    assert acts["blocks.1.hook_resid_post"].shape == (2, 4, 64)


def test_several_passes_concatenate(model, tiny):
    with capture(model, "blocks.0.hook_resid_post") as acts:
        model(tiny.tokens(2, 4, seed=1))
        model(tiny.tokens(3, 4, seed=2))
    assert acts["blocks.0.hook_resid_post"].shape == (5, 4, 64)


def test_early_stop_runs_only_needed_blocks(model, tiny):
    assert stop_layer(model, ["blocks.0.hook_resid_post"]) == 1
    assert stop_layer(model, ["hook_embed"]) == 0
    assert stop_layer(model, ["blocks.0.hook_resid_post", "ln_final.hook_normalized"]) is None
    fired = []
    model.add_hook("blocks.1.hook_resid_pre", lambda t, hook: fired.append(hook.name))
    try:
        capture_activations(model, tiny.tokens(1, 4), "blocks.0.mlp.hook_post")
    finally:
        model.reset_hooks()
    assert fired == []


def test_unknown_hook_lists_nearest(model):
    with pytest.raises(UnknownNameError, match="blocks.0.hook_resid_post"):
        resolve_hooks(model, ["blocks.0.hook_resid_pots"])


def test_patterns_expand_in_hook_order(model):
    assert resolve_hooks(model, "blocks.*.hook_resid_post") == ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]


def test_hook_beyond_loaded_layers_says_how_many(model):
    with pytest.raises(HookNotReachedError, match="only 2 blocks loaded.*n_layers=6"):
        resolve_hooks(model, ["blocks.5.hook_resid_post"])


def test_hook_beyond_stop_layer_is_refused(model, tiny):
    with pytest.raises(HookNotReachedError, match="blocks.1.hook_resid_post"):
        capture_activations(model, tiny.tokens(1, 4), "blocks.1.hook_resid_post", stop_at_layer=1)


def test_hook_that_never_runs_is_reported(model, tiny):
    # attn.hook_result exists but only runs after model.set_use_attn_result(True)
    with pytest.raises(HookNotReachedError, match="set_use_attn_result"):
        capture_activations(model, tiny.tokens(1, 4), "blocks.0.attn.hook_result")


def test_interp_capture_stays_callable_after_importing_the_package(model):
    """``from interp.capture import X`` rebinds ``interp.capture`` to the package; calling it still captures."""
    import interp
    from interp.capture import resolve_hooks  # noqa: F401  (the import that rebinds the name)

    with interp.capture(model, ["blocks.0.hook_resid_post"]) as acts:
        model(torch.tensor([[1, 2, 3]]))
    assert list(acts) == ["blocks.0.hook_resid_post"]


def test_steering_generate_stays_callable_after_importing_its_module():
    """The same clash for ``interp.steering.generate`` (function and module)."""
    import interp.steering
    from interp.steering.generate import Generation  # noqa: F401  (rebinds interp.steering.generate)

    assert callable(interp.steering.generate)
