"""SteeringPlayground: the user's generate function drives the view; errors are shown; a real model steers."""

from __future__ import annotations

import logging

import pytest
import torch

from interp.errors import InputError, UnknownNameError
from interp.widgets.steering import SteeringPlayground


class FakeGenerate:
    """A deterministic generate function that records its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, prompt: str, direction: str, coefficient: float) -> str:
        self.calls.append((prompt, direction, coefficient))
        if direction == "broken":
            raise ValueError(f"no vector for {direction!r}")
        if direction == "wrong-type":
            return 42
        return f"<{prompt}|{direction}|{coefficient:+.1f}>"


def test_generations_follow_the_traits_and_are_cached():
    gen = FakeGenerate()
    view = SteeringPlayground(gen, ["pos", "neg"], prompt="hi", coefficient=2.0)
    assert (view.unsteered, view.steered, view.error, view.busy) == ("<hi|pos|+0.0>", "<hi|pos|+2.0>", "", False)
    assert gen.calls == [("hi", "pos", 0.0), ("hi", "pos", 2.0)]
    busy = []
    view.observe(lambda c: busy.append(c["new"]), names="busy")
    view.coefficient = 3.0  # the unsteered text is cached: one call
    assert view.steered == "<hi|pos|+3.0>" and gen.calls[-1] == ("hi", "pos", 3.0) and len(gen.calls) == 3
    assert busy == [True, False]
    view.set_state({"direction": "neg"})  # what a change in the browser's selector does
    assert (view.unsteered, view.steered) == ("<hi|neg|+0.0>", "<hi|neg|+3.0>") and len(gen.calls) == 5
    view.set_state({"prompt": "yo", "direction": "pos"})
    assert view.steered == "<yo|pos|+3.0>"
    n = len(gen.calls)
    view.prompt, view.coefficient = "hi", 2.0  # seen before: no call
    view.coefficient = 0.0  # unsteered on both sides
    assert view.steered == view.unsteered == "<hi|pos|+0.0>" and len(gen.calls) == n
    view._handle_custom_msg({"event": "regenerate"}, [])  # the Generate button with nothing changed: a fresh call
    assert len(gen.calls) == n + 1
    view.clear_cache()
    view.coefficient = 1.0
    assert len(gen.calls) == n + 3


def test_errors_from_generate_are_shown_and_logged(caplog):
    gen = FakeGenerate()
    view = SteeringPlayground(gen, ["pos", "broken", "wrong-type"], prompt="hi", coefficient=1.0)
    with caplog.at_level(logging.ERROR, logger="interp.widgets.steering"):
        view.direction = "broken"
    assert view.error == "ValueError: no vector for 'broken'" and view.steered == view.unsteered == "" and not view.busy
    assert isinstance(view.last_exception, ValueError)
    assert caplog.records and caplog.records[-1].exc_info and "generate('hi', 'broken', 1.0)" in caplog.text
    view.direction = "wrong-type"
    assert "returned int, expected the generated text as a str" in view.error
    view.direction = "pos"
    assert view.error == "" and view.steered == "<hi|pos|+1.0>" and view.last_exception is None


def test_bad_arguments_are_named():
    gen = FakeGenerate()
    with pytest.raises(InputError, match="non-empty list"):
        SteeringPlayground(gen, [])
    with pytest.raises(InputError, match=r"duplicate names \['a'\]"):
        SteeringPlayground(gen, ["a", "b", "a"])
    with pytest.raises(UnknownNameError, match="'lve'.*love"):
        SteeringPlayground(gen, ["love", "hate"], direction="lve")
    with pytest.raises(InputError, match="outside coefficient_range"):
        SteeringPlayground(gen, ["a"], coefficient=50.0)
    with pytest.raises(InputError, match="min < max"):
        SteeringPlayground(gen, ["a"], coefficient_range=(5.0, -5.0))
    view = SteeringPlayground(gen, ["love", "hate"])
    with pytest.raises(UnknownNameError, match="hate"):
        view.direction = "hat"
    assert gen.calls == [("", "love", 0.0), ("", "love", 1.0)]



def test_exported_playground_shows_the_last_generations_in_chromium(tmp_path, render_dom):
    view = SteeringPlayground(FakeGenerate(), ["pos", "neg", "broken"], prompt="a <b>", coefficient=2.5)
    view.direction = "neg"
    dom = render_dom(view.export_html(tmp_path / "steer.html"))
    assert 'data-rendered="1"' in dom
    assert '<span class="sp-g">&lt;a &lt;b&gt;|neg|+2.5&gt;</span>' in dom  # the text, escaped, not markup
    assert '<span class="sp-g">&lt;a &lt;b&gt;|neg|+0.0&gt;</span>' in dom
    assert '<option value="neg">neg</option>' in dom and "steered (neg × 2.5)" in dom
    assert "regenerating needs a running kernel" in dom and dom.count("disabled") >= 4
    view.direction = "broken"
    dom = render_dom(view.export_html(tmp_path / "broken.html"))
    assert "ValueError: no vector for 'broken'</div>" in dom


@pytest.fixture(scope="module")
def lm():
    from interp import load_model

    return load_model("smollm2-135m", n_layers=2)


def test_for_model_steers_a_real_model_greedily(lm):
    from interp.steering import Steer, generate

    hook, prompt = "blocks.1.hook_resid_post", "The cat sat on the"
    v = torch.randn(lm.cfg.d_model, generator=torch.Generator().manual_seed(0))
    vectors = {"random": (hook, v), "neuron 0.5": ("blocks.0.hook_mlp_out", lm.W_out[0, 5])}
    view = SteeringPlayground.for_model(lm, vectors, prompt=prompt, coefficient=8.0, max_new_tokens=3)
    plain = generate(lm, prompt, max_new_tokens=3).text[0]
    steered = generate(lm, prompt, Steer(hook, v, scale=8.0), max_new_tokens=3).text[0]
    assert view.unsteered == plain and view.steered == steered and steered != plain and view.error == ""
    view.direction = "neuron 0.5"
    assert view.unsteered == plain and view.error == ""
    with pytest.raises(UnknownNameError, match="blocks.1.hook_resid_post"):
        SteeringPlayground.for_model(lm, {"x": ("blocks.1.hook_resid_pots", v)})
    with pytest.raises(InputError, match=r"finite 1-D tensor \[d\], got shape \(2, 576\)"):
        SteeringPlayground.for_model(lm, {"x": (hook, torch.zeros(2, 576))})
    wide = SteeringPlayground.for_model(lm, {"x": (hook, torch.zeros(7))}, max_new_tokens=2)
    assert "steering vector has shape (7,)" in wide.error  # the model's own error, shown in the view
