"""Search in SAE-feature space: find the examples most like a query set by the features they activate.

"Task-Specific Data Selection via Monosemantic Neuronal Activations" selects
training data whose SAE features match those of a few target examples. Here
each example (a document) is represented by a vector, three ways:

* ``sae``: the SAE latents of its tokens at one hook, **max-pooled** over
  positions (a feature that fires anywhere in the document counts; sparse,
  non-negative);
* ``raw``: the hook's raw activations, **mean-pooled** (the dense baseline);
* ``text``: a sentence embedding, MiniLM (``minilm-l6``) final hidden states
  mean-pooled over tokens, as sentence-transformers does.

:func:`rank_by_similarity` scores every pool example by its mean similarity to
the query examples: **weighted Jaccard** ``Σ min(a, b) / Σ max(a, b)`` for
non-negative sparse codes (a latent counts as much as it fires in both), and
**cosine** for dense vectors. :func:`precision_at_k` checks a ranking against
known relevance; :func:`bible_book_task` builds such a task from the Bible
(queries: chapters of one book from the train split; pool: every held-out
chapter; relevant: the pool chapters of the same book). :func:`search_documents`
is the search itself: the top documents of a pool for a query set, under each
representation (``interp atlas --sae DIR --search QUERIES``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.errors import InputError

__all__ = ["document_vectors", "text_embeddings", "rank_by_similarity", "similarity_to_set", "weighted_jaccard",
           "cosine", "evaluate_retrieval", "search_documents", "precision_at_k", "bible_book_task"]  # fmt: skip


def _encode_docs(model: Any, texts: Sequence[str], max_tokens: int) -> tuple[Tensor, Tensor]:
    """Token ids ``[n, max_tokens]`` (padded) and a mask of content positions, one row per document."""
    tok = model.tokenizer
    ids = tok(list(texts), add_special_tokens=False, truncation=True, max_length=max_tokens - 1)["input_ids"]
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    out = torch.full((len(ids), max_tokens), pad, dtype=torch.long)
    mask = torch.zeros(len(ids), max_tokens, dtype=torch.bool)
    first = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
    for r, row in enumerate(ids):
        out[r, 0] = first
        out[r, 1 : 1 + len(row)] = torch.tensor(row, dtype=torch.long)
        mask[r, 1 : 1 + len(row)] = True
    return out, mask


@torch.no_grad()
def document_vectors(model: Any, texts: Sequence[str], hook: str, *,
                     encode: Callable[[Tensor], Tensor] | None = None, pool: str = "max", max_tokens: int = 128,
                     batch_size: int = 16) -> Float[Tensor, "n d"]:  # fmt: skip
    """One vector per document: ``encode`` (e.g. ``sae.encode``) of ``hook``'s activations, pooled over positions.

    Args:
        model: a model with a tokenizer (decoder or encoder).
        texts: the documents.
        hook: the hook to read (``blocks.L.hook_resid_post``, the SAE's hook).
        encode: maps ``[tokens, d]`` activations to codes (``None``: raw activations).
        pool: ``max`` or ``mean`` over each document's content positions (BOS / CLS and padding skipped).
        max_tokens: tokens read per document, BOS included (longer ones are cut; at most ``n_ctx``).
        batch_size: documents per forward pass.

    Returns:
        ``[n, d]`` (``d`` the code or activation width).
    """
    from interp.capture import capture_activations

    if pool not in ("max", "mean"):
        raise InputError(f"pool must be 'max' or 'mean', got {pool!r}.")
    if not texts:
        raise InputError("no documents given.")
    tokens, mask = _encode_docs(model, texts, min(max_tokens, int(model.cfg.n_ctx)))
    out = []
    for i in range(0, len(texts), batch_size):
        tb, mb = tokens[i : i + batch_size], mask[i : i + batch_size]
        kw = {"attention_mask": (mb | (torch.arange(mb.shape[1]) == 0)).long()} if _is_encoder(model) else {}
        act = capture_activations(model, tb, [hook], **kw)[hook]  # [b, pos, d]
        flat = act[mb]  # [content tokens, d]
        codes = encode(flat).float() if encode is not None else flat.float()
        full = codes.new_zeros(*mb.shape, codes.shape[-1])  # [b, pos, d_code]
        full[mb] = codes
        if pool == "max":
            full[~mb] = -torch.inf
            out.append(full.amax(1).clamp_min(-1e30))
        else:
            out.append(full.sum(1) / mb.sum(1, keepdim=True).clamp_min(1))
    return torch.cat(out)


def _is_encoder(model: Any) -> bool:
    return type(model).__name__ in ("HookedEncoder", "TransformerBridge") and not hasattr(model, "W_U")


def text_embeddings(texts: Sequence[str], model: Any = None, max_tokens: int = 128) -> Float[Tensor, "n d"]:
    """MiniLM sentence embeddings: final hidden states mean-pooled over tokens (``minilm-l6`` by default)."""
    if model is None:
        import interp

        model = interp.load_model("minilm-l6")
    hook = f"blocks.{int(model.cfg.n_layers) - 1}.hook_resid_post"
    return document_vectors(model, texts, hook, pool="mean", max_tokens=max_tokens)


def weighted_jaccard(a: Float[Tensor, "n d"], b: Float[Tensor, "m d"], chunk: int = 64) -> Float[Tensor, "n m"]:
    """``Σ min(a, b) / Σ max(a, b)`` between rows of non-negative ``a`` and ``b``.

    Raises:
        InputError: negative entries (weighted Jaccard needs non-negative codes).
    """
    if (a < 0).any() or (b < 0).any():
        raise InputError("weighted Jaccard needs non-negative vectors (SAE codes); use cosine for raw activations.")
    out = []
    for part in a.split(chunk):  # bounds the [chunk, m, d] broadcast
        lo = torch.minimum(part[:, None], b[None]).sum(-1)  # [chunk, m]
        hi = torch.maximum(part[:, None], b[None]).sum(-1)
        out.append(lo / hi.clamp_min(1e-12))
    return torch.cat(out)


def cosine(a: Float[Tensor, "n d"], b: Float[Tensor, "m d"]) -> Float[Tensor, "n m"]:
    """Cosine similarity between rows of ``a`` and ``b``."""
    an = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    bn = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return an @ bn.T


def similarity_to_set(pool: Float[Tensor, "n d"], queries: Float[Tensor, "q d"],
                      similarity: str = "cosine") -> Float[Tensor, " n"]:  # fmt: skip
    """Each pool vector's mean similarity (``cosine`` or ``weighted_jaccard``) to the query set."""
    sims = {"cosine": cosine, "weighted_jaccard": weighted_jaccard}
    if similarity not in sims:
        raise InputError(f"similarity must be one of {sorted(sims)}, got {similarity!r}.")
    if pool.shape[1] != queries.shape[1]:
        raise InputError(f"pool vectors have width {pool.shape[1]} but queries {queries.shape[1]}; "
                         "represent both with the same model, hook and encoder.")  # fmt: skip
    return sims[similarity](pool.float(), queries.float()).mean(1)


def rank_by_similarity(pool: Float[Tensor, "n d"], queries: Float[Tensor, "q d"],
                       similarity: str = "cosine") -> Int[Tensor, " n"]:  # fmt: skip
    """Pool indices, most similar to the query set first (mean similarity over queries)."""
    return similarity_to_set(pool, queries, similarity).argsort(descending=True)


def precision_at_k(ranking: Int[Tensor, " n"], relevant: Tensor, k: int) -> float:
    """Fraction of the top ``k`` of ``ranking`` that are ``relevant`` (a bool mask over the pool)."""
    if k < 1:
        raise InputError(f"k must be positive, got {k}.")
    return float(relevant[ranking[:k]].float().mean())


def bible_book_task(books: Sequence[int], n_queries: int = 5) -> dict[str, Any]:
    """Retrieval tasks from the Bible: for each book, its train chapters as queries; all held-out chapters as pool.

    Args:
        books: book numbers (1 = Genesis, 19 = Psalms, 40 = Matthew, …).
        n_queries: query chapters per book.

    Returns:
        ``{"pool": [texts], "pool_books": tensor, "queries": {book: [texts]}}``.
    """
    from interp.datasets.text import load_texts

    held, train = load_texts("bible", "heldout"), load_texts("bible", "train")
    book = lambda key: int(key.split(":")[1][:2])  # noqa: E731  (keys are web:BBCCC)
    queries = {b: [d for d, k in zip(train.docs, train.keys, strict=True) if book(k) == b][:n_queries] for b in books}
    missing = [b for b, q in queries.items() if len(q) < n_queries]
    if missing:
        raise InputError(f"books {missing} have fewer than {n_queries} train chapters. Pick longer books.")
    return {"pool": held.docs, "pool_books": torch.tensor([book(k) for k in held.keys]), "queries": queries}


def evaluate_retrieval(model: Any, hook: str, sae: Any, books: Sequence[int] = (19, 20, 5, 2, 24), *, k: int = 5,
                       n_queries: int = 5, max_tokens: int = 128, text_model: Any = None) -> Any:  # fmt: skip
    """Precision@k of retrieving a Bible book's held-out chapters from its train chapters, three representations.

    Args:
        model: the model the SAE reads (with a tokenizer).
        hook: the SAE's hook.
        sae: a SAELens SAE (``sae.encode``).
        books: book numbers (default Psalms, Proverbs, Deuteronomy, Exodus, Jeremiah: the
            books with the most held-out chapters).
        k: precision cut-off.
        n_queries: query chapters per book.
        max_tokens: tokens read per chapter.
        text_model: the sentence encoder (default ``minilm-l6``).

    Returns:
        A DataFrame: ``representation``, ``similarity``, ``book``, ``precision`` (one row per
        book, plus a ``book == -1`` row with the mean), and ``chance`` (the book's share of the pool).
    """
    import pandas as pd

    task = bible_book_task(books, n_queries)
    embed = _representations(model, hook, sae, max_tokens, text_model)
    sims = {"sae": ("weighted_jaccard", "cosine"), "raw": ("cosine",), "text": ("cosine",)}
    rows = []
    with torch.no_grad():
        for rep, fn in embed.items():
            pool = fn(task["pool"])
            for b, texts in task["queries"].items():
                q = fn(texts)
                relevant = task["pool_books"] == b
                for sim in sims[rep]:
                    rows.append({"representation": rep, "similarity": sim, "book": b,
                                 "precision": precision_at_k(rank_by_similarity(pool, q, sim), relevant, k),
                                 "chance": float(relevant.float().mean())})  # fmt: skip
    df = pd.DataFrame(rows)
    mean = df.groupby(["representation", "similarity"], as_index=False)[["precision", "chance"]].mean()
    return pd.concat([df, mean.assign(book=-1)], ignore_index=True)


def _representations(model: Any, hook: str, sae: Any, max_tokens: int,
                     text_model: Any) -> dict[str, Callable[[Sequence[str]], Tensor]]:  # fmt: skip
    """The three document representations compared here: SAE codes (max-pooled), raw activations, MiniLM.

    The sentence encoder is loaded on first use and then kept, not once per call.
    """
    encoder: list[Any] = [text_model] if text_model is not None else []

    def text(texts: Sequence[str]) -> Tensor:
        if not encoder:
            import interp

            encoder.append(interp.load_model("minilm-l6"))
        return text_embeddings(texts, encoder[0], max_tokens=max_tokens)

    return {
        "sae": lambda texts: document_vectors(model, texts, hook, encode=sae.encode, pool="max",
                                              max_tokens=max_tokens),
        "raw": lambda texts: document_vectors(model, texts, hook, pool="mean", max_tokens=max_tokens),
        "text": text,
    }  # fmt: skip


#: The similarity each representation is searched with (SAE codes are sparse and non-negative).
SEARCH_SIMILARITY = {"sae": "weighted_jaccard", "raw": "cosine", "text": "cosine"}


def search_documents(model: Any, hook: str, sae: Any, queries: Sequence[str], pool: Sequence[str], *, top: int = 20,
                     representations: Sequence[str] = ("sae", "raw", "text"), max_tokens: int = 128,
                     text_model: Any = None) -> Any:  # fmt: skip
    """The ``top`` pool documents most similar to a query set, under each representation.

    Data selection ("Task-Specific Data Selection via Monosemantic Neuronal
    Activations") and auditing: a document is represented by its SAE codes at
    ``hook`` (max over its tokens; weighted Jaccard), by the raw activations
    (mean; cosine) or by MiniLM sentence embeddings (cosine), and scored by its
    mean similarity to the queries.

    Args:
        model: the model the SAE reads (with a tokenizer).
        hook: the SAE's hook.
        sae: a SAELens SAE (``sae.encode``); only needed for ``"sae"``.
        queries: example documents of what to find.
        pool: documents to rank.
        top: results per representation.
        representations: any of ``sae``, ``raw``, ``text``.
        max_tokens: tokens read per document.
        text_model: the sentence encoder (default ``minilm-l6``).

    Returns:
        A DataFrame: ``representation``, ``similarity``, ``rank`` (1 = best), ``doc``
        (index into ``pool``), ``score`` and ``text`` (the document).

    Raises:
        InputError: no queries or pool documents, ``top < 1``, or an unknown representation.
    """
    import pandas as pd

    if not queries or not pool:
        raise InputError(f"a search needs queries and a pool; got {len(queries)} queries and {len(pool)} documents.")
    if top < 1:
        raise InputError(f"top must be a positive number of results, got {top}.")
    bad = [r for r in representations if r not in SEARCH_SIMILARITY]
    if bad:
        raise InputError(f"unknown representations {bad}; choose from {sorted(SEARCH_SIMILARITY)}.")
    embed = _representations(model, hook, sae, max_tokens, text_model)
    rows = []
    with torch.no_grad():
        for rep in representations:
            sim = SEARCH_SIMILARITY[rep]
            scores = similarity_to_set(embed[rep](list(pool)), embed[rep](list(queries)), sim)
            best = scores.argsort(descending=True)[:top]
            rows += [{"representation": rep, "similarity": sim, "rank": r + 1, "doc": int(i),
                      "score": float(scores[i]), "text": pool[int(i)]} for r, i in enumerate(best)]  # fmt: skip
    return pd.DataFrame(rows)
