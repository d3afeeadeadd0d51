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
# # 01 · Quickstart: the whole pipeline in small
#
# One pass through every stage of **interp** on SmolLM2-135M, offline on a CPU:
#
# 1. **capture** a residual-stream hook into an activation store,
# 2. train a TopK **SAE** on it and evaluate it,
# 3. **label** the SAE's latents (PMI against their exemplars, scored on held-out text),
# 4. write the HTML **report**,
# 5. **steer** the model with a labelled latent and compare generations.
#
# Each stage has its own notebook (02–06) that goes deeper. Run it with
# `jupyter lab notebooks/`. This notebook is a jupytext pair: `01_quickstart.py`
# (percent format, the source under version control) and `01_quickstart.ipynb`
# (output-free); after editing either, `jupytext --sync notebooks/01_quickstart.py`
# updates the other. The test suite runs it with `INTERP_NOTEBOOK_SMALL=1`, which
# picks the small sizes below; results go to `runs/notebooks/01_quickstart/`
# under the working directory.

# %% tags=["parameters"]
import os
from pathlib import Path

SMALL = os.environ.get("INTERP_NOTEBOOK_SMALL") == "1"  # the test suite's sizes
RUN = Path("runs/notebooks/01_quickstart")
LAYER = 6  # SmolLM2 block whose residual stream we study
TRAIN_TOKENS = 16_000 if SMALL else 100_000  # tokens captured into the store
D_SAE = 512 if SMALL else 2304  # SAE latents
K = 16 if SMALL else 32  # active latents per token (TopK)
SAE_TOKENS = 65_536 if SMALL else 300_000  # training tokens (the store is read for several epochs)
EVAL_TOKENS = 512 if SMALL else 4096  # held-out tokens of the SAE's evaluation in the full model
LABEL_UNITS = 64 if SMALL else 512  # latents labelled
N_CANDIDATES = 4 if SMALL else 12  # labelled latents screened for steering

# %% [markdown]
# ## The model
#
# `interp.load_model` converts the packaged SmolLM2 once (cached under
# `$INTERP_CACHE`) and returns a TransformerLens `HookedTransformer`.

# %%
import interp

model = interp.load_model("smollm2-135m")
HOOK = f"blocks.{LAYER}.hook_resid_post"
print(model.cfg.n_layers, "layers, d_model", model.cfg.d_model, "|", len(model.hook_dict), "hook points")

# %% [markdown]
# ## 1 · Capture
#
# In memory, `interp.capture_activations` runs one forward pass (stopped after
# the last block the hooks need) and returns the activations. To disk,
# `interp.capture_to_store` runs the model over a corpus and writes a store of
# safetensors shards with per-token metadata.

# %%
acts = interp.capture_activations(model, "In the beginning God created the heavens", HOOK)
print(HOOK, tuple(acts[HOOK].shape))  # [batch, pos, d_model]

store = interp.capture_to_store(
    model, "bible", [HOOK], RUN / "store", context_size=128, max_tokens=TRAIN_TOKENS, progress=False
)
print(store.summary())

# %%
assert store.n_tokens == TRAIN_TOKENS and store.shape(HOOK) == (model.cfg.d_model,)

# %% [markdown]
# ## 2 · SAE
#
# `sae_training.train_sae` trains one SAE per hook from the store and saves it in
# SAELens's layout; with `eval_model=` it splices the SAE into the full model on
# held-out Bible text and reports the fraction of variance unexplained (FVU),
# L0 and the CE loss recovered.

# %%
from sae_training import train_sae

result = train_sae(
    {
        "from_store": str(RUN / "store"),
        "hook": [HOOK],
        "arch": "topk",
        "d_sae": D_SAE,
        "k": K,
        "tokens": SAE_TOKENS,
        "batch_size": 512,
        "lr": 1e-3,
        "eval_tokens": EVAL_TOKENS,
        "eval_batch_size": 2,
        "progress": False,
        "out": str(RUN / "sae"),
    },
    eval_model=model,
)
metrics = result.eval[HOOK]
sae = result.load(HOOK)
{k: round(metrics[k], 3) for k in ("fvu", "l0", "ce_loss_recovered", "dead_fraction")}

# %% [markdown]
# The SAE explains most of the residual stream's variance with `K` active
# latents per token, and splicing it in recovers most of the loss that
# zero-ablating the layer would cost:

# %%
assert metrics["fvu"] < 0.5, metrics["fvu"]
assert metrics["l0"] <= K + 1e-6
assert metrics["ce_loss_recovered"] > 0.5, metrics["ce_loss_recovered"]

# %% [markdown]
# ## 3 · Labels
#
# `interp.labeling.label_store` finds each latent's top exemplars in the store,
# proposes descriptions (tokens, neighbouring tokens, and their compositions),
# ranks them by PMI and scores the winner on held-out documents, beside a
# shuffled baseline.

# %%
import statistics

from interp.labeling import label_store

labels = label_store(
    store,
    HOOK,
    model=model,
    sae=sae,
    sae_key=str(result.saes[HOOK]),
    units=list(range(LABEL_UNITS)),
    meta={"hook": HOOK, "model": "smollm2-135m"},
)
auroc = statistics.median(u.scores["auroc"] for u in labels.units if u.scores.get("auroc") is not None)
shuffled = statistics.median(
    u.scores["shuffled_auroc"] for u in labels.units if u.scores.get("shuffled_auroc") is not None
)
table = labels.table().to_pandas()
print(f"median held-out AUROC {auroc:.3f} against {shuffled:.3f} for shuffled labels")
table.sort_values("score", ascending=False)[["unit", "label", "score", "output_top"]].head(10)

# %% [markdown]
# The labels detect their latents on held-out text far better than the same
# labels shuffled across latents:

# %%
assert auroc > shuffled + 0.2, (auroc, shuffled)

# %% [markdown]
# `FeatureDashboard` browses these labels in the notebook: pick a latent by
# number or search the labels; the selected latent's histogram, exemplars (hover
# a token for its activation) and top ± output tokens are computed on demand, so
# an SAE with thousands of latents stays responsive.

# %%
from interp.widgets.feature import FeatureDashboard

FeatureDashboard(labels, unit=int(table.sort_values("score", ascending=False)["unit"].iloc[0]))

# %% [markdown]
# ## 4 · Report
#
# `write_label_report` writes a self-contained HTML page (open it from `file://`,
# no server, no network), plus JSON, CSV and Parquet.

# %%
import re

from interp.reports import write_label_report

paths = write_label_report(labels, RUN / "labels", f"SmolLM2 {HOOK} SAE latents")
print({k: str(v) for k, v in paths.items()})
assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", paths["html"].read_text())  # all offline

# %% [markdown]
# ## 5 · Steering
#
# A label says what a latent *reads*. Whether adding its decoder direction
# makes the model *write* the label's token is measured: each candidate is
# screened against a random direction of the same norm, and the best is used
# to steer generation.

# %%
import json

from interp.steering import Steer, generate
from interp.steering.demo import DEMO_PROMPTS, candidate_latents, screen_latents

candidates = candidate_latents(json.loads(labels.to_json()), D_SAE, n=N_CANDIDATES)
screen = screen_latents(model, sae, HOOK, candidates, list(DEMO_PROMPTS), coefficient=4.0)
best = next(u for u in candidates if u["unit"] == screen[0]["unit"])
print(
    f"latent {best['unit']} labelled {best['label']!r}: target {screen[0]['target']!r}, "
    f"lift {screen[0]['effect']:.2f} nats against {screen[0]['random']:.2f} for a random direction"
)

direction = sae.W_dec[best["unit"]].detach() * best["max"]  # coefficient 1 = the latent at its largest activation
prompt = DEMO_PROMPTS[0]
plain = generate(model, prompt, max_new_tokens=12).text[0]
steered = generate(model, prompt, Steer(HOOK, direction, scale=4.0), max_new_tokens=12).text[0]
print(f"unsteered: {prompt}{plain}\nsteered:   {prompt}{steered}")

# %% [markdown]
# The chosen latent's direction raises its target token's log-probability more
# than a random direction of the same norm, and the steered generation differs:

# %%
assert screen[0]["margin"] > 0, screen[0]
assert steered != plain

# %% [markdown]
# The steering playground puts both generations side by side: move the
# coefficient and each change calls `generate` again (greedy decoding, cached).
# It starts where the cell above ended, so it shows the same two texts; smaller
# coefficients trade the target's pull for fluency (notebook 06 measures that
# trade as effect against cost).

# %%
from interp.widgets.steering import SteeringPlayground

playground = SteeringPlayground.for_model(
    model,
    {f"latent {best['unit']}": (HOOK, direction)},
    prompt=prompt,
    coefficient=4.0,
    coefficient_range=(-8.0, 8.0),
    max_new_tokens=12,
)
assert (playground.unsteered, playground.steered) == (plain, steered)
playground
