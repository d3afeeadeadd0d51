"""Atomic, self-checking cache directories for converted models and other artefacts.

A cache entry is a directory that is built in a temporary sibling and renamed into
place only when complete; a ``COMPLETE.json`` marker written last records what was
built and the size of each file. An entry whose marker is missing or whose files
do not match it (a killed conversion, a full disk, a user deleting files) is
detected, removed and rebuilt, never loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from interp.errors import CorruptCacheError

__all__ = ["cache_root", "cached_dir", "entry_is_complete", "atomic_write", "atomic_write_text"]

MARKER = "COMPLETE.json"


def cache_root() -> Path:
    """The user cache directory: ``$INTERP_CACHE`` or ``~/.cache/interp``."""
    root = os.environ.get("INTERP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "interp"
    )
    return Path(root)


def _file_sizes(path: Path) -> dict[str, int]:
    return {
        str(p.relative_to(path)): p.stat().st_size
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def entry_is_complete(path: Path, key: dict[str, Any] | None = None) -> bool:
    """Whether ``path`` is a finished cache entry (marker present, files intact, same key)."""
    marker = path / MARKER
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if key is not None and meta.get("key") != key:
        return False
    return meta.get("files") == _file_sizes(path)


def cached_dir(
    name: str,
    build: Callable[[Path], None],
    key: dict[str, Any] | None = None,
    root: Path | None = None,
) -> Path:
    """Return the cache directory ``name``, building it with ``build(tmp_dir)`` if needed.

    Args:
        name: directory name under the cache root (e.g. ``"smollm2-135m-fp32"``).
        build: writes the entry's files into the empty directory it is given.
        key: JSON-able description of what was built (source file, sizes, code
            version); an entry built with a different key is rebuilt.
        root: cache root; defaults to :func:`cache_root`.

    Returns:
        The path of the complete entry.
    """
    root = Path(root) if root is not None else cache_root()
    path = root / name
    if entry_is_complete(path, key):
        return path
    if path.exists():  # half-written, tampered or stale: never load it
        shutil.rmtree(path)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    try:
        build(tmp)
        marker = {"key": key, "files": _file_sizes(tmp)}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1, sort_keys=True))
        try:
            os.replace(tmp, path)
        except OSError:  # another process finished first
            if not entry_is_complete(path, key):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not entry_is_complete(path, key):
        raise CorruptCacheError(
            f"cache entry {path} was built but does not verify. "
            f"Delete {path} and run again; check free disk space under {root}."
        )
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path | str, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through ``write(binary_file)`` on a temporary file, fsync, then rename.

    Readers see the old file or the complete new one, never a partial write; on
    any error (a full disk, an interrupt) the temporary file is removed and the
    error re-raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would make results private
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(text.encode()))
