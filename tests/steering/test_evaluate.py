"""Sweeps: effect against cost with random and prompting baselines, per-sample values, JSON + offline HTML."""

from __future__ import annotations

import json

import pytest
import torch

from interp.errors import InputError
from interp.steering.evaluate import random_like, steering_sweep
from interp.steering.vectors import SAEEdit

HOOKS = ("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")


def _texts():
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, 500, (n, L), generator=g) for n, L in ((4, 8), (3, 10), (3, 9))]


@pytest.fixture
def result(model):
    prompts, neutral, heldout = _texts()
    v = model.W_U[:, 7].detach().clone() * 4  # promotes token 7
    return steering_sweep(model, dict.fromkeys(HOOKS, v), 7, prompts, neutral, heldout, coefficients=[0.0, 2.0, 6.0],
                          prompt_prefix=torch.tensor([[7, 7, 7]]))  # fmt: skip


def test_rows_baselines_and_per_sample_values(result):
    methods = [(r.method, r.hook, r.coefficient) for r in result.rows]
    assert len(methods) == 2 * 2 * 3 + 1 and ("prompting", None, None) in methods
    for r in result.rows:
        assert (len(r.effect), len(r.target_prob), len(r.kl), len(r.loss_delta)) == (4, 4, 3, 3)
    zero = [r for r in result.rows if r.coefficient == 0.0]
    assert all(max(map(abs, r.effect + r.kl + r.loss_delta)) < 1e-5 for r in zero)  # coefficient 0 changes nothing


def test_vector_beats_random_vector_of_equal_norm(result):
    for hook in HOOKS:
        vec = [r for r in result.rows if r.method == "vector" and r.hook == hook and r.coefficient == 6.0][0]
        rnd = [r for r in result.rows if r.method == "random" and r.hook == hook and r.coefficient == 6.0][0]
        assert vec.means()["effect_mean"] > rnd.means()["effect_mean"] + 0.5
        assert vec.means()["kl_mean"] > 0
    r = random_like(torch.arange(5.0), seed=1)
    assert float(r.norm()) == pytest.approx(float(torch.arange(5.0).norm()), rel=1e-5)


def test_save_writes_json_and_offline_html(result, tmp_path):
    files = result.save(tmp_path / "out")
    data = json.loads(files["json"].read_text())
    assert {"effect_mean", "kl_std", "effect"} <= set(data["rows"][0]) and data["meta"]["targets"] == [7]
    html = files["html"].read_text()
    assert "Plotly.newPlot" in html and 'src="https://cdn.plot.ly' not in html  # plotly.js inlined
    assert "effect against cost" in html
    assert "vector" in result.table()


def test_custom_method_sae_clamp(model, sae):
    prompts, neutral, heldout = _texts()
    res = steering_sweep(model, {HOOKS[0]: sae.W_dec[3].detach()}, 7, prompts, neutral, heldout,
                         coefficients=[1.0], n_random=0,
                         methods={"sae": lambda h, c: [SAEEdit(h, sae=sae, latents=[3], value=c)]})  # fmt: skip
    assert [r.method for r in res.rows] == ["vector", "sae"]


def test_bad_input(model):
    prompts, neutral, heldout = _texts()
    v = torch.ones(64)
    with pytest.raises(InputError, match="non-finite"):
        steering_sweep(model, {HOOKS[0]: torch.arange(64.0)}, 7, prompts, neutral, heldout, coefficients=[1e38])
    with pytest.raises(InputError, match=r"shape \(32,\)"):
        steering_sweep(model, {HOOKS[0]: torch.ones(32)}, 7, prompts, neutral, heldout, coefficients=[1.0])
    with pytest.raises(KeyError, match="Nearest"):
        steering_sweep(model, {"blocks.0.hook_resid_pots": v}, 7, prompts, neutral, heldout)
    with pytest.raises(InputError, match="out of range"):
        steering_sweep(model, {HOOKS[0]: v}, 900, prompts, neutral, heldout)
    with pytest.raises(InputError, match="hooks="):
        steering_sweep(model, v, 7, prompts, neutral, heldout)
