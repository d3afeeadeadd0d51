"""Train the atlas's small Bible language models (two seeds) and ship them in ``interp/data/atlas/``.

Each model is a TransformerLens ``HookedTransformer`` (2 layers, d_model 128,
4 heads, d_mlp 512, GELU, LayerNorm, context 64; :func:`interp.atlas.bible_lms.bible_lm_config`)
trained on the Bible's train split (:func:`interp.datasets.text.load_texts`),
tokenised with SmolLM2's tokenizer and mapped to a compact vocabulary: ``<bos>``,
``<unk>``, SmolLM2's EOS (the document separator), then the most frequent
SmolLM2 tokens of the train split. Only the seed differs between the models
(initialisation and data order), which is what a universal-neuron comparison
needs. Writes ``bible_lm_s{seed}.safetensors`` (float16 parameters plus
``vocab.compact_to_smol``) and ``bible_lm_s{seed}.json`` (config, losses, the
unigram baseline, wall time, versions, the exact command).

Usage::

    python scripts/train_bible_lms.py                  # seeds 0 and 1, ~2-3 min each on one core
    python scripts/train_bible_lms.py --seeds 0 --steps 50 --out-dir /tmp/bible-lm
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save

from interp.atlas.bible_lms import BOS, DATA_DIR, UNK, bible_lm_config, to_compact
from interp.atlas.frequency import unigram_counts
from interp.cache import atomic_write, atomic_write_text
from interp.datasets.text import load_texts, pack_contexts

CONTEXT = 64


def compact_vocab(tok, size: int) -> torch.Tensor:
    """``compact_to_smol`` ``[size]``: -1 for ``<bos>`` / ``<unk>``, then EOS, then the most frequent Bible tokens."""
    counts = unigram_counts(tok, "bible", "train")
    counts[tok.eos_token_id] = -1  # placed explicitly below
    top = counts.argsort(descending=True)[: size - 3]
    return torch.cat([torch.tensor([-1, -1, tok.eos_token_id]), top])


def contexts(tok, split: str, compact: torch.Tensor) -> torch.Tensor:
    """Packed contexts ``[n, 64]`` of ``split`` in compact ids."""
    ctx = pack_contexts(load_texts("bible", split), tok, CONTEXT)
    return to_compact(ctx.tokens, compact, bos_id=tok.bos_token_id)


def lr_at(step: int, steps: int, peak: float, warmup: int = 50) -> float:
    """Linear warm-up then cosine decay to 10% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup))))


@torch.no_grad()
def heldout_loss(model, data: torch.Tensor) -> float:
    """Mean next-token loss on ``data`` (targets after BOS only)."""
    losses = [model(b, return_type="loss").item() * len(b) for b in data.split(64)]
    return sum(losses) / len(data)


def unigram_loss(train: torch.Tensor, heldout: torch.Tensor, d_vocab: int) -> float:
    """Held-out loss of the train split's unigram distribution (add-one): the floor a model must beat."""
    c = torch.bincount(train[:, 1:].flatten(), minlength=d_vocab).double() + 1
    logp = (c / c.sum()).log()
    return float(-logp[heldout[:, 1:].flatten()].mean())


def train_one(seed: int, train: torch.Tensor, heldout: torch.Tensor, compact: torch.Tensor, args) -> tuple:
    """Train one seed; returns ``(model, record)``."""
    torch.manual_seed(seed)
    model = bible_lm_config(len(compact), seed)
    from transformer_lens import HookedTransformer

    model = HookedTransformer(model)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train), generator=g)
    t0, recent = time.perf_counter(), []
    for step in range(args.steps):
        idx = order[(step * args.batch_size) % len(train) :][: args.batch_size]
        if len(idx) < args.batch_size:  # wrap to a fresh permutation
            order = torch.randperm(len(train), generator=g)
            idx = order[: args.batch_size]
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr)
        loss = model(train[idx], return_type="loss")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        recent = (recent + [loss.item()])[-50:]
        if step % 100 == 0 or step == args.steps - 1:
            print(f"seed {seed} step {step:5d} loss {loss.item():.3f} ({time.perf_counter() - t0:.0f}s)", flush=True)
    model.eval()
    record = {"seed": seed, "steps": args.steps, "batch_size": args.batch_size, "context": CONTEXT, "lr": args.lr,
              "train_loss_last50": sum(recent) / len(recent), "heldout_loss": heldout_loss(model, heldout),
              "train_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    return model, record


def write(model, record: dict, compact: torch.Tensor, names: list[str], out_dir: Path) -> Path:
    """Save float16 parameters plus the vocabulary map, and the JSON record, atomically."""
    state = {k: v.detach().half().contiguous() for k, v in model.named_parameters()}
    state["vocab.compact_to_smol"] = compact.int()
    stem = out_dir / f"bible_lm_s{record['seed']}"
    atomic_write(stem.with_suffix(".safetensors"), lambda f: f.write(save(state)))
    atomic_write_text(stem.with_suffix(".json"), json.dumps({**record, "token_names": names}, indent=1) + "\n")
    return stem.with_suffix(".safetensors")


def main(argv: list[str] | None = None) -> list[dict]:
    """Train and write every seed; returns the JSON records (without token names)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    ap.add_argument("--steps", type=int, default=400, help="optimizer steps per model (default 400)")
    ap.add_argument("--batch-size", type=int, default=32, help="contexts of 64 tokens per step (default 32)")
    ap.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3)")
    ap.add_argument("--vocab", type=int, default=2048, help="compact vocabulary size (default 2048)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: runs the same everywhere)")
    ap.add_argument("--out-dir", type=Path, default=DATA_DIR, help="where the files go")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    from transformers import AutoTokenizer

    from interp.models.smollm2 import smollm2_hf_dir

    tok = AutoTokenizer.from_pretrained(smollm2_hf_dir(), local_files_only=True)
    compact = compact_vocab(tok, args.vocab)
    names = ["<bos>", "<unk>"] + tok.batch_decode([[int(i)] for i in compact[2:]])
    train, held = contexts(tok, "train", compact), contexts(tok, "heldout", compact)[:512]
    base = unigram_loss(train, held, len(compact))
    unk = float((train == UNK).float().mean())
    print(f"{len(train)} train contexts, unigram baseline {base:.3f}, unk rate {unk:.3%}", flush=True)
    command = "python scripts/train_bible_lms.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    records = []
    for seed in (int(s) for s in args.seeds.split(",")):
        model, rec = train_one(seed, train, held, compact, args)
        rec.update({"unigram_heldout_loss": base, "unk_rate": unk, "train_contexts": len(train),
                    "heldout_contexts": len(held), "d_vocab": len(compact), "bos_id": BOS, "unk_id": UNK,
                    "threads": args.threads, "command": command.strip(), "python": platform.python_version(),
                    "torch": torch.__version__, "config": {k: v for k, v in model.cfg.to_dict().items()
                                                           if isinstance(v, (int, float, str, bool))}})  # fmt: skip
        path = write(model, rec, compact, names, args.out_dir)
        print(f"seed {seed}: heldout loss {rec['heldout_loss']:.3f} (unigram {base:.3f}) -> {path}", flush=True)
        records.append(rec)
    return records


if __name__ == "__main__":
    main()
