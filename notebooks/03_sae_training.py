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
# # 03 · Training sparse autoencoders
#
# `sae_training` trains SAEs on activations read from a store and saves them in
# SAELens's layout. This notebook:
#
# * captures a training store and a held-out store of one residual-stream hook;
# * trains a TopK SAE and a standard (L1) SAE of the same width from the same store,
#   and compares their sparsity and reconstruction;
# * reads the per-step training curves from `metrics.jsonl`;
# * evaluates on held-out tokens: FVU from the held-out store, CE loss recovered and KL
#   with the SAE spliced into the full model;
# * reruns a finished run (returned at once) and loads the SAE with SAELens.
#
# Run it with `jupyter lab notebooks/`; `03_sae_training.py` and its `.ipynb` are a
# jupytext pair (`jupytext --sync notebooks/03_sae_training.py`).
# `INTERP_NOTEBOOK_SMALL=1` picks the test suite's sizes. The command line does the
# same: `python -m sae_training train --from-store DIR --hook HOOK --arch topk ...`.

# %% tags=["parameters"]
import os
from pathlib import Path

SMALL = os.environ.get("INTERP_NOTEBOOK_SMALL") == "1"
RUN = Path("runs/notebooks/03_sae_training")
LAYER = 3
TRAIN_TOKENS = 8_000 if SMALL else 200_000
HELDOUT_TOKENS = 2_000 if SMALL else 20_000
D_SAE = 512 if SMALL else 4608
K = 16 if SMALL else 32
SAE_TOKENS = 65_536 if SMALL else 600_000
EVAL_TOKENS = 256 if SMALL else 4096  # held-out tokens spliced into the full model
EVAL_CONTEXT = 64 if SMALL else 128

# %%
import json

import pandas as pd

import interp
from sae_training import evaluate_sae, train_sae

model = interp.load_model("smollm2-135m")  # the full model: the CE evaluation splices the SAE into it
HOOK = f"blocks.{LAYER}.hook_resid_post"
stores = {
    split: interp.capture_to_store(
        model, "bible", [HOOK], RUN / f"store-{split}", split=split, context_size=128, max_tokens=n, progress=False
    )
    for split, n in (("train", TRAIN_TOKENS), ("heldout", HELDOUT_TOKENS))
}
{split: s.n_tokens for split, s in stores.items()}

# %% [markdown]
# ## Two architectures, one store
#
# A config is a flat dict (or a `TrainConfig`) whose fields are the CLI flags.
# TopK keeps the `k` largest latents per token; the standard SAE gets sparsity from
# an L1 penalty, so its L0 is whatever the penalty leads to.

# %%
common = {
    "from_store": str(RUN / "store-train"),
    "hook": [HOOK],
    "d_sae": D_SAE,
    "tokens": SAE_TOKENS,
    "batch_size": 512,
    "lr": 1e-3,
    "eval": False,
    "progress": False,
    "seed": 0,
}
runs = {
    "topk": train_sae(common | {"arch": "topk", "k": K, "out": str(RUN / "topk")}),
    "standard": train_sae(common | {"arch": "standard", "l1_coefficient": 2.0, "out": str(RUN / "standard")}),
}
heldout = {
    arch: evaluate_sae(r.saes[HOOK], store=stores["heldout"], n_tokens=HELDOUT_TOKENS)[HOOK] for arch, r in runs.items()
}
comparison = pd.DataFrame(
    {
        arch: {
            "steps": r.steps,
            "tokens/s": round(r.tokens_per_s),
            **{k: round(heldout[arch][k], 4) for k in ("fvu", "l0", "dead_fraction")},
        }
        for arch, r in runs.items()
    }
).T
comparison

# %% [markdown]
# On held-out tokens, the TopK SAE keeps `K` active latents per token (at most:
# a top-`K` latent whose pre-activation is not positive stays off) and explains
# most of the variance:

# %%
assert K - 0.5 < heldout["topk"]["l0"] <= K
assert heldout["topk"]["fvu"] < 0.5, heldout["topk"]
assert heldout["standard"]["fvu"] < 1.0  # the L1 SAE also reconstructs better than the mean

# %% [markdown]
# ## Training curves
#
# While it trains, `train_sae` appends a JSON line per logged step to
# `<out>/metrics.jsonl` (loss, MSE, L0, dead fraction, learning rate, tokens/s):
# a dashboard can follow it live, and after the run it is a table.

# %%
curves = pd.read_json(RUN / "topk" / "metrics.jsonl", lines=True)
curves[["step", "tokens", "loss", "l0", "dead_fraction", "lr"]].iloc[:: max(1, len(curves) // 8)]

# %%
assert curves["step"].is_monotonic_increasing and curves["step"].iloc[-1] == runs["topk"].steps
assert curves["loss"].iloc[-5:].mean() < curves["loss"].iloc[:5].mean()  # the loss went down

# %% [markdown]
# `TrainingDashboard` draws the same file as loss, L0 and dead-fraction curves.
# Display it before (or while) a run trains, with `.follow()`, and it updates live.

# %%
from interp.widgets.training import TrainingDashboard

training = TrainingDashboard(RUN / "topk")
assert training.last_step == runs["topk"].steps
training

# %% [markdown]
# ## In the model
#
# `evaluate_sae` with a model splices the SAE's reconstruction into the forward
# pass on held-out Bible text: CE loss recovered is 1 when the spliced model is
# as good as the original and 0 when it is as bad as zero-ablating the layer.

# %%
spliced = evaluate_sae(
    runs["topk"].saes[HOOK],
    model=model,
    n_tokens=EVAL_TOKENS,
    context_size=EVAL_CONTEXT,
    batch_size=4,
    out=RUN / "topk",
)[HOOK]
{k: round(spliced[k], 4) for k in ("ce_clean", "ce_spliced", "ce_zero_ablation", "ce_loss_recovered", "kl_div")}

# %%
assert spliced["ce_loss_recovered"] > 0.5, spliced
assert (RUN / "topk" / "eval.html").is_file()

# %% [markdown]
# ## Reruns, checkpoints and SAELens
#
# Rerunning a finished run with the same configuration returns it at once
# (`reused`); an interrupted run resumes from its newest checkpoint. The saved
# folder is a plain SAELens SAE.

# %%
again = train_sae(common | {"arch": "topk", "k": K, "out": str(RUN / "topk")})
print("reused:", again.reused, "| files:", sorted(p.name for p in runs["topk"].saes[HOOK].iterdir()))
assert again.reused

sae = again.load(HOOK)  # a sae_lens.SAE
acts = stores["heldout"][0:256]
codes = sae.encode(acts)
print(
    type(sae).__name__,
    "d_in",
    sae.cfg.d_in,
    "d_sae",
    sae.cfg.d_sae,
    "| L0 on 256 held-out tokens:",
    float((codes > 0).sum(-1).float().mean()),
)
print(json.dumps(json.loads((runs["topk"].saes[HOOK] / "cfg.json").read_text())["metadata"], indent=1)[:400])
