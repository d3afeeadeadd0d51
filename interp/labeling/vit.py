"""Label the units of a ViT layer (MILAN for images): exemplar images with masks, visual candidates, scores.

One streaming pass runs the model over the images (stopped after the block the
hook needs) and feeds every patch's unit activations (CLS dropped) to
:func:`~interp.labeling.exemplars.collect` (quantiles, reservoir samples,
held-out activations) while :class:`_TopImages` keeps, per unit, the ``k``
images with the highest peak and their whole activation maps. A unit's
exemplar set ``E`` is the active patches of its top-``k`` images: the map
thresholded at the unit's 0.99 quantile over all patches of the grounding
images (the mask; upsampled to the image in reports), plus, as for text, the
active patches among its top ``ground_rows`` patches of any image. Candidates are the atoms
of the :class:`~interp.labeling.vision.ImageProbe` (colour, position, region
size, texture, dataset label, concept masks) and their compositions, ranked
by ``log p(d|E) − λ log p(d)`` (:mod:`interp.labeling.pmi`) and scored on the
patches of held-out images (:mod:`interp.labeling.scoring`), activations
below zero tied (GELU's small negative tail orders idle patches by noise).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from interp.errors import InputError
from interp.labeling.exemplars import Exemplars, _finish, _start, _update
from interp.labeling.label import LabelConfig
from interp.labeling.pmi import Grounder, distinct, rank
from interp.labeling.results import ImageExemplar, LabelSet, UnitLabel
from interp.labeling.scoring import score_label
from interp.labeling.vision import ImageProbe, image_data, image_probe

__all__ = ["ImageExemplars", "collect_images", "vit_unit_batches", "label_vit", "label_image_units", "thumbnail"]


@dataclass
class ImageExemplars:
    """What the image pass keeps per unit.

    Attributes:
        ex: the patch-level statistics (threshold, reservoir, held-out activations; rows are patches).
        top_images: the ``k`` images with the highest peak, best first (``-1`` where fewer) ``[u, k]``.
        top_peaks: their peaks ``[u, k]``.
        maps: their activation maps over the patch grid ``[u, k, P]``.
    """

    ex: Exemplars
    top_images: Int[Tensor, "u k"]
    top_peaks: Float[Tensor, "u k"]
    maps: Float[Tensor, "u k P"]

    def masks(self, unit: int) -> list[tuple[int, float, Bool[Tensor, " P"], Float[Tensor, " P"]]]:
        """``(image, peak, mask, map)`` of the unit's top images that have an active patch."""
        thr = float(self.ex.threshold[unit])
        out = []
        for j in range(self.top_images.shape[1]):
            img = int(self.top_images[unit, j])
            if img < 0:
                continue
            m = self.maps[unit, j]
            mask = (m >= thr) & (m > 0)
            if mask.any():
                out.append((img, float(self.top_peaks[unit, j]), mask, m))
        return out


class _TopImages:
    """Running top-``k`` images per unit by peak activation, with their maps."""

    def __init__(self, k: int):
        self.k = k
        self.peaks = self.images = self.maps = None

    def add(self, acts: Float[Tensor, "b P u"], images: Int[Tensor, " b"]) -> None:
        maps = acts.permute(2, 0, 1)  # [u, b, P]
        peaks = maps.max(-1).values  # [u, b]
        ids = images.expand(maps.shape[0], -1)  # [u, b]
        if self.peaks is not None:
            maps, peaks = torch.cat([self.maps, maps], 1), torch.cat([self.peaks, peaks], 1)
            ids = torch.cat([self.images, ids], 1)
        top = peaks.topk(min(self.k, peaks.shape[1]), dim=1)  # over [u, k + b]
        self.peaks, self.images = top.values, ids.gather(1, top.indices)
        self.maps = maps.gather(1, top.indices[..., None].expand(-1, -1, maps.shape[-1]))  # [u, k, P]


def collect_images(
    batches: Any,
    heldout: Bool[Tensor, " n_images"],
    *,
    k: int = 15,
    top_rows: int = 200,
    reservoir: int = 8192,
    quantile: float = 0.99,
    max_heldout: int = 50_000,
    seed: int = 0,
) -> ImageExemplars:
    """Read per-image activation maps once and keep what labeling needs.

    Args:
        batches: consecutive batches of maps ``[b, P, u]`` (images in order, CLS excluded).
        heldout: held-out images ``[n_images]``: excluded from exemplars and quantiles, kept for scoring.
        k: top images kept per unit.
        top_rows: top patches kept per unit (whatever their image).
        reservoir: patches sampled uniformly for quantiles, histograms and samples.
        quantile: the active threshold's level over all grounding patches (MILAN: 0.99).
        max_heldout: most held-out patches whose activations are kept.
        seed: seeds the reservoir.
    """
    state: dict[str, Any] = {}
    tops = _TopImages(k)
    first = 0
    for acts in batches:
        acts = acts.float()
        b, p, _ = acts.shape
        images = torch.arange(first, first + b)
        held = heldout[first : first + b]
        rows = (images[:, None] * p + torch.arange(p)).reshape(-1)  # [b * P] global patch rows
        flat = acts.reshape(b * p, -1)  # [b * P, u]
        keep = held.repeat_interleave(p)  # [b * P]
        if not state:
            state = _start(acts.shape[2], top_rows, reservoir, seed)
        _update(state, flat[~keep], rows[~keep], top_rows)
        if (~held).any():
            tops.add(acts[~held], images[~held])
        if keep.any() and state["n_held"] < max_heldout:
            take = keep.nonzero().flatten()[: max_heldout - state["n_held"]]
            state["held_rows"].append(rows[take])
            state["held"].append(flat[take])
            state["n_held"] += len(take)
        first += b
    if not state or state["n"] == 0:
        raise InputError("no grounding images: the set is empty or every image is held out.")
    return ImageExemplars(_finish(state, quantile), tops.images, tops.peaks, tops.maps)


def vit_unit_batches(
    model: Any,
    hook: str,
    images: list[np.ndarray],
    *,
    sae: Any = None,
    units: list[int] | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> Iterator[Float[Tensor, "b P u"]]:
    """Unit activations of a ViT hook over images, per patch (CLS dropped).

    Args:
        model: a :class:`~interp.models.vit.HookedViT`.
        hook: a hook with one vector per position (``blocks.L.mlp.hook_post``, ``blocks.L.hook_resid_post`` …).
        images: uint8 ``[H, W, 3]`` arrays (resized and normalised by ``model.prepare_inputs``).
        sae: a SAELens SAE on ``hook``: its latents are the units.
        units: unit indices to keep (default all).
        batch_size: images per forward pass.
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    from interp.capture import capture_activations

    for i in tqdm(range(0, len(images), batch_size), desc=f"images {hook}", disable=not progress):
        x = model.prepare_inputs(images[i : i + batch_size])
        act = capture_activations(model, x, hook)[hook]
        if act.ndim != 3:
            raise InputError(
                f"{hook} has shape {list(act.shape)}; ViT labeling needs one vector per position "
                "[batch, pos, d]. Use blocks.L.mlp.hook_post or blocks.L.hook_resid_post."
            )
        act = act[:, 1:].float()  # [b, P, d]: CLS dropped
        if sae is not None:
            param = next(sae.parameters())
            with torch.no_grad():
                act = sae.encode(act.to(param.dtype).to(param.device)).float().cpu()  # [b, P, d_sae]
        yield act if units is None else act[..., units]


def thumbnail(image: np.ndarray) -> str:
    """A PNG data URI of a uint8 ``[H, W, 3]`` image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def label_vit(
    model: Any,
    hook: str,
    data: Any,
    config: LabelConfig | None = None,
    *,
    sae: Any = None,
    units: list[int] | None = None,
    batch_size: int = 32,
    progress: bool = False,
    meta: dict | None = None,
    probe: ImageProbe | None = None,
) -> LabelSet:
    """Label the units (or an SAE's latents) of a ViT hook over a set of images.

    Args:
        model: a :class:`~interp.models.vit.HookedViT`.
        hook: the hook whose units are labelled.
        data: the images (anything :func:`~interp.labeling.vision.image_data` takes: an ``ImageSet``,
            a ``ConceptSet`` with its masks, a list of arrays).
        config: settings (:class:`~interp.labeling.label.LabelConfig`; ``k`` images per unit).
        sae: a SAELens SAE on ``hook`` whose latents are labelled instead.
        units: unit indices (default all).
        batch_size: images per forward pass.
        progress: show a progress bar.
        meta: provenance stored in the result.
        probe: ``image_probe(data, ...)`` already measured (reused across the hooks of one model).
    """
    cfg = config or LabelConfig()
    d = image_data(data)
    probe = probe or image_probe(d, model.cfg.image_size, model.cfg.patch_size)
    batches = vit_unit_batches(model, hook, d.images, sae=sae, units=units, batch_size=batch_size, progress=progress)
    info = {
        "hook": hook,
        "model": model.cfg.model_name,
        "images": d.name,
        "n_images": len(d),
        "image_size": model.cfg.image_size,
        "sae": sae is not None,
    } | (meta or {})
    return label_image_units(batches, probe, cfg, unit_ids=units, meta=info)


def label_image_units(
    batches: Any,
    probe: ImageProbe,
    config: LabelConfig | None = None,
    *,
    unit_ids: list[int] | None = None,
    meta: dict | None = None,
) -> LabelSet:
    """Label every unit whose per-image maps ``batches`` stream (``[b, P, u]``, images in probe order)."""
    cfg = config or LabelConfig()
    held_img = torch.arange(len(probe.keys)).remainder(cfg.heldout_every) == cfg.heldout_every - 1
    ie = collect_images(
        batches, held_img, k=cfg.k, top_rows=max(1, cfg.ground_rows), quantile=cfg.quantile, seed=cfg.seed
    )
    grounder = Grounder(probe, (~probe.heldout_mask(cfg.heldout_every)).nonzero().flatten())
    held_probe = probe.subset(ie.ex.heldout_rows) if len(ie.ex.heldout_rows) else None
    ids = unit_ids or list(range(ie.ex.n_units))
    out = [_label_one(u, ids[u], ie, probe, grounder, held_probe, cfg) for u in range(ie.ex.n_units)]
    used = sorted({e.image for u in out for e in u.images + u.images_lower + u.images_inactive})
    info = {"modality": "image", "k": cfg.k, "lambda": cfg.lam, "quantile": cfg.quantile,
            "heldout_every": cfg.heldout_every, "grid": probe.grid, "n_grounding_rows": ie.ex.n_rows,
            "n_heldout_rows": len(ie.ex.heldout_rows), "atoms": len(probe.atoms),
            "estimator": "patch level: p(d|E)=(c_E+0.5)/(n_E+1), p(d)=(c+0.5)/(N+1), "
                         "score=log p(d|E) - lambda log p(d)"}  # fmt: skip
    return LabelSet(out, info | (meta or {}), {"thumbs": {str(i): thumbnail(probe.thumbs[i]) for i in used}})


def _quantise(m: Float[Tensor, " P"], top: float) -> str:
    """An activation map as one digit per patch (0–9, relative to ``top``)."""
    q = (m.clamp(min=0) / max(top, 1e-8) * 9).round().clamp(0, 9).long()
    return "".join(str(int(v)) for v in q)


def _exemplar(probe: ImageProbe, img: int, value: float, mask: Tensor, m: Tensor, top: float) -> ImageExemplar:
    return ImageExemplar(
        img, probe.keys[img], value, "".join("1" if b else "0" for b in mask.tolist()), _quantise(m, top), probe.grid
    )


def _samples(ie: ImageExemplars, u: int, probe: ImageProbe, rows: Tensor) -> list[ImageExemplar]:
    """Sampled patches as exemplars whose mask marks the one sampled patch."""
    out = []
    for r in rows.tolist():
        img, patch = int(probe.image[r]), int(probe.patch[r])
        mask = torch.zeros(probe.grid**2, dtype=torch.bool)
        mask[patch] = True
        value = float(ie.ex.reservoir[(ie.ex.reservoir_rows == r).nonzero()[0, 0], u])
        out.append(
            ImageExemplar(
                img, probe.keys[img], value, "".join("1" if b else "0" for b in mask.tolist()), "", probe.grid
            )
        )
    return out


def _label_one(
    u: int,
    unit_id: int,
    ie: ImageExemplars,
    probe: ImageProbe,
    grounder: Grounder,
    held_probe: ImageProbe | None,
    cfg: LabelConfig,
) -> UnitLabel:
    """Ground, rank and score the label of column ``u``."""
    ex, p = ie.ex, probe.grid**2
    top = float(ex.max[u])
    shown = ie.masks(u)
    rows = {img * p + int(i) for img, _, mask, _ in shown for i in mask.nonzero().flatten()}
    if cfg.ground_rows > 0:  # as for text: the unit's top patches in any image widen E beyond k images
        vals, cand = ex.top_values[u, : cfg.ground_rows], ex.top_rows[u, : cfg.ground_rows]
        rows |= set(cand[(vals >= ex.threshold[u]) & (vals > 0) & (cand >= 0)].tolist())
    rows = torch.tensor(sorted(rows), dtype=torch.long)
    counts, edges = ex.histogram(u)
    views = {
        "threshold": float(ex.threshold[u]),
        "frac_positive": float(ex.frac_positive[u]),
        "max": top,
        "histogram": {"counts": counts, "edges": edges},
        "images": [_exemplar(probe, img, v, mask, m, top) for img, v, mask, m in shown],
        "images_lower": _samples(ie, u, probe, ex.lower_samples(u, cfg.n_samples)),
        "images_inactive": _samples(ie, u, probe, ex.inactive_samples(u, cfg.n_samples, cfg.seed)),
    }
    if len(rows) == 0:
        return UnitLabel(unit_id, "(never active)", "", float("nan"), float("nan"), float("nan"), 0, 0, **views)
    ranked = rank(grounder, probe.atoms, rows, lam=cfg.lam, n_compose=cfg.n_compose, margin=cfg.margin)
    kept = distinct(grounder, ranked, 1 + cfg.n_alternatives)  # image atoms overlap: fold synonyms
    (best, synonyms), ranked = kept[0], [g for g, _ in kept]
    scores = {}
    if held_probe is not None:
        match = best.candidate.holds(held_probe)
        scores = score_label(match, ex.heldout[:, u], float(ex.threshold[u]), cfg.seed, floor=0.0).to_dict()
    alts = [
        {
            "label": g.candidate.label,
            "key": g.candidate.key,
            "pmi": g.score,
            "p_given_e": g.p_given_e,
            "p": g.p,
            "count_e": g.count_e,
            "count": g.count,
            "synonyms": syn,
        }
        for g, syn in kept[1 : 1 + cfg.n_alternatives]
    ]
    return UnitLabel(
        unit_id,
        best.candidate.label,
        best.candidate.key,
        best.score,
        best.p_given_e,
        best.p,
        best.count_e,
        best.n_e,
        scores=scores,
        alternatives=alts,
        synonyms=synonyms,
        kind=best.candidate.kind or "composition",
        **views,
    )
