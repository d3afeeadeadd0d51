"""Interventions: each edit's effect, selection, composition, hook removal, returned outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from interp.capture import capture_activations
from interp.capture.workers import load_factory
from interp.errors import InputError, UnknownNameError
from interp.interventions import (
    Ablate,
    Add,
    Clamp,
    ProjectOut,
    intervene,
    patch_from,
    run_with_interventions,
)

tiny = sys.modules[load_factory(f"{Path(__file__).parent / 'capture' / 'tiny.py'}:tiny_model").__module__]
RESID = "blocks.0.hook_resid_post"


@pytest.fixture
def model():
    return tiny.tiny_model()


def _n_hooks(model) -> int:
    return sum(len(hp._forward_hooks) for hp in model.hook_dict.values())


def _resid(model, toks, *edits, hook=RESID):
    return run_with_interventions(model, toks, *edits, capture_hooks=[hook], stop_at_layer=2)[1][hook]


def test_zero_ablation_at_positions_only(model):
    toks = tiny.tokens(2, 6)
    clean = _resid(model, toks)
    out = _resid(model, toks, Ablate(RESID, positions=[1, -1]))
    assert (out[:, [1, 5]] == 0).all()
    assert torch.equal(out[:, [0, 2, 3, 4]], clean[:, [0, 2, 3, 4]])
    assert _n_hooks(model) == 0


def test_mean_and_resample_ablation(model):
    toks, ref_toks = tiny.tokens(2, 6, seed=1), tiny.tokens(5, 6, seed=2)
    ref = capture_activations(model, ref_toks, RESID)[RESID]  # [5, 6, 64]
    out = _resid(model, toks, Ablate(RESID, method="mean", reference=ref))
    assert torch.allclose(out, ref.mean(0).expand(2, 6, 64))
    rows = ref.reshape(-1, 64)  # token rows, as a store yields them
    out = _resid(model, toks, Ablate(RESID, method="mean", reference=rows))
    assert torch.allclose(out, rows.mean(0).expand(2, 6, 64))
    out = _resid(model, toks, Ablate(RESID, method="resample", reference=ref, seed=3))
    assert all(any(torch.equal(o, r) for r in ref) for o in out)
    again = _resid(model, toks, Ablate(RESID, method="resample", reference=ref, seed=3))
    assert torch.equal(out, again)
    with pytest.raises(InputError, match="reference"):
        Ablate(RESID, method="mean")


def test_head_ablation_on_hook_z(model):
    toks = tiny.tokens(2, 5)
    z = "blocks.0.attn.hook_z"
    clean = _resid(model, toks, hook=z)
    out = _resid(model, toks, Ablate(z, heads=[2]), hook=z)
    assert (out[:, :, 2] == 0).all()
    assert torch.equal(out[:, :, [0, 1, 3]], clean[:, :, [0, 1, 3]])


def test_patch_from_another_run_changes_only_patched_positions(model):
    clean, corrupt = tiny.tokens(1, 6, seed=4), tiny.tokens(1, 6, seed=5)
    edits = patch_from(model, clean, RESID, positions=[-1])
    out = _resid(model, corrupt, edits)
    ref_clean, ref_corrupt = _resid(model, clean), _resid(model, corrupt)
    assert torch.equal(out[:, -1], ref_clean[:, -1])
    assert torch.equal(out[:, :-1], ref_corrupt[:, :-1])
    # patching every position of the first block's output reproduces the clean logits
    full = run_with_interventions(model, corrupt, patch_from(model, clean, RESID))
    assert torch.allclose(full, run_with_interventions(model, clean), atol=1e-5)
    with pytest.raises(InputError, match="same length"):
        run_with_interventions(model, tiny.tokens(1, 4), edits)


def test_add_clamp_project(model):
    toks = tiny.tokens(2, 4)
    clean = _resid(model, toks)
    v = torch.randn(64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(_resid(model, toks, Add(RESID, v, scale=2.0, positions=0))[:, 0], clean[:, 0] + 2 * v)
    clamped = _resid(model, toks, Clamp(RESID, units=[3, 7], value=torch.tensor([1.5, -2.0])))
    assert (clamped[..., 3] == 1.5).all() and (clamped[..., 7] == -2.0).all()
    assert torch.equal(clamped[..., :3], clean[..., :3])
    projected = _resid(model, toks, ProjectOut(RESID, v))
    assert torch.allclose(projected @ (v / v.norm()), torch.zeros(2, 4), atol=1e-4)
    u = v / v.norm()
    assert torch.allclose(projected, clean - (clean @ u)[..., None] * u, atol=1e-4)


def test_edits_compose_in_order_and_nest(model):
    toks = tiny.tokens(1, 4)
    v = torch.ones(64)
    out = _resid(model, toks, [Ablate(RESID), Add(RESID, v)])  # zero, then add
    assert torch.equal(out, torch.ones(1, 4, 64))
    with intervene(model, Ablate(RESID)):
        with intervene(model, Add(RESID, v)):
            nested = _resid(model, toks)
            assert _n_hooks(model) == 2  # both edits; the recorder of _resid is gone
        assert _n_hooks(model) == 1
    assert torch.equal(nested, out)
    assert _n_hooks(model) == 0


def test_hooks_removed_on_exception_and_unknown_hook(model):
    with pytest.raises(RuntimeError), intervene(model, Ablate(RESID)):
        raise RuntimeError("boom")
    assert _n_hooks(model) == 0
    with pytest.raises(UnknownNameError, match="hook_resid_post"), intervene(model, Ablate("blocks.0.hook_resid_pots")):
        pass
    assert _n_hooks(model) == 0


def test_edit_is_a_pure_function():
    act = torch.randn(2, 3, 8)
    before = act.clone()
    out = Clamp("x", units=[0], value=5.0, positions=[1]).edit(act)
    assert torch.equal(act, before)
    assert (out[:, 1, 0] == 5).all() and torch.equal(out[:, 0], act[:, 0])
    mask = torch.tensor([[True, False, False], [False, False, True]])
    out = Ablate("x", positions=mask).edit(act)
    assert (out[0, 0] == 0).all() and (out[1, 2] == 0).all() and torch.equal(out[0, 1:], act[0, 1:])


def test_gradients_flow_through_edits(model):
    toks = tiny.tokens(1, 4)
    v = torch.zeros(64, requires_grad=True)
    logits = run_with_interventions(model, toks, Add(RESID, v), grad=True)
    logits[0, -1, 0].backward()
    assert v.grad is not None and v.grad.abs().sum() > 0
