"""Shared fixtures of the view tests: a view's exported page rendered by Debian's headless chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def render_dom() -> Callable[..., str]:
    """``render_dom(path, script="")``: the page's DOM after its scripts (then ``script``) ran, from ``file://``.

    Skips without chromium, but fails when ``CI`` is set: `make setup` installs it.
    """
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; `make setup` installs it (CI runs this test).")
        pytest.skip("chromium is not installed (apt-get install chromium)")

    def render(path: Path, script: str = "") -> str:
        if script:  # run after the view rendered, e.g. to drag a slider or hover an edge
            path.write_text(path.read_text().replace("</body>", f"<script>{script}</script></body>"))
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--dump-dom", path.as_uri()]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout

    return render
