"""SAE training and evaluation on SAELens, fed from interp activation stores.

Trains sparse autoencoders on activations captured by :mod:`interp.capture`,
saves them in SAELens's on-disk layout and evaluates them on held-out data.

The facade is lazy (nothing heavy is imported until a name is used):

>>> from sae_training import train_sae, evaluate_sae            # doctest: +SKIP
>>> result = train_sae({"from_store": "runs/demo/store", "hook": ["blocks.6.hook_resid_post"],
...                     "arch": "topk", "d_sae": 2304, "k": 32, "out": "runs/l6"})  # doctest: +SKIP
>>> result.eval["blocks.6.hook_resid_post"]["ce_loss_recovered"]  # doctest: +SKIP

``python -m sae_training --help`` is the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interp._lazy import lazy_exports

_EXPORTS = {
    "train_sae": "sae_training.trainer",
    "TrainResult": "sae_training.trainer",
    "evaluate_sae": "sae_training.evaluate",
    "TrainConfig": "sae_training.config",
    "SAESpec": "sae_training.config",
    "DataSpec": "sae_training.config",
    "OptimSpec": "sae_training.config",
    "RunSpec": "sae_training.config",
    "ARCHITECTURES": "sae_training.archs",
    "get_arch": "sae_training.archs",
    "save_sae": "sae_training.saelens_io",
    "load_sae": "sae_training.saelens_io",
    "to_trainable": "sae_training.saelens_io",
    "to_saelens": "sae_training.saelens_io",
    "CheckpointError": "sae_training.checkpoint",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from sae_training.archs import ARCHITECTURES, get_arch  # noqa: F401
    from sae_training.checkpoint import CheckpointError  # noqa: F401
    from sae_training.config import DataSpec, OptimSpec, RunSpec, SAESpec, TrainConfig  # noqa: F401
    from sae_training.evaluate import evaluate_sae  # noqa: F401
    from sae_training.saelens_io import load_sae, save_sae, to_saelens, to_trainable  # noqa: F401
    from sae_training.trainer import TrainResult, train_sae  # noqa: F401


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
