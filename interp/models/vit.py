"""HookedViT: a pre-LN vision transformer with TransformerLens hook points.

Images enter as normalised pixels ``[batch, 3, H, W]``; a convolutional patch
embedding plus a CLS token gives ``n_ctx = n_patches + 1`` positions, learned
position embeddings are added, and pre-LN blocks follow. Every activation is
exposed under TransformerLens's own hook names (``hook_embed``,
``blocks.{L}.attn.hook_pattern``, ``blocks.{L}.mlp.hook_post``, …), so the
capture, SAE and circuit code treats a ViT exactly like a ``HookedTransformer``
(see :mod:`interp.models.contract`).

The weights come from HF ``ViTModel`` or ``Dinov2Model`` through
:func:`interp.models.hf_vit.from_hf`; DINOv2's LayerScale is folded into the
output projections, so a block has the same form for both families.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.ActivationCache import ActivationCache
from transformer_lens.hook_points import HookPoint
from transformer_lens.HookedRootModule import HookedRootModule

from interp.datasets.images import IMAGENET_MEAN, IMAGENET_STD, ImageInput, preprocess
from interp.errors import InputError
from interp.models.contract import ModelInfo, check_finite
from interp.models.layers import LayerNorm

__all__ = ["HookedViTConfig", "HookedViT", "ACT_FNS"]

#: Activation functions by their HF ``hidden_act`` name.
ACT_FNS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu": F.relu,
    "silu": F.silu,
}


@dataclass(frozen=True)
class HookedViTConfig:
    """Shape and preprocessing of a :class:`HookedViT` (round-trips through :meth:`to_dict`).

    Attributes:
        n_layers: number of transformer blocks.
        d_model: width of the residual stream.
        n_heads: attention heads per block.
        d_head: width of each head's queries, keys and values.
        d_mlp: hidden width of each MLP.
        image_size: side of the square input image in pixels (a multiple of ``patch_size``).
        patch_size: side of a square patch in pixels.
        n_ctx: positions, ``(image_size // patch_size) ** 2 + 1`` (CLS first); derived when ``None``.
        d_vocab: always -1: a ViT has no vocabulary (kept for the model contract).
        model_name: name shown in messages and manifests.
        device: device of the parameters (kept current by ``model.to``).
        dtype: dtype of the parameters (a ``torch.dtype``; strings like ``"float32"`` are accepted).
        num_channels: input channels (3 for RGB).
        eps: LayerNorm epsilon.
        act_fn: MLP activation, a key of :data:`ACT_FNS` (``gelu`` is the exact erf form).
        image_mean: per-channel mean used by :meth:`HookedViT.prepare_inputs`.
        image_std: per-channel standard deviation used by :meth:`HookedViT.prepare_inputs`.
        family: ``vit`` (HF ``ViTModel``) or ``dinov2`` (HF ``Dinov2Model``, LayerScale folded).
    """

    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    d_mlp: int
    image_size: int = 224
    patch_size: int = 16
    n_ctx: int | None = None
    d_vocab: int = -1
    model_name: str = "vit"
    device: str = "cpu"
    dtype: Any = torch.float32
    num_channels: int = 3
    eps: float = 1e-12
    act_fn: str = "gelu"
    image_mean: Sequence[float] = IMAGENET_MEAN  # stored as a tuple
    image_std: Sequence[float] = IMAGENET_STD
    family: Literal["vit", "dinov2"] = "vit"
    #: Fixed facts TransformerLens's ``ActivationCache`` helpers read (``apply_ln``, ``decompose_resid``).
    normalization_type: ClassVar[str] = "LN"
    attn_only: ClassVar[bool] = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise fields in place once
        if isinstance(self.dtype, str):
            set_(self, "dtype", getattr(torch, self.dtype.removeprefix("torch."), None))
        if not isinstance(self.dtype, torch.dtype) or not self.dtype.is_floating_point:
            raise InputError(f"HookedViTConfig.dtype must be a floating torch dtype, got {self.dtype!r}.")
        set_(self, "image_mean", tuple(float(v) for v in self.image_mean))
        set_(self, "image_std", tuple(float(v) for v in self.image_std))
        for name in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "image_size", "patch_size"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"HookedViTConfig.{name} must be >= 1, got {getattr(self, name)}.")
        if self.image_size % self.patch_size:
            fit = self.patch_size * max(1, self.image_size // self.patch_size)
            raise InputError(
                f"HookedViTConfig.image_size {self.image_size} is not a multiple of patch_size "
                f"{self.patch_size}. Use e.g. image_size={fit}."
            )
        n_ctx = (self.image_size // self.patch_size) ** 2 + 1
        if self.n_ctx is None:
            set_(self, "n_ctx", n_ctx)
        elif self.n_ctx != n_ctx:
            raise InputError(
                f"HookedViTConfig.n_ctx is {self.n_ctx} but image_size {self.image_size} and patch_size "
                f"{self.patch_size} give {n_ctx} positions (patches + CLS). Leave n_ctx=None."
            )
        if self.act_fn not in ACT_FNS:
            raise InputError(f"HookedViTConfig.act_fn {self.act_fn!r} is not one of {sorted(ACT_FNS)}.")
        if len(self.image_mean) != self.num_channels or len(self.image_std) != self.num_channels:
            raise InputError(f"image_mean and image_std need {self.num_channels} values (one per channel).")
        if self.family not in ("vit", "dinov2"):
            raise InputError(f"HookedViTConfig.family must be 'vit' or 'dinov2', got {self.family!r}.")

    @property
    def grid_size(self) -> int:
        """Patches along each side of the image."""
        return self.image_size // self.patch_size

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (dtype as a string); ``HookedViTConfig(**d)`` rebuilds it."""
        d = dataclasses.asdict(self)
        d["dtype"] = str(self.dtype).removeprefix("torch.")
        d["image_mean"], d["image_std"] = list(self.image_mean), list(self.image_std)
        return d


class Attention(nn.Module):
    """Bidirectional multi-head self-attention with TransformerLens weights and hooks.

    Weights: ``W_Q, W_K, W_V`` [head d_model d_head], ``b_Q, b_K, b_V`` [head d_head],
    ``W_O`` [head d_head d_model], ``b_O`` [d_model].
    """

    def __init__(self, cfg: HookedViTConfig):
        super().__init__()
        h, d, dh, dt = cfg.n_heads, cfg.d_model, cfg.d_head, cfg.dtype
        self.W_Q = nn.Parameter(torch.empty(h, d, dh, dtype=dt))
        self.W_K = nn.Parameter(torch.empty(h, d, dh, dtype=dt))
        self.W_V = nn.Parameter(torch.empty(h, d, dh, dtype=dt))
        self.W_O = nn.Parameter(torch.empty(h, dh, d, dtype=dt))
        self.b_Q = nn.Parameter(torch.zeros(h, dh, dtype=dt))
        self.b_K = nn.Parameter(torch.zeros(h, dh, dtype=dt))
        self.b_V = nn.Parameter(torch.zeros(h, dh, dtype=dt))
        self.b_O = nn.Parameter(torch.zeros(d, dtype=dt))
        self.attn_scale = math.sqrt(dh)
        self.hook_q = HookPoint()  # [batch, pos, head, d_head]
        self.hook_k = HookPoint()  # [batch, pos, head, d_head]
        self.hook_v = HookPoint()  # [batch, pos, head, d_head]
        self.hook_attn_scores = HookPoint()  # [batch, head, query_pos, key_pos]
        self.hook_pattern = HookPoint()  # [batch, head, query_pos, key_pos]
        self.hook_z = HookPoint()  # [batch, pos, head, d_head]

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        """Attend every position to every position (no mask) and project back to ``d_model``."""
        # [batch, pos, d_model] @ [head, d_model, d_head] -> [batch, pos, head, d_head]
        q = self.hook_q(torch.einsum("bpd,hde->bphe", x, self.W_Q) + self.b_Q)
        k = self.hook_k(torch.einsum("bpd,hde->bphe", x, self.W_K) + self.b_K)
        v = self.hook_v(torch.einsum("bpd,hde->bphe", x, self.W_V) + self.b_V)
        # [batch, query_pos, head, d_head] x [batch, key_pos, head, d_head] -> [batch, head, query_pos, key_pos]
        scores = self.hook_attn_scores(torch.einsum("bqhe,bkhe->bhqk", q, k) / self.attn_scale)
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        # [batch, head, query_pos, key_pos] x [batch, key_pos, head, d_head] -> [batch, query_pos, head, d_head]
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))
        # [batch, pos, head, d_head] @ [head, d_head, d_model] -> [batch, pos, d_model]
        return torch.einsum("bphe,hed->bpd", z, self.W_O) + self.b_O


class MLP(nn.Module):
    """Two-layer MLP: ``W_in`` [d_model d_mlp], ``b_in``, ``W_out`` [d_mlp d_model], ``b_out``."""

    def __init__(self, cfg: HookedViTConfig):
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp, dtype=cfg.dtype))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp, dtype=cfg.dtype))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model, dtype=cfg.dtype))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model, dtype=cfg.dtype))
        self.act_fn = ACT_FNS[cfg.act_fn]
        self.hook_pre = HookPoint()  # [batch, pos, d_mlp]
        self.hook_post = HookPoint()  # [batch, pos, d_mlp]

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        """``act(x W_in + b_in) W_out + b_out``."""
        pre = self.hook_pre(x @ self.W_in + self.b_in)  # [batch, pos, d_mlp]
        post = self.hook_post(self.act_fn(pre))  # [batch, pos, d_mlp]
        return post @ self.W_out + self.b_out  # [batch, pos, d_model]


class TransformerBlock(nn.Module):
    """Pre-LN block: ``resid_mid = resid_pre + attn(ln1(resid_pre))``,
    ``resid_post = resid_mid + mlp(ln2(resid_mid))``; every stream is hooked."""

    def __init__(self, cfg: HookedViTConfig):
        super().__init__()
        self.ln1, self.attn = LayerNorm(cfg), Attention(cfg)
        self.ln2, self.mlp = LayerNorm(cfg), MLP(cfg)
        self.hook_resid_pre = HookPoint()  # [batch, pos, d_model]
        self.hook_attn_out = HookPoint()  # [batch, pos, d_model]
        self.hook_resid_mid = HookPoint()  # [batch, pos, d_model]
        self.hook_mlp_out = HookPoint()  # [batch, pos, d_model]
        self.hook_resid_post = HookPoint()  # [batch, pos, d_model]

    def forward(self, resid: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        """Run attention then MLP, each added to the residual stream."""
        resid_pre = self.hook_resid_pre(resid)
        resid_mid = self.hook_resid_mid(resid_pre + self.hook_attn_out(self.attn(self.ln1(resid_pre))))
        return self.hook_resid_post(resid_mid + self.hook_mlp_out(self.mlp(self.ln2(resid_mid))))


class PatchEmbed(nn.Module):
    """Patches to vectors: ``W_E`` [d_model channels patch patch] (a strided convolution),
    ``b_E`` [d_model], and the learned ``cls_token`` [d_model] put in front."""

    def __init__(self, cfg: HookedViTConfig):
        super().__init__()
        p = cfg.patch_size
        self.patch_size = p
        self.W_E = nn.Parameter(torch.empty(cfg.d_model, cfg.num_channels, p, p, dtype=cfg.dtype))
        self.b_E = nn.Parameter(torch.zeros(cfg.d_model, dtype=cfg.dtype))
        self.cls_token = nn.Parameter(torch.zeros(cfg.d_model, dtype=cfg.dtype))

    def forward(self, pixels: Float[Tensor, "batch channel H W"]) -> Float[Tensor, "batch pos d_model"]:
        """Embed each patch (row-major over the grid) and prepend the CLS token."""
        x = F.conv2d(pixels, self.W_E, self.b_E, stride=self.patch_size)  # [batch, d_model, grid, grid]
        x = x.flatten(2).transpose(1, 2)  # [batch, n_patches, d_model]
        cls = self.cls_token.expand(x.shape[0], 1, -1)  # [batch, 1, d_model]
        return torch.cat([cls, x], dim=1)  # [batch, n_ctx, d_model]


class HookedViT(HookedRootModule):
    """A vision transformer whose every activation is a TransformerLens hook point.

    Hook points (shapes for a batch of images; ``pos`` = ``n_ctx``, CLS at position 0):

    - ``hook_embed`` [batch pos d_model]: patch embeddings with CLS, before positions.
    - ``hook_pos_embed`` [batch pos d_model]: the position embeddings added to them.
    - ``blocks.{L}.hook_resid_pre`` / ``hook_resid_mid`` / ``hook_resid_post`` [batch pos d_model].
    - ``blocks.{L}.ln1.hook_scale`` [batch pos 1], ``blocks.{L}.ln1.hook_normalized``
      [batch pos d_model] (same for ``ln2``).
    - ``blocks.{L}.attn.hook_q`` / ``hook_k`` / ``hook_v`` / ``hook_z`` [batch pos head d_head].
    - ``blocks.{L}.attn.hook_attn_scores`` / ``hook_pattern`` [batch head query_pos key_pos].
    - ``blocks.{L}.hook_attn_out`` / ``hook_mlp_out`` [batch pos d_model].
    - ``blocks.{L}.mlp.hook_pre`` / ``hook_post`` [batch pos d_mlp].
    - ``ln_final.hook_scale``, ``ln_final.hook_normalized``.

    Build one from HF weights with :meth:`from_hf` (or :func:`interp.models.dinov2.load_dinov2`);
    ``HookedViT(cfg)`` alone gives a randomly initialised model.
    """

    def __init__(self, cfg: HookedViTConfig, init_weights: bool = True):
        """Build the model; ``init_weights=False`` leaves weights uninitialised for loading."""
        super().__init__()
        self.cfg = cfg
        self.embed = PatchEmbed(cfg)
        self.hook_embed = HookPoint()  # [batch, pos, d_model]
        self.pos_embed = nn.Module()
        self.pos_embed.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model, dtype=cfg.dtype))
        self.hook_pos_embed = HookPoint()  # [batch, pos, d_model]
        self.blocks = nn.ModuleList([TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.ln_final = LayerNorm(cfg)
        if init_weights:
            self._init_weights()
        self.interp_info = ModelInfo(
            name=cfg.model_name, family=cfg.family, kind="vit", source="in-memory",
            n_layers=cfg.n_layers, dtype=str(cfg.dtype).removeprefix("torch."),
            extra={"image_size": cfg.image_size, "patch_size": cfg.patch_size},
        )  # fmt: skip
        self.to(cfg.device)
        self.setup()

    @torch.no_grad()
    def _init_weights(self, std: float = 0.02) -> None:
        """Normal weights with std 0.02, as HF ViT's ``trunc_normal_(std=0.02)`` (whose bounds
        of ±2 are ±100 std); biases start at zero and LayerNorm scales at one."""
        for name, p in self.named_parameters():
            if name.split(".")[-1].startswith("W_") or name.endswith("cls_token"):
                nn.init.trunc_normal_(p, std=std)

    def _apply(self, fn: Any, recurse: bool = True) -> HookedViT:
        """Keep ``cfg.device`` and ``cfg.dtype`` in step with ``.to()``, ``.half()``, …"""
        super()._apply(fn, recurse)
        w = self.pos_embed.W_pos
        self.cfg = dataclasses.replace(self.cfg, device=str(w.device), dtype=w.dtype)
        return self

    @classmethod
    def from_hf(cls, hf_model_or_dir: Any, **kwargs: Any) -> HookedViT:
        """Convert an HF ``ViTModel`` / ``Dinov2Model`` (or a saved directory).

        See :func:`interp.models.hf_vit.from_hf` for the arguments.
        """
        from interp.models.hf_vit import from_hf

        return from_hf(hf_model_or_dir, **kwargs)

    def prepare_inputs(self, inputs: ImageInput | Tensor) -> Float[Tensor, "batch 3 H W"]:
        """Images to normalised pixels for this model; pixel tensors are checked and passed through.

        Args:
            inputs: a PIL image, a list of images, a uint8 or ``[0, 1]`` float array ``[H, W]``,
                ``[H, W, C]``, ``[batch, H, W]`` or ``[batch, H, W, C]``, or a float tensor
                ``[batch, 3, H, W]`` (``[3, H, W]`` for one image) already normalised.

        Returns:
            ``[batch, 3, image_size, image_size]`` pixels on the model's device and dtype.

        Raises:
            InputError: a tensor of the wrong shape or dtype, NaN/Inf values, unusable images.
        """
        cfg = self.cfg
        if not isinstance(inputs, Tensor):
            inputs = preprocess(inputs, cfg.image_size, cfg.image_mean, cfg.image_std)
        if not inputs.is_floating_point():
            raise InputError(
                f"{cfg.model_name} takes float pixels [batch, 3, H, W], got a {inputs.dtype} tensor. "
                "Pass uint8 images as numpy arrays or PIL images (model.prepare_inputs normalises them)."
            )
        if inputs.ndim == 3:
            inputs = inputs[None]  # [3, H, W] -> [1, 3, H, W]
        want = (cfg.num_channels, cfg.image_size, cfg.image_size)
        if inputs.ndim != 4 or tuple(inputs.shape[1:]) != want:
            raise InputError(
                f"{cfg.model_name} expects pixels [batch, {want[0]}, {want[1]}, {want[2]}], found "
                f"{list(inputs.shape)}. Pass raw images through model.prepare_inputs(images), which resizes "
                f"to {cfg.image_size} px, or load the model with image_size={inputs.shape[-1]}."
            )
        check_finite(inputs, f"pixels for {cfg.model_name}")
        return inputs.to(device=self.pos_embed.W_pos.device, dtype=cfg.dtype)

    def forward(
        self, pixels: Tensor | ImageInput, stop_at_layer: int | None = None
    ) -> Float[Tensor, "batch pos d_model"]:
        """Run the model on pixels (or raw images, prepared with :meth:`prepare_inputs`).

        Args:
            pixels: normalised pixels ``Float[Tensor, "batch 3 H W"]`` at the model's image size,
                or raw images. Typed loosely on purpose: :meth:`prepare_inputs` checks the shape
                and raises :class:`~interp.errors.InputError` with the fix, not a type-check error.
            stop_at_layer: run blocks ``0 .. stop_at_layer - 1`` only and return the residual
                stream entering block ``stop_at_layer`` (``n_layers`` gives the last
                ``resid_post``, before the final LayerNorm). Negative values count from the end.

        Returns:
            The final LayerNorm output ``[batch, n_ctx, d_model]`` (CLS at position 0), or the
            residual stream ``[batch, n_ctx, d_model]`` when ``stop_at_layer`` is given.
        """
        n = self.cfg.n_layers
        if stop_at_layer is not None and not -n <= stop_at_layer <= n:
            raise InputError(
                f"stop_at_layer={stop_at_layer} is outside [-{n}, {n}] for {self.cfg.model_name} "
                f"({n} layers). Use 0..{n}, or load more layers."
            )
        pixels = self.prepare_inputs(pixels)
        embed = self.hook_embed(self.embed(pixels))  # [batch, pos, d_model]
        pos = self.hook_pos_embed(self.pos_embed.W_pos.expand_as(embed))  # [batch, pos, d_model]
        resid = embed + pos
        for block in self.blocks[:stop_at_layer]:
            resid = block(resid)
        if stop_at_layer is not None:
            return resid
        return self.ln_final(resid)

    def run_with_cache(
        self, *model_args: Any, return_cache_object: bool = True, remove_batch_dim: bool = False, **kwargs: Any
    ) -> tuple[Tensor, ActivationCache | dict[str, Tensor]]:
        """Forward pass that also returns every (filtered) activation.

        Takes :meth:`forward`'s arguments plus ``names_filter``, ``device``, … of
        ``HookedRootModule.run_with_cache``. Returns ``(output, ActivationCache)``, or a plain
        dict when ``return_cache_object=False``. Hooks are removed even if the forward raises.
        """
        out, cache = super().run_with_cache(*model_args, remove_batch_dim=remove_batch_dim, **kwargs)
        if return_cache_object:
            return out, ActivationCache(cache, self, has_batch_dim=not remove_batch_dim)
        return out, cache
