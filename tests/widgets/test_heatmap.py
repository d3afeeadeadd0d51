"""Token and image heatmaps: validated inputs, compact channel-major state, model capture, offline export."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from interp.capture import capture_activations
from interp.errors import InputError
from interp.widgets.heatmap import MAX_TOKENS, ImageHeatmap, TokenHeatmap


def _decode(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_token_heatmap_state_is_channel_major_and_rounded():
    vals = np.array([[0.123456, -2.0], [3.0, 0.0], [0.0, 1.0]])
    view = TokenHeatmap(["The", " cat", " <sat>"], vals, names=["n5", "n9"])
    state = view.state()
    assert state["tokens"] == ["The", " cat", " <sat>"] and state["names"] == ["n5", "n9"]
    assert state["values"] == [[0.1235, 3.0, 0.0], [-2.0, 0.0, 1.0]] and state["channel"] == 0
    view.show("n9")
    assert view.state()["channel"] == 1
    view.show(0)
    assert view.channel == 0
    one = TokenHeatmap(["a", "b"], torch.tensor([1.0, -1.0]))  # [n]: one channel, default name
    assert one.values == [[1.0, -1.0]] and one.names == ["channel 0"]


def test_token_heatmap_errors_name_the_argument():
    with pytest.raises(InputError, match=r"values has shape \[2, 3\] but there are 3 tokens; expected \[3\] or"):
        TokenHeatmap(["a", "b", "c"], np.zeros((2, 3)))
    with pytest.raises(InputError, match=r"values holds 1 NaN/Inf"):
        TokenHeatmap(["a", "b"], [0.0, float("nan")])
    with pytest.raises(InputError, match="names has 1 entries but the values have 2 channel"):
        TokenHeatmap(["a"], np.zeros((1, 2)), names=["x"])
    with pytest.raises(InputError, match=r"channel 2 is out of range: there are 2 channel\(s\)"):
        TokenHeatmap(["a"], np.zeros((1, 2)), channel=2)
    with pytest.raises(InputError, match="no channel named 'z'"):
        TokenHeatmap(["a"], np.zeros((1, 2))).show("z")
    with pytest.raises(InputError, match=f"1 to {MAX_TOKENS} tokens"):
        TokenHeatmap([], np.zeros(0))
    with pytest.raises(InputError, match="tokens must be a list of strings"):
        TokenHeatmap("abc", np.zeros(3))
    with pytest.raises(InputError, match="vmax must be a finite number"):
        TokenHeatmap(["a"], [1.0], vmax=-1.0)


def test_token_heatmap_from_model_shows_the_captured_units(model):
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    view = TokenHeatmap.from_model(model, ids, "blocks.0.mlp.hook_post", [3, 70])
    want = capture_activations(model, ids, ["blocks.0.mlp.hook_post"])["blocks.0.mlp.hook_post"][0][:, [3, 70]]
    assert view.tokens == ["1", "2", "3", "4", "5"]  # no tokenizer: token ids
    assert view.names == ["blocks.0.mlp.hook_post[3]", "blocks.0.mlp.hook_post[70]"]
    np.testing.assert_allclose(np.array(view.values).T, want.numpy(), rtol=1e-3, atol=1e-6)

    class SAE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.W = torch.nn.Parameter(torch.randn(64, 8, generator=torch.Generator().manual_seed(0)))

        def encode(self, x):
            return torch.relu(x @ self.W)

    sae = SAE()
    lat = TokenHeatmap.from_model(model, ids, "blocks.1.hook_resid_post", 7, sae=sae)
    resid = capture_activations(model, ids, ["blocks.1.hook_resid_post"])["blocks.1.hook_resid_post"][0]
    assert lat.names == ["blocks.1.hook_resid_post/sae[7]"]
    np.testing.assert_allclose(lat.values[0], sae.encode(resid)[:, 7].detach().numpy(), rtol=1e-3, atol=1e-6)
    with pytest.raises(InputError, match=r"units \[256\] are not unit indices of 'blocks.0.mlp.hook_post'"):
        TokenHeatmap.from_model(model, ids, "blocks.0.mlp.hook_post", [256])
    with pytest.raises(InputError, match="shape \\[1, 5, 4, 16\\]"):
        TokenHeatmap.from_model(model, ids, "blocks.0.attn.hook_z", [0])


def test_image_heatmap_state_overlay_and_controls():
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, :30, 0] = 255
    grid = np.arange(16, dtype=np.float64).reshape(4, 4) - 8
    view = ImageHeatmap(rgb, np.stack([grid, -grid]), names=["a", "b"], opacity=0.4)
    state = view.state()
    assert state["grid"] == 4 and state["values"][0][:5] == [-8.0, -7.0, -6.0, -5.0, -4.0]
    assert state["values"][1][5] == 3.0 and state["opacity"] == 0.4 and state["names"] == ["a", "b"]
    img = _decode(state["image"])
    assert img.size == (60, 40) and np.asarray(img.convert("RGB"))[0, 0].tolist() == [255, 0, 0]
    view.show("b")
    view.opacity = 0.9
    assert view.state()["channel"] == 1 and view.state()["opacity"] == 0.9
    big = ImageHeatmap(np.zeros((1200, 600, 3), np.uint8), np.ones((2, 2)))
    assert _decode(big.image).size == (256, 512) and big.names == ["channel 0"]  # downscaled, aspect kept


def test_image_heatmap_errors(model):
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(InputError, match=r"patch_values has shape \[3, 4\]; expected a square grid"):
        ImageHeatmap(img, np.zeros((3, 4)))
    with pytest.raises(InputError, match="patch_values holds 1 NaN/Inf"):
        ImageHeatmap(img, [[0.0, float("inf")], [0.0, 0.0]])
    with pytest.raises(InputError, match="opacity must lie in"):
        ImageHeatmap(img, np.zeros((2, 2)), opacity=1.5)
    with pytest.raises(InputError, match="image has shape"):
        ImageHeatmap(np.zeros((8, 8, 5), np.uint8), np.zeros((2, 2)))
    with pytest.raises(InputError, match="needs a ViT"):
        ImageHeatmap.from_model(model, img, "blocks.0.hook_resid_post", 0)  # a language model


@pytest.fixture(scope="module")
def vit():
    import interp

    return interp.load_model("concept-vit")


def test_image_heatmap_from_the_concept_vit_drops_cls(vit):
    rng = np.random.default_rng(0)
    img = (rng.random((30, 50, 3)) * 255).astype(np.uint8)
    view = ImageHeatmap.from_model(vit, img, "blocks.1.mlp.hook_post", [0, 5])
    acts = capture_activations(vit, img, ["blocks.1.mlp.hook_post"])["blocks.1.mlp.hook_post"][0]  # [1 + 64, d]
    g = vit.cfg.grid_size
    assert view.grid == g == 8 and len(view.values) == 2 and len(view.values[1]) == g * g
    np.testing.assert_allclose(view.values[1], acts[1:, 5].numpy(), rtol=1e-3, atol=1e-6)  # row-major patches
    assert _decode(view.image).size == (vit.cfg.image_size, vit.cfg.image_size)  # as the model sees it


def test_exports_are_offline(tmp_path):
    tok = TokenHeatmap(["a", "<script>x</script>"], [1.0, -1.0]).export_html(tmp_path / "t.html").read_text()
    img = ImageHeatmap(np.zeros((8, 8, 3), np.uint8), np.ones((2, 2))).export_html(tmp_path / "i.html").read_text()
    for html in (tok, img):
        assert not re.search(r"https?://|<script[^>]+src=|<link[^>]+href=", html)
    assert "<script>x" not in tok
    blob = re.search(r"<script id='interp-state' type='application/json'>(.*?)</script>", img, re.S).group(1)
    assert json.loads(blob)["image"].startswith("data:image/png;base64,")



@pytest.mark.slow
def test_exports_render_in_chromium(tmp_path, render_dom):
    tok = TokenHeatmap(["The", " <cat>"], np.array([[0.5, -2.0], [1.0, 4.0]]), names=["n1", "n2"], channel=1)
    dom = render_dom(tok.export_html(tmp_path / "t.html"))
    assert 'data-rendered="1"' in dom and 'class="interp-token-heatmap"' in dom
    assert re.search(r'<span data-role="token" data-index="0" title="-2.000" style="background: rgba\(40, 90, 220', dom)
    assert 'data-role="token" data-index="1" title="4.000"' in dom and "&lt;cat&gt;" in dom
    assert '<select data-role="channel">' in dom
    img = ImageHeatmap(np.zeros((8, 8, 3), np.uint8), np.array([[0.0, 1.0], [-1.0, 0.5]]), opacity=0.5)
    dom = render_dom(img.export_html(tmp_path / "i.html"))
    assert 'data-rendered="1"' in dom and 'class="interp-image-heatmap"' in dom
    assert 'data-role="patch" data-index="1" title="1.000" style="background: rgba(220, 40, 40, 0.5)' in dom
    assert 'data-role="opacity"' in dom and 'src="data:image/png;base64,' in dom


@pytest.mark.slow
def test_token_heatmap_from_a_real_tokenizer():
    import interp

    lm = interp.load_model("smollm2-135m", n_layers=1)
    view = TokenHeatmap.from_model(lm, "The cat sat on the mat", "blocks.0.mlp.hook_post", [1, 2])
    assert view.tokens == list(lm.to_str_tokens("The cat sat on the mat")) and len(view.values[0]) == len(view.tokens)
