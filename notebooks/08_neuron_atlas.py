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
# # 08 · The neuron atlas
#
# `interp.atlas` scores every MLP neuron of a model, from its weights alone, from
# its activations, against the neurons of another model, and by causal checks.
# This notebook:
#
# * scores SmolLM2's MLP neurons from their weights (input-output cosines and IO
#   class, vocabulary kurtosis and skew with top tokens, null-space fraction,
#   output norm, frequency alignment) and finds prediction and suppression neurons;
# * checks the entropy-neuron candidates causally: their total effect on the output
#   entropy against their direct logit effect, beside random neurons;
# * finds universal neurons between the project's two Bible LMs (two seeds of one
#   architecture), against a random-direction baseline;
# * searches in SAE-feature space: retrieves a Bible book's chapters by SAE codes,
#   raw activations and sentence embeddings;
# * saves the tables as Parquet (one file per layer) and reads them back.
#
# Run it with `jupyter lab notebooks/`; `08_neuron_atlas.py` and its `.ipynb` are a
# jupytext pair (`jupytext --sync notebooks/08_neuron_atlas.py`).
# `INTERP_NOTEBOOK_SMALL=1` picks the test suite's sizes. The CLI builds the same
# atlas into a run directory: `interp atlas --model smollm2-135m --name atlas-smollm2`.

# %% tags=["parameters"]
import os
from pathlib import Path

SMALL = os.environ.get("INTERP_NOTEBOOK_SMALL") == "1"
RUN = Path("runs/notebooks/08_neuron_atlas")
LAST = 29  # SmolLM2-135M's last layer: the entropy-neuron candidates come from it
LAYERS = [28, LAST] if SMALL else None  # layers scored (None: all 30)
ENTROPY_K = 3 if SMALL else 5  # entropy-neuron candidates tested
ENTROPY_TOKENS = 128 if SMALL else 1024  # held-out Bible tokens of the causal check
CORR_TOKENS = 8192 if SMALL else 65536  # tokens both Bible LMs read
SAE_TOKENS = 4096 if SMALL else 100_000  # training tokens of the SAE used for search
D_SAE = 1024 if SMALL else 2304
K = 16 if SMALL else 32
DOC_TOKENS = 32 if SMALL else 128  # tokens read per Bible chapter in the search

# %% [markdown]
# ## Scores from the weights
#
# `weight_scores` needs no data: one pass over `W_in`, `W_gate`, `W_out` and the
# unembedding `W_U` gives one row per neuron.

# %%
import pandas as pd

import interp
from interp.atlas import weight_scores

pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 30)
model = interp.load_model("smollm2-135m")
table = weight_scores(model, LAYERS)
print(f"{len(table)} neurons of layers {sorted(int(x) for x in table.layer.unique())}; columns:\n{list(table.columns)}")
table[["layer", "neuron", "io_class", "cos_in_out", "vocab_kurtosis", "vocab_skew", "null_frac", "w_out_norm",
       "freq_cos", "top_tokens"]].head()  # fmt: skip

# %% [markdown]
# The columns, in groups:
#
# * `cos_in_out`, `cos_gate_out`, `cos_gate_in` and `io_class`: does the neuron write
#   back the direction it reads (*enrichment*), remove it (*depletion*), or write
#   something else (*orthogonal output*)? "Conditional" classes are gated neurons whose
#   gate and input read different directions (Gerstner & Schütze 2025).
# * `vocab_mean`, `vocab_std`, `vocab_skew`, `vocab_kurtosis`, `top_tokens`,
#   `bottom_tokens`: the moments of the neuron's direct logit effect `w_out @ W_U`
#   over the vocabulary, and the tokens it promotes and suppresses most.
# * `w_out_norm`, `null_frac`, `null_norm`: the output weight's norm and the share of
#   it in `W_U`'s effective null space (its `null_k = 10` weakest directions).
# * `freq_cos`: the cosine between the logit effect and the log unigram frequency of
#   each token in the Bible (does the neuron push toward frequent tokens?).
#
# In the last layers, neurons that deplete what they read far outnumber those that
# enrich it (most write an orthogonal output):

# %%
classes = table.groupby("layer").io_class.value_counts(normalize=True).unstack(fill_value=0.0)
depletes = classes.get("depletion", 0.0) + classes.get("conditional depletion", 0.0)
enriches = classes.get("enrichment", 0.0) + classes.get("conditional enrichment", 0.0)
print(classes.round(3))
late = classes.index[classes.index >= 28]
assert (depletes[late] > 5 * enriches[late]).all(), classes

# %% [markdown]
# ### Prediction and suppression neurons
#
# A neuron whose logit effect is heavy-tailed (high kurtosis) acts on a few tokens.
# With a positive skew it promotes them (a *prediction* neuron), with a negative skew
# it suppresses them (a *suppression* neuron; Gurnee et al. 2024). A normal
# distribution has kurtosis 3; the last layers hold neurons above 20 of both kinds:

# %%
cols = ["layer", "neuron", "vocab_kurtosis", "vocab_skew"]
prediction = table[table.vocab_skew > 0].nlargest(5, "vocab_kurtosis")[cols + ["top_tokens"]]
suppression = table[table.vocab_skew < 0].nlargest(5, "vocab_kurtosis")[cols + ["bottom_tokens"]]
print("prediction neurons (they promote their top tokens):\n", prediction.round(2).to_string(index=False))
print("\nsuppression neurons (they suppress their bottom tokens):\n", suppression.round(2).to_string(index=False))
assert prediction.vocab_kurtosis.iloc[0] > 20 and suppression.vocab_kurtosis.iloc[0] > 20

# %% [markdown]
# Frequency alignment: the neurons with the largest `|freq_cos|` push the logits
# toward frequent tokens (punctuation, function words) or away from them.

# %%
pd.concat([table.nlargest(3, "freq_cos"), table.nsmallest(3, "freq_cos")])[
    ["layer", "neuron", "freq_cos", "top_tokens"]
].round(3)

# %% [markdown]
# `atlas_figures` draws the atlas's classic plots as plotly figures (hover a point for
# the neuron and its top tokens): output norm against null-space fraction, the IO
# cosines and classes by layer, and vocabulary kurtosis against skew, where
# prediction neurons sit top right and suppression neurons top left.

# %%
from interp.atlas import atlas_figures

figs = atlas_figures(table)
print(list(figs))
figs["kurtosis_vs_skew"]

# %% [markdown]
# ## Entropy neurons, checked causally
#
# A random direction puts about `null_k / d_model` = 10/576 ≈ 0.017 of its norm²
# into `W_U`'s effective null space, and the typical neuron is close to that; a few
# put more than half of it there. Such a neuron barely moves the logits directly, but
# it changes the residual norm that the final RMSNorm divides by, and with it the
# output's entropy (an *entropy neuron*, Stolfo et al. 2024).
# `entropy_candidates` picks the neurons of a layer with the largest null-space
# component (`null_norm`).

# %%
from interp.atlas import entropy_candidates

random_frac = 10 / model.cfg.d_model
candidates = entropy_candidates(table, LAST, k=ENTROPY_K)
last = table[table.layer == LAST].set_index("neuron")
print(f"median null_frac {table.null_frac.median():.4f} (a random direction: {random_frac:.4f})")
print(last.loc[[n for _, n in candidates], ["null_frac", "w_out_norm", "null_norm"]].round(3))
assert 0.5 * random_frac < table.null_frac.median() < 2 * random_frac
assert last.loc[candidates[0][1], "null_frac"] > 0.5

# %% [markdown]
# `entropy_effects` mean-ablates each candidate and `n_random` random neurons of the
# same layer on held-out Bible text, and compares the change of the next-token
# entropy (the *total* effect) with the change its own logit contribution alone
# makes, with the final norm's scale frozen (the *direct* effect). For an ordinary
# last-layer neuron the two agree (ratio ≈ 1); an entropy neuron's total effect is
# several times its direct one.

# %%
from interp.atlas import entropy_effects
from interp.datasets.text import load_texts, pack_contexts

tokens = pack_contexts(load_texts("bible", "heldout"), model, 32, max_tokens=ENTROPY_TOKENS).tokens  # [n, 32]
effects = entropy_effects(model, tokens, candidates, n_random=10)
cand, rand = effects[effects.group == "candidate"], effects[effects.group == "random"]
print(effects.round(4).to_string(index=False))
print(f"best candidate ratio {cand.ratio.max():.2f}; random neurons: median {rand.ratio.median():.2f}, "
      f"max {rand.ratio.max():.2f}")  # fmt: skip

# %% [markdown]
# The candidates come from the weights alone; the causal check confirms the best of
# them: its total effect is more than twice its direct effect and more than 1.5 times
# the largest ratio of the random neurons, whose median ratio is close to 1:

# %%
assert cand.ratio.max() > 2 and cand.ratio.max() > 1.5 * rand.ratio.max(), effects
assert abs(rand.ratio.median() - 1) < 0.3, effects

# %% [markdown]
# ## Universal neurons across seeds
#
# The project ships two small Bible LMs (2 layers, 512 MLP neurons each), trained
# alike from two seeds. `model_correlation` runs both on the same held-out tokens
# and correlates every neuron of one with every neuron of the other, in one pass;
# each neuron gets its best match (`max_corr`) and, as the baseline, the best
# correlation with random directions in the other model's activation space.

# %%
from interp.atlas import load_bible_lm, model_correlation

lm_a, lm_b = load_bible_lm("bible-lm-s0"), load_bible_lm("bible-lm-s1")
corr = model_correlation(lm_a, lm_b, "bible", n_tokens=CORR_TOKENS)
summary = corr.summary()
universal = pd.DataFrame({k: v for k, v in summary.items() if isinstance(v, dict)}).T
print(f"{summary['n_tokens']} tokens; a neuron is universal when max_corr > {summary['threshold']}")
universal.round(3)

# %% [markdown]
# In every layer of both models, the share of universal neurons is well above the
# share of neurons that random directions match as well (by more than 0.1):

# %%
assert (universal.universal > universal.baseline + 0.1).all(), universal

# %% [markdown]
# The Bible LMs have the same columns of weight scores (their compact vocabulary
# gives the token names); the most universal neurons of `bible-lm-s0`, with their
# match in `bible-lm-s1` and the tokens they promote:

# %%
scores_a = weight_scores(lm_a)
best = corr.table[corr.table.side == "a"].merge(scores_a, on=["layer", "neuron"]).nlargest(5, "max_corr")
best[["layer", "neuron", "max_corr", "match_layer", "match_neuron", "baseline_max_corr", "top_tokens"]].round(3)

# %% [markdown]
# ## Search in SAE-feature space
#
# Represent each document by the SAE features it activates, and the documents most
# like a few examples are those sharing their features. The task: given 5 train
# chapters of a Bible book, find that book's chapters among all held-out chapters.
# First a small TopK SAE on SmolLM2's residual stream after block 3 (the capture
# stops after block 3, so the full model costs no more than a 4-layer one):

# %%
from sae_training import load_sae, train_sae

HOOK = "blocks.3.hook_resid_post"
run = train_sae({"model": "smollm2-135m", "hook": HOOK, "dataset": "bible", "tokens": SAE_TOKENS, "context_size": 64,
                 "arch": "topk", "d_sae": D_SAE, "k": K, "batch_size": 512, "lr": 1e-3, "seed": 0,
                 "out": str(RUN / "sae"), "eval": False, "progress": False}, model=model)  # fmt: skip
sae = load_sae(run.saes[HOOK])
print(f"{run.steps} steps on {SAE_TOKENS} tokens: {sae.cfg.d_in} -> {sae.cfg.d_sae} latents, k={K}")

# %% [markdown]
# Three representations of each chapter:
#
# * `sae`: `document_vectors` with `encode=sae.encode`, the SAE codes of its tokens
#   max-pooled (a feature that fires anywhere counts), compared by weighted Jaccard;
# * `raw`: the hook's raw activations, mean-pooled, compared by cosine;
# * `text`: `text_embeddings`, MiniLM sentence embeddings, compared by cosine.
#
# `rank_by_similarity` orders the pool by mean similarity to the queries and
# `precision_at_k` counts the right book among the top 5.

# %%
import torch

from interp.atlas import document_vectors, precision_at_k, rank_by_similarity, text_embeddings
from interp.atlas.retrieval import bible_book_task

BOOKS = {19: "Psalms", 20: "Proverbs", 5: "Deuteronomy", 2: "Exodus", 24: "Jeremiah"}
task = bible_book_task(list(BOOKS), n_queries=5)
n_pool = len(task["pool"])
docs = task["pool"] + [q for b in BOOKS for q in task["queries"][b]]  # pool first, then 5 queries per book
vectors = {
    "sae": document_vectors(model, docs, HOOK, encode=sae.encode, pool="max", max_tokens=DOC_TOKENS),
    "raw": document_vectors(model, docs, HOOK, pool="mean", max_tokens=DOC_TOKENS),
    "text": text_embeddings(docs, max_tokens=DOC_TOKENS),
}
similarity = {"sae": "weighted_jaccard", "raw": "cosine", "text": "cosine"}
rows = []
for i, book in enumerate(BOOKS):
    relevant = task["pool_books"] == book  # [n_pool] bool
    for rep, v in vectors.items():
        queries = v[n_pool + 5 * i : n_pool + 5 * (i + 1)]  # [5, d]
        ranking = rank_by_similarity(v[:n_pool], queries, similarity[rep])
        rows.append({"book": BOOKS[book], "representation": rep, "precision@5": precision_at_k(ranking, relevant, 5),
                     "chance": float(relevant.float().mean())})  # fmt: skip
search = pd.DataFrame(rows)
print(f"{n_pool} held-out chapters in the pool; {DOC_TOKENS} tokens read per chapter")
search.pivot(index="book", columns="representation", values="precision@5").assign(
    chance=search.groupby("book").chance.first()
).round(2)

# %%
mean = search.groupby("representation")[["precision@5", "chance"]].mean()
print(mean.round(3))

# %% [markdown]
# Averaged over the five books, every representation finds the right book at more
# than three times the rate of chance (the book's share of the pool). At the full
# sizes `evaluate_retrieval` runs the same comparison, and `interp atlas --sae DIR`
# records it in a run.

# %%
assert (mean["precision@5"] > 3 * mean["chance"]).all(), mean
assert torch.all(vectors["sae"] >= 0)  # max-pooled TopK codes: weighted Jaccard needs non-negative vectors

# %% [markdown]
# ## Saving and reading the atlas
#
# `save_tables` writes one `layer_LL.parquet` per layer (token lists stay list
# columns) and `load_tables` reads them back into one table; `write_figures` puts the
# plots in one HTML page that opens offline, and `atlas_columns` picks the scores the
# neuron-description reports show beside a label.
#
# From the command line, `interp atlas --model smollm2-135m --name atlas-smollm2`
# writes the weight scores of every layer and the figures into `runs/atlas-smollm2/`
# (`--entropy 5` adds the causal check, `--sae DIR` the search), and
# `interp atlas --model bible-lm-s0 --compare bible-lm-s1` adds the universal-neuron
# correlations; `interp.atlas.load_atlas(run_dir)` reads a run back as one table.

# %%
from interp.atlas import atlas_columns, load_tables, save_tables, write_figures

paths = save_tables(table, RUN / "weights")
page = write_figures(table, RUN / "figures.html")
loaded = load_tables(RUN / "weights")
print([p.name for p in paths], page.name)
assert len(loaded) == len(table) and list(loaded.columns) == list(table.columns)
assert (loaded.vocab_kurtosis.to_numpy() == table.sort_values(["layer", "neuron"]).vocab_kurtosis.to_numpy()).all()
assert list(loaded.top_tokens.iloc[0]) == list(table.top_tokens.iloc[0])
atlas_columns(loaded).head()

# %% [markdown]
# The atlas from the Parquet files: output norm against the share of it in `W_U`'s
# null space. The entropy neuron confirmed above sits to the right, its norm mostly
# invisible to the unembedding.

# %%
entropy_neuron = cand.loc[cand.ratio.idxmax()]
row = loaded[(loaded.layer == entropy_neuron.layer) & (loaded.neuron == entropy_neuron.neuron)].iloc[0]
fig = atlas_figures(loaded)["norm_vs_null"]
fig.add_annotation(x=row.null_frac, y=row.w_out_norm, text=f"entropy neuron {row.layer}:{row.neuron} "
                   f"(ratio {entropy_neuron.ratio:.1f})", showarrow=True, arrowhead=2)  # fmt: skip
assert row.null_frac > 10 * random_frac
fig
