"""Fixtures for the labeling tests: planted units (labelled once per session) and a tiny captured store."""

from __future__ import annotations

import pytest
import torch

from interp.labeling.exemplars import array_batches
from interp.labeling.label import LabelConfig, label_units
from interp.labeling.planted import planted_activations, planted_units, word_probe


@pytest.fixture(scope="session")
def planted():
    """(probe, units, activations, labels) of the sixteen planted units on 64k words of fortunes."""
    probe = word_probe()
    units = planted_units(probe)
    acts = planted_activations(probe, units)
    labels = label_units(array_batches(acts), probe, LabelConfig())
    return probe, units, acts, labels


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    """A random-init 1-layer HookedTransformer over MiniLM-tokenized pydoc, captured to a store.

    Returns (store, model, tokenizer).
    """
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformers import AutoTokenizer

    from interp.capture import capture_to_store
    from interp.datasets.text import load_texts, pack_contexts
    from interp.models.hf_bert import minilm_dir

    tok = AutoTokenizer.from_pretrained(str(minilm_dir()))
    ctx = pack_contexts(load_texts("pydoc", "train"), tok, 32, max_tokens=32 * 120)
    cfg = HookedTransformerConfig(n_layers=1, d_model=32, n_ctx=32, d_head=8, n_heads=4, d_mlp=64,
                                  d_vocab=len(tok), act_fn="gelu", normalization_type="LN", seed=0, device="cpu")
    model = HookedTransformer(cfg).eval()
    torch.manual_seed(0)
    store = capture_to_store(model, ctx.tokens, ["blocks.0.mlp.hook_post", "blocks.0.hook_resid_post",
                                                 "blocks.0.attn.hook_z"],
                             tmp_path_factory.mktemp("labeling") / "store", progress=False, batch_size=16)
    return store, model, tok
