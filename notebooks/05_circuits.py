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
# # 05 · Circuits
#
# `circuits` finds the edges of a model's computational graph that a task needs.
# The shipped ground-truth models make it checkable: `induction-2l` (two layers,
# four heads each, trained to continue repeated segments) and `planted-4x8` (four
# layers of eight heads with distractors) come with the exact effect of patching
# every edge. This notebook:
#
# * finds the induction and previous-token heads with attention-pattern detectors;
# * builds the task (clean prompts that can be continued by induction, corrupt ones that cannot);
# * scores every edge with attribution patching (`eap`, `eap_ig`) and compares with
#   exact edge patching;
# * measures a circuit's faithfulness and looks at direct logit attribution;
# * draws the circuit.
#
# Run it with `jupyter lab notebooks/`; `05_circuits.py` and its `.ipynb` are a
# jupytext pair (`jupytext --sync notebooks/05_circuits.py`). `INTERP_NOTEBOOK_SMALL=1`
# picks the test suite's sizes. The CLI: `interp circuits --model M --task T --method eap`.

# %% tags=["parameters"]
import os
from pathlib import Path

SMALL = os.environ.get("INTERP_NOTEBOOK_SMALL") == "1"
RUN = Path("runs/notebooks/05_circuits")
IG_STEPS = 5 if SMALL else 20  # integration steps of EAP-IG

# %% [markdown]
# ## Heads by their attention patterns
#
# On a random segment followed by its repeat, an induction head attends from each
# token of the second copy to the token after its first occurrence; a
# previous-token head attends one token back.

# %%
import torch

from circuits.heads import head_scores, top_heads
from circuits.models import circuit_truth, induction_task, load_circuit_model

model, meta = load_circuit_model("induction-2l")
scores = head_scores(model, kind=["induction", "previous_token"], seq_len=model.cfg.n_ctx)
print(
    "induction\n", scores["induction"].numpy().round(2), "\nprevious token\n", scores["previous_token"].numpy().round(2)
)
top_heads(scores["induction"], 4)

# %% [markdown]
# Every layer-1 head is an induction head, and a layer-0 head attends to the
# previous token (the first half of the induction mechanism):

# %%
assert float(scores["induction"][1].min()) > 0.5 and float(scores["induction"][0].max()) < 0.1
assert float(scores["previous_token"][0].max()) > 0.4

# %% [markdown]
# ## The task and the truth
#
# A `Task` holds clean and corrupt token ids and a metric (here the answer's
# logit minus the mean of every other logit at the last position). The truth is
# exact edge patching: each of the graph's 81 edges patched alone with its
# corrupt value.

# %%
truth = circuit_truth("induction-2l")
task = induction_task("induction-2l", n=truth["task_n"], seed=truth["task_seed"])  # the prompts the truth used
true_edges = truth["circuit_edges"]
with torch.no_grad():
    clean, corrupt = float(task.metric(model(task.clean)).mean()), float(task.metric(model(task.corrupt)).mean())
print(f"metric clean {clean:.2f}, corrupt {corrupt:.2f}; {len(true_edges)} true edges of {truth['n_edges']}")
assert clean > corrupt + 2

# %% [markdown]
# ## Scoring every edge
#
# Attribution patching estimates all edges from one forward and backward pass;
# EAP-IG integrates the gradient along the path from corrupt to clean.
# `compare_to_truth` reports how well the scores rank the true edges (ROC-AUC)
# and the precision and recall of the top edges.

# %%
import pandas as pd

from circuits.attribution import eap, eap_ig
from circuits.patching import patch_edges
from circuits.result import compare_to_truth, faithfulness

found = {"eap": eap(model, task), "eap-ig": eap_ig(model, task, steps=IG_STEPS), "exact": patch_edges(model, task)}
k = len(true_edges)
quality = pd.DataFrame(
    {
        name: compare_to_truth(c.top_k(k), true_edges) | {"faithfulness": faithfulness(model, task, c.top_k(k)).score}
        for name, c in found.items()
    }
).T.round(3)
quality

# %% [markdown]
# EAP-IG ranks the true edges almost perfectly, and its top edges alone carry
# most of the model's performance on the task:

# %%
assert quality.loc["eap-ig", "roc_auc"] > 0.95 and quality.loc["eap-ig", "faithfulness"] > 0.7, quality
assert quality.loc["exact", "roc_auc"] == 1.0  # patch_edges computes the truth itself

# %% [markdown]
# ## The harder model
#
# `planted-4x8` has 1,281 edges, an induction circuit spread over four layers
# and heads that look like induction heads but do not matter.

# %%
big, _ = load_circuit_model("planted-4x8")
big_truth = circuit_truth("planted-4x8")
big_task = induction_task("planted-4x8", n=big_truth["task_n"], seed=big_truth["task_seed"])
big_truth = big_truth["circuit_edges"]
big_scores = eap_ig(big, big_task, steps=IG_STEPS)
big_quality = compare_to_truth(big_scores.top_k(len(big_truth)), big_truth)
big_quality

# %%
assert big_quality["roc_auc"] > 0.95, big_quality

# %% [markdown]
# ## Direct logit attribution and the circuit
#
# Direct logit attribution splits the final logit difference over the heads
# that write to the residual stream: in `induction-2l` the layer-1 (induction)
# heads write the answer. The circuit's nodes and edges are saved as JSON and
# drawn with plotly.

# %%
from circuits.figure import circuit_figure
from circuits.logit import direct_logit_attribution

dla = direct_logit_attribution(model, task).by_head  # [layer, head]
print(dla.numpy().round(2))
assert float(dla[1].min()) > 5 * float(dla[0].abs().max())

circuit = found["eap-ig"].top_k(k)
circuit.to_json(RUN / "circuit.json")  # Circuit.from_json reads it back
print(circuit.nodes())
circuit_figure(circuit, title=f"induction-2l: top {k} EAP-IG edges")

# %% [markdown]
# `CircuitExplorer` draws every scored edge layer by layer with a threshold
# slider; given the truth it colours true positives green, false positives
# orange and missed edges grey, with precision and recall at the threshold.

# %%
from circuits.result import Circuit
from interp.widgets.circuit import CircuitExplorer

explorer = CircuitExplorer(Circuit.from_json(RUN / "circuit.json"), truth=truth)
explorer
