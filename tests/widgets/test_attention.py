"""The attention viewer: patterns in thousandths, layer/head selection, text and ViT patches, size caps, export."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import interp.widgets.attention as attention
from interp.capture import capture_activations
from interp.errors import InputError
from interp.widgets.attention import AttentionViewer


def _patterns(n_layers: int = 2, n_heads: int = 3, n: int = 5, seed: int = 0) -> np.ndarray:
    """Causal softmax patterns ``[layer, head, q, k]``."""
    x = np.random.default_rng(seed).normal(size=(n_layers, n_heads, n, n))
    x = np.where(np.tril(np.ones((n, n), bool)), x, -np.inf)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_state_holds_every_layer_in_thousandths_and_selection_changes_it():
    p = _patterns()
    view = AttentionViewer(["a", "b", "c", "d", "e"], p, layers=[3, 7])
    state = view.state()
    assert state["layers"] == [3, 7] and state["layer"] == 3 and state["head"] == 0 and state["grid"] == 0
    assert np.array(state["patterns"]).shape == (2, 3, 5, 5) and isinstance(state["patterns"][0][0][0][0], int)
    assert state["patterns"][1][2][4] == np.rint(p[1, 2, 4] * 1000).astype(int).tolist()
    view.show(layer=7, head=2)
    assert view.state()["layer"] == 7 and view.state()["head"] == 2
    np.testing.assert_allclose(view.weights(), p[1, 2], atol=5e-4)
    view.show(head=1)  # keeps the layer
    assert (view.layer, view.head) == (7, 1)
    one = AttentionViewer(["x", "y"], np.full((2, 2, 2), 0.5))  # [head, q, k]: one layer
    assert one.layers == [0] and one.patterns == [[[[500, 500], [500, 500]]] * 2]


def test_errors_say_what_was_expected():
    p = _patterns()
    with pytest.raises(InputError, match=r"patterns has shape \[2, 3, 5, 4\]; expected \[layer, head, query, key\]"):
        AttentionViewer(list("abcde"), p[..., :4])
    with pytest.raises(InputError, match="tokens must be 5 strings"):
        AttentionViewer(list("abcd"), p)
    with pytest.raises(InputError, match="patterns holds 30 NaN/Inf value"):
        AttentionViewer(list("abcde"), np.where(np.arange(5) == 4, np.nan, p))
    with pytest.raises(InputError, match="not hook_attn_scores"):
        AttentionViewer(list("abcde"), p * 3)
    with pytest.raises(InputError, match="should name each of the 2 layer"):
        AttentionViewer(list("abcde"), p, layers=[1, 1])
    view = AttentionViewer(list("abcde"), p)
    with pytest.raises(InputError, match=r"layer 5 is not in this viewer; it holds layers \[0, 1\]"):
        view.show(layer=5)
    with pytest.raises(InputError, match=r"head 3 is out of range: there are 3 heads"):
        view.show(head=3)
    with pytest.raises(InputError, match="tokens=None is only for images"):
        AttentionViewer(None, p)
    with pytest.raises(InputError, match="g\\*g patch positions"):
        AttentionViewer(None, p[..., :3, :3], image=np.zeros((8, 8, 3), np.uint8))  # 3 positions: no grid


def test_size_is_capped_with_a_fix(monkeypatch, model):
    monkeypatch.setattr(attention, "MAX_VALUES", 100)
    with pytest.raises(InputError, match=r"150 attention weights over 5 positions.*layers=\[L\]"):
        AttentionViewer(list("abcde"), _patterns())
    with pytest.raises(InputError, match="fewer layers"):
        AttentionViewer.from_model(model, torch.tensor([[1, 2, 3, 4, 5, 6]]))


def test_from_model_text_matches_the_captured_patterns(model):
    ids = torch.tensor([[7, 3, 9, 3, 9]])
    view = AttentionViewer.from_model(model, ids, layers=[1])
    want = capture_activations(model, ids, ["blocks.1.attn.hook_pattern"])["blocks.1.attn.hook_pattern"][0]
    assert view.tokens == ["7", "3", "9", "3", "9"] and view.layers == [1] and len(view.patterns[0]) == 4
    view.show(head=2)
    np.testing.assert_allclose(view.weights(), want[2].numpy(), atol=5e-4)
    assert np.triu(view.weights(), 1).max() == 0  # causal: no query attends ahead
    assert AttentionViewer.from_model(model, ids).layers == [0, 1]
    with pytest.raises(InputError, match=r"layers \[2\] are not layers"):
        AttentionViewer.from_model(model, ids, layers=[2])


def test_from_model_vit_maps_patches_over_the_image(tmp_path):
    import interp

    vit = interp.load_model("concept-vit")
    img = (np.random.default_rng(1).random((48, 48, 3)) * 255).astype(np.uint8)
    view = AttentionViewer.from_model(vit, img, layers=[0, 3], head=1)
    g = vit.cfg.grid_size
    assert view.grid == g and view.tokens[:2] == ["CLS", "patch 0"] and len(view.tokens) == g * g + 1
    assert view.image.startswith("data:image/png;base64,") and (view.layer, view.head) == (0, 1)
    w = view.weights()
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=0.05)  # rows are distributions (to 3 decimals)
    pattern = capture_activations(vit, img, ["blocks.0.attn.hook_pattern"])["blocks.0.attn.hook_pattern"][0, 1]
    np.testing.assert_allclose(w, pattern.numpy(), atol=5e-4)
    html = view.export_html(tmp_path / "vit.html").read_text()
    assert not re.search(r"https?://|<script[^>]+src=|<link[^>]+href=", html)


def test_export_is_offline_and_keeps_the_selection(tmp_path):
    view = AttentionViewer(["<b>", "x"], np.array([[[[1.0, 0.0], [0.25, 0.75]]]]))
    html = view.export_html(tmp_path / "a.html").read_text()
    assert not re.search(r"https?://|<script[^>]+src=|<link[^>]+href=", html) and "<b>" not in html
    blob = re.search(r"<script id='interp-state' type='application/json'>(.*?)</script>", html, re.S).group(1)
    assert json.loads(blob)["patterns"] == [[[[1000, 0], [250, 750]]]]



@pytest.mark.slow
def test_exports_render_in_chromium(tmp_path, render_dom):
    text = AttentionViewer(["The", " <cat>", " sat"], _patterns(2, 2, 3), layers=[4, 5], layer=5, head=1)
    dom = render_dom(text.export_html(tmp_path / "t.html"))
    assert 'data-rendered="1"' in dom and 'class="interp-attention"' in dom
    assert '<select data-role="layer"><option value="4">layer 4</option>' in dom and 'data-role="head"' in dom
    assert dom.count('data-role="token"') == 3 and "&lt;cat&gt;" in dom and 'data-role="matrix"' in dom
    assert dom.count("<rect") == 6  # the causal 3x3 matrix of the shown head: 6 non-zero weights
    img = AttentionViewer(None, np.full((1, 1, 5, 5), 0.2), image=np.zeros((8, 8, 3), np.uint8))
    dom = render_dom(img.export_html(tmp_path / "i.html"))
    assert 'data-rendered="1"' in dom and dom.count('data-role="patch"') == 4 and 'data-role="cls"' in dom
