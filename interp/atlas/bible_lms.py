"""The project's small Bible language models: two seeds of one architecture, for universal-neuron studies.

``scripts/train_bible_lms.py`` trains them (TransformerLens ``HookedTransformer``,
2 layers, d_model 128, d_mlp 512, GELU MLPs) on the Bible's train split and
ships them in ``interp/data/atlas/`` as float16 safetensors with a JSON of
config, loss and the exact command. Their vocabulary is compact: the most
frequent SmolLM2 tokens of the Bible plus ``<bos>`` and ``<unk>``, so a text is
tokenised with SmolLM2's tokenizer and mapped (:func:`to_compact`); positions
line up with SmolLM2's, which lets the atlas correlate either model with it.

>>> a, b = load_bible_lm("bible-lm-s0"), load_bible_lm("bible-lm-s1")   # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from interp.errors import InputError, UnknownNameError

__all__ = ["BIBLE_LMS", "DATA_DIR", "load_bible_lm", "to_compact", "bible_lm_config", "BOS", "UNK"]

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "atlas"
#: Shipped model names (seed suffix).
BIBLE_LMS = ("bible-lm-s0", "bible-lm-s1")
BOS, UNK = 0, 1  # compact ids of <bos> and <unk>; ids >= 2 are SmolLM2 tokens (vocab.compact_to_smol)


def bible_lm_config(d_vocab: int, seed: int) -> Any:
    """The architecture of the Bible LMs (a ``HookedTransformerConfig``)."""
    from transformer_lens import HookedTransformerConfig

    return HookedTransformerConfig(n_layers=2, d_model=128, n_ctx=64, d_head=32, n_heads=4, d_mlp=512,
                                   d_vocab=d_vocab, act_fn="gelu", normalization_type="LN", seed=seed,
                                   device="cpu", model_name=f"bible-lm-s{seed}")  # fmt: skip


def to_compact(smol_ids: Int[Tensor, "*shape"], compact_to_smol: Int[Tensor, " d_vocab"],
               bos_id: int | None = None) -> Int[Tensor, "*shape"]:  # fmt: skip
    """Map SmolLM2 token ids to the compact vocabulary (``<unk>`` for tokens outside it, ``<bos>`` for ``bos_id``)."""
    table = torch.full((int(max(int(smol_ids.max()), int(compact_to_smol.max()))) + 1,), UNK, dtype=torch.long)
    keep = compact_to_smol >= 0
    table[compact_to_smol[keep]] = torch.arange(len(compact_to_smol))[keep]
    out = table[smol_ids]
    if bos_id is not None:
        out[smol_ids == bos_id] = BOS
    return out


def load_bible_lm(name: str = "bible-lm-s0", data_dir: Path | str | None = None) -> Any:
    """Load a shipped Bible LM as a float32 ``HookedTransformer`` in eval mode.

    The model carries ``compact_to_smol`` (``[d_vocab]``: SmolLM2 id of each compact id,
    -1 for ``<bos>`` / ``<unk>``) and ``atlas_token_names`` (each compact token's text).

    Raises:
        UnknownNameError: not one of :data:`BIBLE_LMS`.
        InputError: the files are missing (run ``scripts/train_bible_lms.py``).
    """
    from safetensors.torch import load_file
    from transformer_lens import HookedTransformer

    if name not in BIBLE_LMS:
        raise UnknownNameError("Bible LM", name, BIBLE_LMS, fix="The shipped seeds are bible-lm-s0 and bible-lm-s1.")
    root = Path(data_dir) if data_dir is not None else DATA_DIR
    weights, meta_file = root / f"{name.replace('-', '_')}.safetensors", root / f"{name.replace('-', '_')}.json"
    if not weights.is_file() or not meta_file.is_file():
        raise InputError(f"{weights} or {meta_file} is missing. Train the models with "
                         "`python scripts/train_bible_lms.py`.")  # fmt: skip
    meta = json.loads(meta_file.read_text())
    state = load_file(str(weights))
    compact_to_smol = state.pop("vocab.compact_to_smol").long()
    model = HookedTransformer(bible_lm_config(len(compact_to_smol), int(meta["seed"])))
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)  # masks/IGNORE buffers stay
    model.eval()
    model.compact_to_smol = compact_to_smol
    model.atlas_token_names = meta["token_names"]
    return model
