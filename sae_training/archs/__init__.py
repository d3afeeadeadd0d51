"""The architecture registry: one module per SAE architecture, resolved lazily.

Each module defines one :class:`~sae_training.archs.base.TrainableSAE` subclass
that trains with this project's loop and converts to and from the matching
SAELens class. The names here are the single source of truth for the CLI
``--arch`` choices and for config validation; importing this package imports
no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from interp.errors import UnknownNameError

if TYPE_CHECKING:  # pragma: no cover
    from sae_training.archs.base import TrainableSAE

__all__ = ["ARCHITECTURES", "get_arch", "check_arch"]

#: architecture name -> (module, class). SAELens's own architecture names.
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "topk": ("sae_training.archs.topk", "TopKSAE"),
    "batchtopk": ("sae_training.archs.batchtopk", "BatchTopKSAE"),
    "standard": ("sae_training.archs.standard", "StandardSAE"),
    "jumprelu": ("sae_training.archs.jumprelu", "JumpReLUSAE"),
    "gated": ("sae_training.archs.gated", "GatedSAE"),
}


def check_arch(name: str) -> str:
    """Return ``name`` if it is a known architecture, else raise listing the known ones."""
    if name not in ARCHITECTURES:
        raise UnknownNameError("SAE architecture", name, ARCHITECTURES, shown=ARCHITECTURES,
                               fix=f"Available: {', '.join(ARCHITECTURES)}.")
    return name


def get_arch(name: str) -> type[TrainableSAE]:
    """The trainable class of architecture ``name``."""
    module, cls = ARCHITECTURES[check_arch(name)]
    return getattr(importlib.import_module(module), cls)
