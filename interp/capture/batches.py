"""What a capture reads: :class:`CaptureBatch` and the sources that yield them.

A capture takes any *batch source*: an object with ``describe()`` (a JSON-able
description that identifies the data, written into the store manifest and
compared when a capture resumes) and ``batches(batch_size)`` (a fresh,
deterministic iterator of :class:`CaptureBatch`). Determinism is what makes a
killed capture resumable and lets N workers cut the same stream into disjoint
shards.

Each batch carries, besides the model inputs, per-position metadata that the
store keeps with every activation: which document (or image) and which
position (or patch) it is, and the token id. ``doc`` is -1 at BOS, special and
padding tokens and ``pos`` is -1 at BOS / CLS, so "content positions" are
simply those where both are non-negative.

Sources provided: :class:`TokenSource` (a token tensor), :class:`TextSource`
(a corpus of :mod:`interp.datasets.text`, packed into contexts),
:class:`ImageSource` (an :class:`~interp.datasets.images.ImageSet` or a pixel
tensor); :func:`as_source` picks one for whatever a user passes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from interp.errors import InputError

__all__ = [
    "CaptureBatch",
    "BatchSource",
    "TokenSource",
    "TextSource",
    "ImageSource",
    "BatchList",
    "as_source",
    "keep_mask",
    "parse_positions",
]


@dataclass
class CaptureBatch:
    """One batch of model inputs with per-position metadata.

    Attributes:
        inputs: token ids ``[n, pos]`` or pixels ``[n, 3, H, W]``, or a zero-argument
            callable returning them (so that a worker can skip a batch it does not own
            without preparing its inputs).
        doc: document / image index in the dataset ``[n, pos]``; -1 at special and padding tokens.
        pos: position in the document, or patch index ``[n, pos]``; -1 at BOS / CLS.
        tokens: token ids ``[n, pos]``, ``None`` for images.
    """

    inputs: Tensor | Callable[[], Tensor]
    doc: Int[Tensor, "n pos"]
    pos: Int[Tensor, "n pos"]
    tokens: Int[Tensor, "n pos"] | None = None

    def __post_init__(self) -> None:
        if self.doc.ndim != 2 or self.doc.shape != self.pos.shape:
            raise InputError(f"CaptureBatch doc and pos must both be [n, pos]; got {tuple(self.doc.shape)} "
                             f"and {tuple(self.pos.shape)}.")  # fmt: skip
        if self.tokens is not None and self.tokens.shape != self.doc.shape:
            raise InputError(f"CaptureBatch tokens {tuple(self.tokens.shape)} must match doc {tuple(self.doc.shape)}.")

    @property
    def n(self) -> int:
        """Contexts (rows) in the batch."""
        return int(self.doc.shape[0])

    def load(self) -> Tensor:
        """The model inputs (calling the loader if they are lazy)."""
        return self.inputs() if callable(self.inputs) else self.inputs


@runtime_checkable
class BatchSource(Protocol):
    """Anything a capture can read (see the module docstring)."""

    def describe(self) -> dict[str, Any]: ...

    def batches(self, batch_size: int) -> Iterator[CaptureBatch]: ...


def parse_positions(positions: str | Sequence[int]) -> str | list[int]:
    """``"content"`` / ``"all"`` / ``"0,5,-1"`` / ``[0, 5, -1]`` -> canonical form."""
    if isinstance(positions, str):
        p = positions.strip().lower()
        if p in ("content", "all"):
            return p
        try:
            return [int(x) for x in p.split(",") if x.strip()]
        except ValueError:
            raise InputError(
                f"positions must be 'content' (drop BOS, special and padding tokens), 'all', or a "
                f"comma-separated list of context positions like '0,5,-1'; got {positions!r}."
            ) from None
    return [int(x) for x in positions]


def keep_mask(batch: CaptureBatch, positions: str | list[int]) -> Bool[Tensor, "n pos"]:
    """Which positions of ``batch`` to store."""
    if positions == "content":
        return (batch.doc >= 0) & (batch.pos >= 0)
    if positions == "all":
        return torch.ones_like(batch.doc, dtype=torch.bool)
    n_pos = batch.doc.shape[1]
    bad = [p for p in positions if not -n_pos <= p < n_pos]
    if bad:
        raise InputError(
            f"positions {bad} lie outside contexts of {n_pos} positions. Use 0..{n_pos - 1} or -1..-{n_pos}."
        )
    mask = torch.zeros_like(batch.doc, dtype=torch.bool)
    mask[:, [p % n_pos for p in positions]] = True
    return mask


def _fingerprint(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, Tensor):
            h.update(p.contiguous().cpu().numpy().tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()[:16]


class TokenSource:
    """Batches from a token tensor; each row is one context and, by default, its own document.

    Args:
        tokens: ``[n, ctx]`` token ids.
        name: dataset name for the manifest.
        split: split name for the manifest.
        bos: position 0 of every row is a BOS token (marked special, so not stored by default).
        pad_token_id: token id marking padding (marked special).
        doc: optional ``[n, ctx]`` document index per position (defaults to the row index).
        pos: optional ``[n, ctx]`` position in the document (defaults to the column, minus 1 with ``bos``).
    """

    def __init__(self, tokens: Int[Tensor, "n ctx"], name: str = "tokens", split: str = "all", *,
                 bos: bool = False, pad_token_id: int | None = None,
                 doc: Int[Tensor, "n ctx"] | None = None, pos: Int[Tensor, "n ctx"] | None = None):  # fmt: skip
        if not isinstance(tokens, Tensor) or tokens.ndim != 2 or tokens.is_floating_point():
            raise InputError("TokenSource needs an integer token tensor [n, ctx]. Tokenize the text first.")
        self.tokens = tokens.long().cpu()
        n, ctx = self.tokens.shape
        self.name, self.split, self.bos, self.pad_token_id = name, split, bos, pad_token_id
        self.doc = doc.long() if doc is not None else torch.arange(n)[:, None].expand(n, ctx).clone()
        self.pos = pos.long() if pos is not None else (torch.arange(ctx) - int(bos)).expand(n, ctx).clone()
        special = torch.zeros_like(self.tokens, dtype=torch.bool)
        if bos:
            special[:, 0] = True
        if pad_token_id is not None:
            special |= self.tokens == pad_token_id
        if doc is None:
            self.doc[special] = -1
        if pos is None:
            self.pos[special] = -1
        self.n_tokens_hint = int(((self.doc >= 0) & (self.pos >= 0)).sum())

    def describe(self) -> dict[str, Any]:
        return {"kind": "tokens", "name": self.name, "split": self.split, "n_contexts": len(self.tokens),
                "context_size": self.tokens.shape[1],
                "fingerprint": _fingerprint(self.tokens, self.doc, self.pos)}  # fmt: skip

    def batches(self, batch_size: int) -> Iterator[CaptureBatch]:
        for lo in range(0, len(self.tokens), batch_size):
            sl = slice(lo, lo + batch_size)
            yield CaptureBatch(self.tokens[sl], self.doc[sl], self.pos[sl], self.tokens[sl])


class TextSource:
    """Batches of packed contexts from a text corpus (:mod:`interp.datasets.text`).

    Args:
        corpus: a ``TextCorpus`` (``load_texts(name, split)``).
        tokenizer: the model's tokenizer.
        context_size: tokens per context.
        prepend_bos: start every context with the tokenizer's BOS token.
    """

    def __init__(self, corpus: Any, tokenizer: Any, context_size: int, prepend_bos: bool = True):
        if tokenizer is None:
            raise InputError("capturing text needs the model's tokenizer, but the model has none. "
                             "Load the model with interp.load_model, or pass token ids (TokenSource).")  # fmt: skip
        self.corpus, self.tokenizer = corpus, tokenizer
        self.context_size, self.prepend_bos = int(context_size), prepend_bos

    @property
    def n_tokens_hint(self) -> int | None:
        """Estimated content tokens (for the progress bar's ETA): tokens per character of a sample."""
        docs = self.corpus.docs
        sample = docs[:: max(1, len(docs) // 64)][:64]
        chars = sum(len(d) for d in sample)
        if not chars:
            return None
        tok = getattr(self.tokenizer, "tokenizer", self.tokenizer)  # a model, or its tokenizer
        n = sum(len(ids) for ids in tok(sample, add_special_tokens=False)["input_ids"])
        return int(n / chars * sum(len(d) for d in docs))

    def describe(self) -> dict[str, Any]:
        c = self.corpus
        return {"kind": "text", "name": str(c.name), "split": str(c.split), "n_docs": len(c.docs),
                "context_size": self.context_size, "prepend_bos": self.prepend_bos,
                "tokenizer": f"{type(self.tokenizer).__name__}/{getattr(self.tokenizer, 'vocab_size', '?')}",
                "fingerprint": _fingerprint(list(c.keys))}  # fmt: skip

    def batches(self, batch_size: int) -> Iterator[CaptureBatch]:
        from interp.datasets.text import iter_contexts

        for tc in iter_contexts(self.corpus, self.tokenizer, self.context_size, batch_size,
                                prepend_bos=self.prepend_bos):  # fmt: skip
            tokens = tc.tokens.long()
            yield CaptureBatch(tokens, tc.doc_index.long(), tc.doc_pos.long(), tokens)


class ImageSource:
    """Batches of images (an ``ImageSet`` or a pixel tensor ``[n, 3, H, W]``) for a ViT.

    Pixels are prepared lazily per batch with the model's own preprocessing.
    Positions follow the model: the first ``n_ctx - n_patches`` are CLS (and
    register) tokens, marked ``pos = -1``; the rest are patches in raster order.
    """

    def __init__(self, images: Any, model: Any):
        cfg = model.cfg
        if not (hasattr(cfg, "image_size") and hasattr(cfg, "patch_size")):
            raise InputError(f"{getattr(cfg, 'model_name', 'this model')} is not a vision model; "
                             "pass text or token ids to it, or load a ViT (e.g. dinov2-s14).")  # fmt: skip
        self.images, self.model = images, model
        self.n_patches = (cfg.image_size // cfg.patch_size) ** 2
        self.n_pos = int(cfg.n_ctx)
        self.n_prefix = self.n_pos - self.n_patches
        self.n_tokens_hint = len(images) * self.n_patches

    def describe(self) -> dict[str, Any]:
        ims = self.images
        if isinstance(ims, Tensor):
            return {"kind": "pixels", "name": "pixels", "split": "all", "n_images": len(ims),
                    "fingerprint": _fingerprint(ims)}  # fmt: skip
        return {"kind": "images", "name": str(ims.name), "split": str(ims.split), "n_images": len(ims),
                "image_size": int(self.model.cfg.image_size), "fingerprint": _fingerprint(list(ims.keys))}  # fmt: skip

    def batches(self, batch_size: int) -> Iterator[CaptureBatch]:
        from interp.models.contract import prepare_inputs

        ims = self.images
        items = ims if isinstance(ims, Tensor) else ims.images
        for lo in range(0, len(items), batch_size):
            chunk = items[lo : lo + batch_size]
            n = len(chunk)
            doc = torch.arange(lo, lo + n)[:, None].expand(n, self.n_pos).clone()  # [n, pos]
            pos = (torch.arange(self.n_pos) - self.n_prefix).clamp(min=-1).expand(n, self.n_pos).clone()
            yield CaptureBatch(lambda chunk=chunk: prepare_inputs(self.model, chunk), doc, pos, None)


class BatchList:
    """A list of ready-made :class:`CaptureBatch` as a source (``batch_size`` is theirs)."""

    def __init__(self, batches: Sequence[CaptureBatch], name: str = "batches"):
        self.items, self.name = list(batches), name
        self.n_tokens_hint = sum(int(((b.doc >= 0) & (b.pos >= 0)).sum()) for b in self.items)

    def describe(self) -> dict[str, Any]:
        parts = [t for b in self.items for t in (b.load(), b.doc, b.pos)]
        return {"kind": "batches", "name": self.name, "split": "all", "n_batches": len(self.items),
                "fingerprint": _fingerprint(*parts)}  # fmt: skip

    def batches(self, batch_size: int) -> Iterator[CaptureBatch]:
        return iter(self.items)


def _model_kind(model: Any) -> str:
    from interp.models.contract import model_info

    return model_info(model).kind


def as_source(data: Any, model: Any, *, context_size: int | None = None, split: str = "train",
              limit: int | None = None, prepend_bos: bool = True) -> BatchSource:  # fmt: skip
    """Turn what a user passes into a batch source.

    Args:
        data: a batch source; a list of :class:`CaptureBatch`; an integer token tensor
            ``[n, ctx]``; a float pixel tensor ``[n, 3, H, W]``; an ``ImageSet``; a
            ``TextCorpus``; a list of strings; or a dataset name (an image set for ViTs,
            a text corpus otherwise).
        model: the model that will read it (for the tokenizer and image geometry).
        context_size: tokens per context for text (default ``min(128, n_ctx)``).
        split: split for dataset names.
        limit: most images for image dataset names.
        prepend_bos: start text contexts with BOS.
    """
    if isinstance(data, BatchSource):
        return data
    if isinstance(data, (list, tuple)) and data and all(isinstance(b, CaptureBatch) for b in data):
        return BatchList(data)
    if isinstance(data, Tensor):
        if data.is_floating_point():
            return ImageSource(data, model)
        return TokenSource(data)
    ctx = int(context_size or min(128, int(model.cfg.n_ctx)))
    tokenizer = getattr(model, "tokenizer", None)
    if isinstance(data, str):
        if _model_kind(model) == "vit":
            from interp.datasets.images import load_images

            return ImageSource(load_images(data, split, limit), model)
        from interp.datasets.text import load_texts

        return TextSource(load_texts(data, split, limit=limit), tokenizer, ctx, prepend_bos)
    if hasattr(data, "images") and hasattr(data, "keys"):
        return ImageSource(data, model)
    if hasattr(data, "docs") and hasattr(data, "keys"):
        return TextSource(data, tokenizer, ctx, prepend_bos)
    if isinstance(data, Sequence) and data and all(isinstance(s, str) for s in data):
        from interp.datasets.text import TextCorpus

        corpus = TextCorpus("inline", "all", list(data), [f"inline/{i}" for i in range(len(data))])
        return TextSource(corpus, tokenizer, ctx, prepend_bos)
    raise InputError(
        f"cannot capture from a {type(data).__name__}. Pass a dataset name, a token tensor [n, ctx], "
        "pixels [n, 3, H, W], an ImageSet, a TextCorpus, a list of strings, a list of CaptureBatch, or "
        "an object with describe() and batches(batch_size) yielding interp.capture.CaptureBatch "
        "(a generator cannot be resumed: wrap it in such an object)."
    )
