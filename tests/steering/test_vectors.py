"""Steering edits: vectors from prompts, subspaces, SAE-latent edits (exact when empty), neuron edits, bad input."""

from __future__ import annotations

import pytest
import torch

from interp.capture import capture_activations
from interp.errors import InputError
from interp.interventions import intervene, run_with_interventions
from interp.steering.vectors import (
    SAEEdit,
    Steer,
    SubspaceSteer,
    neuron_ablate,
    neuron_clamp,
    steering_subspace,
    steering_vector,
)

RESID = "blocks.0.hook_resid_post"


def _resid(model, toks, *edits, hook=RESID):
    return run_with_interventions(model, toks, *edits, capture_hooks=[hook], stop_at_layer=2)[1][hook]


def test_caa_vector_is_mean_difference_of_last_positions(model, toks):
    v = steering_vector(model, toks[:2], toks[2:], RESID)
    acts = capture_activations(model, toks, [RESID])[RESID][:, -1]  # [4, d_model]
    assert v.shape == (64,)
    torch.testing.assert_close(v, acts[:2].mean(0) - acts[2:].mean(0), atol=1e-5, rtol=1e-5)
    pair = steering_vector(model, toks[0], toks[1], RESID)  # ActAdd: one prompt each
    torch.testing.assert_close(pair, acts[0] - acts[1], atol=1e-5, rtol=1e-5)


def test_steer_adds_scaled_vector_everywhere(model, toks):
    v = torch.randn(64)
    diff = _resid(model, toks, Steer(RESID, v, scale=2.5)) - _resid(model, toks)
    torch.testing.assert_close(diff, (2.5 * v).expand_as(diff), atol=1e-4, rtol=1e-4)


def test_subspace_is_orthonormal_and_set_mode_sets_coordinates(model, toks):
    basis, s = steering_subspace(model, toks[:3], toks[1:4], RESID, k=2)
    assert basis.shape == (2, 64) and s.shape == (2,) and bool((s[:-1] >= s[1:]).all())
    torch.testing.assert_close(basis @ basis.T, torch.eye(2), atol=1e-5, rtol=1e-5)
    coords = torch.tensor([3.0, -1.0])
    out = _resid(model, toks, SubspaceSteer(RESID, basis, coords, mode="set"))
    torch.testing.assert_close(out @ basis.T, coords.expand(4, 10, 2), atol=1e-4, rtol=1e-4)
    added = _resid(model, toks, SubspaceSteer(RESID, basis, coords)) - _resid(model, toks)
    torch.testing.assert_close(added, (coords @ basis).expand_as(added), atol=1e-4, rtol=1e-4)


def test_empty_sae_edit_is_exactly_the_identity(model, toks, sae):
    act = torch.randn(4, 10, 64)
    recon_error = act - sae.decode(sae.encode(act))
    assert recon_error.abs().max() > 1e-2  # the SAE is far from exact, so exactness is not an accident
    for edit in (SAEEdit(RESID, sae=sae, latents=[]), SAEEdit(RESID, sae=sae, latents=[3, 7], mode="scale")):
        assert torch.equal(edit.edit(act), act)
    assert torch.equal(_resid(model, toks, SAEEdit(RESID, sae=sae, latents=[5], mode="scale")), _resid(model, toks))


def test_sae_clamp_moves_by_the_decoded_code_change(sae):
    act = torch.randn(2, 5, 64)
    z = sae.encode(act)
    out = SAEEdit(RESID, sae=sae, latents=[3], value=4.0).edit(act)
    z2 = z.clone()
    z2[..., 3] = 4.0
    torch.testing.assert_close(out, act + sae.decode(z2) - sae.decode(z), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out - act, (4.0 - z[..., 3:4]) * sae.W_dec[3], atol=1e-4, rtol=1e-4)


def test_sae_edit_bad_input(sae):
    with pytest.raises(InputError, match="out of range.*d_sae=128"):
        SAEEdit(RESID, sae=sae, latents=[128])
    with pytest.raises(InputError, match="trained on 'blocks.0.hook_resid_post'"):
        SAEEdit("blocks.1.hook_resid_post", sae=sae, latents=[1])
    with pytest.raises(InputError, match="d_in=64"):
        SAEEdit(RESID, sae=sae, latents=[1]).edit(torch.randn(2, 3, 32))


def test_neuron_clamp_and_ablate(model, toks):
    hook = "blocks.1.mlp.hook_post"
    out = _resid(model, toks, neuron_clamp(1, [3, 9], 7.0), hook=hook)
    assert bool((out[..., [3, 9]] == 7.0).all())
    base = _resid(model, toks, hook=hook)
    torch.testing.assert_close(out[..., :3], base[..., :3])
    assert bool((_resid(model, toks, neuron_ablate(1, 4), hook=hook)[..., 4] == 0).all())


def test_vector_shape_mismatch_and_unknown_hook(model, toks, n_hooks):
    with pytest.raises(InputError, match=r"steering vector has shape \(32,\).*blocks.0.hook_resid_post"):
        _resid(model, toks, Steer(RESID, torch.randn(32), scale=1.0))
    with pytest.raises(KeyError, match="blocks.0.hook_resid_post"):  # UnknownNameError, nearest names listed
        _resid(model, toks, Steer("blocks.0.hook_resid_pots", torch.randn(64), scale=1.0))
    assert n_hooks(model) == 0


def test_non_finite_coefficient_is_stopped_and_hooks_are_removed(model, toks, n_hooks):
    with pytest.raises(InputError, match="non-finite.*smaller scale"):
        with intervene(model, Steer(RESID, torch.ones(64), scale=1e39)):
            model(toks)
    assert n_hooks(model) == 0
