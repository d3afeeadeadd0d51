"""Fixtures of the steering tests: tiny seeded models and a tiny random SAELens SAE."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def sae():
    """A random standard SAELens SAE on ``blocks.0.hook_resid_post`` of the tiny model (d_in 64, d_sae 128)."""
    from sae_training.saelens_io import quiet_saelens

    with quiet_saelens():
        from sae_lens import SAE

        out = SAE.from_dict({"architecture": "standard", "d_in": 64, "d_sae": 128, "dtype": "float32",
                             "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
                             "metadata": {"hook_name": "blocks.0.hook_resid_post"}})  # fmt: skip
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in out.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return out


@pytest.fixture
def toks():
    """Seeded token ids ``[4, 10]`` for the tiny model's vocabulary of 500."""
    return torch.randint(0, 500, (4, 10), generator=torch.Generator().manual_seed(1))


@pytest.fixture
def n_hooks():
    """``n_hooks(model)``: forward hooks attached to the model's hook points (0 when every edit was removed)."""
    return lambda model: sum(len(hp._forward_hooks) for hp in model.hook_dict.values())
