"""Activation heatmaps: per-token values over text, per-patch values over an image.

:class:`TokenHeatmap` colours each token of a text by a value (a neuron's or a
latent's activation, an attribution score; signed values red/blue), with a
selector when several channels are given; :class:`ImageHeatmap` overlays a
patch grid of values on the image with an opacity slider. Hover a token or a
patch for its value. Both take arrays you already have, or run a model on one
input (``from_model``: in-memory capture, :mod:`interp.capture`) and show the
units you name. Every value is in the synced state, so the standalone export
(:meth:`~interp.widgets._base.View.export_html`) keeps every control working.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from interp.errors import InputError
from interp.widgets._base import View

__all__ = ["TokenHeatmap", "ImageHeatmap", "MAX_TOKENS", "MAX_CHANNELS", "MAX_IMAGE_SIDE"]

#: Most tokens a TokenHeatmap shows (its state holds every value).
MAX_TOKENS = 4096
#: Most channels (units) one heatmap holds.
MAX_CHANNELS = 256
#: Images larger than this (pixels per side) are downscaled before they are embedded.
MAX_IMAGE_SIDE = 512

# Shared by both views: signed colour (red above zero, blue below), alpha by |value| / the channel's max |value|.
_JS_COMMON = r"""
 const h=(tag,attrs,text)=>{const e=document.createElement(tag);for(const k in attrs||{})e.setAttribute(k,attrs[k]);
  if(text!==undefined&&text!==null)e.textContent=String(text);return e};
 const fmt=x=>(x===null||x===undefined)?'\u2013':(Math.abs(x)>=1000||(x!==0&&Math.abs(x)<0.001)?
  Number(x).toExponential(2):Number(x).toFixed(3));
 const colour=(v,m,a)=>v===null||!m?'transparent':(v>=0?'rgba(220,40,40,':'rgba(40,90,220,')+
  (a*Math.min(1,Math.abs(v)/m)).toFixed(3)+')';
 const vmax=row=>{const m=model.get('vmax');return m>0?m:Math.max(0,...row.map(v=>Math.abs(v||0)))};
 const names=model.get('names'),bar=h('div',{class:'ih-bar'});
 const chan=h('select',{'data-role':'channel'});names.forEach((n,i)=>chan.appendChild(h('option',{value:i},n)));
 chan.addEventListener('change',()=>{model.set('channel',Number(chan.value));model.save_changes()});
 bar.append(h('span',{},'channel'),chan);if(names.length<2)chan.disabled=true;
 const legend=h('span',{class:'ih-legend','data-role':'legend'});bar.appendChild(legend);
 const setLegend=m=>{legend.textContent='blue \u2212'+fmt(m)+' \u2026 0 \u2026 +'+fmt(m)+' red'};
"""

_CSS = """
.interp-token-heatmap,.interp-image-heatmap{font:13px system-ui,sans-serif;color:#222}
.interp-token-heatmap .ih-bar,.interp-image-heatmap .ih-bar{display:flex;gap:8px;align-items:center;margin:4px 0}
.interp-token-heatmap .ih-legend,.interp-image-heatmap .ih-legend{color:#666;font-size:12px}
.interp-token-heatmap .ih-text{font-family:ui-monospace,monospace;white-space:pre-wrap;line-height:1.7}
.interp-token-heatmap .ih-text span{border-radius:2px;cursor:default}
.interp-token-heatmap .ih-text span:hover{outline:1px solid #333}
.interp-image-heatmap .ih-img{position:relative;width:320px;height:320px}
.interp-image-heatmap .ih-img img{width:100%;height:100%;display:block}
.interp-image-heatmap .ih-grid{position:absolute;inset:0;display:grid}
.interp-image-heatmap .ih-grid div{border:0.5px solid rgba(255,255,255,0.25)}
.interp-image-heatmap .ih-grid div:hover{outline:2px solid #000}
"""

_TOKEN_ESM = (
    r"""
export default { render({ model, el }) {
"""
    + _JS_COMMON
    + r"""
 const root=h('div',{class:'interp-token-heatmap'}),text=h('div',{class:'ih-text'}),info=h('div',{class:'ih-legend'});
 const spans=model.get('tokens').map((t,i)=>{const s=h('span',{'data-role':'token','data-index':i},t);
  text.appendChild(s);return s});
 root.append(bar,text,info);el.appendChild(root);
 text.addEventListener('mouseover',e=>{const i=e.target.getAttribute&&e.target.getAttribute('data-index');
  if(i!==null&&i!==undefined)info.textContent='token '+i+' '+JSON.stringify(model.get('tokens')[i])+': '+
   e.target.title});
 function draw(){const c=model.get('channel'),row=model.get('values')[c]||[],m=vmax(row);chan.value=c;setLegend(m);
  spans.forEach((s,i)=>{const v=row[i];s.title=fmt(v);s.style.background=colour(v,m,0.85)})}
 model.on('change:channel',draw);model.on('change:vmax',draw);draw();
 return ()=>{model.off('change:channel',draw);model.off('change:vmax',draw)};
} }
"""
)

_IMAGE_ESM = (
    r"""
export default { render({ model, el }) {
"""
    + _JS_COMMON
    + r"""
 const g=model.get('grid'),root=h('div',{class:'interp-image-heatmap'}),box=h('div',{class:'ih-img'});
 const img=h('img',{alt:'image','data-role':'image'});img.src=model.get('image');
 img.onload=()=>{if(img.naturalWidth<160)img.style.imageRendering='pixelated'};
 const grid=h('div',{class:'ih-grid'});grid.style.gridTemplateColumns='repeat('+g+',1fr)';
 const cells=[];for(let i=0;i<g*g;i++){const c=h('div',{'data-role':'patch','data-index':i});cells.push(c);
  grid.appendChild(c)}
 const op=h('input',{type:'range',min:0,max:1,step:0.05,'data-role':'opacity'}),info=h('div',{class:'ih-legend'});
 op.addEventListener('input',()=>{model.set('opacity',Number(op.value));model.save_changes()});
 bar.append(h('span',{},'opacity'),op);box.append(img,grid);root.append(bar,box,info);el.appendChild(root);
 grid.addEventListener('mouseover',e=>{const i=e.target.getAttribute&&e.target.getAttribute('data-index');
  if(i!==null&&i!==undefined)info.textContent='patch '+i+' (row '+Math.floor(i/g)+', col '+(i%g)+'): '+
   e.target.title});
 function draw(){const c=model.get('channel'),row=model.get('values')[c]||[],m=vmax(row),a=model.get('opacity');
  chan.value=c;op.value=a;setLegend(m);cells.forEach((x,i)=>{x.title=fmt(row[i]);x.style.background=colour(row[i],m,a)})}
 const ev='change:channel change:opacity change:vmax';model.on(ev,draw);draw();
 return ()=>{ev.split(' ').forEach(e=>model.off(e,draw))};
} }
"""
)


def as_float_array(x: Any, what: str) -> np.ndarray:
    """``x`` (a torch tensor, numpy array or nested list) as a finite float64 numpy array.

    Raises:
        InputError: values that are not numbers, or NaN / Inf (the message names ``what``).
    """
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().float().cpu().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"{what} must be numbers (an array, tensor or nested list); got {type(x).__name__} that "
                         f"does not convert ({e}). Fix: pass a numeric array.") from e  # fmt: skip
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        raise InputError(f"{what} holds {bad} NaN/Inf value(s) of {a.size}; the views need finite numbers. "
                         "Fix: replace them first, e.g. np.nan_to_num(x).")  # fmt: skip
    return a


def compact(a: np.ndarray) -> list[Any]:
    """Nested lists of floats with 4 significant digits (the views show 3), to keep the state small."""
    flat = [float(f"{v:.4g}") for v in a.ravel().tolist()]
    return np.array(flat, dtype=np.float64).reshape(a.shape).tolist() if a.ndim > 1 else flat


def _names(names: Sequence[str] | None, k: int, default: str) -> list[str]:
    if names is None:
        return [f"{default} {i}" for i in range(k)]
    names = [str(n) for n in names]
    if len(names) != k:
        raise InputError(f"names has {len(names)} entries but the values have {k} channel(s); pass one name per "
                         "channel, or names=None.")  # fmt: skip
    return names


def _check_channels(k: int, what: str) -> None:
    if not 1 <= k <= MAX_CHANNELS:
        raise InputError(f"{what} has {k} channels; a heatmap shows 1 to {MAX_CHANNELS}. Fix: pass the units you "
                         "want to see, e.g. values[:, [3, 17]].")  # fmt: skip


def _units_list(units: int | Sequence[int], width: int, hook: str) -> list[int]:
    """Validate unit indices against the hook's width."""
    units = [units] if isinstance(units, (int, np.integer)) else list(units)
    bad = [u for u in units if not isinstance(u, (int, np.integer)) or not 0 <= int(u) < width]
    if not units or bad:
        raise InputError(f"units {bad or units} are not unit indices of {hook!r}, which has {width} units (0.."
                         f"{width - 1}). Fix: pass e.g. units=[0, 5].")  # fmt: skip
    return [int(u) for u in units]


def capture_units(
    model: Any, inputs: Any, hook: str, units: int | Sequence[int], sae: Any = None
) -> tuple[np.ndarray, list[str]]:
    """Run ``model`` on one input; return the chosen units at ``hook`` as ``[pos, k]`` (numpy) and their names.

    ``sae`` (anything with ``encode([n, d_in]) -> [n, d_sae]``) turns the hook's activations into latents first.

    Raises:
        InputError: a batch of inputs, a hook whose activations are not ``[batch, pos, d]``, or bad units.
    """
    import torch

    from interp.capture import capture_activations

    acts = capture_activations(model, inputs, [hook])[hook]
    if acts.ndim != 3 or acts.shape[0] != 1:
        raise InputError(f"hook {hook!r} gave activations of shape {list(acts.shape)}; from_model needs one input "
                         "and a hook of shape [batch=1, pos, d] (residual stream, MLP neurons; for attention heads "
                         "use hook 'blocks.L.attn.hook_z' flattened, or AttentionViewer).")  # fmt: skip
    x = acts[0]  # [pos, d]
    if sae is not None:
        with torch.no_grad():
            x = sae.encode(x.to(next(sae.parameters()).dtype) if hasattr(sae, "parameters") else x)  # [pos, d_sae]
    layer = hook + ("/sae" if sae is not None else "")
    units = _units_list(units, int(x.shape[-1]), layer)
    return x[:, units].detach().float().cpu().numpy(), [f"{layer}[{u}]" for u in units]  # [pos, k]


class _Channels(View):
    """A view of several channels (units) of which one is shown: ``names``, ``channel``, ``vmax`` and :meth:`show`."""

    names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    channel = traitlets.Int(0).tag(sync=True)
    vmax = traitlets.Float(0.0).tag(sync=True)

    def show(self, channel: int | str) -> None:
        """Show ``channel`` (its index or its name)."""
        self.channel = _channel_index(channel, self.names)


class TokenHeatmap(_Channels):
    """Tokens coloured by one or several channels of values (red above zero, blue below); hover shows the value.

    DOM: root ``.interp-token-heatmap``; channel selector ``<select data-role="channel">``; each token a
    ``<span data-role="token">`` whose ``title`` is its value. Synced state: ``tokens``, ``values``
    (``[k][n]``, channel-major, 4 significant digits), ``names``, ``channel`` and ``vmax`` (the colour scale's
    limit; 0 = the channel's max ``|value|``).

    Args:
        tokens: the token strings, ``n`` of them (at most :data:`MAX_TOKENS`).
        values: ``[n]`` (one channel) or ``[n, k]`` (k channels: neurons, latents, …); array, tensor or list.
        names: one name per channel (default ``"channel i"``).
        channel: the channel shown first.
        vmax: fixed colour-scale limit (0: each channel's own max ``|value|``).

    Raises:
        InputError: tokens not strings, a shape that does not match the tokens, NaN/Inf, too many tokens or
            channels, a wrong number of names, or ``channel`` out of range.

    Example:
        >>> import numpy as np                                              # doctest: +SKIP
        >>> from interp.widgets.heatmap import TokenHeatmap                 # doctest: +SKIP
        >>> TokenHeatmap(["The", " cat", " sat"], np.array([[0.1, -2], [3.0, 0], [0, 1]]), names=["n5", "n9"])
        >>> view = TokenHeatmap.from_model(model, "The cat sat", "blocks.0.mlp.hook_post", [5, 9])  # doctest: +SKIP
        >>> view.channel = 1; view.export_html("heat.html")                 # doctest: +SKIP
    """

    _esm = _TOKEN_ESM
    _css = _CSS
    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    values = traitlets.List().tag(sync=True)

    def __init__(
        self, tokens: Sequence[str], values: Any, names: Sequence[str] | None = None, *, channel: int = 0,
        vmax: float = 0.0,
    ) -> None:  # fmt: skip
        if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
            raise InputError("tokens must be a list of strings (one per position), e.g. model.to_str_tokens(text); "
                             f"got {type(tokens).__name__}.")  # fmt: skip
        tokens = list(tokens)
        if not 1 <= len(tokens) <= MAX_TOKENS:
            raise InputError(f"TokenHeatmap takes 1 to {MAX_TOKENS} tokens, got {len(tokens)}. Fix: slice the text.")
        a = as_float_array(values, "values")
        a = a[:, None] if a.ndim == 1 else a  # [n] -> [n, 1]
        if a.ndim != 2 or a.shape[0] != len(tokens):
            raise InputError(f"values has shape {list(np.shape(values))} but there are {len(tokens)} tokens; "
                             f"expected [{len(tokens)}] or [{len(tokens)}, k]. Fix: pass one row per token "
                             "(transpose a [k, n] array with .T).")  # fmt: skip
        _check_channels(a.shape[1], "values")
        super().__init__(tokens=tokens, values=compact(a.T), names=_names(names, a.shape[1], "channel"),
                         vmax=_check_vmax(vmax))  # fmt: skip
        self.show(channel)

    @classmethod
    def from_model(
        cls, model: Any, text: Any, hook: str, units: int | Sequence[int], *, sae: Any = None, **kwargs: Any
    ) -> TokenHeatmap:
        """Run ``model`` on ``text`` and show ``units`` of ``hook`` over its tokens.

        Args:
            model: a registry language model (``interp.load_model``).
            text: one string (or token ids ``[1, pos]``; without a tokenizer tokens are shown as ids).
            hook: a hook point of shape ``[batch, pos, d]``, e.g. ``"blocks.0.mlp.hook_post"``.
            units: a unit index or a list of them (neurons, or SAE latents when ``sae`` is given).
            sae: an SAE to encode the hook's activations with (``encode([n, d_in]) -> [n, d_sae]``).
            **kwargs: passed to :class:`TokenHeatmap` (``vmax``, ``channel``).
        """
        from interp.models.contract import prepare_inputs

        ids = prepare_inputs(model, text)  # [1, pos]
        if ids.ndim != 2 or ids.shape[0] != 1:
            raise InputError(f"from_model shows one text; got a batch of shape {list(ids.shape)}. Pass one string.")
        vals, names = capture_units(model, ids, hook, units, sae)  # [pos, k]
        tok = getattr(model, "tokenizer", None)
        tokens = model.to_str_tokens(ids[0]) if tok is not None else [str(int(i)) for i in ids[0]]
        return cls(list(tokens), vals, names, **kwargs)


def _check_vmax(vmax: float) -> float:
    v = float(vmax)
    if not np.isfinite(v) or v < 0:
        raise InputError(f"vmax must be a finite number >= 0 (0: each channel's own scale), got {vmax!r}.")
    return v


def _channel_index(channel: int | str, names: list[str]) -> int:
    if isinstance(channel, str):
        if channel not in names:
            raise InputError(f"no channel named {channel!r}; the channels are {names[:10]}. Pass a name or an index.")
        return names.index(channel)
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < len(names):
        raise InputError(f"channel {channel!r} is out of range: there are {len(names)} channel(s), 0.."
                         f"{len(names) - 1}. Pass one of them.")  # fmt: skip
    return int(channel)


def model_view(model: Any, image: Any) -> Any:
    """``image`` as a ViT sees it: resized to the model's square input (a PIL image)."""
    from PIL import Image

    from interp.datasets.images import to_rgb_uint8

    side = int(model.cfg.image_size)
    return Image.fromarray(to_rgb_uint8(image, what="image")).resize((side, side), Image.Resampling.BICUBIC)


def png_data_uri(image: Any, max_side: int = MAX_IMAGE_SIDE) -> str:
    """An image (``[H, W, 3]`` uint8 array, float array in ``[0, 1]`` or PIL image) as a PNG ``data:`` URI.

    An image with a side over ``max_side`` is downscaled (keeping its aspect) so the state stays small.
    """
    from PIL import Image

    from interp.datasets.images import to_rgb_uint8

    pil = Image.fromarray(to_rgb_uint8(image, what="image"))
    if max(pil.size) > max_side:
        pil.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class ImageHeatmap(_Channels):
    """An image with a patch grid of values overlaid (red above zero, blue below); hover a patch for its value.

    DOM: root ``.interp-image-heatmap``; channel selector ``<select data-role="channel">``; opacity slider
    ``<input type="range" data-role="opacity">``; each patch a ``<div data-role="patch">`` whose ``title`` is its
    value (row-major). Synced state: ``image`` (a PNG data URI), ``grid`` (patches per side), ``values``
    (``[k][grid * grid]``, row-major, 4 significant digits), ``names``, ``channel``, ``opacity`` and ``vmax``.

    Args:
        image: ``[H, W, 3]`` uint8 array (or ``[0, 1]`` floats, grayscale, RGBA) or a PIL image; stretched to a
            square under the grid, as a ViT sees it (sides over :data:`MAX_IMAGE_SIDE` are downscaled).
        patch_values: ``[g, g]`` (one channel) or ``[k, g, g]`` (k channels); array, tensor or list.
        names: one name per channel (default ``"channel i"``).
        channel: the channel shown first.
        opacity: the overlay's opacity at the largest ``|value|`` (0..1).
        vmax: fixed colour-scale limit (0: each channel's own max ``|value|``).

    Raises:
        InputError: an unusable image, a non-square grid, NaN/Inf, too many channels, bad names, channel or opacity.

    Example:
        >>> from interp.widgets.heatmap import ImageHeatmap                             # doctest: +SKIP
        >>> ImageHeatmap(image, np.random.rand(8, 8))                                   # doctest: +SKIP
        >>> vit = interp.load_model("concept-vit")                                      # doctest: +SKIP
        >>> view = ImageHeatmap.from_model(vit, image, "blocks.1.mlp.hook_post", [3, 7])  # doctest: +SKIP
        >>> view.opacity = 0.4; view.export_html("patches.html")                        # doctest: +SKIP
    """

    _esm = _IMAGE_ESM
    _css = _CSS
    image = traitlets.Unicode("").tag(sync=True)
    grid = traitlets.Int(1).tag(sync=True)
    values = traitlets.List().tag(sync=True)
    opacity = traitlets.Float(0.6).tag(sync=True)

    def __init__(
        self, image: Any, patch_values: Any, names: Sequence[str] | None = None, *, channel: int = 0,
        opacity: float = 0.6, vmax: float = 0.0,
    ) -> None:  # fmt: skip
        a = as_float_array(patch_values, "patch_values")
        a = a[None] if a.ndim == 2 else a  # [g, g] -> [1, g, g]
        if a.ndim != 3 or a.shape[1] != a.shape[2] or a.shape[1] < 1:
            raise InputError(f"patch_values has shape {list(np.shape(patch_values))}; expected a square grid [g, g] "
                             "or [k, g, g] (patch tokens only, CLS excluded). Fix: reshape the patch values, e.g. "
                             "acts[1:].reshape(g, g) for one unit.")  # fmt: skip
        _check_channels(a.shape[0], "patch_values")
        if not 0.0 <= float(opacity) <= 1.0:
            raise InputError(f"opacity must lie in [0, 1], got {opacity!r}.")
        uri = png_data_uri(image)
        g = a.shape[1]
        super().__init__(image=uri, grid=g, values=compact(a.reshape(a.shape[0], g * g)),
                         names=_names(names, a.shape[0], "channel"), opacity=float(opacity),
                         vmax=_check_vmax(vmax))  # fmt: skip
        self.show(channel)

    @classmethod
    def from_model(
        cls, model: Any, image: Any, hook: str, units: int | Sequence[int], *, sae: Any = None, **kwargs: Any
    ) -> ImageHeatmap:
        """Run a ViT (``dinov2-s14``, ``concept-vit``, any ``HookedViT``) on one image and map ``units`` of ``hook``.

        The CLS position is dropped; the patch tokens form the ``grid_size`` × ``grid_size`` grid, drawn over
        the image resized to the model's square input, as the model sees it.

        Args:
            model: a registry ViT (``interp.load_model("concept-vit")``).
            image: one image (``[H, W, 3]`` uint8 array or PIL image).
            hook: a hook point of shape ``[batch, pos, d]``, e.g. ``"blocks.1.mlp.hook_post"``.
            units: a unit index or a list of them (neurons, or SAE latents when ``sae`` is given).
            sae: an SAE to encode the hook's activations with.
            **kwargs: passed to :class:`ImageHeatmap` (``opacity``, ``vmax``, ``channel``).
        """
        g = getattr(getattr(model, "cfg", None), "grid_size", None)
        if g is None:
            raise InputError(f"ImageHeatmap.from_model needs a ViT (a model with cfg.grid_size); got "
                             f"{type(model).__name__}. Use TokenHeatmap.from_model for text models.")  # fmt: skip
        if isinstance(image, (list, tuple)) or (isinstance(image, np.ndarray) and image.ndim == 4):
            raise InputError("ImageHeatmap.from_model shows one image; got a batch. Pass images[i].")
        vals, names = capture_units(model, image, hook, units, sae)  # [1 + g*g, k]
        patches = vals[1:].T.reshape(-1, g, g)  # drop CLS: [g*g, k] -> [k, g*g] -> [k, g, g]
        return cls(model_view(model, image), patches, names, **kwargs)
