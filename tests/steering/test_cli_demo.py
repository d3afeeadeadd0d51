"""``interp steer``'s parser and argument errors; the demo's choice of a labelled latent."""

from __future__ import annotations

import argparse

import pytest
import torch

from interp.errors import InputError
from interp.steering.cli import _coefficients, _directions, register
from interp.steering.demo import pick_latent


def _parser():
    parser = argparse.ArgumentParser(prog="interp")
    register(parser.add_subparsers(dest="command"))
    return parser


def test_help_and_defaults(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["steer", "--help"])
    out = capsys.readouterr().out
    assert "--coefficients" in out and "effect against cost" in out and "examples:" in out
    args = _parser().parse_args(["steer", "--target", " dog", "--positive", "a", "--negative", "b", "--out", "x"])
    assert args.func.__name__ == "run_steer" and args.model == "smollm2-135m"


def test_argument_errors(model):
    base = ["steer", "--target", " dog", "--out", "x"]
    with pytest.raises(InputError, match="exactly one direction source"):
        _directions(_parser().parse_args(base), model)
    with pytest.raises(InputError, match="LAYER:INDEX"):
        _directions(_parser().parse_args(base + ["--neuron", "3"]), model)
    with pytest.raises(InputError, match="--coefficients"):
        _coefficients("1,two")
    vecs, _ = _directions(_parser().parse_args(base + ["--neuron", "1:5"]), model)
    assert list(vecs) == ["blocks.1.hook_resid_post"] and vecs["blocks.1.hook_resid_post"].shape == (64,)


def test_pick_latent_prefers_next_token_labels():
    def unit(i, key, auroc, corr):
        return {"unit": i, "key": key, "label": key, "scores": {"auroc": auroc, "correlation": corr}}

    labels = {"units": [unit(0, "tok:5", 1.0, 0.9), unit(1, "next:7", 0.95, 0.5), unit(2, "next:8", 0.95, 0.7),
                        unit(3, "next:9", 0.5, 0.99), unit(4, "and(tok:1,pos>=2)", 1.0, 1.0), unit(99, "next:3", 1, 1)]}
    best = pick_latent(labels, d_sae=10)
    assert (best["unit"], best["token_id"], best["label_kind"]) == (2, 8, "next")
    assert pick_latent({"units": labels["units"][:1]}, d_sae=10)["token_id"] == 5
    with pytest.raises(InputError, match="single-token label"):
        pick_latent({"units": labels["units"][3:5]}, d_sae=10)


def test_screening_ranks_candidates_by_measured_effect_over_random(model, sae):
    """A latent whose decoder direction is the target's unembedding direction wins the screen."""
    from interp.steering.demo import candidate_latents, screen_latents
    from interp.steering.evaluate import target_lift

    with torch.no_grad():
        sae.W_dec[3] = model.W_U[:, 42] / model.W_U[:, 42].norm()  # writes token 42 straight into the logits
    units = [{"unit": i, "key": f"next:{42 if i == 3 else 7}", "label": f"u{i}", "max": 6.0,
              "scores": {"auroc": 0.99, "correlation": 0.5 + 0.01 * i}} for i in (1, 2, 3)]  # fmt: skip
    cands = candidate_latents({"units": units}, d_sae=128, n=2)
    assert [c["unit"] for c in cands] == [3, 2]  # highest correlation first, cut to n
    prompts = torch.randint(0, 500, (3, 6), generator=torch.Generator().manual_seed(0))
    screen = screen_latents(model, sae, "blocks.0.hook_resid_post", candidate_latents({"units": units}, 128),
                            prompts, coefficient=4.0)  # fmt: skip
    assert screen[0]["unit"] == 3 and screen[0]["margin"] > 1.0 and screen[0]["margin"] > screen[1]["margin"]
    assert target_lift(model, prompts, 42, []) == [0.0, 0.0, 0.0]
