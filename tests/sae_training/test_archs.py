"""Architectures: exact sparse gradients, SAELens round trips in both directions, the registry."""

from __future__ import annotations

import pytest
import torch

from interp.errors import UnknownNameError
from sae_training.archs import ARCHITECTURES, get_arch
from sae_training.config import SAESpec
from sae_training.saelens_io import load_sae, quiet_saelens, save_sae, to_trainable


def _perturbed(arch: str, d_in: int = 32, d_sae: int = 128, **spec):
    m = get_arch(arch)(d_in, d_sae, SAESpec(arch=arch, **spec), torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return m


def _dense_reference(m, x, dead, arch):
    """SAELens's TopK / BatchTopK loss (MSE + AuxK) through dense autograd."""
    pre = (x - m.b_dec) @ m.W_enc_T.t() + m.b_enc
    if arch == "topk":
        v, i = pre.topk(int(m.spec.k), dim=1)
        acts = torch.zeros_like(pre).scatter(1, i, v.relu())
    else:
        v, i = pre.relu().flatten().topk(int(m.spec.k * x.shape[0]))
        acts = torch.zeros_like(pre.flatten()).scatter(0, i, v).view_as(pre)
    recon = acts @ m.W_dec + m.b_dec
    mse = (recon - x).pow(2).sum(-1).mean()
    n_dead, k_aux = int(dead.sum()), m.k_aux
    av, ai = torch.where(dead[None], pre, torch.tensor(float("-inf"), dtype=pre.dtype)).topk(min(k_aux, n_dead), dim=1)
    aux_recon = torch.zeros_like(pre).scatter(1, ai, av) @ m.W_dec
    aux = m.spec.aux_k_coefficient * min(n_dead / k_aux, 1) * (aux_recon - (x - recon).detach()).pow(2).sum(-1).mean()
    return mse + aux


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_sparse_step_matches_dense_autograd(arch):
    m = _perturbed(arch, k=4, aux_k=16, aux_k_coefficient=0.5).double()
    x = torch.randn(20, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    dead = torch.rand(128, generator=torch.Generator().manual_seed(4)) < 0.4
    stats = m.step(x, dead)
    ours = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    ref = _dense_reference(m, x, dead, arch)
    ref.backward()
    assert stats.loss == pytest.approx(ref.item(), rel=1e-10)
    for n, p in m.named_parameters():
        torch.testing.assert_close(ours[n], p.grad, rtol=1e-9, atol=1e-12, msg=n)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_saved_sae_loads_in_saelens_with_same_outputs(arch, tmp_path):
    with quiet_saelens():  # SAELens's own import warns about TransformerLens's deprecated utils
        from sae_lens import SAE

    m = _perturbed(arch, k=8)
    scale = 0.37  # the input-normalisation scale is folded into the saved weights
    meta = {"hook_name": "blocks.0.hook_resid_post", "model_name": "tiny",
            "model_from_pretrained_kwargs": {"fold_ln": True}}
    path = save_sae(m, tmp_path / "sae", meta, scale=scale, frequency=torch.rand(128))
    assert {p.name for p in path.iterdir()} == {"cfg.json", "sae_weights.safetensors", "sparsity.safetensors"}
    with pytest.warns(UserWarning, match="model_from_pretrained_kwargs"):
        theirs = SAE.load_from_disk(path)  # SAELens itself, no help from us
    x = torch.randn(40, 32, generator=torch.Generator().manual_seed(5)) * 3
    with torch.no_grad():
        ours = m.decode(m.encode(x * scale)) / scale
        torch.testing.assert_close(theirs(x), ours, rtol=1e-4, atol=1e-4)
    assert theirs.cfg.metadata.hook_name == "blocks.0.hook_resid_post"
    assert theirs.cfg.metadata.norm_scaling_factor == pytest.approx(scale)


@pytest.mark.parametrize("arch", ["topk", "standard", "jumprelu", "gated"])
def test_saelens_trained_sae_loads_into_ours(arch, tmp_path):
    """An SAE written by SAELens's training class (TopK with decoder-norm rescaling) loads with equal outputs."""
    with quiet_saelens():
        from sae_lens.registry import get_sae_training_class

    cls, cfg_cls = get_sae_training_class(arch)
    extra = {"k": 8} if arch == "topk" else {}
    torch.manual_seed(0)
    sae = cls(cfg_cls(d_in=32, d_sae=128, **extra))
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(0.1 * torch.randn_like(p))
    sae.save_inference_model(tmp_path / "theirs")
    loaded = load_sae(tmp_path / "theirs")
    ours = to_trainable(loaded)
    x = torch.randn(40, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), loaded(x), rtol=1e-4, atol=1e-4)


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="topk.*batchtopk.*standard.*jumprelu.*gated"):
        SAESpec(arch="top-k")


def test_decoder_rows_stay_unit_norm_after_training_steps():
    m = _perturbed("topk", k=4)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(3):
        m.step(torch.randn(16, 32), None)
        m.project_decoder_grad()
        opt.step()
        opt.zero_grad()
        m.constrain()
    torch.testing.assert_close(m.W_dec.norm(dim=1), torch.ones(128))
