"""SAELens's on-disk layout: save our SAEs as SAELens SAEs, load SAELens SAEs into ours.

A saved SAE is a folder with ``cfg.json``, ``sae_weights.safetensors`` and
``sparsity.safetensors`` (log10 firing frequency per latent), written by the
SAELens inference class itself so that ``sae_lens.SAE.load_from_disk(path)``
loads it and gives the same outputs as our module. The folder is built under a
temporary name and renamed into place, so a crash never leaves half an SAE.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from interp.errors import InputError
from sae_training.archs import ARCHITECTURES, get_arch
from sae_training.archs.base import TrainableSAE

__all__ = ["save_sae", "load_sae", "to_trainable", "to_saelens", "quiet_saelens"]

_KWARGS_WARNING = r"\s*This SAE has non-empty model_from_pretrained_kwargs"
_TL_UTILS_WARNING = r"The 'utils' module has been deprecated"


class quiet_saelens(warnings.catch_warnings):
    """Silence SAELens's reminder about ``model_from_pretrained_kwargs`` (we record them on purpose) and,
    on its first import, its use of TransformerLens's deprecated ``utils`` module (theirs to fix)."""

    def __enter__(self) -> Any:
        out = super().__enter__()
        warnings.filterwarnings("ignore", message=_KWARGS_WARNING, category=UserWarning)
        warnings.filterwarnings("ignore", message=_TL_UTILS_WARNING, category=DeprecationWarning)
        return out


def to_saelens(sae: TrainableSAE, metadata: dict[str, Any], scale: float = 1.0) -> Any:
    """The SAELens inference SAE equal to ``sae`` on raw inputs (``scale`` folded in)."""
    with quiet_saelens():
        from sae_lens import SAE

    hook = str(metadata.get("hook_name") or "")
    cfg = {"architecture": sae.inference_arch, "d_in": sae.d_in, "d_sae": sae.d_sae, "dtype": "float32",
           "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
           "reshape_activations": "hook_z" if hook.endswith("hook_z") else "none",
           "metadata": dict(metadata) | {"norm_scaling_factor": scale, "training_architecture": sae.arch}}  # fmt: skip
    cfg |= sae.inference_cfg()
    with quiet_saelens():
        out = SAE.from_dict(cfg)
    out.load_state_dict(sae.inference_state(scale))
    return out


def save_sae(sae: TrainableSAE, path: str | Path, metadata: dict[str, Any], scale: float = 1.0,
             frequency: Float[Tensor, " d_sae"] | None = None) -> Path:  # fmt: skip
    """Write ``sae`` to ``path`` in SAELens's layout (atomically); return ``path``.

    Args:
        sae: the trained SAE.
        path: the SAE folder (replaced if it exists).
        metadata: SAELens metadata: ``model_name``, ``hook_name``, ``context_size``,
            ``model_from_pretrained_kwargs``, ``dataset_path``, ...
        scale: the input-normalisation scale training used (folded into the weights).
        frequency: firing frequency per latent (stored as log10 in ``sparsity.safetensors``).
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        to_saelens(sae, metadata, scale).save_model(tmp)
        if frequency is not None:
            save_file({"sparsity": torch.log10(frequency.float() + 1e-10).contiguous()}, tmp / "sparsity.safetensors")
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_sae(path: str | Path, device: str = "cpu") -> Any:
    """Load an SAE folder in SAELens's layout (ours or SAELens's own) as a SAELens inference SAE."""
    with quiet_saelens():
        from sae_lens import SAE

    p = Path(path)
    if not (p / "cfg.json").is_file() or not (p / "sae_weights.safetensors").is_file():
        raise InputError(f"{p} is not a SAELens SAE folder: it needs cfg.json and sae_weights.safetensors. "
                         "Pass the folder a training run wrote (runs/<name>/<hook>).")  # fmt: skip
    with quiet_saelens():
        return SAE.load_from_disk(p, device=device)


@torch.no_grad()
def to_trainable(sae: Any, spec: Any = None) -> TrainableSAE:
    """Our trainable module with the weights of SAELens SAE ``sae`` (same outputs).

    A TopK SAE trained with ``rescale_acts_by_decoder_norm`` has its decoder norms
    folded first (what SAELens does when saving one), so the module is exact.
    """
    from sae_training.config import SAESpec

    arch = sae.cfg.architecture()
    if arch not in ARCHITECTURES or arch == "batchtopk":
        raise InputError(f"SAELens architecture {arch!r} has no trainable counterpart here. "
                         f"Supported: {', '.join(a for a in ARCHITECTURES if a != 'batchtopk')}.")  # fmt: skip
    if arch == "topk" and getattr(sae.cfg, "rescale_acts_by_decoder_norm", False):
        sae = _copy(sae)
        sae.fold_W_dec_norm()
        sae.cfg.rescale_acts_by_decoder_norm = False
    cls = get_arch(arch)
    spec = spec or SAESpec(arch=arch, **cls.spec_from_saelens(sae.cfg))
    out = cls(sae.cfg.d_in, sae.cfg.d_sae, spec)
    out.load_saelens_state({k: v.detach().float().cpu() for k, v in sae.state_dict().items()})
    return out


def _copy(sae: Any) -> Any:
    import copy

    return copy.deepcopy(sae)
