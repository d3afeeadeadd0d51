"""Scale-out: N worker processes capture disjoint shards of one store.

Each worker is the ordinary capture command (``python -m interp.capture.cli``)
with ``--rank r --world-size N``: it reads the same deterministic batch stream,
runs the model only on shards ``k % N == r`` and commits them under the store's
file lock. Shard ``k`` holds the same contexts whichever process writes it, so
the finished store equals a single-process capture, shard for shard. The last
worker to finish marks the store complete; rerunning the same command resumes
whatever a killed worker left undone.

Workers load the model themselves, so the model and data are given by name:
a registry name, a local directory or hub name, or a factory
``package.module:function`` / ``path/to/file.py:function`` (the data factory
receives the model).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interp.errors import InputError
from interp.store.manifest import StoreError
from interp.store.reader import Store

__all__ = ["capture_parallel", "run_workers", "load_factory", "is_factory"]

_FACTORY = re.compile(r"^(?P<mod>[\w./-]+?)(?P<py>\.py)?:(?P<fn>[A-Za-z_]\w*)$")


def is_factory(spec: str) -> bool:
    """Whether ``spec`` names a factory (``pkg.mod:fn`` or ``file.py:fn``) rather than a path or name."""
    return bool(_FACTORY.match(spec)) and not Path(spec).exists()


def load_factory(spec: str) -> Any:
    """Import the callable named by ``pkg.module:function`` or ``path/to/file.py:function``."""
    m = _FACTORY.match(spec)
    if not m:
        raise InputError(f"{spec!r} is not a factory name. Write package.module:function or path/to/file.py:function.")
    if m["py"]:
        path = Path(m["mod"] + ".py")
        if not path.is_file():
            raise InputError(f"factory file {path} does not exist (from {spec!r}). Check the path.")
        name = f"interp_factory_{abs(hash(str(path.resolve())))}"
        module = sys.modules.get(name)
        if module is None:
            mod_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[name] = module
            mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(m["mod"])
    fn = getattr(module, m["fn"], None)
    if not callable(fn):
        raise InputError(f"{spec!r}: {m['mod']} has no callable {m['fn']!r}.")
    return fn


def run_workers(argv: Sequence[str], workers: int, threads: int | None = None) -> None:
    """Run ``python -m interp.capture.cli *argv`` as ranks ``0..workers-1`` and wait for all.

    Raises:
        StoreError: a worker failed (the others are stopped; rerun to resume).
    """
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    procs = []
    for r in range(workers):
        cmd = [sys.executable, "-m", "interp.capture.cli", *argv,
               "--rank", str(r), "--world-size", str(workers), "--threads", str(threads)]  # fmt: skip
        procs.append(subprocess.Popen(cmd, env=env))
    failed: list[tuple[int, int]] = []
    try:
        while any(p.poll() is None for p in procs) and not failed:
            failed = [(r, p.returncode) for r, p in enumerate(procs) if p.returncode not in (None, 0)]
            time.sleep(0.05)
        failed = [(r, p.returncode) for r, p in enumerate(procs) if p.returncode not in (None, 0)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()
    if failed:
        r, code = failed[0]
        raise StoreError(
            f"capture worker {r} of {workers} exited with code {code} (its message is above). "
            "Fix the cause and rerun the same command: finished shards are kept."
        )


def capture_parallel(
    model: str,
    data: str,
    hooks: str | Sequence[str],
    out: Path | str,
    *,
    workers: int = 2,
    threads: int | None = None,
    **options: Any,
) -> Store:
    """:func:`~interp.capture.capture_to_store` split over ``workers`` processes.

    Args:
        model: registry name, local directory, hub name or factory (``pkg.mod:fn``, ``file.py:fn``).
        data: dataset name or data factory (called with the model; returns anything
            ``capture_to_store`` takes).
        hooks: hook names or patterns.
        out: the store directory.
        workers: worker processes.
        threads: torch threads per worker (default: cores / workers).
        **options: ``capture_to_store`` options by name (``dtype``, ``batch_size``,
            ``max_tokens``, ``positions``, ``memory_budget``, ``context_size``, ``split``,
            ``limit``, ``mode``) plus ``n_layers`` for the model load.

    Returns:
        The finished store.
    """
    from interp.capture.cli import argv_for

    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}.")
    progress = options.pop("progress", True)
    argv = argv_for(model=model, dataset=data, hooks=hooks, out=out, progress=progress, **options)
    run_workers(argv, workers, threads)
    return Store(out)
