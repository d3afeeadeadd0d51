"""The store: shuffled reading, random access, checksums, safetensors compatibility."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interp.capture import capture_to_store
from interp.errors import InputError
from interp.store import CorruptStoreError, Store, StoreError, open_store

H0, H1 = "blocks.0.hook_resid_post", "blocks.1.hook_mlp_out"


@pytest.fixture
def store(model, tiny, tmp_path):
    """A float32 store of two hooks in about 12 shards of 120 tokens."""
    return capture_to_store(model, tiny.token_source(), [H0, H1], tmp_path / "s", batch_size=8,
                            memory_budget="1MiB", progress=False)  # fmt: skip


def _ids(batch) -> torch.Tensor:
    return batch["context"] * 100 + batch["ctx_pos"]  # a unique id per stored token


def test_shuffled_reader_covers_each_token_once_per_epoch(store):
    assert len(store.manifest.shards) >= 6
    for max_open in (1, 3):
        reader = Store(store.path, max_open=max_open)
        batches = list(reader.batches(batch_size=100, seed=1, meta=True, epochs=2))
        ids = torch.cat([_ids(b) for b in batches])
        n = store.n_tokens
        assert len(ids) == 2 * n
        for epoch in (ids[:n], ids[n:]):
            assert len(epoch.unique()) == n
        assert not torch.equal(ids[:n], ids[n:])  # epochs are shuffled differently
        per_epoch = [100] * (n // 100) + [n % 100]
        assert [len(b[H0]) for b in batches] == per_epoch * 2
        assert len(reader._open) <= max_open  # bounded number of mapped shards


def test_shuffle_is_deterministic_for_a_seed(store):
    a = torch.cat(list(store.batches(H0, 64, seed=3)))
    b = torch.cat(list(Store(store.path).batches(H0, 64, seed=3)))
    c = torch.cat(list(store.batches(H0, 64, seed=4)))
    ordered = torch.cat(list(store.batches(H0, 64, shuffle=False)))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(ordered, store.get(slice(None), H0))
    assert torch.equal(a.sort(0).values, ordered.sort(0).values)
    sizes = [len(x) for x in store.batches(H0, 1000, drop_last=True)]
    assert sizes == [1000] * (store.n_tokens // 1000)


def test_random_access_and_metadata(store):
    everything = store.get(slice(None))
    idx = [0, 5, store.n_tokens - 1, 700, 5]
    rows = store.get(idx)
    for h in (H0, H1):
        assert torch.equal(rows[h], everything[h][idx])
    assert torch.equal(store[700][H0], everything[H0][700])
    assert torch.equal(store.get(-1, H1)[0], everything[H1][-1])
    meta = store.meta(idx)
    ordered = next(store.batches(batch_size=store.n_tokens, shuffle=False, meta=True))
    for col in ("doc", "pos", "token", "context", "ctx_pos"):
        assert torch.equal(meta[col], ordered[col][idx])
    with pytest.raises(InputError, match="out of range"):
        store.get(store.n_tokens)


def test_shards_are_plain_safetensors(store):
    from safetensors import safe_open

    shard = store.manifest.shards[1]
    with safe_open(str(store.path / shard.file), framework="pt") as f:
        acts = f.get_tensor(f"act.{H0}")
        assert f.metadata()["index"] == "1"
        assert set(f.keys()) >= {f"act.{H0}", f"act.{H1}", "meta.doc", "meta.token", "ctx.index", "ctx.tokens"}
    lo = sum(s.n_tokens for s in store.manifest.shards[:1])
    assert torch.equal(acts, store.get(slice(lo, lo + shard.n_tokens), H0))


def test_corrupted_shard_is_detected_and_recaptured(store, model, tiny):
    clean = {p.name: p.read_bytes() for p in store.path.iterdir()}
    shard = store.path / store.manifest.shards[2].file
    data = bytearray(shard.read_bytes())
    data[-7] ^= 0xFF  # one flipped bit pattern inside the activations
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match=shard.name):
        open_store(store.path).verify()
    shard.write_bytes(bytes(data[:-100]))  # truncated: caught on open
    with pytest.raises(CorruptStoreError, match="wrong size"):
        open_store(store.path)
    capture_to_store(model, tiny.token_source(), [H0, H1], store.path, batch_size=8, memory_budget="1MiB",
                     progress=False)  # fmt: skip
    assert {p.name: p.read_bytes() for p in store.path.iterdir()} == clean


def test_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="no manifest.json"):
        open_store(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CorruptStoreError, match="not a readable"):
        open_store(tmp_path)


def test_summary_names_model_hooks_tokens(store):
    text = store.summary()
    assert H0 in text and f"{store.n_tokens:,}" in text and "complete" in text
    assert isinstance(np.asarray(store.meta([0])["doc"]), np.ndarray)
