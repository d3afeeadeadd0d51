"""``interp atlas`` stages beyond the weights: the entropy check, SAE retrieval and search, Rosetta neurons."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from interp.cli import main
from interp.errors import InputError
from interp.reports.offline import external_references


def test_entropy_stage_writes_effects_and_figure(tmp_path, capsys):
    argv = ["atlas", "--model", "bible-lm-s0", "--entropy", "2", "--entropy-contexts", "4", "--no-figures",
            "--name", "e", "--root", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    out = tmp_path / "e" / "entropy"
    assert str(out) in capsys.readouterr().out
    df = pd.read_parquet(out / "effects.parquet")
    assert list(df.group) == ["candidate"] * 2 + ["random"] * 2 and (df.layer == 1).all()
    weights = pd.read_parquet(tmp_path / "e" / "weights" / "layer_01.parquet")
    assert set(df[df.group == "candidate"].neuron) == set(weights.nlargest(2, "null_norm").neuron)
    assert (df.total_abs > 0).all() and (df.direct_abs > 0).all()
    summary = json.loads((out / "done.json").read_text())
    assert summary["layer"] == 1 and summary["tokens"] == 4 * 64
    assert summary["top_ratio"] == pytest.approx(df[df.group == "candidate"].ratio.max())
    html = (out / "effects.html").read_text()
    assert "total = direct" in html and not external_references(html)


def test_stage_options_are_checked(tmp_path, capsys):
    assert main(["atlas", "--model", "bible-lm-s0", "--no-weights", "--entropy", "2", "--root", str(tmp_path)]) == 1
    assert "drop --no-weights" in capsys.readouterr().err
    assert main(["atlas", "--model", "bible-lm-s0", "--search", "q.txt", "--root", str(tmp_path)]) == 1
    assert "--sae" in capsys.readouterr().err
    assert main(["atlas", "--model", "bible-lm-s0", "--sae", "x", "--root", str(tmp_path)]) == 1
    assert "--retrieval" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # bad options leave no run directory behind
    with pytest.raises(InputError, match="--images"):
        from interp.atlas.run import AtlasConfig

        AtlasConfig(images=1)


@pytest.mark.slow
def test_sae_stages_rank_a_query_document_first(tmp_path, capsys):
    """With one pool document as the query, every representation ranks that document first."""
    import torch

    from interp.atlas.retrieval import SEARCH_SIMILARITY
    from sae_training.archs import get_arch
    from sae_training.config import SAESpec
    from sae_training.saelens_io import save_sae

    torch.manual_seed(0)
    hook = "blocks.0.hook_resid_post"
    sae = save_sae(get_arch("topk")(576, 1152, SAESpec(k=16)), tmp_path / "sae", {"hook_name": hook,
                   "model_name": "smollm2-135m"})  # fmt: skip
    topics = ["the lord", "a river", "bread and wine", "the king"]
    pool = [f"Chapter {i}. " + " ".join(topics[i % 4] for _ in range(i + 3)) for i in range(12)]
    (tmp_path / "pool.txt").write_text("\n\n".join(pool))
    (tmp_path / "q.txt").write_text(pool[7])
    argv = ["atlas", "--model", "smollm2-135m", "--no-weights", "--sae", str(sae), "--retrieval", "--doc-tokens", "32",
            "--search", str(tmp_path / "q.txt"), "--pool", str(tmp_path / "pool.txt"), "--top", "3", "--name", "s",
            "--root", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    run = tmp_path / "s"
    assert str(run / "search") in capsys.readouterr().out and not (run / "weights").exists()
    res = pd.read_parquet(run / "search" / "results.parquet")
    assert len(res) == 3 * 3 and list(res["rank"][:3]) == [1, 2, 3]
    for rep, g in res.groupby("representation"):
        assert g.similarity.iloc[0] == SEARCH_SIMILARITY[rep]
        assert g.iloc[0].doc == 7 and g.iloc[0].text == pool[7] and g.score.is_monotonic_decreasing
    assert pd.read_csv(run / "search" / "results.csv").shape[0] == 9
    prec = pd.read_parquet(run / "retrieval" / "precision.parquet")
    assert set(prec.representation) == {"sae", "raw", "text"} and prec.precision.between(0, 1).all()
    done = json.loads((run / "retrieval" / "done.json").read_text())
    assert set(done["precision_at_5"]) == {"sae/weighted_jaccard", "sae/cosine", "raw/cosine", "text/cosine"}
    # text and raw activations find a book's chapters far above chance
    assert done["precision_at_5"]["text/cosine"] > 2 * done["chance"]


@pytest.mark.slow
def test_rosetta_stage(tmp_path):
    argv = ["atlas", "--no-weights", "--rosetta", "--images", "8", "--name", "r", "--root", str(tmp_path)]
    assert main(argv) == 0
    table = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "r" / "rosetta").glob("layer_*.parquet")))
    assert set(table.side) == {"a", "b"} and table.max_corr.between(-1.01, 1.01).all()
    summary = json.loads((tmp_path / "r" / "rosetta" / "done.json").read_text())
    assert summary["n_tokens"] > 0 and any(k.startswith("a.L") for k in summary)
