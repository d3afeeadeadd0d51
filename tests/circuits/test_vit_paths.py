"""Influential neuron paths on DINOv2 + the shipped digit probe: the found path beats random paths."""

from __future__ import annotations

import pytest
import torch

from circuits.vit_paths import NeuronPathConfig, neuron_path, probe_readout, random_path_influence
from interp.errors import InputError


@pytest.fixture(scope="module")
def vit():
    from interp.datasets.images import load_images, preprocess
    from interp.models.dinov2 import load_dinov2
    from interp.models.probes import load_digit_probe

    probe, meta = load_digit_probe()
    model = load_dinov2(image_size=meta["image_size"])
    images = load_images("digits", "heldout", limit=1)
    return model, probe, preprocess(images.images, meta["image_size"])


@pytest.fixture(scope="module")
def path(vit):
    model, probe, x = vit
    cfg = NeuronPathConfig(layers=(0, 3, 6, 9), n_candidates=2, n_random=4, seed=0)
    return neuron_path(model, x[:1], probe_readout(probe), cfg)


def test_path_beats_random_paths(path):
    assert [layer for layer, _ in path.neurons] == [0, 3, 6, 9]
    assert path.target in range(10)
    final = path.influence[-1]
    assert final > 1.0  # ablating four neurons drops the class logit by more than one unit
    assert final > 3 * max(abs(v) for v in path.random_influence)
    assert final > path.influence[0]  # later neurons add to the joint effect


def test_influence_is_the_joint_ablation_drop(vit, path):
    """Recompute the path's joint influence with a plain hook (not the interventions layer)."""
    model, probe, x = vit
    units: dict[int, list[int]] = {}
    for layer, unit in path.neurons:
        units.setdefault(layer, []).append(unit)

    def zero(act, hook):
        act = act.clone()
        act[..., units[int(hook.name.split(".")[1])]] = 0
        return act

    read = probe_readout(probe, path.target)
    with torch.no_grad(), model.hooks(fwd_hooks=[(f"blocks.{i}.mlp.hook_post", zero) for i in units]):
        edited = float(read(model(x[:1])))
    assert path.base - edited == pytest.approx(path.influence[-1], abs=1e-3)
    # the random baseline uses the same measurement
    again = random_path_influence(model, x[:1], read, [0, 3, 6, 9], 4, seed=0)
    assert again == pytest.approx(path.random_influence, abs=1e-4)


def test_rejects_batches_and_bad_layers(vit):
    model, probe, x = vit
    with pytest.raises(InputError, match="one image"):
        neuron_path(model, torch.cat([x, x]), probe_readout(probe))
    with pytest.raises(InputError, match="layers"):
        neuron_path(model, x[:1], probe_readout(probe), NeuronPathConfig(layers=(12,)))
