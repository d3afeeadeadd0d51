"""Describers: turn a unit's winning candidates into a short phrase, without changing what is measured.

Labeling picks a *candidate* (a predicate, :mod:`interp.labeling.candidates`)
and scores it on held-out data. A describer only rephrases it for people: the
phrase is stored in :attr:`UnitLabel.description`, while the candidate's key,
grounding and scores stay as they were, so a phrased label is scored exactly as
its candidate was, and the scorer is never the model that wrote the phrase.

Three describers, chosen by name (``interp label --describer``):

``offline`` (default)
    the candidate's own text; needs nothing.
``local``
    a local chat LM (the registry's SmolLM2-135M-Instruct, prompted through its
    tokenizer's chat template) writes the phrase; offline.
``openai``
    any OpenAI-compatible ``/v1/chat/completions`` endpoint; base URL and key
    from the arguments or ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``. The only
    describer that uses the network, and only when asked for.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from interp.errors import InputError, InterpError, UnknownNameError
from interp.labeling.results import LabelSet, UnitLabel

__all__ = ["Describer", "OfflineDescriber", "LocalLMDescriber", "OpenAIDescriber", "describer", "describe_labels",
           "prompt"]  # fmt: skip

DESCRIBERS = ("offline", "local", "openai")
_SYSTEM = "You name what a neuron of a neural network detects. Answer with one short phrase, nothing else."


@runtime_checkable
class Describer(Protocol):
    """Anything with ``name`` and ``describe(unit, meta) -> str``."""

    name: str

    def describe(self, unit: UnitLabel, meta: dict[str, Any]) -> str:
        """A short phrase for ``unit`` (``meta``: the labeling's provenance)."""
        ...


def prompt(unit: UnitLabel, meta: dict[str, Any]) -> str:
    """The user message: the winning candidate, runner-ups and a few exemplars, as plain text."""
    where = meta.get("hook") or "a layer"
    kind = "image patches" if meta.get("modality") == "image" else "tokens"
    lines = [f"A unit in {where} fires on {kind} described by: {unit.label}."]
    if unit.alternatives:
        lines.append("Runner-up descriptions: " + "; ".join(a["label"] for a in unit.alternatives[:3]) + ".")
    ex = ["".join(t if not on else f"[{t}]" for t, on in zip(s.tokens, s.active, strict=True))
          for s in unit.exemplars[:3]]  # fmt: skip
    if ex:
        lines.append("Examples (active tokens in brackets): " + " | ".join(e.replace("\n", " ") for e in ex))
    if unit.output_top:
        lines.append("It promotes the tokens: " + ", ".join(repr(t) for t in unit.output_top[:5]) + ".")
    lines.append("Describe what it detects in at most 8 words.")
    return "\n".join(lines)


#: A sentence opening that restates the question ("A unit in a layer detects the presence of ..."): dropped.
_PREAMBLE = re.compile(r"^(the|a|an|this)?\s*(unit|neuron)\b.*?\b(detects|fires on|responds to|is)\s+"
                       r"(the presence of\s+)?", re.IGNORECASE)  # fmt: skip


def _clean(text: str, max_words: int = 12) -> str:
    """First line without a restated preamble, quotes and trailing period, at most ``max_words`` words."""
    line = next((s for s in text.strip().splitlines() if s.strip()), "").strip().strip("\"'`* ").rstrip(".")
    line = _PREAMBLE.sub("", line).strip()
    return " ".join(line.split()[:max_words])


@dataclass
class OfflineDescriber:
    """The candidate's own text."""

    name: str = "offline"

    def describe(self, unit: UnitLabel, meta: dict[str, Any]) -> str:
        """``unit.label``."""
        return unit.label


class LocalLMDescriber:
    """A local chat model phrases the label (greedy decoding, its tokenizer's chat template).

    Args:
        model: a loaded ``HookedTransformer`` with a tokenizer; default the registry's ``smollm2-135m``.
        max_new_tokens: most tokens generated per unit.
    """

    name = "local"

    def __init__(self, model: Any = None, max_new_tokens: int = 24):
        if model is None:
            from interp.models.registry import load_model

            model = load_model("smollm2-135m")
        if getattr(model, "tokenizer", None) is None or not getattr(model.tokenizer, "chat_template", None):
            raise InputError("the local describer needs a chat model whose tokenizer has a chat template "
                             "(e.g. smollm2-135m, SmolLM2-135M-Instruct).")  # fmt: skip
        self.model, self.max_new_tokens = model, max_new_tokens

    def describe(self, unit: UnitLabel, meta: dict[str, Any]) -> str:
        """Generate the phrase; falls back to the label when the model returns nothing usable."""
        import torch

        tok = self.model.tokenizer
        msgs = [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": prompt(unit, meta)}]
        text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])  # [1, pos]
        with torch.no_grad():
            out = self.model.generate(ids, max_new_tokens=self.max_new_tokens, do_sample=False, verbose=False,
                                      stop_at_eos=True)  # fmt: skip
        return _clean(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)) or unit.label


class OpenAIDescriber:
    """An OpenAI-compatible chat endpoint phrases the label.

    Args:
        base_url: server root (``http://host:port`` or ``.../v1``); default ``$OPENAI_BASE_URL``.
        api_key: bearer key; default ``$OPENAI_API_KEY`` (may be empty for local servers).
        model: model name sent in the request.
        timeout: seconds per request.

    Raises:
        InputError: no base URL given or set.
    """

    name = "openai"

    def __init__(self, base_url: str | None = None, api_key: str | None = None, model: str = "gpt-4o-mini",
                 timeout: float = 30.0):  # fmt: skip
        base = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base:
            raise InputError("the openai describer needs a server: pass --describer-url http://HOST:PORT "
                             "(or set OPENAI_BASE_URL). It is the only describer that uses the network.")  # fmt: skip
        base = base.rstrip("/")
        self.url = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.model, self.timeout = model, timeout

    def describe(self, unit: UnitLabel, meta: dict[str, Any]) -> str:
        """POST one chat completion and return its cleaned first line."""
        body = {"model": self.model, "temperature": 0, "max_tokens": 32,
                "messages": [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": prompt(unit, meta)}]}
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                reply = json.loads(resp.read())
            return _clean(reply["choices"][0]["message"]["content"]) or unit.label
        except (OSError, KeyError, IndexError, ValueError) as err:
            raise InterpError(f"the describer endpoint {self.url} failed for unit {unit.unit}: {err}. "
                              "Check --describer-url, the key and the model name.") from err  # fmt: skip


def describer(name: str, **kwargs: Any) -> Describer:
    """The describer called ``name`` (``offline``, ``local`` or ``openai``), built with ``kwargs``."""
    if name == "offline":
        return OfflineDescriber()
    if name == "local":
        return LocalLMDescriber(**kwargs)
    if name == "openai":
        return OpenAIDescriber(**kwargs)
    raise UnknownNameError("describer", name, DESCRIBERS)


def describe_labels(labels: LabelSet, how: Describer | str = "offline", progress: bool = False) -> LabelSet:
    """Phrase every labelled unit's label with ``how`` (in place; keys and scores are untouched).

    Args:
        labels: the labels.
        how: a describer or its name.
        progress: show a progress bar.

    Returns:
        ``labels``, with ``description`` set on every unit that has a candidate and
        ``meta["describer"]`` naming the describer.
    """
    from tqdm.auto import tqdm

    d = describer(how) if isinstance(how, str) else how
    for u in tqdm(labels.units, desc=f"describe ({d.name})", disable=not progress):
        if u.key:
            u.description = d.describe(u, labels.meta)
    labels.meta["describer"] = d.name
    return labels
