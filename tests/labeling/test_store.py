"""Labeling from a real captured store: MLP neurons, heads and SAE latents in one streaming pass."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from interp.errors import InputError
from interp.labeling.cli import parse_units, register
from interp.labeling.exemplars import array_batches, collect, unit_batches
from interp.labeling.label import LabelConfig, label_units
from interp.labeling.probe import probe_from_store, token_strings
from interp.labeling.vocab import vocab_projection


def test_exemplars_do_not_depend_on_batching():
    acts = torch.randn(3000, 6).relu()
    a = collect(array_batches(acts, 128), top_rows=40, reservoir=5000)
    b = collect(array_batches(acts, 1000), top_rows=40, reservoir=5000)
    assert torch.equal(a.top_rows, b.top_rows) and torch.allclose(a.threshold, b.threshold)
    exact = acts.sort(0).values[round(0.99 * 2999)]  # reservoir ≥ rows: the quantile is exact
    assert torch.allclose(a.threshold, exact)
    assert torch.equal(a.top_rows[:, 0], acts.argmax(0))
    assert torch.allclose(a.frac_positive, (acts > 0).float().mean(0))


def test_neurons_heads_and_sae_latents(tiny_store):
    from sae_lens import StandardSAE, StandardSAEConfig

    store, model, tok = tiny_store
    probe = probe_from_store(store, token_strings(tok))
    cfg = LabelConfig(k=5, heldout_every=4)
    proj = vocab_projection(model)
    assert vocab_projection(model) is proj  # one shared projection per model
    top = proj.top_tokens(proj.neuron_directions(0), k=5, key="blocks.0.mlp")
    assert proj.top_tokens(proj.neuron_directions(0), k=5, key="blocks.0.mlp") is top  # cached
    units = [0, 1, 2, 3]
    neurons = label_units(unit_batches(store, "blocks.0.mlp.hook_post", units=units, batch_size=500), probe, cfg,
                          unit_ids=units, output_tokens=top.top_ids[units].tolist())
    assert [u.unit for u in neurons.units] == units
    for u in neurons.units:
        assert u.label and u.exemplars and 0 <= u.scores["auroc"] <= 1 and len(u.output_top) == 5
    heads = label_units(unit_batches(store, "blocks.0.attn.hook_z"), probe, cfg)
    assert len(heads.units) == 4
    torch.manual_seed(0)
    sae = StandardSAE(StandardSAEConfig(d_in=32, d_sae=8))
    latents = label_units(unit_batches(store, "blocks.0.hook_resid_post", sae=sae), probe, cfg)
    assert len(latents.units) == 8
    with pytest.raises(InputError, match="d_in"):
        next(unit_batches(store, "blocks.0.mlp.hook_post", sae=sae))


def test_cli_label_and_report(tiny_store, tmp_path, capsys):
    store, _, _ = tiny_store
    p = argparse.ArgumentParser(prog="interp")
    register(p.add_subparsers(dest="command"))
    args = p.parse_args(["label", "--store", str(store.path), "--hook", "blocks.0.mlp.hook_post", "--units", "0:3",
                         "--out", str(tmp_path / "labels"), "--k", "5"])
    assert args.func(args) == 0
    data = json.loads((tmp_path / "labels" / "labels.json").read_text())
    assert [u["unit"] for u in data["units"]] == [0, 1, 2] and data["meta"]["lambda"] == 0.2
    args = p.parse_args(["report", str(tmp_path / "labels"), "--out", str(tmp_path / "r")])
    assert args.func(args) == 0 and (tmp_path / "r" / "labels.html").is_file()
    assert parse_units("3,5") == [3, 5]
    with pytest.raises(InputError, match="--units"):
        parse_units("a:b")
    with pytest.raises(SystemExit):
        p.parse_args(["label", "--help"])
    assert "examples:" in capsys.readouterr().out
