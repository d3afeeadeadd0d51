"""The tutorial notebooks are tested documentation: each runs top to bottom, its pair in sync, its .ipynb clean.

Every ``notebooks/NN_name.py`` (jupytext percent format, the source) has an
``NN_name.ipynb`` beside it with the same cells and no outputs, execution counts
or widget state (an executed FigureWidget alone embeds megabytes). Execution runs
the ``.ipynb`` in a fresh ``python3`` kernel of this interpreter through nbclient,
with ``INTERP_NOTEBOOK_SMALL=1`` (each notebook's parameters cell picks small
sizes from it), the session's ``INTERP_CACHE`` (the packaged-model conversions are
shared with the rest of the suite, never rebuilt per notebook) and a temporary
working directory, so nothing is written into the repository. A notebook's stated
numbers are checked by its own assert cells; a failing one fails the test.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))
EXPECTED = ["01_quickstart", "02_capture_and_store", "03_sae_training", "04_labeling_and_reports", "05_circuits",
            "06_steering", "07_vit_walkthrough", "08_neuron_atlas"]  # fmt: skip
CELL_TIMEOUT_S = 300  # one cell on a loaded 2-core machine; the whole notebook takes well under this
# A warning raised in one of our packages, as the kernel prints it ("…/interp/x.py:12: FooWarning: …").
OUR_WARNING = re.compile(r"/(interp|sae_training|circuits)/[\w/]+\.py:\d+: \w*Warning")
# Run first in each kernel (not part of the notebook): as in tests/conftest.py, any resolution of or connection
# to a non-loopback address fails, so a notebook that reaches for the network fails its test.
OFFLINE_GUARD = """
import ipaddress as _ip, socket as _socket

def _interp_loopback(host):
    host = host.decode() if isinstance(host, bytes) else str(host or "localhost")
    if host in ("localhost", "localhost.localdomain", "ip6-localhost", ""):
        return True
    try:
        return _ip.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False

def _interp_guard(real, what):
    def guarded(*args, **kwargs):
        sock, addr = (args[0], args[1]) if what == "connect" else (None, args[0])
        host = (addr[0] if isinstance(addr, tuple) else None) if what == "connect" else addr
        inet = sock is None or sock.family in (_socket.AF_INET, _socket.AF_INET6)
        if inet and host is not None and not _interp_loopback(host):
            raise RuntimeError(f"the notebook tried to reach {host!r}: the tutorials must run offline")
        return real(*args, **kwargs)
    return guarded

_socket.getaddrinfo = _interp_guard(_socket.getaddrinfo, "resolve")
_socket.socket.connect = _interp_guard(_socket.socket.connect, "connect")
_socket.socket.connect_ex = _interp_guard(_socket.socket.connect_ex, "connect")
"""


def _cells(nb) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_the_tutorials_are_there():
    assert NAMES == EXPECTED
    for name in NAMES:
        assert (NOTEBOOKS / f"{name}.ipynb").is_file(), (
            f"{name}.ipynb is missing: run jupytext --sync notebooks/{name}.py"
        )


@pytest.mark.parametrize("name", NAMES)
def test_pair_in_sync(name):
    import jupytext
    import nbformat

    py = jupytext.read(NOTEBOOKS / f"{name}.py")
    ipynb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    fix = f"the pair is out of sync: run `jupytext --sync notebooks/{name}.py`"
    assert _cells(py) == _cells(ipynb), fix
    assert py.metadata["jupytext"]["formats"] == ipynb.metadata["jupytext"]["formats"] == "ipynb,py:percent", fix
    assert ipynb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", NAMES)
def test_ipynb_is_output_free_and_well_formed(name):
    raw = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    assert "widgets" not in raw["metadata"], "widget state saved in the notebook: clear it before committing"
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    for c in code:
        assert c["outputs"] == [] and c["execution_count"] is None, f"{name}: outputs saved; clear them"
        assert "widgets" not in c["metadata"]
    first = "".join(raw["cells"][0]["source"])
    assert raw["cells"][0]["cell_type"] == "markdown" and first.startswith("# ")
    assert "jupyter lab notebooks/" in first and f"jupytext --sync notebooks/{name}.py" in first
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and "INTERP_NOTEBOOK_SMALL" in "".join(params[0]["source"])
    assert any(re.search(r"^assert ", "".join(c["source"]), re.M) for c in code), "no assert cell checks the prose"


def _run(name: str, cwd: Path) -> tuple[object, float]:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(OFFLINE_GUARD))
    # The kernel inherits this process's environment: INTERP_CACHE (set by conftest), the offline flags, threads.
    env = dict(os.environ, INTERP_NOTEBOOK_SMALL="1", MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1")
    assert env.get("INTERP_CACHE"), "conftest sets INTERP_CACHE; without it each kernel would convert the models anew"
    client = NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(cwd)}}
    )
    t0 = time.perf_counter()
    client.execute(env=env)
    return nb, time.perf_counter() - t0


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, tmp_path, capsys):
    nb, seconds = _run(name, tmp_path)
    with capsys.disabled():
        print(f"\n[notebook] {name}: {seconds:.1f}s")
    stderr = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.get("output_type") == "stream" and o.get("name") == "stderr")  # fmt: skip
    assert not OUR_WARNING.search(stderr), f"{name} raised a warning from our packages:\n{stderr[-2000:]}"
    assert (tmp_path / "runs" / "notebooks" / name).is_dir()  # results went to the working directory
    assert not list(NOTEBOOKS.glob("runs")) and not (ROOT / "interp" / "runs").exists()
