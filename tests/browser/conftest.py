"""Real-browser test fixtures: Debian's chromium driven by playwright, JupyterLab and Voilà on loopback.

* The browser is the system ``chromium`` (installed by ``make setup``); playwright
  is pointed at it and never downloads one. Without chromium or playwright the
  tests skip locally but FAIL when ``CI`` is set: a browser test never skips
  silently in CI.
* Every page is watched: a request to anything but loopback (or, for ``file://``
  pages, to anything but local files) is aborted and recorded, and so are console
  errors and uncaught page errors; the tests assert none happened.
* Servers run in their own process group with a private Jupyter config,
  runtime and workspace folder; they answer on 127.0.0.1 only and are torn down
  (the whole process tree) even when a test fails.
* Screenshots go to ``test-artifacts/browser/`` at the repository root.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

from interp.widgets.voila import VOILA_TEMPLATE, jupyter_path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
ARTIFACTS = REPO / "test-artifacts" / "browser"
CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
#: Playwright's own per-action timeout (ms); every test also has a thread-based pytest-timeout.
ACTION_MS = 30_000
#: How long an ``expect(...)`` waits for the page to reach a state (a shared machine can be slow).
EXPECT_MS = 15_000
#: pytest-timeout (thread method) for a browser test that sets none itself.
DEFAULT_TIMEOUT_S = 120
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
_LOCAL_SCHEMES = {"file", "data", "blob", "about", "chrome-error"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's chromium through playwright (tests/browser)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if item.get_closest_marker("timeout") is None:  # every browser test gets a thread-based timeout
                item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT_S, method="thread"))


def _unavailable(why: str) -> None:
    """Fail under CI (browser tests never skip silently there), skip elsewhere."""
    if CI:
        pytest.fail(f"{why} CI is set, so the browser tests fail instead of skipping.", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system chromium's path (Debian's package; ``make setup`` installs it as root)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _unavailable(
            "Debian's chromium is not on PATH. Fix: `apt-get install chromium` (`make setup` does it as root)."
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Python playwright is not installed. Fix: `make setup` (the test extra pins it).")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator:
    """One headless chromium per test module (system executable, no download).

    Per module, not per session: a live sync playwright keeps an event loop running in the main
    thread, which breaks every later test that uses asyncio (kaleido, playwright elsewhere).
    """
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_MS)
    args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-gpu",
            "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=args)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """This run's screenshot folder (emptied at the start of the session)."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)


def _allowed(url: str, loopback: bool) -> bool:
    u = urlparse(url)
    if u.scheme in _LOCAL_SCHEMES:
        return True
    return loopback and u.scheme in ("http", "https", "ws", "wss") and (u.hostname or "") in _LOOPBACK_HOSTS


@dataclass
class Watch:
    """What a page did that a test asserts against: blocked requests, failed requests, console and page errors."""

    loopback: bool
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def route(self, route) -> None:
        url = route.request.url
        if _allowed(url, self.loopback):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def attach(self, page) -> None:
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(f"{m.text} @ {m.location}"))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("requestfailed", self._failed)
        page.on("websocket", lambda ws: None if _allowed(ws.url, self.loopback) else self.blocked.append(ws.url))

    def _failed(self, request) -> None:
        if request.url not in self.blocked:
            self.failed.append(f"{request.url}: {request.failure}")

    def assert_offline(self) -> None:
        """No request left loopback (or, for file:// pages, the local disk)."""
        where = "loopback" if self.loopback else "local files"
        assert not self.blocked, f"the page tried to reach beyond {where}: {self.blocked[:5]}"

    def assert_clean(self, ignore: str | None = None) -> None:
        """Offline, no failed request, no console error, no uncaught exception (``ignore``: regex of known noise)."""
        self.assert_offline()
        keep = (lambda xs: [x for x in xs if not re.search(ignore, x)]) if ignore else list
        assert not keep(self.failed), f"failed requests: {keep(self.failed)[:5]}"
        assert not keep(self.console_errors), f"console errors: {keep(self.console_errors)[:5]}"
        assert not keep(self.page_errors), f"uncaught page errors: {keep(self.page_errors)[:5]}"


@pytest.fixture
def open_page(browser, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Callable]:
    """``open_page(loopback=True) -> (page, watch)``: a fresh context whose requests are confined.

    ``loopback=False`` is for ``file://`` pages: the context is offline and every
    non-file request is aborted and recorded. The pages' last state is saved as a
    screenshot when the test failed or took none of its own (see ``shot``).
    """
    opened: list = []

    def _open(loopback: bool = True, viewport: tuple[int, int] = (1280, 900)):
        ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, offline=not loopback,
                                  service_workers="block")  # fmt: skip
        ctx.set_default_timeout(ACTION_MS)
        watch = Watch(loopback)
        ctx.route("**/*", watch.route)
        page = ctx.new_page()
        watch.attach(page)
        opened.append((ctx, page))
        return page, watch

    yield _open
    # Keep the last state of every page when the test failed, or when it took no screenshot of its own.
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.failed or not getattr(request.node, "shots", 0):
        name = _safe(request.node.name)
        artifacts.mkdir(parents=True, exist_ok=True)
        for i, (_, page) in enumerate(opened):
            try:
                page.screenshot(path=str(artifacts / f"{name}{'' if i == 0 else f'-{i}'}-final.png"), full_page=True)
            except Exception as e:  # a crashed page must not hide the test's own failure
                print(f"no final screenshot for {name}: {e}", file=sys.stderr)
    for ctx, _ in opened:
        ctx.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)  # open_page's teardown reads rep_call
    return rep


@pytest.fixture
def shot(artifacts: Path, request: pytest.FixtureRequest) -> Callable:
    """``shot(page, step)`` saves ``<test>-<step>.png`` into the artefact folder."""

    def _shot(page, step: str) -> Path:
        path = artifacts / f"{_safe(request.node.name)}-{step}.png"
        artifacts.mkdir(parents=True, exist_ok=True)  # another session on this checkout may have emptied it
        page.screenshot(path=str(path), full_page=True)
        request.node.shots = getattr(request.node, "shots", 0) + 1
        return path

    return _shot


# --- servers -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # Linux: the server gets SIGTERM if pytest dies (e.g. a thread timeout's os._exit), so none is left behind.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Server:
    """A Jupyter-family server started for the tests."""

    url: str
    root: Path
    log: Path
    proc: subprocess.Popen

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else "(no log)"


def _server_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                     ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):  # fmt: skip
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env.update(JUPYTER_PLATFORM_DIRS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")  # fmt: skip
    env.pop("JUPYTER_TOKEN", None)
    # Voilà finds the shipped offline page template (interp-offline) here.
    env["JUPYTER_PATH"] = os.pathsep.join([jupyter_path(), *filter(None, [env.get("JUPYTER_PATH")])])
    # The fixture notebooks import their data builders (small_labels.py) from the fixtures folder.
    env["PYTHONPATH"] = os.pathsep.join([str(FIXTURES), *filter(None, [env.get("PYTHONPATH")])])
    # No "get Jupyter news?" toast over the notebook (and no news fetch).
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    return env


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # loopback only
            return r.status < 500
    except urllib.error.HTTPError as e:  # the server is up (a 404 answers too)
        return e.code < 500
    except Exception:
        return False


def start_server(cmd: list[str], root: Path, home: Path, url: str, ready: str, timeout: float = 120.0) -> Server:
    """Start ``cmd`` in ``root`` (own process group, log in ``home``) and wait until ``url + ready`` answers."""
    ready_url = url + ready
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=_server_env(home), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent)  # fmt: skip
    server = Server(url, root, log, proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[2]} exited with {proc.returncode} before answering:\n{server.log_tail()}")
        if _answers(ready_url):
            return server
        time.sleep(0.25)
    stop_server(server)
    raise RuntimeError(f"{cmd[2]} did not answer {ready_url} within {timeout:.0f} s:\n{server.log_tail()}")


def stop_server(server: Server) -> None:
    """Terminate the server, its kernels and anything else it started; SIGKILL what is left after 10 s."""
    procs = []
    try:
        import psutil

        procs = psutil.Process(server.proc.pid).children(recursive=True)
    except Exception:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.proc.pid, sig)
        except ProcessLookupError:
            pass
        for p in procs:
            try:
                p.send_signal(sig)
            except Exception:
                pass
        try:
            server.proc.wait(timeout=10)
            if sig == signal.SIGTERM and not any(_alive(p) for p in procs):
                return
        except subprocess.TimeoutExpired:
            continue


def _alive(p) -> bool:
    try:
        return p.is_running() and p.status() != "zombie"
    except Exception:
        return False


@pytest.fixture(scope="session")
def small_labels():
    """``fixtures/small_labels.py``'s twelve-unit LabelSet (the one the fixture notebook shows)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("browser_small_labels", FIXTURES / "small_labels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.small_labels()


def notebook_copy(src: Path, dest_dir: Path) -> Path:
    """Write the percent-format fixture ``src`` as an ``.ipynb`` in ``dest_dir`` (jupytext)."""
    import jupytext

    nb = jupytext.read(src)
    nb.metadata.pop("jupytext", None)  # else the copy would ask for a paired .py beside it
    dest = dest_dir / (src.stem + ".ipynb")
    jupytext.write(nb, dest)
    return dest


@pytest.fixture(scope="session")
def lab_server(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One JupyterLab for the session: no token, 127.0.0.1 only, the fixture notebooks in its root."""
    root, home = tmp_path_factory.mktemp("lab-root"), tmp_path_factory.mktemp("lab-home")
    notebook_copy(FIXTURES / "roundtrip.py", root)
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
           "--ServerApp.port_retries=0", "--allow-root", "--LabApp.expose_app_in_browser=True",
           # Nothing that would reach for the internet: no extension manager, news or update check.
           "--LabApp.extension_manager=readonly", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]  # fmt: skip
    server = start_server(cmd, root, home, f"http://127.0.0.1:{port}", "/api/status")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def voila_server(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Voilà serving the round-trip fixture notebook on 127.0.0.1 (one per test module)."""
    root, home = tmp_path_factory.mktemp("voila-root"), tmp_path_factory.mktemp("voila-home")
    nb = notebook_copy(FIXTURES / "roundtrip.py", root)
    port = _free_port()
    cmd = [sys.executable, "-m", "voila", str(nb), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
           "--Voila.port_retries=0", "--show_tracebacks=True", f"--template={VOILA_TEMPLATE}",
           # JupyterLab-only extensions fail to load inside Voilà's page (a console error, nothing else).
           "--VoilaConfiguration.extension_denylist=['jupyterlab-jupytext', '@voila-dashboards/jupyterlab-preview']",
           ]  # fmt: skip
    server = start_server(cmd, root, home, f"http://127.0.0.1:{port}/", "voila/static/")
    yield server
    stop_server(server)
