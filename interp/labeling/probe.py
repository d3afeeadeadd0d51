"""The probe set: which token every activation row belongs to.

Labeling reads activations row by row (one row per stored token) and needs,
for each row, the token id, its neighbours and its place in the context, so
that a candidate description can be evaluated on any token. :class:`ProbeSet`
holds those per-row columns in memory (five int64 columns, 40 bytes a token)
and is built either from an activation store's metadata or from in-memory
token contexts (the planted-unit harness).

Rows of one context are consecutive and in position order, as capture writes
them; a row's previous / next token is the neighbouring row when it lies in
the same context at the adjacent position, else ``-1`` (BOS and padding were
not stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from interp.errors import InputError

__all__ = ["ProbeSet", "probe_from_store", "probe_from_contexts", "token_strings"]


@dataclass
class ProbeSet:
    """Per-row token metadata of a probe set.

    Attributes:
        token: token id of each row ``[n]``.
        prev: id of the preceding token in the same context, ``-1`` if none ``[n]``.
        next: id of the following token in the same context, ``-1`` if none ``[n]``.
        pos: position of the row in its model context ``[n]``.
        context: index of the context (model input row) ``[n]``.
        doc: document index ``[n]`` (used for the train / held-out split).
        vocab: token id -> display string (``len(vocab) > token.max()``).
    """

    token: Int[Tensor, " n"]
    prev: Int[Tensor, " n"]
    next: Int[Tensor, " n"]
    pos: Int[Tensor, " n"]
    context: Int[Tensor, " n"]
    doc: Int[Tensor, " n"]
    vocab: list[str]

    def __post_init__(self) -> None:
        n = self.token.shape[0]
        if n == 0:
            raise InputError("the probe set is empty: capture some tokens into the store first.")
        if len(self.vocab) <= int(self.token.max()):
            raise InputError(f"the vocabulary has {len(self.vocab)} strings but token ids reach "
                             f"{int(self.token.max())}. Pass the tokenizer of the model that made the store.")

    def __len__(self) -> int:
        return self.token.shape[0]

    def subset(self, rows: Int[Tensor, " m"]) -> ProbeSet:
        """The rows ``rows`` as a new probe set (neighbour ids are kept, not recomputed)."""
        cols = {f: getattr(self, f)[rows] for f in ("token", "prev", "next", "pos", "context", "doc")}
        return ProbeSet(**cols, vocab=self.vocab)

    def window(self, row: int, width: int) -> tuple[list[int], int]:
        """Rows of ``row``'s context within ``width`` positions of it, and ``row``'s index in that list."""
        n = len(self)
        lo, hi = max(0, row - width), min(n, row + width + 1)
        same = (self.context[lo:hi] == self.context[row]).nonzero().flatten() + lo
        rows = same.tolist()
        return rows, rows.index(row)

    def heldout_mask(self, every: int = 5) -> Bool[Tensor, " n"]:
        """Rows of the held-out documents: those with ``doc % every == every - 1`` (never used for grounding)."""
        if every < 2:
            raise InputError(f"heldout_every must be at least 2 (one document in N held out), got {every}.")
        return self.doc.remainder(every) == every - 1


def _neighbours(token: Int[Tensor, " n"], pos: Int[Tensor, " n"], context: Int[Tensor, " n"],
                ) -> tuple[Int[Tensor, " n"], Int[Tensor, " n"]]:
    """Previous and next token ids from consecutive rows (``-1`` across a context edge or gap)."""
    adjacent = (context[1:] == context[:-1]) & (pos[1:] == pos[:-1] + 1)  # [n - 1]: row i+1 follows row i
    minus = torch.full((1,), -1, dtype=torch.long)
    prev = torch.cat([minus, torch.where(adjacent, token[:-1], -1)])
    nxt = torch.cat([torch.where(adjacent, token[1:], -1), minus])
    return prev, nxt


def probe_from_store(store: Any, vocab: list[str] | None = None) -> ProbeSet:
    """The probe set of every row of an activation store (text stores).

    Args:
        store: an :class:`interp.store.Store`.
        vocab: token strings (``token_strings(tokenizer)``); default ``"#<id>"`` placeholders.
    """
    meta = store.meta(slice(None))
    token, pos, context, doc = (meta[c].long() for c in ("token", "ctx_pos", "context", "doc"))
    if int(token.min()) < 0:
        raise InputError(f"the store {store.path} holds no token ids (an image store?). "
                         "Text labeling needs a store captured from text.")
    prev, nxt = _neighbours(token, pos, context)
    vocab = vocab if vocab is not None else [f"#{i}" for i in range(int(token.max()) + 1)]
    return ProbeSet(token, prev, nxt, pos, context, doc, vocab)


def probe_from_contexts(tokens: Int[Tensor, "n_ctx ctx"], vocab: list[str],
                        doc: Int[Tensor, "n_ctx ctx"] | None = None) -> ProbeSet:
    """The probe set of in-memory contexts, every position a row (row = ``c * ctx + p``)."""
    n_ctx, ctx = tokens.shape
    flat = tokens.reshape(-1).long()  # [n_ctx * ctx]
    pos = torch.arange(ctx).repeat(n_ctx)  # [n_ctx * ctx]
    context = torch.arange(n_ctx).repeat_interleave(ctx)  # [n_ctx * ctx]
    doc_col = context.clone() if doc is None else doc.reshape(-1).long()
    prev, nxt = _neighbours(flat, pos, context)
    return ProbeSet(flat, prev, nxt, pos, context, doc_col, vocab)


def token_strings(tokenizer: Any) -> list[str]:
    """Display strings of every token id of a Hugging Face tokenizer (leading-space markers kept as spaces)."""
    tok = getattr(tokenizer, "tokenizer", None) or tokenizer
    raw = tok.convert_ids_to_tokens(list(range(len(tok))))
    return [str(s).replace("Ġ", " ").replace("▁", " ").replace("Ċ", "\n") for s in raw]
