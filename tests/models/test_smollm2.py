"""The packaged SmolLM2 is real, and its converted cache is built from empty in CI.

The session's cache starts empty (tests/conftest.py), so the first load here runs
the full GGUF conversion.
"""

from __future__ import annotations

import pytest
import torch

import interp
from interp.models.contract import model_info

pytestmark = pytest.mark.slow

PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def smollm2():
    return interp.load_model("smollm2-135m")


def test_answers_paris(smollm2):
    out = smollm2.generate(PROMPT, max_new_tokens=8, do_sample=False, verbose=False)
    assert "Paris" in out[len("user"):]


def test_matches_the_hugging_face_conversion(smollm2):
    from interp.models.smollm2 import load_smollm2_hf

    hf = load_smollm2_hf().eval()
    tokens = interp.prepare_inputs(smollm2, ["Once upon a time, there was a little girl named"])
    with torch.no_grad():
        ref = hf(tokens).logits.log_softmax(-1)
        ours = smollm2(tokens).log_softmax(-1)
    assert (ours - ref).abs().max().item() < 1e-3  # 30 layers of float32 reassociation
    assert ours[0, -1].argmax() == ref[0, -1].argmax()


def test_identity_and_processing_recorded(smollm2):
    info = model_info(smollm2)
    assert info.name == "smollm2-135m" and info.kind == "decoder" and info.n_layers == 30
    assert info.processing == {"fold_ln": True, "center_writing_weights": False, "center_unembed": True,
                               "fold_value_biases": True, "refactor_factored_attn_matrices": False}
    assert smollm2.cfg.n_key_value_heads == 3 and smollm2.cfg.n_heads == 9
    assert info.extra["d_model"] == 576


def test_truncated_model_matches_full_early_layers(smollm2):
    short = interp.load_model("smollm2-135m", n_layers=4)
    tokens = interp.prepare_inputs(smollm2, "The quick brown fox jumps over the lazy dog")
    hook = "blocks.3.hook_resid_post"
    _, c_full = smollm2.run_with_cache(tokens, names_filter=hook, stop_at_layer=4)
    _, c_short = short.run_with_cache(tokens, names_filter=hook)
    torch.testing.assert_close(c_short[hook], c_full[hook])


def test_corrupt_cache_is_rebuilt():
    from interp.models.smollm2 import smollm2_hf_dir

    path = smollm2_hf_dir()
    weights = path / "model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as f:  # a half-written file
        f.truncate(size // 2)
    rebuilt = smollm2_hf_dir()
    assert rebuilt == path and weights.stat().st_size == size
    model = interp.load_model("smollm2-135m", n_layers=2)
    assert torch.isfinite(model(interp.prepare_inputs(model, "hello"))).all()
