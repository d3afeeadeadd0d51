"""Steering and ablation of DINOv2 measured against the shipped digit probe (interp.steering.vision)."""

from __future__ import annotations

import json

import pytest
import torch

from interp.errors import InputError, InterpError
from interp.steering.vision import (
    ablation_sweep,
    class_direction,
    digit_readout,
    summary,
    unit_attribution,
    vision_sweep,
)

TARGET = 3
HOOK = "blocks.8.hook_resid_post"


@pytest.fixture(scope="module")
def digits():
    """The readout and small seeded image sets: 120 training digits, held-out digits split by class."""
    from interp.datasets.images import load_images, preprocess

    readout = digit_readout()
    train, held = load_images("digits", "train", limit=120), load_images("digits", "heldout")
    x_train, x_held = preprocess(train.images, readout.image_size), preprocess(held.images, readout.image_size)
    y_train, y_held = torch.tensor(train.labels), torch.tensor(held.labels)
    others, same = x_held[y_held != TARGET], x_held[y_held == TARGET]
    return {"readout": readout, "train": (x_train, y_train), "others": others[:8], "neutral": others[8:16],
            "same": same[:8], "held": (x_held[:40], y_held[:40])}  # fmt: skip


def _means(result, method, x):
    return next(r for r in result.rows if r.method == method and r.coefficient == x).means()


def test_class_direction_steers_toward_the_class_far_more_than_random(digits, n_hooks, tmp_path):
    d = digits
    res = vision_sweep(d["readout"], HOOK, TARGET, d["others"], d["neutral"], *d["held"], (0.0, 2.0),
                       train=d["train"], n_random=1)  # fmt: skip
    assert n_hooks(d["readout"].model) == 0
    zero = _means(res, "vector", 0.0)
    assert zero["effect_mean"] == 0.0 and zero["kl_mean"] == pytest.approx(0.0, abs=1e-6)  # an empty edit is exact
    vec, rnd = _means(res, "vector", 2.0), _means(res, "random", 2.0)
    assert vec["effect_mean"] > 3.0 and vec["effect_mean"] > rnd["effect_mean"] + 3.0  # nats of log p(class 3)
    assert vec["target_prob_mean"] > 0.2 > res.meta["base_target_prob_mean"]
    row = next(r for r in res.rows if r.method == "vector" and r.coefficient == 2.0)
    assert len(row.effect) == 8 and len(row.kl) == 8 and len(row.accuracy) == len(row.loss_delta) > 0
    files = res.save(tmp_path)
    saved = json.loads(files["json"].read_text())
    assert saved["meta"]["target_strings"] == ["3"] and "accuracy_mean" in saved["rows"][0]
    assert "KL over non-target classes" in files["html"].read_text()


def test_ablating_attributed_neurons_removes_the_class_random_ones_do_not(digits):
    d = digits
    hook = "blocks.8.mlp.hook_post"
    ranking = unit_attribution(d["readout"], d["same"], TARGET, hook).argsort(descending=True)
    assert ranking.shape == (1536,)
    res = ablation_sweep(d["readout"], hook, TARGET, d["same"], d["neutral"], *d["held"], (64,), ranking=ranking)
    curves = summary(res)
    assert curves["attributed"][64.0] < -1.0  # log p(3) on images of 3 falls by over a nat
    assert abs(curves["random"][64.0]) < 0.3 * abs(curves["attributed"][64.0])
    assert res.meta["axes"]["x"] == "units ablated" and res.meta["ranking_head"][:5] == ranking[:5].tolist()


def test_bad_input_is_named(digits):
    d = digits
    r = d["readout"]
    with pytest.raises(InputError, match="out of range"):
        class_direction(r, *d["train"], 10, HOOK)
    with pytest.raises(InputError, match="counts"):
        ablation_sweep(r, "blocks.8.mlp.hook_post", TARGET, d["same"], d["neutral"], *d["held"], (0, 5000),
                       ranking=torch.arange(1536))  # fmt: skip
    with pytest.raises(InputError, match="image_size=56"):
        r.logits(torch.zeros(2, 3, 32, 32))
    with pytest.raises(InputError, match="direction="):
        vision_sweep(r, HOOK, TARGET, d["others"], d["neutral"], *d["held"])
    with pytest.raises(InterpError, match="non-finite|NaN|Inf"):
        vision_sweep(r, HOOK, TARGET, d["others"], d["neutral"], *d["held"], (float("inf"),),
                     direction=torch.ones(384), n_random=0)  # fmt: skip
    assert sum(len(hp._forward_hooks) for hp in r.model.hook_dict.values()) == 0  # removed after the error


def test_cli_vision_ablation(tmp_path, capsys):
    from interp.cli import main

    out = tmp_path / "abl"
    assert main(["steer", "--model", "dinov2-s14", "--target-class", "3", "--layers", "8", "--ablate", "64",
                 "--n-images", "4", "--out", str(out)]) == 0  # fmt: skip
    said = capsys.readouterr().out
    assert "attributed" in said and (out / "sweep.json").is_file()
    assert main(["steer", "--model", "smollm2-135m", "--positive", "a", "--negative", "b", "--out",
                 str(out)]) == 1  # fmt: skip
    assert "--target is required" in capsys.readouterr().err
