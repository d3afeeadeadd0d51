"""Quiet loading: no per-load progress bars or chatter from transformers and TransformerLens.

Loading a converted model takes well under a second; transformers' "Loading
weights" bar and TransformerLens's prints would only bury the workbench's own
progress output in notebooks and CLIs. Real warnings still show.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

__all__ = ["quiet_hf", "quiet_transformer_lens"]


@contextlib.contextmanager
def quiet_hf() -> Iterator[None]:
    """Hide transformers' per-load progress bars inside the block, restoring the setting after."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def quiet_transformer_lens() -> Iterator[None]:
    """TransformerLens prints and logs chatter on load; keep notebooks and CLIs clean.

    TransformerLens 3.9 also marks ``HookedTransformer`` deprecated in favour of
    ``TransformerBridge``; SAELens trains on ``HookedTransformer`` only, so it
    is used on purpose and that one warning is silenced by its text.
    """
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="HookedTransformer is deprecated", category=DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)
