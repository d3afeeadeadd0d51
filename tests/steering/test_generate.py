"""Generation: edits active at every step, identical tokens with and without the KV cache, streaming."""

from __future__ import annotations

import pytest
import torch

from interp.errors import InputError
from interp.steering.generate import generate
from interp.steering.vectors import Steer

RESID = "blocks.0.hook_resid_post"


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_cache_and_no_cache_give_identical_tokens(model, temperature):
    prompt = torch.tensor([[1, 2, 3, 4], [9, 8, 7, 6]])
    v = torch.randn(64, generator=torch.Generator().manual_seed(0))
    edit = Steer(RESID, v, scale=3.0)
    kw = {"max_new_tokens": 12, "temperature": temperature, "top_k": 50, "seed": 3}
    cached = generate(model, prompt, edit, use_cache=True, **kw)
    uncached = generate(model, prompt, edit, use_cache=False, **kw)
    assert cached.tokens.shape == (2, 16) and cached.new_tokens.shape == (2, 12)
    assert torch.equal(cached.tokens, uncached.tokens)
    assert not torch.equal(cached.tokens, generate(model, prompt, use_cache=True, **kw).tokens)  # the edit acts


def test_edits_apply_at_every_step(model):
    """Steering along a token's unembedding makes greedy decoding emit that token at every step."""
    v = model.W_U[:, 42].detach() * 50
    out = generate(model, torch.tensor([[1, 2, 3]]), Steer("blocks.1.hook_resid_post", v, scale=1.0),
                   max_new_tokens=6)  # fmt: skip
    assert out.new_tokens.tolist() == [[42] * 6]


def test_streaming_callback_sees_every_token_and_hooks_are_removed(model, n_hooks):
    seen = []
    out = generate(model, torch.tensor([[5, 6]]), Steer(RESID, torch.ones(64), scale=0.5), max_new_tokens=5,
                   on_token=lambda step, ids, pieces: seen.append((step, int(ids[0]))))  # fmt: skip
    assert seen == list(enumerate(out.new_tokens[0].tolist()))
    assert n_hooks(model) == 0
    with pytest.raises(InputError, match="non-finite"):
        generate(model, torch.tensor([[5, 6]]), Steer(RESID, torch.ones(64), scale=1e39), max_new_tokens=3)
    assert n_hooks(model) == 0


def test_bad_options(model):
    with pytest.raises(InputError, match="temperature"):
        generate(model, torch.tensor([[1, 2]]), temperature=-1.0)
    with pytest.raises(InputError, match="top_k"):
        generate(model, torch.tensor([[1, 2]]), temperature=1.0, top_k=0)
