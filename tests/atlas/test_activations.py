"""Activation statistics and cross-model correlations: streamed sums equal the materialised answer."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from interp.atlas.activations import ActivationStats, RunningCorrelation, store_activation_stats
from interp.atlas.universal import model_correlation
from interp.errors import InputError

from .conftest import plain_model


def _batches(g, n=6, rows=50):
    """Correlated pairs with large means (the one-pass formula's hard case)."""
    for _ in range(n):
        x = torch.randn(rows, 5, generator=g) * 0.1 + 100.0
        copies = x[:, :3] * 2 - 7 + 0.01 * torch.randn(rows, 3, generator=g)
        y = torch.cat([copies, torch.randn(rows, 4, generator=g)], 1)
        yield x, y


def test_running_correlation_equals_corrcoef(seeded):
    rc, xs, ys = RunningCorrelation(5, 7), [], []
    for x, y in _batches(seeded):
        rc.update(x, y)
        xs.append(x)
        ys.append(y)
    full = torch.corrcoef(torch.cat([torch.cat(xs), torch.cat(ys)], 1).double().T)[:5, 5:]
    torch.testing.assert_close(rc.correlation().double(), full, atol=1e-4, rtol=0)
    assert rc.correlation()[:3, :3].diagonal().min() > 0.99  # the planted copies


def test_random_direction_baseline_is_the_correlation_with_those_directions(seeded):
    rc, xs, ys = RunningCorrelation(5, 7), [], []
    for x, y in _batches(seeded):
        rc.update(x, y)
        xs.append(x)
        ys.append(y)
    x, y = torch.cat(xs).double(), torch.cat(ys).double()
    assert torch.allclose(rc.r["b"].norm(dim=0), torch.ones(7))
    ref = torch.corrcoef(torch.cat([x, y @ rc.r["b"].double()], 1).T)[:5, 5:]
    torch.testing.assert_close(rc.random_correlation("b").double(), ref, atol=1e-4, rtol=0)
    ref = torch.corrcoef(torch.cat([x @ rc.r["a"].double(), y], 1).T)[:5, 5:]
    torch.testing.assert_close(rc.random_correlation("a").double(), ref, atol=1e-4, rtol=0)
    with pytest.raises(InputError, match="baseline=False"):
        RunningCorrelation(2, 2, baseline=False).random_correlation()


def _permuted_copy(model, perm):
    """The same function with each layer's MLP neurons reordered by ``perm``."""
    other = copy.deepcopy(model)
    with torch.no_grad():
        for blk in other.blocks:
            blk.mlp.W_in.copy_(blk.mlp.W_in[:, perm])
            blk.mlp.b_in.copy_(blk.mlp.b_in[perm])
            blk.mlp.W_out.copy_(blk.mlp.W_out[perm])
    return other


def test_a_permuted_copy_is_fully_universal_and_the_baseline_is_not():
    model = plain_model()
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    other = _permuted_copy(model, perm)
    tokens = torch.randint(0, 300, (24, 16), generator=torch.Generator().manual_seed(2))
    res = model_correlation(model, other, tokens, batch_size=8, matmul_dtype="float32", baseline_every=1)
    a = res.table[res.table.side == "a"]
    assert res.n_tokens == 24 * 15 and len(res.table) == 2 * 2 * 64
    assert a.max_corr.min() > 0.999
    assert (a.match_layer == a.layer).all() and (perm.numpy()[a.match_neuron.to_numpy()] == a.neuron.to_numpy()).all()
    s = res.summary()
    assert s["a.L0"]["universal"] == 1.0 and s["b.L1"]["universal"] == 1.0
    assert s["a.L0"]["baseline"] < 0.9 and s["a.L0"]["median_baseline"] < 0.9


def test_unrelated_models_are_not_universal():
    tokens = torch.randint(0, 300, (24, 16), generator=torch.Generator().manual_seed(2))
    res = model_correlation(plain_model(0), plain_model(5), tokens, layers=[1], layers_b=[0, 1], batch_size=12)
    a = res.table[res.table.side == "a"]
    assert set(a.layer) == {1} and set(a.match_layer) <= {0, 1} and len(res.table) == 64 + 128
    assert a.max_corr.median() < 0.9


def test_activation_stats_match_numpy(seeded):
    x = torch.relu(torch.randn(300, 6, generator=seeded)) * torch.arange(1, 7)
    s = ActivationStats(6)
    for part in x.split(70):
        s.update(part)
    c = {k: v.numpy() for k, v in s.columns().items()}
    xn = x.double().numpy()
    np.testing.assert_allclose(c["act_mean"], xn.mean(0), rtol=1e-6)
    np.testing.assert_allclose(c["act_var"], xn.var(0), rtol=1e-5)
    np.testing.assert_allclose(c["act_frequency"], (xn > 0).mean(0))
    np.testing.assert_allclose(c["act_sparsity"], 1 - np.abs(xn).mean(0) ** 2 / (xn**2).mean(0), rtol=1e-6)
    with pytest.raises(InputError, match="no activations"):
        ActivationStats(3).columns()


def test_store_activation_stats_reads_a_captured_store(tmp_path):
    from interp.capture import TokenSource, capture_to_store
    from interp.store import open_store

    model = plain_model()
    tokens = torch.randint(0, 300, (16, 12), generator=torch.Generator().manual_seed(3))
    hooks = ["blocks.0.mlp.hook_post", "blocks.1.mlp.hook_post"]
    capture_to_store(model, TokenSource(tokens, name="t", bos=False), hooks, tmp_path / "store", progress=False)
    table = store_activation_stats(tmp_path / "store")
    st = open_store(tmp_path / "store")
    rows = torch.cat(list(st.batches("blocks.1.mlp.hook_post", 1000, shuffle=False))).double()
    t1 = table[table.layer == 1]
    np.testing.assert_allclose(t1.act_mean, rows.mean(0).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(t1.act_frequency, (rows > 0).double().mean(0).numpy())
    assert len(table) == 128 and set(table.layer) == {0, 1}
    with pytest.raises(InputError, match="no blocks.L.mlp.hook_post"):
        store_activation_stats(st, layers=[7])


def test_fast_settings_stay_close_to_the_exact_pass():
    tokens = torch.randint(0, 300, (32, 16), generator=torch.Generator().manual_seed(4))
    a, b = plain_model(0), plain_model(3)
    exact = model_correlation(a, b, tokens, batch_size=8, matmul_dtype="float32", baseline_every=1).table
    fast = model_correlation(a, b, tokens, batch_size=8).table  # bfloat16 GEMMs, baseline from every 4th batch
    np.testing.assert_allclose(fast.max_corr, exact.max_corr, atol=0.02)
    np.testing.assert_allclose(fast.baseline_max_corr, exact.baseline_max_corr, atol=0.08)
