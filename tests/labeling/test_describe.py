"""Describers rephrase labels without touching their keys or scores; the OpenAI-compatible one talks to a
fake server on loopback; the local one runs SmolLM2's chat template."""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from interp.errors import InputError, InterpError, UnknownNameError
from interp.labeling.describe import OpenAIDescriber, describe_labels, describer, prompt


@pytest.fixture(scope="module")
def few(planted):
    """Three labelled planted units (a copy: describing edits them in place)."""
    _, _, _, labels = planted
    out = copy.deepcopy(labels)
    out.units = out.units[:3]
    return out


class _Fake(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Fake.seen.append((self.path, self.headers.get("Authorization"), body))
        text = "  \"Words about the unit.\"\nignored second line"
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_offline_is_the_label_and_openai_talks_to_a_local_server(few, monkeypatch):
    keys = [(u.key, dict(u.scores)) for u in few.units]
    describe_labels(few, "offline")
    assert [u.description for u in few.units] == [u.label for u in few.units]
    server = HTTPServer(("127.0.0.1", 0), _Fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        d = describer("openai", base_url=f"http://127.0.0.1:{server.server_port}/v1", model="fake-model")
        describe_labels(few, d)
    finally:
        server.shutdown()
    assert [u.description for u in few.units] == ["Words about the unit"] * 3
    assert [(u.key, u.scores) for u in few.units] == keys  # the candidate and its scores are untouched
    path, auth, body = _Fake.seen[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test" and body["model"] == "fake-model"
    assert few.units[0].label in body["messages"][1]["content"] and few.meta["describer"] == "openai"


def test_describer_errors_name_the_fix(few, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(InputError, match="describer-url"):
        OpenAIDescriber()
    with pytest.raises(UnknownNameError):
        describer("gpt")
    dead = OpenAIDescriber(base_url="http://127.0.0.1:9", timeout=2.0)  # port 9 (discard): nothing listens
    with pytest.raises(InterpError, match="127.0.0.1:9"):
        dead.describe(few.units[0], few.meta)
    assert "at most 8 words" in prompt(few.units[0], few.meta)


@pytest.mark.slow
def test_local_lm_phrases_labels(few):
    one = copy.deepcopy(few)
    one.units = one.units[:1]
    describe_labels(one, describer("local", max_new_tokens=8))
    text = one.units[0].description
    assert text and len(text.split()) <= 12 and "<|im_" not in text and one.meta["describer"] == "local"
    assert one.units[0].key == few.units[0].key and one.units[0].scores == few.units[0].scores
