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
# # 07 · A vision transformer, end to end
#
# The same pipeline on images. DINOv2-S/14 (`dinov2-s14`, at 56 px: 16 patches
# plus the CLS token) with the shipped linear digit probe is the model; the
# project's concept ViT (`concept-vit`, with one planted neuron per concept) is
# the ground truth for labeling. This notebook:
#
# * reads held-out digits with DINOv2 and the probe;
# * captures patch activations into a store;
# * labels MLP neurons over the bundled images (exemplar images with masks), and
#   checks labeling against the concept ViT's planted units;
# * steers DINOv2 toward the digit 3 with a class direction, and ablates the
#   neurons most attributed to 3, each against a random baseline.
#
# Run it with `jupyter lab notebooks/`; `07_vit_walkthrough.py` and its `.ipynb`
# are a jupytext pair (`jupytext --sync notebooks/07_vit_walkthrough.py`).
# `INTERP_NOTEBOOK_SMALL=1` picks the test suite's sizes. The CLIs:
# `interp label --model dinov2-s14 --images bundled ...` and
# `interp steer --model dinov2-s14 --target-class 3 ...`.

# %% tags=["parameters"]
import os
from pathlib import Path

SMALL = os.environ.get("INTERP_NOTEBOOK_SMALL") == "1"
RUN = Path("runs/notebooks/07_vit_walkthrough")
TARGET = 3  # the digit class steered toward and ablated
LAYER = 8
N_IMAGES = 20 if SMALL else 200  # images per bundled set (digits, MNIST) for labeling
UNITS = 64 if SMALL else 1536  # MLP neurons labelled
CONCEPT_IMAGES = 200 if SMALL else 600  # held-out concept images for the ground-truth check
N_TRAIN = 60 if SMALL else 400  # labelled digits that define the class direction

# %% [markdown]
# ## DINOv2 and the digit probe
#
# `digit_readout` wraps DINOv2 at the probe's image size and the probe (which
# reads the CLS token and the mean patch token of the last layer) as one classifier.

# %%
import torch

from interp.datasets.images import load_images, preprocess
from interp.steering.vision import digit_readout

readout = digit_readout()
model = readout.model
train, held = load_images("digits", "train", limit=N_TRAIN), load_images("digits", "heldout")
x_train, y_train = preprocess(train.images, readout.image_size), torch.tensor(train.labels)
x_held, y_held = preprocess(held.images, readout.image_size), torch.tensor(held.labels)
with torch.no_grad():
    accuracy = float((readout.logits(x_held).argmax(-1) == y_held).float().mean())
print(
    f"{model.cfg.model_name}: {model.cfg.n_layers} layers, {model.cfg.n_ctx} positions "
    f"({model.cfg.image_size} px, patch {model.cfg.patch_size}); probe accuracy on {len(y_held)} held-out digits "
    f"{accuracy:.3f} (chance 0.1)"
)

# %%
assert accuracy > 0.8, accuracy

# %% [markdown]
# ## Capture
#
# Images go through the model's own preprocessing; in the store each row is one
# patch (CLS and register tokens are kept out by default), and `meta` says which
# image and which patch.

# %%
import interp

HOOK = f"blocks.{LAYER}.mlp.hook_post"
store = interp.capture_to_store(model, "digits", [HOOK], RUN / "store", split="heldout", limit=50, progress=False)
n_patches = (model.cfg.image_size // model.cfg.patch_size) ** 2
meta = store.meta(slice(0, 20))
print(store.summary())
print("image:", meta["doc"].tolist(), "\npatch:", meta["pos"].tolist())
assert store.n_tokens == 50 * n_patches and store.shape(HOOK) == (model.cfg.d_mlp,)

# %% [markdown]
# ## Labels with image exemplars
#
# `label_vit` runs one streaming pass over the images, keeps each neuron's top
# images with the mask of patches where it is active, and labels it from visual
# attributes measured per patch (colour, position, region size, texture) and the
# images' classes; one image in five is held out for scoring.

# %%
from interp.labeling import bundled_images, label_vit
from interp.reports import write_label_report

images = bundled_images(N_IMAGES, sets=("digits", "mnist"))
labels = label_vit(model, HOOK, images, units=list(range(UNITS)), meta={"model": "dinov2-s14"})
table = labels.table().to_pandas()
paths = write_label_report(labels, RUN / "labels", f"dinov2-s14 {HOOK} neurons")
table.sort_values("score", ascending=False)[["unit", "label", "score", "shuffled_auroc"]].head(8)

# %%
unit = max((u for u in labels.units if u.images), key=lambda u: u.scores.get("auroc") or 0.0)
print(f"neuron {unit.unit}: {unit.label!r}, held-out AUROC {unit.scores['auroc']:.3f}")
for ex in unit.images[:4]:
    grid = [ex.mask[r * ex.grid : (r + 1) * ex.grid] for r in range(ex.grid)]
    print(f"image {ex.image} ({ex.key}) peak {ex.value:.2f}, active patches:", " ".join(grid))
assert all(len(ex.mask) == n_patches for ex in unit.images) and labels.assets["thumbs"]

# %% [markdown]
# In the dashboard, image units show their top images with the active patches
# marked, and the lower-quantile and non-activating samples:

# %%
from interp.widgets.feature import FeatureDashboard

FeatureDashboard(labels, unit=unit.unit, title=f"dinov2-s14 {HOOK}")

# %% [markdown]
# `ImageHeatmap` lays one image's patch activations over the image (hover a
# patch for its value); `AttentionViewer` shows where each patch attends.

# %%
from interp.capture import capture_activations
from interp.widgets.attention import AttentionViewer
from interp.widgets.heatmap import ImageHeatmap

top_image = images.images[unit.images[0].image]
grid = model.cfg.image_size // model.cfg.patch_size
patch_acts = capture_activations(model, preprocess([top_image], readout.image_size), HOOK)[HOOK][0, -n_patches:]
ImageHeatmap(top_image, patch_acts[:, unit.unit].reshape(grid, grid), [f"neuron {unit.unit}"])

# %%
AttentionViewer.from_model(model, top_image, layers=[LAYER])

# %% [markdown]
# Is the labeling right? The concept ViT was trained with designated neurons for
# colours, textures, positions, shapes and sizes. On held-out concept images the
# labels name the planted concept for most of the neurons trained to be selective
# (top-1), and for nearly all of them among the three best candidates:

# %%
from interp.labeling import evaluate_concept_vit

concept = evaluate_concept_vit(n_images=CONCEPT_IMAGES)
print(concept.table())
assert concept.planted.top1 >= 0.7 and concept.planted.top3 >= 0.9, concept.table()

# %% [markdown]
# ## Steering toward a digit
#
# The class direction is the mean residual stream of images of 3 minus that of
# the other digits. `vision_sweep` adds it at every position and measures the
# lift of log p(3) on images of other digits (the effect), the KL over the
# non-target classes on neutral images and the held-out accuracy (the cost),
# beside a random direction of the same norm.

# %%
from interp.steering.vision import ablation_sweep, summary, vision_sweep

others, same = x_held[y_held != TARGET], x_held[y_held == TARGET]
steer = vision_sweep(
    readout,
    f"blocks.{LAYER}.hook_resid_post",
    TARGET,
    others[:8],
    others[8:16],
    x_held[:40],
    y_held[:40],
    (0.0, 1.0, 2.0),
    train=(x_train, y_train),
    n_random=1,
)
steer.save(RUN / "steer")
print(steer.table())
curves = summary(steer)
curves

# %% [markdown]
# At coefficient 2 the class direction raises log p(3) on other digits by several
# nats, far more than a random direction:

# %%
assert curves["vector"][2.0] > 3.0 and curves["vector"][2.0] > curves["random"][2.0] + 3.0, curves

# %% [markdown]
# ## Ablating the neurons behind a class
#
# Gradient × activation attribution ranks the layer's MLP neurons by their
# contribution to log p(3) on images of 3; `ablation_sweep` zeroes the top `n`
# and, as the baseline, `n` random neurons.

# %%
ablate = ablation_sweep(readout, HOOK, TARGET, same[:8], others[8:16], x_held[:40], y_held[:40], (4, 16, 64))
ablated = summary(ablate)
ablated

# %% [markdown]
# Zeroing the 64 most attributed neurons (4% of the layer) takes more than a nat
# off log p(3) on images of 3; 64 random neurons barely move it:

# %%
assert ablated["attributed"][64.0] < -1.0 and abs(ablated["random"][64.0]) < 0.3 * abs(ablated["attributed"][64.0])
