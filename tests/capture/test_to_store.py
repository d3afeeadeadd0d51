"""Capture to the store: values, positions, dtypes, budget, bad input, model kinds."""

from __future__ import annotations

import errno
import json

import pytest
import torch

from interp.capture import HookNotReachedError, TokenSource, capture_activations, capture_to_store
from interp.errors import InputError, UnknownNameError
from interp.store import StoreError, StoreMismatchError

H0, Z1 = "blocks.0.hook_resid_post", "blocks.1.attn.hook_z"


def _files(path):
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_store_holds_the_model_activations(model, tiny, tmp_path, dtype):
    src = tiny.token_source()
    store = capture_to_store(model, src, [H0, Z1], tmp_path / "s", dtype=dtype, batch_size=8,
                             memory_budget="1MiB", progress=False)  # fmt: skip
    ref = capture_activations(model, src.tokens, [H0, Z1])
    assert store.complete and len(store.manifest.shards) > 2
    assert store.n_tokens == 96 * 15  # BOS dropped
    assert store.dtype == getattr(torch, dtype)
    assert store.shape(H0) == (64,) and store.shape(Z1) == (4, 16)
    want = ref[H0][:, 1:].reshape(-1, 64).to(store.dtype)  # [contexts * 15, d_model]
    assert torch.equal(store.get(slice(None), H0), want)
    assert torch.equal(store.get(slice(None), Z1), ref[Z1][:, 1:].reshape(-1, 4, 16).to(store.dtype))
    meta = store.meta([0, 15, 16])
    assert meta["context"].tolist() == [0, 1, 1] and meta["ctx_pos"].tolist() == [1, 1, 2]
    assert meta["pos"].tolist() == [0, 0, 1] and meta["doc"].tolist() == [0, 1, 1]
    assert meta["token"].tolist() == [int(src.tokens[0, 1]), int(src.tokens[1, 1]), int(src.tokens[1, 2])]
    assert torch.equal(store.context_tokens(5), src.tokens[5])


def test_manifest_records_everything(model, tiny, tmp_path):
    capture_to_store(model, tiny.token_source(), H0, tmp_path / "s", dtype="float16", batch_size=16, progress=False)
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert m["model"]["n_layers"] == 2 and "processing" in m["model"]
    assert m["hooks"] == [H0] and m["shapes"] == {H0: [64]} and m["dtype"] == "float16"
    assert m["n_tokens"] == 96 * 15 and m["complete"] is True
    seg = m["segments"][0]
    assert seg["dataset"]["name"] == "tiny-tokens" and seg["dataset"]["split"] == "all"
    assert all(len(s["sha256"]) == 64 and s["bytes"] > 0 for s in m["shards"])
    assert m["code_version"] and m["format"] == "interp-activation-store"


def test_positions_and_token_budget(model, tiny, tmp_path):
    src = tiny.token_source()
    store = capture_to_store(model, src, H0, tmp_path / "all", positions="all", batch_size=8, progress=False)
    assert store.n_tokens == 96 * 16
    store = capture_to_store(model, src, H0, tmp_path / "last", positions=[-1], batch_size=8, progress=False)
    assert store.n_tokens == 96 and set(store.meta(slice(None))["ctx_pos"].tolist()) == {15}
    store = capture_to_store(model, src, H0, tmp_path / "budget", max_tokens=100, batch_size=4, progress=False)
    assert store.n_tokens == 100 and store.complete
    ref = capture_activations(model, src.tokens[:7], H0)[H0][:, 1:].reshape(-1, 64)[:100]
    assert torch.equal(store.get(slice(None)), ref)


def test_rerun_is_a_no_op_and_mismatch_is_refused(model, tiny, tmp_path):
    out = tmp_path / "s"
    capture_to_store(model, tiny.token_source(), H0, out, batch_size=8, progress=False)
    before = _files(out)
    capture_to_store(model, tiny.token_source(), H0, out, batch_size=8, progress=False)
    assert _files(out) == before
    with pytest.raises(StoreMismatchError, match="hook set"):
        capture_to_store(model, tiny.token_source(), Z1, out, batch_size=8, progress=False)
    with pytest.raises(StoreMismatchError, match="model"):
        capture_to_store(tiny.tiny_model(seed=0).to(torch.float64), tiny.token_source(), H0, out, progress=False)
    other = TokenSource(tiny.tokens(8, 16, seed=9), name="other")
    with pytest.raises(StoreMismatchError, match="append"):
        capture_to_store(model, other, H0, out, batch_size=8, progress=False)
    store = capture_to_store(model, other, H0, out, batch_size=8, mode="append", progress=False)
    assert store.n_tokens == 96 * 15 + 8 * 16 and len(store.manifest.segments) == 2
    store = capture_to_store(model, tiny.token_source(), Z1, out, batch_size=8, mode="overwrite", progress=False)
    assert store.hooks == [Z1] and store.n_tokens == 96 * 15


def test_bad_hooks(model, tiny, tmp_path):
    with pytest.raises(UnknownNameError, match="Nearest.*blocks.0.hook_resid_post"):
        capture_to_store(model, tiny.token_source(), "blocks.0.hook_resid_postt", tmp_path / "s", progress=False)
    with pytest.raises(HookNotReachedError, match="blocks.1"):
        capture_to_store(model, tiny.token_source(), Z1, tmp_path / "s", stop_at_layer=1, progress=False)
    assert not (tmp_path / "s").exists()  # nothing is written before the hooks check out


def test_nan_is_reported_with_batch_and_hook(model, tiny, tmp_path):
    with torch.no_grad():
        model.blocks[1].attn.W_V[0, 0, 0] = float("nan")
    with pytest.raises(InputError, match=r"blocks.1.attn.hook_z holds \d+ NaN/Inf values in batch 0"):
        capture_to_store(model, tiny.token_source(), [H0, Z1], tmp_path / "s", progress=False)


def test_float16_overflow_is_explained(model, tiny, tmp_path):
    with torch.no_grad():
        model.blocks[0].mlp.W_out.mul_(1e6)
    with pytest.raises(InputError, match="overflow.*bfloat16"):
        capture_to_store(model, tiny.token_source(), H0, tmp_path / "s", dtype="float16", progress=False)


def test_full_disk_leaves_no_partial_shard(model, tiny, tmp_path, monkeypatch):
    import interp.store.writer as writer

    real = writer.write_shard_file
    calls = {"n": 0}

    def failing(f, tensors, metadata):
        calls["n"] += 1
        if calls["n"] == 3:
            f.write(b"x" * 1000)  # a half-written shard
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(f, tensors, metadata)

    monkeypatch.setattr(writer, "write_shard_file", failing)
    out = tmp_path / "s"
    kw = dict(batch_size=8, memory_budget="1MiB", progress=False)
    with pytest.raises(StoreError, match="disk full.*rerun the same"):
        capture_to_store(model, tiny.token_source(), H0, out, **kw)
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.endswith(".tmp")]
    assert names == [".lock", "manifest.json", "shard-000-000000.safetensors", "shard-000-000001.safetensors"]
    monkeypatch.setattr(writer, "write_shard_file", real)
    capture_to_store(model, tiny.token_source(), H0, out, **kw)
    capture_to_store(model, tiny.token_source(), H0, tmp_path / "clean", **kw)
    assert _files(out) == _files(tmp_path / "clean")


def test_encoder_store_drops_special_tokens(tmp_path):
    from interp.models.encoder import EncoderConfig, HookedEncoder

    torch.manual_seed(0)
    enc = HookedEncoder(EncoderConfig(n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64, n_ctx=16, d_vocab=100,
                                      pad_token_id=0)).eval()  # fmt: skip
    toks = torch.randint(5, 100, (6, 10), generator=torch.Generator().manual_seed(0))
    toks[:, 0], toks[:, -1], toks[0, 6:] = 1, 2, 0  # [CLS] … [SEP], padding in row 0
    doc = torch.arange(6)[:, None].expand(6, 10).clone()
    doc[:, 0] = doc[:, -1] = -1
    doc[toks == 0] = -1
    pos = torch.arange(10).expand(6, 10) - 1
    src = TokenSource(toks, name="enc", doc=doc, pos=pos)
    store = capture_to_store(enc, src, "blocks.1.hook_resid_post", tmp_path / "s", batch_size=4, progress=False)
    assert store.n_tokens == int((doc >= 0).sum()) == 5 * 8 + 5
    ref = capture_activations(enc, toks, "blocks.1.hook_resid_post")["blocks.1.hook_resid_post"]
    assert torch.allclose(store.get(slice(None)), ref[doc >= 0])


def test_vit_store_keeps_patches(tmp_path):
    from interp.datasets.images import load_images
    from interp.models.vit import HookedViT, HookedViTConfig

    vit = HookedViT(HookedViTConfig(n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64, image_size=28,
                                    patch_size=14)).eval()  # fmt: skip
    images = load_images("digits", "train", limit=10)
    store = capture_to_store(vit, images, ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern"], tmp_path / "s",
                             batch_size=4, progress=False)  # fmt: skip
    assert store.n_tokens == 10 * 4  # CLS dropped, 2x2 patches kept
    assert store.shape("blocks.1.attn.hook_pattern") == (2, 5)  # per query patch: [head, key]
    meta = store.meta(slice(None))
    assert meta["doc"].tolist() == [i for i in range(10) for _ in range(4)]
    assert meta["pos"].tolist() == [0, 1, 2, 3] * 10 and (meta["token"] == -1).all()
    ref = capture_activations(vit, images.images[:4], "blocks.0.hook_resid_post")["blocks.0.hook_resid_post"]
    assert torch.allclose(store.get(slice(0, 16), "blocks.0.hook_resid_post"), ref[:, 1:].reshape(-1, 32))
    assert store.manifest.segments[0].dataset["name"] == "digits"


def test_list_of_capture_batches_and_rerun_with_overwrite_resumes(model, tiny, tmp_path):
    from interp.capture import CaptureBatch

    toks = tiny.tokens(12, 8)
    pos = torch.arange(8).expand(6, 8)
    batches = [CaptureBatch(toks[i : i + 6], torch.full((6, 8), i), pos, toks[i : i + 6]) for i in (0, 6)]
    out = tmp_path / "s"
    kw = dict(batch_size=2, memory_budget="64KiB", mode="overwrite", progress=False)  # batches outgrow batch_size
    store = capture_to_store(model, batches, H0, out, **kw)
    assert store.n_tokens == 12 * 8 and store.meta([0, 48])["doc"].tolist() == [0, 6]
    ref = capture_activations(model, toks, H0)[H0].reshape(-1, 64)
    assert torch.equal(store.get(slice(None)), ref)
    before = _files(out)
    capture_to_store(model, batches, H0, out, **kw)  # the same command, overwrite or not, resumes
    assert _files(out) == before
