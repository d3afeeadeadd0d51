# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Capture and the activation store
#
# How activations leave the model:
#
# * hook names and patterns, and why a forward pass can stop early;
# * `interp.capture` (a context manager) and `interp.capture_activations` in memory,
#   checked against TransformerLens's `run_with_cache`;
# * `interp.capture_to_store`: several hooks in one pass into an append-only store
#   of safetensors shards, resumable (a rerun skips finished shards);
# * reading a store: shuffled batches (each token once per epoch), random access,
#   per-token metadata that leads back to the text.
#
# Run it with `jupyter lab notebooks/`; `02_capture_and_store.py` and its `.ipynb`
# are a jupytext pair (`jupytext --sync notebooks/02_capture_and_store.py`).
# `INTERP_NOTEBOOK_SMALL=1` picks the test suite's sizes.

# %% tags=["parameters"]
import os
from pathlib import Path

SMALL = os.environ.get("INTERP_NOTEBOOK_SMALL") == "1"
RUN = Path("runs/notebooks/02_capture_and_store")
N_LAYERS = 4  # blocks of SmolLM2 loaded: the early activations are the same as the full model's
MAX_TOKENS = 6_000 if SMALL else 200_000
CONTEXT = 64 if SMALL else 128

# %% [markdown]
# ## Hook points
#
# `load_model(..., n_layers=N)` keeps the first `N` blocks: a block's activations
# do not depend on the blocks after it, so they are the full model's, at a fraction
# of the cost.
# `resolve_hooks` expands `*` patterns and names the closest match when a name is misspelt.

# %%
import torch

import interp
from interp.capture import capture, capture_activations, resolve_hooks

model = interp.load_model("smollm2-135m", n_layers=N_LAYERS)
hooks = resolve_hooks(model, "blocks.*.hook_resid_post")
hooks

# %%
try:
    resolve_hooks(model, "blocks.1.hook_resid_pots")
except interp.InterpError as err:
    print(type(err).__name__, ":", err)

# %% [markdown]
# ## In memory
#
# `capture` records hooks during every forward pass inside the block and
# always removes its hooks; `capture_activations` also runs the pass, stopped after
# the last block the hooks need. Both give what `run_with_cache` gives.

# %%
text = "In the beginning God created the heavens and the earth."
tokens = interp.prepare_inputs(model, text)
mlp = "blocks.2.mlp.hook_post"

with capture(model, [hooks[1], mlp]) as acts:
    model(tokens, stop_at_layer=3)
_, cache = model.run_with_cache(tokens, names_filter=[hooks[1], mlp])
fast = capture_activations(model, tokens, [hooks[1], mlp])
{h: tuple(a.shape) for h, a in acts.items()}

# %%
for h in (hooks[1], mlp):
    assert torch.allclose(acts[h], cache[h], atol=1e-5) and torch.allclose(fast[h], cache[h], atol=1e-5)
assert sum(len(hp._forward_hooks) for hp in model.hook_dict.values()) == 0  # every hook was removed

# %% [markdown]
# ## Into a store
#
# One pass records both hooks for every content token (BOS and padding are
# dropped) of Bible contexts. The manifest records the model, hooks, shapes,
# dataset and a SHA-256 per shard.

# %%
out = RUN / "store"
options = dict(context_size=CONTEXT, max_tokens=MAX_TOKENS, batch_size=8, memory_budget="128MiB", progress=False)
store = interp.capture_to_store(model, "bible", [hooks[1], mlp], out, **options)
print(store.summary())

# %%
assert store.n_tokens == MAX_TOKENS and store.complete
assert store.shape(hooks[1]) == (model.cfg.d_model,) and store.shape(mlp) == (model.cfg.d_mlp,)
store.verify()  # re-hashes every shard against the manifest

# %% [markdown]
# Rerunning the same call resumes: finished shards are skipped, so after an
# interruption (even `kill -9`) the store ends identical to an uninterrupted one.
# Here the capture had finished, so the call returns at once.

# %%
import time

t0 = time.perf_counter()
again = interp.capture_to_store(model, "bible", [hooks[1], mlp], out, **options)  # the same call
rerun_s = time.perf_counter() - t0
print(f"rerun took {rerun_s:.2f}s, {again.n_tokens} tokens")
assert again.n_tokens == store.n_tokens and len(again.manifest.shards) == len(store.manifest.shards)

# %% [markdown]
# ## Reading
#
# `store.batches` yields shuffled batches, each token exactly once per epoch
# (what SAE training reads); `store[i]` and `store.meta(i)` give random access;
# `context_tokens` returns the whole model input a token came from.

# %%
seen = 0
total = torch.zeros(model.cfg.d_model, dtype=torch.float64)
for batch in store.batches(hooks[1], 1024, seed=0):
    seen += len(batch)
    total += batch.double().sum(0)
assert seen == store.n_tokens
assert torch.allclose(total, store[0 : store.n_tokens][hooks[1]].double().sum(0))

# %%
neuron_acts = store.get(slice(0, store.n_tokens), mlp)  # [tokens, d_mlp]
late = store.meta(slice(0, store.n_tokens))["ctx_pos"] >= 8  # many neurons spike on a context's first tokens
neuron_acts = neuron_acts.masked_fill(~late[:, None], float("-inf"))
unit = int(neuron_acts.max(0).values.argmax())
top = int(neuron_acts[:, unit].argmax())
meta = store.meta([top])
ctx = store.context_tokens(int(meta["context"][0]))
at = int(meta["ctx_pos"][0])
before = model.tokenizer.decode(ctx[max(1, at - 12) : at + 1])  # up to the token, BOS left out
print(
    f"neuron {unit} of {mlp} peaks at {float(neuron_acts[top, unit]):.2f} on token "
    f"{model.tokenizer.decode([int(meta['token'][0])])!r} in: ...{before}"
)
assert int(ctx[at]) == int(meta["token"][0])  # the metadata leads back to the exact token

# %% [markdown]
# ## Looking at activations
#
# `TokenHeatmap.from_model` runs the model on a text and colours each token by
# the chosen units (hover a token for its value); `AttentionViewer.from_model`
# shows the attention patterns of chosen layers (pick a layer and a head, hover a
# token to see what it attends to).

# %%
from interp.widgets.attention import AttentionViewer
from interp.widgets.heatmap import TokenHeatmap

passage = model.tokenizer.decode(ctx[1:])  # the context the neuron peaked in
TokenHeatmap.from_model(model, passage, mlp, [unit])

# %%
AttentionViewer.from_model(model, text, layers=[0, 1])
