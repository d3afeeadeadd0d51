"""Test-wide guards: no network outside loopback, a fresh model cache per session.

Any attempt to resolve or connect to a non-loopback address fails the test that
made it: the suite must prove the workbench runs offline. Loopback stays open
for torch.distributed, Jupyter kernels and browser tests.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import tempfile

import pytest

_session_cache: str | None = None
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkAccessError(RuntimeError):
    """Raised when a test reaches for the network."""


_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guard_getaddrinfo(host, *args, **kwargs):
    if not _is_loopback(host):
        raise NetworkAccessError(f"test tried to resolve {host!r}: the suite must run offline")
    return _real_getaddrinfo(host, *args, **kwargs)


def _addr_host(address):
    return address[0] if isinstance(address, tuple) else None  # AF_UNIX paths are local


def _guard_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(_addr_host(address)):
        raise NetworkAccessError(f"test tried to connect to {address!r}: the suite must run offline")
    return _real_connect(self, address)


def _guard_connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(_addr_host(address)):
        raise NetworkAccessError(f"test tried to connect to {address!r}: the suite must run offline")
    return _real_connect_ex(self, address)


def pytest_configure(config):
    # The converted-model cache starts empty in every test session, so a broken
    # conversion can never hide behind a stale cache. INTERP_TEST_CACHE=DIR
    # reuses DIR instead (fast local iteration).
    global _session_cache
    reuse = os.environ.get("INTERP_TEST_CACHE")
    _session_cache = None if reuse else tempfile.mkdtemp(prefix="interp-test-cache-")
    os.environ["INTERP_CACHE"] = reuse or _session_cache
    socket.getaddrinfo = _guard_getaddrinfo
    socket.socket.connect = _guard_connect
    socket.socket.connect_ex = _guard_connect_ex
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_unconfigure(config):
    if _session_cache:
        shutil.rmtree(_session_cache, ignore_errors=True)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A private, empty INTERP_CACHE for one test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("INTERP_CACHE", str(root))
    return root


@pytest.fixture(scope="session")
def tiny():
    """``tests/capture/tiny.py`` as a module: the seeded tiny models and data of the capture and store tests.

    Loaded through the same ``file.py:function`` factory syntax that capture
    workers use on their command lines (the tests are not a package under importlib mode).
    """
    import sys
    from pathlib import Path

    from interp.capture.workers import load_factory

    tiny_py = Path(__file__).parent / "capture" / "tiny.py"
    return sys.modules[load_factory(f"{tiny_py}:tiny_model").__module__]


@pytest.fixture
def model(tiny):
    """A fresh tiny seeded HookedTransformer."""
    return tiny.tiny_model()


@pytest.fixture(autouse=True)
def _html_written_is_offline(request):
    """Every HTML page a test writes under its ``tmp_path`` loads nothing from the network.

    Reports, figures and widget exports must open from ``file://`` with the network
    off (no CDN script, stylesheet, image or import): checked after each test on the
    files it left behind.
    """
    yield
    tmp = request.node.funcargs.get("tmp_path") if hasattr(request.node, "funcargs") else None
    if tmp is None or not tmp.exists():
        return
    from interp.reports.offline import external_references

    for page in sorted(tmp.rglob("*.htm*")):
        refs = external_references(page.read_text(errors="replace"))
        assert not refs, f"{page.relative_to(tmp)} loads from the network: {refs[:5]}"
