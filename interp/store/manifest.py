"""The store manifest: what an activation store holds, as one JSON file.

``manifest.json`` names the model (its :class:`~interp.models.contract.ModelInfo`,
whose ``processing`` later becomes SAELens's ``model_from_pretrained_kwargs``),
the hooks with their per-token shapes and the storage dtype, the code version,
and one *segment* per capture run that added data (dataset, split and capture
options). Each shard has an entry with its token count and SHA-256.

The manifest's content depends only on what was captured, never on when or in
how many attempts: there are no timestamps, shards are listed in a fixed
order, and every write goes through a temporary file and a rename, so a
resumed capture ends with the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from interp.cache import atomic_write_text
from interp.errors import CorruptCacheError, InputError, InterpError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "META_COLUMNS",
    "ShardEntry",
    "Segment",
    "Manifest",
    "StoreError",
    "CorruptStoreError",
    "StoreMismatchError",
    "shard_file_name",
]

FORMAT = "interp-activation-store"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

#: Per-token metadata columns every shard holds (all int64), in this order:
#: ``doc`` document or image index in the dataset (-1 at special and padding tokens);
#: ``pos`` position in the document, or patch index in the image (-1 at BOS / CLS);
#: ``token`` token id (-1 for images); ``context`` index of the context (model
#: input row) in the capture; ``ctx_pos`` position inside that context.
META_COLUMNS = ("doc", "pos", "token", "context", "ctx_pos")


class StoreError(InterpError):
    """A store cannot be written or read as asked (full disk, bad path, …)."""


class CorruptStoreError(StoreError, CorruptCacheError):
    """A shard or the manifest does not match what was recorded."""


class StoreMismatchError(StoreError, InputError):
    """An existing store at the output path holds another model, hook set or dataset."""


def shard_file_name(segment: int, index: int) -> str:
    """File name of shard ``index`` of segment ``segment``; names sort in token order."""
    return f"shard-{segment:03d}-{index:06d}.safetensors"


@dataclass(frozen=True)
class ShardEntry:
    """One shard file.

    Attributes:
        file: file name inside the store directory.
        segment: index of the segment (capture run) that wrote it.
        index: shard index within its segment; fixes the shard's contexts.
        n_tokens: stored tokens (rows).
        n_contexts: contexts (model input rows) with at least one stored token.
        context_start: index of the shard's first context within its segment.
        bytes: file size.
        sha256: hex digest of the whole file.
    """

    file: str
    segment: int
    index: int
    n_tokens: int
    n_contexts: int
    context_start: int
    bytes: int
    sha256: str


@dataclass
class Segment:
    """One capture run that appended data to the store.

    Attributes:
        dataset: the data source's description (name, split, kind, context size, fingerprint).
        capture: capture options that fix the stored tokens (batch size, positions, token budget).
        batches_per_shard: batches that make one shard; fixed when the segment starts so a
            resumed or parallel capture cuts shards exactly where a single run does.
        n_shards: total shards of the segment, known once the data is exhausted.
        complete: every shard of the segment is present.
    """

    dataset: dict[str, Any]
    capture: dict[str, Any]
    batches_per_shard: int
    n_shards: int | None = None
    complete: bool = False


@dataclass
class Manifest:
    """The whole manifest (see the module docstring)."""

    model: dict[str, Any]
    hooks: list[str]
    dtype: str
    code_version: str
    shapes: dict[str, list[int]] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    shards: list[ShardEntry] = field(default_factory=list)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    meta_columns: list[str] = field(default_factory=lambda: list(META_COLUMNS))

    @property
    def n_tokens(self) -> int:
        """Stored tokens over all shards present."""
        return sum(s.n_tokens for s in self.shards)

    @property
    def complete(self) -> bool:
        """Whether every segment has all its shards."""
        return bool(self.segments) and all(s.complete for s in self.segments)

    def to_json(self) -> str:
        """Canonical JSON text (sorted keys, shards in token order)."""
        d = asdict(self)
        d["shards"] = [asdict(s) for s in sorted(self.shards, key=lambda s: (s.segment, s.index))]
        d["n_tokens"] = self.n_tokens
        d["complete"] = self.complete
        return json.dumps(d, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "manifest") -> Manifest:
        """Parse :meth:`to_json` output; raise :class:`CorruptStoreError` when it is not one."""
        try:
            d = json.loads(text)
            if d.get("format") != FORMAT:
                raise ValueError(f"format is {d.get('format')!r}, not {FORMAT!r}")
            if d.get("format_version", 0) > FORMAT_VERSION:
                raise ValueError(f"format_version {d['format_version']} is newer than this code ({FORMAT_VERSION})")
            d.pop("n_tokens", None)
            d.pop("complete", None)
            d["segments"] = [Segment(**s) for s in d["segments"]]
            d["shards"] = [ShardEntry(**s) for s in d["shards"]]
            return cls(**d)
        except (ValueError, TypeError, KeyError) as e:
            raise CorruptStoreError(
                f"{where} is not a readable activation-store manifest ({e}). "
                "Capture again with overwrite (--overwrite), or delete the store directory."
            ) from e

    @classmethod
    def load(cls, store_dir: Path | str) -> Manifest:
        """Read ``store_dir/manifest.json``."""
        path = Path(store_dir) / MANIFEST
        if not path.is_file():
            raise StoreError(
                f"{store_dir} is not an activation store: it has no {MANIFEST}. "
                "Write one with interp.capture.capture_to_store or `interp capture`."
            )
        return cls.from_json(path.read_text(), where=str(path))

    def save(self, store_dir: Path | str) -> None:
        """Write ``store_dir/manifest.json`` atomically."""
        atomic_write_text(Path(store_dir) / MANIFEST, self.to_json())

    def shards_in_order(self) -> list[ShardEntry]:
        """Shards in token order (segment, then index)."""
        return sorted(self.shards, key=lambda s: (s.segment, s.index))

    def add_shard(self, entry: ShardEntry) -> None:
        """Record ``entry``, replacing an older entry for the same shard."""
        self.shards = [s for s in self.shards if (s.segment, s.index) != (entry.segment, entry.index)]
        self.shards.append(entry)
        self.shards.sort(key=lambda s: (s.segment, s.index))

    def update_complete(self, segment: int) -> bool:
        """Mark ``segment`` complete if its shard count is known and all shards are present."""
        seg = self.segments[segment]
        have = {s.index for s in self.shards if s.segment == segment}
        seg.complete = seg.n_shards is not None and have == set(range(seg.n_shards))
        return seg.complete
