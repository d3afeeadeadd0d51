"""Every registry model follows the one model contract (interp/models/contract.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import interp
from interp.errors import UnknownNameError
from interp.models.contract import CONTRACT_ATTRS, check_hook_names, model_info
from interp.models.registry import REGISTRY

pytestmark = pytest.mark.slow

SAMPLE = {
    "decoder": ["The capital of France is", "In the beginning God created the heaven"],
    "encoder": ["A man is playing a guitar.", "The stock market fell."],
    "vit": [np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(2)],
}
HOOKS = ("hook_resid_pre", "hook_resid_post", "mlp.hook_post", "attn.hook_z", "attn.hook_pattern",
         "hook_attn_out", "hook_mlp_out")


@pytest.fixture(scope="module", params=sorted(REGISTRY))
def loaded(request):
    options = {"image_size": 112} if REGISTRY[request.param].kind == "vit" else {}
    return request.param, interp.load_model(request.param, n_layers=2, **options)


def test_cfg_and_identity(loaded):
    name, model = loaded
    for attr in CONTRACT_ATTRS:
        assert hasattr(model.cfg, attr), f"{name}: cfg lacks {attr}"
    assert model.cfg.n_layers == 2
    info = model_info(model)
    assert info.name == name and info.kind == REGISTRY[name].kind and info.n_layers == 2
    assert info.to_dict()["family"] == REGISTRY[name].family


def test_hook_names_are_transformer_lens(loaded):
    name, model = loaded
    for layer in range(2):
        check_hook_names(model, [f"blocks.{layer}.{h}" for h in HOOKS])
    with pytest.raises(UnknownNameError, match="blocks.1.hook_resid_post"):
        check_hook_names(model, ["blocks.1.hook_resid_pots"])


def test_run_with_cache_and_stop_at_layer(loaded):
    name, model = loaded
    inputs = interp.prepare_inputs(model, SAMPLE[model_info(model).kind])
    with torch.no_grad():
        _, cache = model.run_with_cache(inputs, names_filter=lambda n: n.startswith("blocks.1"))
        resid = model(inputs, stop_at_layer=1)
    assert all(k.startswith("blocks.1") for k in cache.keys())
    torch.testing.assert_close(resid, cache["blocks.1.hook_resid_pre"])
    z = cache["blocks.1.attn.hook_z"]
    assert z.shape[-2:] == (model.cfg.n_heads, model.cfg.d_head)
    assert cache["blocks.1.mlp.hook_post"].shape[-1] == model.cfg.d_mlp
    pattern = cache["blocks.1.attn.hook_pattern"]
    torch.testing.assert_close(pattern.sum(-1), torch.ones_like(pattern.sum(-1)))


def test_hooks_context_always_removes_hooks(loaded):
    name, model = loaded
    inputs = interp.prepare_inputs(model, SAMPLE[model_info(model).kind])
    seen = []

    def record(x, hook):
        seen.append(hook.name)
        return x

    with pytest.raises(ZeroDivisionError):
        with model.hooks(fwd_hooks=[("blocks.0.hook_resid_post", record)]):
            with torch.no_grad():
                model(inputs, stop_at_layer=1)
            raise ZeroDivisionError("inside the hooks context")
    assert seen == ["blocks.0.hook_resid_post"]
    assert all(not hp._forward_hooks for hp in model.hook_dict.values())


def test_zero_ablation_through_hooks_changes_output(loaded):
    name, model = loaded
    inputs = interp.prepare_inputs(model, SAMPLE[model_info(model).kind])
    with torch.no_grad():
        clean = model(inputs, stop_at_layer=2)
        with model.hooks(fwd_hooks=[("blocks.0.mlp.hook_post", lambda x, hook: torch.zeros_like(x))]):
            ablated = model(inputs, stop_at_layer=2)
    assert not torch.allclose(clean, ablated)
