"""ViT sites: SAEs trained from a store captured from a tiny random-init HookedViT, evaluated without the LM splice."""

from __future__ import annotations

import pytest
import torch

from interp.errors import InputError
from sae_training import evaluate_sae, train_sae
from sae_training.saelens_io import load_sae

RESID, Z = "blocks.0.hook_resid_post", "blocks.1.attn.hook_z"


@pytest.fixture(scope="module")
def vit():
    from interp.models.vit import HookedViT, HookedViTConfig

    torch.manual_seed(0)
    cfg = HookedViTConfig(n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64, image_size=28, patch_size=7)
    return HookedViT(cfg).eval()


@pytest.fixture(scope="module")
def vit_store(vit, tmp_path_factory):
    """64 random images x 16 patches (CLS dropped) of the residual stream and of hook_z."""
    from interp.capture import capture_to_store

    pixels = torch.randn(64, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    return capture_to_store(vit, pixels, [RESID, Z], tmp_path_factory.mktemp("vit") / "store", batch_size=16,
                            progress=False)  # fmt: skip


def test_vit_sites_train_and_evaluate_reconstruction(vit_store, tmp_path):
    assert vit_store.n_tokens == 64 * 16 and vit_store.shape(Z) == (2, 16)
    res = train_sae({"from_store": str(vit_store.path), "hook": [RESID, Z], "arch": "topk", "d_sae": 128, "k": 4,
                     "tokens": 8 * 128, "batch_size": 128, "out": str(tmp_path / "run"),
                     "progress": False})  # fmt: skip
    for hook in (RESID, Z):
        m = res.eval[hook]
        assert m["l0"] == pytest.approx(4.0) and 0 < m["fvu"] < 1 and m["tokens"] == 64 * 16
        assert "ce_loss_recovered" not in m and "kl_div" not in m  # the CE/KL splice is for language models
    z = load_sae(res.saes[Z])
    assert z.cfg.d_in == 32 and z.cfg.reshape_activations == "hook_z"
    assert z.cfg.metadata.model_name == "vit"
    acts = vit_store.get(slice(0, 8), Z)  # [8, n_heads, d_head]
    with torch.no_grad():
        assert z(acts).shape == acts.shape


def test_vit_as_splice_model_is_refused_with_the_fix(vit, vit_store, tmp_path):
    res = train_sae({"from_store": str(vit_store.path), "hook": [RESID], "arch": "standard", "d_sae": 64,
                     "tokens": 256, "batch_size": 128, "out": str(tmp_path / "run"), "progress": False,
                     "eval": False})  # fmt: skip
    with pytest.raises(InputError, match="not a language model.*store="):
        evaluate_sae(res.saes[RESID], model=vit)
    assert evaluate_sae(res.saes[RESID], store=vit_store)[RESID]["tokens"] == 64 * 16
