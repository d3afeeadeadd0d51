"""Fixtures that build tiny random-init Hugging Face models on disk, offline."""

from __future__ import annotations

from pathlib import Path

import pytest

WORDS = ("the a cat dog sat on mat ran to park and then slept red blue green big small "
         "house tree bird sang song one two three four five six seven eight nine ten").split()


def make_word_tokenizer(bos="<s>", eos="</s>"):
    """A word-level fast tokenizer built in memory (no download), with BOS/EOS/PAD."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", bos, eos, "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, unk_token="<unk>", pad_token="<pad>"
    )


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """A random-init GPT-2 (2 layers, d_model 64) saved with its tokenizer.

    ``n_ctx`` is passed as real hub checkpoints carry it in config.json, and
    TransformerLens reads it.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tok = make_word_tokenizer()
    cfg = GPT2Config(vocab_size=len(tok), n_positions=64, n_ctx=64, n_embd=64, n_layer=2, n_head=4,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = GPT2LMHeadModel(cfg).eval()
    out = tmp_path_factory.mktemp("gpt2")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """A random-init Llama with grouped-query attention (4 q heads, 2 kv heads), tied embeddings."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = make_word_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True, rope_theta=10000.0,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = LlamaForCausalLM(cfg).eval()
    # Non-trivial norm weights, so LayerNorm folding is really exercised.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    out = tmp_path_factory.mktemp("llama")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
