"""SAE-space search: pooling, similarities and precision@k, on a tiny model with SmolLM2's tokenizer."""

from __future__ import annotations

import pytest
import torch

from interp.atlas.retrieval import (
    bible_book_task,
    cosine,
    document_vectors,
    precision_at_k,
    rank_by_similarity,
    weighted_jaccard,
)
from interp.errors import InputError

from .conftest import gated_model

HOOK = "blocks.0.hook_resid_post"


@pytest.fixture(scope="module")
def lm(smol_tokenizer):
    model = gated_model(d_vocab=len(smol_tokenizer))
    model.set_tokenizer(smol_tokenizer)
    return model


def test_document_vectors_pool_content_positions(lm):
    texts = ["In the beginning God created the heavens.", "Blessed is the man", "A fortune: you will be lucky."]
    relu = lambda x: torch.relu(x @ torch.ones(32, 8) * 0.1)  # noqa: E731  a stand-in encoder [tokens, 8]
    vec = document_vectors(lm, texts, HOOK, encode=relu, pool="max")
    mean = document_vectors(lm, texts, HOOK, pool="mean", batch_size=2)
    assert vec.shape == (3, 8) and mean.shape == (3, 32)
    for i, t in enumerate(texts):  # one document alone: BOS dropped, content pooled
        ids = torch.tensor([[lm.tokenizer.bos_token_id] + lm.tokenizer.encode(t, add_special_tokens=False)])
        _, cache = lm.run_with_cache(ids, names_filter=HOOK)
        act = cache[HOOK][0, 1:]
        torch.testing.assert_close(vec[i], relu(act).amax(0), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mean[i], act.mean(0), atol=1e-5, rtol=1e-5)


def test_similarities_match_their_definitions():
    a = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    b = torch.tensor([[1.0, 1.0, 1.0]])
    torch.testing.assert_close(weighted_jaccard(a, b), torch.tensor([[2 / 4], [1 / 5]]))
    torch.testing.assert_close(cosine(a, b)[0, 0], torch.tensor(3 / (5**0.5 * 3**0.5)))
    with pytest.raises(InputError, match="non-negative"):
        weighted_jaccard(-a, b)


def test_ranking_and_precision_find_planted_neighbours():
    g = torch.Generator().manual_seed(0)
    topic = torch.zeros(50)
    topic[:5] = 3.0
    pool = torch.relu(torch.randn(40, 50, generator=g))
    pool[:8] += topic  # the relevant examples share the query's features
    queries = torch.relu(torch.randn(3, 50, generator=g)) + topic
    relevant = torch.arange(40) < 8
    for sim in ("cosine", "weighted_jaccard"):
        ranking = rank_by_similarity(pool, queries, sim)
        assert precision_at_k(ranking, relevant, 8) == 1.0
    assert precision_at_k(torch.arange(40).flip(0), relevant, 8) == 0.0
    with pytest.raises(InputError, match="similarity"):
        rank_by_similarity(pool, queries, "dot")


def test_bible_book_task_has_known_relevance():
    task = bible_book_task([19, 20], n_queries=3)
    assert len(task["pool"]) == len(task["pool_books"]) and (task["pool_books"] == 19).sum() >= 5
    assert all(len(q) == 3 for q in task["queries"].values())
    assert not set(task["queries"][19]) & set(task["pool"])  # queries come from the train split
