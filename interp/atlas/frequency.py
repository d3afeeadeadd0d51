"""Unigram token counts of a shipped corpus, tokenised with a model's tokenizer and cached on disk.

Token-frequency neurons ("Confidence Regulation Neurons", Stolfo et al. 2024)
move the output distribution along the log-unigram-frequency direction. The
frequencies come from a corpus the workbench ships (the Bible by default, via
:func:`interp.datasets.text.load_texts`), counted once per tokenizer and kept
under the user cache (``$INTERP_CACHE/atlas/``) so later atlas runs skip the
tokenisation (about 10 s for the Bible with SmolLM2's tokenizer).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.cache import atomic_write, cache_root
from interp.errors import InputError

__all__ = ["unigram_counts", "log_frequency"]

_BATCH = 256  # documents tokenised per call


def _tokenizer_key(tok: Any) -> str:
    """A short hash that changes whenever the tokenizer's vocabulary does."""
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    h = hashlib.blake2b(json.dumps(vocab, ensure_ascii=False).encode(), digest_size=8)
    return h.hexdigest()


def unigram_counts(tokenizer: Any, corpus: str = "bible", split: str = "train", *, d_vocab: int | None = None,
                   cache: bool = True) -> Int[Tensor, " d_vocab"]:  # fmt: skip
    """How often each token id occurs in ``corpus`` tokenised with ``tokenizer`` (no special tokens).

    Args:
        tokenizer: a Hugging Face tokenizer, or a model with ``.tokenizer``.
        corpus: a corpus name or path accepted by :func:`~interp.datasets.text.load_texts`.
        split: corpus split (``train``, ``heldout`` or ``all``).
        d_vocab: length of the returned vector (the model's vocabulary, which may exceed the
            tokenizer's); default ``len(tokenizer)``.
        cache: read and write the counts under ``$INTERP_CACHE/atlas/``.

    Returns:
        Counts ``[d_vocab]`` (int64).

    Raises:
        InputError: no tokenizer, or token ids beyond ``d_vocab``.
    """
    from interp.datasets.text import _as_tokenizer, load_texts

    tok = _as_tokenizer(tokenizer)
    n = int(d_vocab if d_vocab is not None else len(tok))
    path = cache_root() / "atlas" / f"unigram-{corpus.replace('/', '_')}-{split}-{_tokenizer_key(tok)}.pt"
    counts = None
    if cache and path.is_file():
        try:
            counts = torch.load(path, weights_only=True)
        except (OSError, RuntimeError):  # a damaged file: count again
            counts = None
    if counts is None:
        docs = load_texts(corpus, split).docs
        counts = torch.zeros(len(tok), dtype=torch.int64)
        for i in range(0, len(docs), _BATCH):
            ids = tok(docs[i : i + _BATCH], add_special_tokens=False)["input_ids"]
            flat = torch.tensor([t for row in ids for t in row], dtype=torch.int64)
            counts += torch.bincount(flat, minlength=len(tok))[: len(tok)]
        if cache:
            atomic_write(path, lambda f: torch.save(counts, f))
    if len(counts) > n:
        if counts[n:].any():
            raise InputError(f"the tokenizer yields ids up to {len(counts) - 1} but d_vocab is {n}. "
                             "Pass the model's own tokenizer.")  # fmt: skip
        counts = counts[:n]
    return torch.cat([counts, counts.new_zeros(n - len(counts))])


def log_frequency(counts: Int[Tensor, " d_vocab"]) -> Float[Tensor, " d_vocab"]:
    """Log unigram probability with add-one smoothing (so unseen tokens get a finite, lowest value)."""
    c = counts.double() + 1.0
    return (c / c.sum()).log().float()
