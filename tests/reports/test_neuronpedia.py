"""Neuronpedia feature batches and MILAN's CSV: layout, types, batching, NaN handling, round trips, CLI."""

from __future__ import annotations

import csv
import gzip
import json
import math

import pytest
import torch

from interp.errors import InputError
from interp.labeling.results import ImageExemplar, LabelSet, Snippet, UnitLabel
from interp.reports.labels import write_label_report
from interp.reports.neuronpedia import default_layer_id, neuronpedia_records, read_neuronpedia, write_neuronpedia

HOOK = "blocks.1.mlp.hook_post"


def _unit(i: int, *, auroc: float = 0.9, dead: bool = False) -> UnitLabel:
    top = Snippet([" the", " cat", " sat"], [0.5, 4.0, None], [False, True, False], 1, 4.0, 10 + i)
    low = [Snippet([" a", " b"], [None, v], [False, False], 1, v, 20 + k) for k, v in enumerate((0.3, 1.2, 1.9))]
    nan = float("nan")
    return UnitLabel(
        i, "(never active)" if dead else f"token ' cat' {i}", "" if dead else "tok:cat", nan if dead else 1.5,
        nan if dead else 0.8, nan if dead else 0.01, 0 if dead else 8, 0 if dead else 10,
        scores={} if dead else {"auroc": auroc, "balanced_accuracy": 0.8, "shuffled_auroc": 0.5, "n": 400},
        exemplars=[] if dead else [top, top], lower=[] if dead else low,
        histogram={"counts": [90, 6, 3, 1], "edges": [0.0, 1.0, 2.0, 3.0, 4.0]},
        output_top=[" dog", " mat"], output_bottom=[" the"], threshold=0.0 if dead else 2.0,
        frac_positive=0.0 if dead else 0.1, max=0.0 if dead else 4.0, kind="tok",
    )  # fmt: skip


def _labels(n: int = 5) -> LabelSet:
    units = [_unit(i, dead=(i == 3)) for i in range(n)]
    units[1].scores["auroc"] = float("nan")
    return LabelSet(units, {"hook": HOOK, "model": "SmolLM2-135M", "describer": "offline"})


def test_records_follow_neuronpedia_feature_layout(tmp_path):
    files = write_neuronpedia(_labels(), tmp_path, batch_size=2)
    assert [f.name for f in files] == ["batch-0.jsonl.gz", "batch-1.jsonl.gz", "batch-2.jsonl.gz"]
    lines = gzip.decompress(files[0].read_bytes()).decode().splitlines()
    assert len(lines) == 2
    r = json.loads(lines[0])
    assert (r["modelId"], r["layer"], r["index"], r["sourceSetName"]) == ("smollm2-135m", "1-mlp-neurons", "0",
                                                                          "mlp-neurons")  # fmt: skip
    assert r["maxActApprox"] == 4.0 and r["frac_nonzero"] == 0.1
    assert r["freq_hist_data_bar_heights"] == [90, 6, 3, 1]
    assert r["freq_hist_data_bar_values"] == [0.5, 1.5, 2.5, 3.5]  # bin centres, parallel to the heights
    assert all(r[k] == [] for k in ("pos_str", "pos_values", "neg_str", "neg_values", "logits_hist_data_bar_values"))
    assert r["interp"]["output_top"] == [" dog", " mat"]  # no model: strings kept beside, Neuronpedia's stay parallel
    (e,) = r["explanations"]
    assert e["description"] == "token ' cat' 0" and e["scoreV1"] == 0.9 and e["typeName"] == "interp-milan-pmi"
    assert {s["explanationScoreTypeName"]: s["value"] for s in e["scores"]} == {
        "auroc": 0.9, "balanced_accuracy": 0.8, "shuffled_auroc": 0.5}  # fmt: skip
    acts = r["activations"]
    assert len(acts) == 2 + 3
    top = acts[0]
    assert top["tokens"] == [" the", " cat", " sat"] and top["values"] == [0.5, 4.0, 0.0]
    assert (top["maxValue"], top["maxValueTokenIndex"], top["binMin"], top["binMax"]) == (4.0, 1, -1.0, 4.0)
    assert top["binContains"] == pytest.approx(4 / 100)  # histogram mass above the 2.0 threshold
    lower = acts[2:]  # intervals of (0, 2.0) in 5 bins of 0.4, highest first
    assert [(a["binMin"], a["binMax"]) for a in lower] == [pytest.approx((1.6, 2.0)), pytest.approx((1.2, 1.6)),
                                                           pytest.approx((0.0, 0.4))]  # fmt: skip
    assert [a["maxValue"] for a in lower] == [1.9, 1.2, 0.3]
    assert lower[0]["binContains"] == pytest.approx(0.4 * 6 / 100)  # 0.4 of the [1, 2) bar
    assert lower[2]["binContains"] == pytest.approx(0.0)  # the [0, 1) bar is the non-firing 90%
    for a in acts:
        assert isinstance(a["values"][0], float) and isinstance(a["maxValueTokenIndex"], int)
        assert a["modelId"] == "smollm2-135m" and a["index"] == "0" and isinstance(a["dataIndex"], str)


def test_nan_handling_and_dead_units(tmp_path):
    write_neuronpedia(_labels(), tmp_path)
    text = gzip.decompress((tmp_path / "batch-0.jsonl.gz").read_bytes()).decode()
    assert "NaN" not in text and "Infinity" not in text  # strict JSON
    recs = read_neuronpedia(tmp_path)
    assert recs[1]["explanations"][0]["scoreV1"] == 0.0  # non-null in Neuronpedia: 0 ...
    assert recs[1]["explanations"][0]["scores"][0] == {
        "explanationScoreTypeName": "auroc",
        "explanationScoreModelName": "interp-heldout",
        "value": None,
    }
    dead = recs[3]
    assert dead["explanations"] == [] and dead["activations"] == [] and dead["maxActApprox"] == 0.0
    assert dead["interp"]["pmi"] is None and dead["frac_nonzero"] == 0.0
    u = _unit(0)
    u.max, u.frac_positive, u.exemplars[0].acts[0] = float("nan"), float("inf"), float("nan")
    u.histogram["counts"][0] = float("nan")
    (r,) = neuronpedia_records(LabelSet([u], {"hook": HOOK}), model_id="m")
    assert r["maxActApprox"] is None and r["frac_nonzero"] == 0.0  # nullable -> null, non-null -> 0
    assert r["activations"][0]["values"][0] == 0.0 and r["freq_hist_data_bar_heights"][0] == 0.0
    json.dumps(r, allow_nan=False)


def test_round_trip_batches_and_stale_files(tmp_path):
    labels = _labels(7)
    write_neuronpedia(labels, tmp_path, batch_size=2)
    assert len(list(tmp_path.glob("batch-*.jsonl.gz"))) == 4
    files = write_neuronpedia(labels, tmp_path, batch_size=3, model_id="m", layer_id="1-mlp-x")
    assert len(files) == 3 and sorted(p.name for p in tmp_path.iterdir()) == [f.name for f in files]  # stale gone
    recs = read_neuronpedia(tmp_path)
    assert [int(r["index"]) for r in recs] == list(range(7))
    assert recs == neuronpedia_records(labels, model_id="m", layer_id="1-mlp-x")
    assert (
        files[0].read_bytes()
        == write_neuronpedia(labels, tmp_path / "again", batch_size=3, model_id="m", layer_id="1-mlp-x")[0].read_bytes()
    )  # deterministic gzip
    with pytest.raises(InputError, match="no batch-N"):
        read_neuronpedia(tmp_path / "empty")


def test_ids_default_and_validation():
    assert default_layer_id(LabelSet([], {"hook": "blocks.6.hook_resid_post", "sae": "runs/sae"})) == "6-res-sae"
    assert default_layer_id(LabelSet([], {"hook": "blocks.2.attn.hook_z"})) == "2-att-heads"
    with pytest.raises(InputError, match="layer_id"):
        default_layer_id(LabelSet([], {}))
    with pytest.raises(InputError, match="model_id"):
        neuronpedia_records(LabelSet([_unit(0)], {"hook": HOOK}))
    with pytest.raises(InputError, match="not a Neuronpedia id"):
        neuronpedia_records(_labels(), layer_id="Layer 1")


def test_image_units_list_exemplars_not_token_activations():
    u = _unit(0)
    u.exemplars, u.lower = [], []
    u.images = [ImageExemplar(3, "img/3", 2.5, "01", "09", 1)]
    (r,) = neuronpedia_records(LabelSet([u], {"hook": "blocks.0.mlp.hook_post"}), model_id="vit")
    assert r["activations"] == [] and r["interp"]["images"] == [{"image": 3, "key": "img/3", "value": 2.5}]


class _Tok:
    def __len__(self) -> int:
        return 6

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [f"t{i}" for i in ids]


class _Model(torch.nn.Module):
    """What the logit lens reads: ``W_out[layer]`` ``[d_mlp, d_model]``, ``W_U`` ``[d_model, d_vocab]``."""

    def __init__(self) -> None:
        super().__init__()
        self.W_out = torch.zeros(2, 5, 3)
        self.W_out[1, 2] = torch.tensor([1.0, 0.0, 0.0])
        self.W_U = torch.tensor([[3.0, -2.0, 1.0, 0.0, 0.5, -1.0]] + [[0.0] * 6] * 2)
        self.tokenizer = _Tok()


def test_logit_values_from_the_model():
    (r,) = neuronpedia_records(LabelSet([_unit(2)], {"hook": HOOK, "model": "m"}), model=_Model(), n_logits=2)
    assert r["pos_str"] == ["t0", "t2"] and r["pos_values"] == [3.0, 1.0]
    assert r["neg_str"] == ["t1", "t5"] and r["neg_values"] == [-2.0, -1.0]
    assert len(r["logits_hist_data_bar_heights"]) == len(r["logits_hist_data_bar_values"]) == 30
    assert sum(r["logits_hist_data_bar_heights"]) == 6


def test_milan_csv_has_exactly_four_columns(tmp_path):
    paths = write_label_report(_labels(), tmp_path)
    rows = list(csv.reader(paths["milan"].open()))
    assert rows[0] == ["layer", "unit", "description", "score"]
    assert rows[1] == [HOOK, "0", "token ' cat' 0", "0.9"]
    assert rows[2][3] == "" and rows[4][3] == ""  # NaN and missing scores: empty cells
    assert len(rows) == 6 and all(len(r) == 4 for r in rows)
    full = list(csv.reader(paths["csv"].open()))
    assert [r[:3] for r in full] == [r[:3] for r in rows]  # labels.csv starts with the same columns


def test_cli_report_writes_neuronpedia_and_milan(tmp_path, capsys):
    from interp.cli import main

    (tmp_path / "labels.json").write_text(_labels().to_json())
    assert main(["report", str(tmp_path), "--neuronpedia", "--batch-size", "2"]) == 0
    assert "3 batch file(s)" in capsys.readouterr().out
    recs = read_neuronpedia(tmp_path / "neuronpedia")
    assert len(recs) == 5 and recs[0]["layer"] == "1-mlp-neurons" and (tmp_path / "milan.csv").is_file()
    assert main(["report", str(tmp_path), "--neuronpedia", str(tmp_path / "np"), "--model-id", "gpt2-small",
                 "--layer-id", "1-mlp-test"]) == 0  # fmt: skip
    assert read_neuronpedia(tmp_path / "np")[0]["modelId"] == "gpt2-small"
    assert not math.isnan(read_neuronpedia(tmp_path / "np")[0]["frac_nonzero"])
