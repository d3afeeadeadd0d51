"""Lazy package facades: public names resolve on first use, so imports stay cheap.

``interp --help`` and ``python -m sae_training --help`` must not pay for torch or
TransformerLens; each package's ``__init__`` maps its public names to the module
that defines them and calls :func:`lazy_exports`.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports", "callable_module"]


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package`` that import ``exports[name]`` on first use."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            setattr(sys.modules[package], name, value)  # later lookups skip this function
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__


def callable_module(module: str, resolve: Callable[[], Callable[..., Any]]) -> None:
    """Make ``module`` callable as the function that ``resolve()`` returns.

    A facade exports a function under the name of the module that defines it
    (``interp.capture``, ``interp.steering.generate``). Importing that module
    (``from interp.capture import X``) rebinds the parent's attribute to the
    module, so ``interp.capture(model, hooks)`` would raise "'module' object is
    not callable"; with this, calling the module calls the function.
    """

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return resolve()(*args, **kwargs)

    sys.modules[module].__class__ = _CallableModule
