"""The view base: synced state without widget machinery, and the standalone export's rules."""

from __future__ import annotations

import json
import re

import pytest
import traitlets

from interp.errors import InputError
from interp.widgets._base import View, standalone_script


class _Counter(View):
    _esm = "export default { render({ model, el }) { el.textContent = 'n=' + model.get('n'); } }"
    n = traitlets.Int(3).tag(sync=True)
    words = traitlets.List(["a</script>b"]).tag(sync=True)


def test_state_is_the_views_own_traits():
    assert _Counter().state() == {"n": 3, "words": ["a</script>b"]}


def test_export_is_self_contained_and_escapes_text(tmp_path):
    path = _Counter(n=7).export_html(tmp_path / "c.html")
    html = path.read_text()
    assert "export default" not in html and "window.__interpWidget =" in html
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|https?://", html)
    blob = re.search(r"<script id='interp-state' type='application/json'>(.*?)</script>", html, re.S).group(1)
    assert json.loads(blob)["n"] == 7 and "</script>b" not in blob  # dataset text cannot end the tag


def test_export_refuses_imports_nan_and_bad_suffix(tmp_path):
    with pytest.raises(InputError, match="imports other modules"):
        standalone_script("import x from 'y';\nexport default { render() {} }")
    with pytest.raises(InputError, match="exactly one"):
        standalone_script("const a = 1;")
    bad = _Counter()
    bad.add_traits(x=traitlets.Float(float("nan")).tag(sync=True))
    with pytest.raises(InputError, match="NaN or Inf"):
        bad.export_html(tmp_path / "bad.html")
    with pytest.raises(InputError, match="should end in .html"):
        _Counter().export_html(tmp_path / "c.txt")
