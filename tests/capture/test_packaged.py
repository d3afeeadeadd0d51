"""Capture from the three packaged models through the registry, on shipped data."""

from __future__ import annotations

import pytest
import torch

import interp
from interp.capture import capture_activations, capture_to_store

pytestmark = pytest.mark.slow


def _check_first_context(store, model, hook, inputs, n_special_front=1):
    ref = capture_activations(model, inputs, hook)[hook][0]  # [pos, *shape]
    meta = store.meta(slice(None))
    first = meta["context"] == 0
    rows = store.get(torch.nonzero(first).flatten(), hook)
    assert torch.allclose(rows, ref[meta["ctx_pos"][first]], atol=1e-5)


def test_smollm2_on_bible(tmp_path):
    model = interp.load_model("smollm2-135m", n_layers=2)
    hooks = ["blocks.1.hook_resid_post", "blocks.0.attn.hook_z"]
    store = capture_to_store(model, "bible", hooks, tmp_path / "s", max_tokens=300, context_size=32, batch_size=4,
                             progress=False)  # fmt: skip
    assert store.n_tokens == 300 and store.shape("blocks.0.attn.hook_z") == (9, 64)
    assert store.manifest.model["name"] == "smollm2-135m" and store.manifest.segments[0].dataset["name"] == "bible"
    ctx = store.context_tokens(0)
    assert int(ctx[0]) == model.tokenizer.bos_token_id and (store.meta([0])["ctx_pos"] == 1).all()
    _check_first_context(store, model, hooks[0], ctx[None])


def test_minilm_on_pydoc(tmp_path):
    model = interp.load_model("minilm-l6", n_layers=1)
    store = capture_to_store(model, "pydoc", "blocks.0.hook_resid_post", tmp_path / "s", max_tokens=200,
                             context_size=32, batch_size=4, progress=False)  # fmt: skip
    ctx = store.context_tokens(0)
    assert model.tokenizer.decode(ctx[:1]) == "[CLS]" and model.tokenizer.decode(ctx[-1:]) == "[SEP]"
    assert set(store.meta(slice(None))["ctx_pos"].tolist()) <= set(range(1, 31))  # [CLS], [SEP] dropped
    _check_first_context(store, model, "blocks.0.hook_resid_post", ctx[None])


def test_dinov2_on_images(tmp_path):
    from interp.datasets.images import load_images

    model = interp.load_model("dinov2-s14", n_layers=1)
    store = capture_to_store(model, "skimage", "blocks.0.hook_resid_post", tmp_path / "s", limit=2, batch_size=2,
                             progress=False)  # fmt: skip
    assert store.n_tokens == 2 * 256  # 16 x 16 patches, CLS dropped
    meta = store.meta([0, 255, 256])
    assert meta["doc"].tolist() == [0, 0, 1] and meta["pos"].tolist() == [0, 255, 0]
    _check_first_context(store, model, "blocks.0.hook_resid_post", load_images("skimage", "train", limit=1).images)
