"""Atlas tables on disk (one Parquet file per layer) and the columns reports show beside labels.

The atlas keeps one row per neuron; :func:`save_tables` writes one
``layer_LL.parquet`` per layer (pyarrow; token lists stay list columns) and
:func:`load_tables` reads them back into one DataFrame. :func:`atlas_columns`
picks the few per-unit scores worth printing next to a neuron's label in the
neuron-description reports.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from interp.cache import atomic_write
from interp.errors import InputError

__all__ = ["save_tables", "write_parquet", "load_tables", "load_atlas", "atlas_columns", "REPORT_COLUMNS"]

#: Columns :func:`atlas_columns` keeps, in order, when the table has them.
REPORT_COLUMNS = ("io_class", "cos_in_out", "vocab_kurtosis", "vocab_skew", "null_frac", "freq_cos",
                  "act_frequency", "max_corr")  # fmt: skip


def save_tables(table: Any, out_dir: Path | str) -> list[Path]:
    """Write ``table`` as one ``layer_LL.parquet`` per layer under ``out_dir`` (atomically).

    Returns:
        The files written, by layer.
    """
    _check(table, ("layer", "neuron"))
    out = Path(out_dir)
    paths = []
    for layer, part in table.groupby("layer", sort=True):
        paths.append(write_parquet(part.reset_index(drop=True), out / f"layer_{int(layer):02d}.parquet"))
    return paths


def write_parquet(df: Any, path: Path | str) -> Path:
    """Write ``df`` (no index) to ``path`` with pyarrow, atomically: a crash leaves no partial file."""
    buf = io.BytesIO()
    df.to_parquet(buf, engine="pyarrow", index=False)
    atomic_write(Path(path), lambda f: f.write(buf.getvalue()))
    return Path(path)


def load_tables(out_dir: Path | str) -> Any:
    """Read every ``layer_*.parquet`` under ``out_dir`` into one DataFrame sorted by layer and neuron.

    Raises:
        InputError: the folder holds no atlas tables.
    """
    import pandas as pd

    files = sorted(Path(out_dir).glob("layer_*.parquet"))
    if not files:
        raise InputError(f"{out_dir} holds no atlas tables (layer_*.parquet). Run `interp atlas` first.")
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return df.sort_values(["layer", "neuron"]).reset_index(drop=True)


def load_atlas(run_dir: Path | str) -> Any:
    """One table of an ``interp atlas`` run: weight scores, plus activation statistics and model A's
    correlation columns (``max_corr``, ``match_layer``, ``match_neuron``, ``baseline_max_corr``) when
    those stages ran, merged on ``(layer, neuron)``."""
    run = Path(run_dir)
    table = load_tables(run / "weights")
    if (run / "activations").is_dir() and list((run / "activations").glob("layer_*.parquet")):
        table = table.merge(load_tables(run / "activations"), on=["layer", "neuron"], how="left")
    if (run / "correlation").is_dir() and list((run / "correlation").glob("layer_*.parquet")):
        corr = load_tables(run / "correlation")
        corr = corr[corr.side == "a"].drop(columns="side")
        table = table.merge(corr, on=["layer", "neuron"], how="left")
    return table


def atlas_columns(table: Any) -> Any:
    """The per-unit atlas columns worth showing beside labels, indexed by ``(layer, neuron)``.

    Args:
        table: an atlas table (weight scores, optionally merged with activation
            statistics and cross-model correlations).

    Returns:
        A DataFrame with the :data:`REPORT_COLUMNS` the table has, floats rounded to 3 places.
    """
    _check(table, ("layer", "neuron"))
    keep = [c for c in REPORT_COLUMNS if c in table.columns]
    out = table.set_index(["layer", "neuron"])[keep].copy()
    floats = out.select_dtypes("float").columns
    out[floats] = out[floats].round(3)
    return out


def _check(table: Any, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in getattr(table, "columns", ())]
    if missing:
        raise InputError(f"expected an atlas table (a DataFrame with columns {list(columns)}); missing {missing}. "
                         "Build one with interp.atlas.weight_scores.")  # fmt: skip
