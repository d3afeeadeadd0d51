"""The attention-pattern viewer: pick a layer and a head, hover a token (or an image patch) to see where it attends.

In the manner of circuitsvis's attention views and ViT-Prisma's patch maps:
for text, the tokens are drawn in a row (plus a query × key matrix for short
sequences); hovering a token shades every other token by the attention weight
between them, in either direction (``attends to`` / ``attended by``). For a ViT,
a patch grid lies over the image and hovering a patch shows its attention map
over the patches (the CLS token's weight is printed beside it, and a CLS chip
shows the CLS token's own map).

Patterns come from you (``[layer, head, query, key]``) or from a forward pass
(:meth:`AttentionViewer.from_model`, which captures ``blocks.{L}.attn.hook_pattern``
in memory). The state holds every chosen layer's patterns, so the standalone
export keeps the selectors working offline; to keep it compact the weights are
stored as integers in thousandths (0..1000) and the number of values is capped
(:data:`MAX_VALUES`, :data:`MAX_POSITIONS`): longer inputs raise an error that
says what to cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from interp.errors import InputError
from interp.widgets._base import View
from interp.widgets.heatmap import as_float_array, model_view, png_data_uri

__all__ = ["AttentionViewer", "MAX_POSITIONS", "MAX_VALUES"]

#: Most positions (tokens, or patches + CLS) a viewer shows.
MAX_POSITIONS = 1024
#: Most attention weights (layers × heads × queries × keys) one viewer holds (about 3 MB of state).
MAX_VALUES = 1_000_000
#: Sequences up to this long also get the query × key matrix.
MAX_MATRIX = 64

_CSS = """
.interp-attention{font:13px system-ui,sans-serif;color:#222}
.interp-attention .ia-bar{display:flex;gap:8px;align-items:center;margin:4px 0}
.interp-attention .ia-info{color:#555;font-size:12px;min-height:1.4em}
.interp-attention .ia-text{font-family:ui-monospace,monospace;white-space:pre-wrap;line-height:1.8}
.interp-attention .ia-text span{border-radius:2px;cursor:default}
.interp-attention .ia-q{outline:2px solid #c30}
.interp-attention .ia-img{position:relative;width:320px;height:320px}
.interp-attention .ia-img img{width:100%;height:100%;display:block}
.interp-attention .ia-grid{position:absolute;inset:0;display:grid}
.interp-attention .ia-grid div{border:0.5px solid rgba(255,255,255,0.2)}
.interp-attention .ia-cls{display:inline-block;padding:1px 6px;border:1px solid #999;border-radius:3px;cursor:default}
"""

_ESM = r"""
export default { render({ model, el }) {
 const h=(tag,attrs,text)=>{const e=document.createElement(tag);for(const k in attrs||{})e.setAttribute(k,attrs[k]);
  if(text!==undefined&&text!==null)e.textContent=String(text);return e};
 const NS=(()=>{const d=document.createElement('div');d.innerHTML='<svg></svg>';return d.firstChild.namespaceURI})();
 const toks=model.get('tokens'),P=model.get('patterns'),Ls=model.get('layers'),g=model.get('grid'),n=toks.length;
 const off=g?n-g*g:0,root=h('div',{class:'interp-attention'}),bar=h('div',{class:'ia-bar'});
 const lay=h('select',{'data-role':'layer'}),head=h('select',{'data-role':'head'});
 const dir=h('select',{'data-role':'direction'});
 Ls.forEach(l=>lay.appendChild(h('option',{value:l},'layer '+l)));
 for(let i=0;i<(P[0]||[]).length;i++)head.appendChild(h('option',{value:i},'head '+i));
 [['to','query attends to'],['from','key attended by']].forEach(([v,t])=>dir.appendChild(h('option',{value:v},t)));
 bar.append(lay,head,dir);const info=h('div',{class:'ia-info'},'hover a '+(g?'patch':'token')+' (click to pin)');
 root.append(bar);el.appendChild(root);
 lay.addEventListener('change',()=>{model.set('layer',Number(lay.value));model.save_changes()});
 head.addEventListener('change',()=>{model.set('head',Number(head.value));model.save_changes()});
 let hover=-1,pinned=-1;dir.addEventListener('change',()=>paint());
 const M=()=>(P[Ls.indexOf(model.get('layer'))]||[])[model.get('head')]||[];
 const w=(q,k)=>{const r=M()[q];return r?r[k]/1000:0};
 const pair=(i,j)=>dir.value==='to'?w(i,j):w(j,i);
 const name=i=>i<off?'CLS':(g?'patch '+(i-off):JSON.stringify(toks[i]));
 let items=[],apply=null;
 if(!g){const text=h('div',{class:'ia-text'});items=toks.map((t,i)=>{const s=h('span',{'data-role':'token',
   'data-index':i},t);text.appendChild(s);return s});root.append(text,info);
  apply=(x,a,i,j)=>{x.style.background='rgba(30,110,220,'+a.toFixed(3)+')';
   x.title=i<0?'':(dir.value==='to'?name(i)+' \u2192 '+name(j):name(j)+' \u2192 '+name(i))+': '+pair(i,j).toFixed(3)};
  text.addEventListener('mouseover',e=>{const i=e.target.getAttribute&&e.target.getAttribute('data-index');
   if(i!==null&&i!==undefined){hover=Number(i);paint()}});
  text.addEventListener('mouseleave',()=>{hover=-1;paint()});
  text.addEventListener('click',e=>{const i=e.target.getAttribute&&e.target.getAttribute('data-index');
   pinned=(i===null||i===undefined||Number(i)===pinned)?-1:Number(i);paint()})}
 else{const box=h('div',{class:'ia-img'}),img=h('img',{alt:'image','data-role':'image'});img.src=model.get('image');
  img.onload=()=>{if(img.naturalWidth<160)img.style.imageRendering='pixelated'};
  const grid=h('div',{class:'ia-grid'});grid.style.gridTemplateColumns='repeat('+g+',1fr)';
  for(let j=0;j<g*g;j++){const c=h('div',{'data-role':'patch','data-index':off+j});items.push(c);grid.appendChild(c)}
  const cls=h('span',{class:'ia-cls','data-role':'cls','data-index':0},'CLS');box.append(img,grid);
  if(off){root.append(cls);cls.addEventListener('mouseover',()=>{hover=0;paint()});
   cls.addEventListener('mouseleave',()=>{hover=-1;paint()})}
  root.append(box,info);
  apply=(x,a,i,j)=>{x.style.background='rgba(255,60,0,'+(0.85*a).toFixed(3)+')';
   x.title=i<0?'':name(j)+': '+pair(i,j).toFixed(3)};
  grid.addEventListener('mouseover',e=>{const i=e.target.getAttribute&&e.target.getAttribute('data-index');
   if(i!==null&&i!==undefined){hover=Number(i);paint()}});
  grid.addEventListener('mouseleave',()=>{hover=-1;paint()});
  grid.addEventListener('click',e=>{const i=Number(e.target.getAttribute('data-index'));
   pinned=i===pinned?-1:i;paint()})}
 const mat=h('div',{'data-role':'matrix'});if(!g&&n<=model.get('max_matrix'))root.appendChild(mat);
 function matrix(){mat.textContent='';if(g||n>model.get('max_matrix'))return;const c=Math.max(6,Math.min(14,320/n));
  const s=document.createElementNS(NS,'svg');s.setAttribute('width',c*n);s.setAttribute('height',c*n);
  const m=M();for(let q=0;q<n;q++)for(let k=0;k<n;k++){const v=(m[q]||[])[k]||0;if(!v)continue;
   const r=document.createElementNS(NS,'rect');r.setAttribute('x',k*c);r.setAttribute('y',q*c);
   r.setAttribute('width',c);r.setAttribute('height',c);r.setAttribute('fill','rgb(30,110,220)');
   r.setAttribute('fill-opacity',(v/1000).toFixed(3));const t=document.createElementNS(NS,'title');
   t.textContent=name(q)+' \u2192 '+name(k)+': '+(v/1000).toFixed(3);r.appendChild(t);s.appendChild(r)}
  mat.appendChild(h('div',{class:'ia-info'},'query (rows) \u00d7 key (columns)'));mat.appendChild(s)}
 function paint(){const i=hover>=0?hover:pinned;lay.value=model.get('layer');head.value=model.get('head');
  items.forEach(x=>x.classList.remove('ia-q'));
  if(i<0){items.forEach(x=>apply(x,0,-1,0));info.textContent='hover a '+(g?'patch':'token')+' (click to pin)';
   return}
  const js=items.map(x=>Number(x.getAttribute('data-index'))),ws=js.map(j=>pair(i,j)),m=Math.max(...ws)||1;
  items.forEach((x,t)=>apply(x,ws[t]/m,i,js[t]));const me=js.indexOf(i);if(me>=0)items[me].classList.add('ia-q');
  info.textContent=name(i)+(dir.value==='to'?' attends to':' is attended by')+' (shading relative to the max, '+
   m.toFixed(3)+')'+(off&&g?'; CLS: '+pair(i,0).toFixed(3):'')}
 function redraw(){matrix();paint()}
 model.on('change:layer',redraw);model.on('change:head',redraw);redraw();
 return ()=>{model.off('change:layer',redraw);model.off('change:head',redraw)};
} }
"""


class AttentionViewer(View):
    """Attention patterns with layer and head selectors; hover a token or an image patch to see its attention.

    DOM: root ``.interp-attention``; ``<select data-role="layer">``, ``<select data-role="head">`` and
    ``<select data-role="direction">`` (query attends to / key attended by); text tokens are
    ``<span data-role="token">``, image patches ``<div data-role="patch">`` (hovering sets each one's ``title``
    to the weight); sequences up to :data:`MAX_MATRIX` long also get a query × key matrix (``data-role="matrix"``).

    Synced state: ``tokens``, ``patterns`` (``[layer][head][query][key]`` in thousandths, ints 0..1000),
    ``layers`` (the layer numbers of the first axis), ``layer`` (a layer number), ``head``, and for images
    ``image`` (PNG data URI) and ``grid`` (patches per side; the first ``len(tokens) - grid**2`` positions,
    the CLS token, are not patches).

    Args:
        tokens: one label per position (text tokens); for an image, ``None`` names them ``CLS, patch 0, …``.
        patterns: ``[layer, head, query, key]`` (or ``[head, query, key]`` for one layer), rows summing to 1.
        layers: the layer number of each entry of the first axis (default ``0, 1, …``).
        image: an image (``[H, W, 3]`` array or PIL image) whose patches the positions are; the patch grid is
            ``sqrt(positions)`` or ``sqrt(positions - 1)`` (CLS first) per side.
        layer / head: what to show first (default: the first layer, head 0).

    Raises:
        InputError: wrong shapes, NaN/Inf, weights outside [0, 1], too many positions or values, a grid that
            does not fit the image's positions, or a layer / head that does not exist.

    Example:
        >>> from interp.widgets.attention import AttentionViewer          # doctest: +SKIP
        >>> view = AttentionViewer.from_model(model, "When Mary and John went", layers=[0, 1])  # doctest: +SKIP
        >>> view.show(layer=1, head=4)                                      # doctest: +SKIP
        >>> AttentionViewer.from_model(interp.load_model("concept-vit"), image)  # a patch grid # doctest: +SKIP
        >>> view.export_html("attention.html")                              # doctest: +SKIP
    """

    _esm = _ESM
    _css = _CSS
    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    patterns = traitlets.List().tag(sync=True)
    layers = traitlets.List(traitlets.Int()).tag(sync=True)
    layer = traitlets.Int(0).tag(sync=True)
    head = traitlets.Int(0).tag(sync=True)
    image = traitlets.Unicode("").tag(sync=True)
    grid = traitlets.Int(0).tag(sync=True)
    max_matrix = traitlets.Int(MAX_MATRIX).tag(sync=True)

    def __init__(
        self, tokens: Sequence[str] | None, patterns: Any, layers: Sequence[int] | None = None, *,
        image: Any = None, layer: int | None = None, head: int = 0,
    ) -> None:  # fmt: skip
        p = _check_patterns(patterns)  # [layer, head, q, k]
        n = p.shape[-1]
        grid = _grid(n) if image is not None else 0
        if tokens is None:
            if image is None:
                raise InputError("tokens=None is only for images; pass one token string per position for text.")
            tokens = ["CLS"] * (n - grid * grid) + [f"patch {i}" for i in range(grid * grid)]
        if isinstance(tokens, str) or len(tokens) != n or not all(isinstance(t, str) for t in tokens):
            raise InputError(f"tokens must be {n} strings, one per query/key position of patterns {list(p.shape)}; "
                             f"got {len(tokens) if not isinstance(tokens, str) else 'one string'}. Fix: pass "
                             "model.to_str_tokens(text), cut to the pattern's positions.")  # fmt: skip
        layers = list(range(p.shape[0])) if layers is None else [int(x) for x in layers]
        if len(layers) != p.shape[0] or len(set(layers)) != len(layers):
            raise InputError(f"layers {layers} should name each of the {p.shape[0]} layer(s) of patterns once; "
                             "pass e.g. layers=[0, 3] for patterns of blocks 0 and 3.")  # fmt: skip
        permille = np.rint(p * 1000).astype(np.int64).tolist()  # [layer][head][q][k] in thousandths
        super().__init__(tokens=list(tokens), patterns=permille, layers=layers, layer=layers[0],
                         image=png_data_uri(image) if image is not None else "", grid=grid)  # fmt: skip
        self.show(layers[0] if layer is None else layer, head)

    def show(self, layer: int | None = None, head: int | None = None) -> None:
        """Show ``layer`` (a layer number from ``layers``) and ``head``; ``None`` keeps the current one."""
        layer = self.layer if layer is None else layer
        head = self.head if head is None else head
        if layer not in self.layers:
            raise InputError(f"layer {layer!r} is not in this viewer; it holds layers {self.layers}. Pass one of "
                             "them, or rebuild with AttentionViewer.from_model(..., layers=[...]).")  # fmt: skip
        n_heads = len(self.patterns[0])
        if isinstance(head, bool) or not isinstance(head, (int, np.integer)) or not 0 <= head < n_heads:
            raise InputError(f"head {head!r} is out of range: there are {n_heads} heads (0..{n_heads - 1}).")
        self.layer, self.head = int(layer), int(head)

    def weights(self) -> np.ndarray:
        """The shown head's pattern ``[query, key]`` (from the state, to 3 decimals)."""
        return np.asarray(self.patterns[self.layers.index(self.layer)][self.head], dtype=np.float64) / 1000

    @classmethod
    def from_model(
        cls, model: Any, text_or_image: Any, layers: Sequence[int] | None = None, **kwargs: Any
    ) -> AttentionViewer:
        """Run ``model`` once and show the attention patterns of ``layers`` (default: every loaded layer).

        Captures ``blocks.{L}.attn.hook_pattern`` in memory. A ViT (a model with ``cfg.grid_size``,
        e.g. ``dinov2-s14`` or ``concept-vit``) takes one image and gets the patch grid over the image as the
        model sees it (resized to its square input); a language model takes one string (or token ids
        ``[1, pos]``). ``**kwargs`` go to the constructor (``layer``, ``head``).

        Raises:
            InputError: a batch, unknown layers, or more than :data:`MAX_VALUES` weights (pass fewer layers,
                or a shorter text).
        """
        import torch

        from interp.capture import capture_activations
        from interp.models.contract import prepare_inputs

        n_layers = int(model.cfg.n_layers)
        layers = list(range(n_layers)) if layers is None else [int(x) for x in layers]
        bad = [x for x in layers if not 0 <= x < n_layers]
        if bad or not layers:
            raise InputError(f"layers {bad or layers} are not layers of {getattr(model.cfg, 'model_name', 'the model')}"
                             f", which has {n_layers} loaded (0..{n_layers - 1}). Pass e.g. layers=[0].")  # fmt: skip
        x = prepare_inputs(model, text_or_image)
        if x.shape[0] != 1:
            raise InputError(f"AttentionViewer.from_model shows one input; got a batch of {x.shape[0]}. Pass one.")
        is_vit = getattr(model.cfg, "grid_size", None) is not None
        n_pos = x.shape[1] if not is_vit else int(model.cfg.n_ctx)
        _check_size(len(layers) * int(model.cfg.n_heads) * n_pos * n_pos, n_pos, "from_model")
        hooks = [f"blocks.{L}.attn.hook_pattern" for L in layers]
        acts = capture_activations(model, x, hooks)
        p = torch.stack([acts[hk][0] for hk in hooks])  # [layer, head, q, k]
        if is_vit:
            return cls(None, p, layers, image=model_view(model, text_or_image), **kwargs)
        tokens = model.to_str_tokens(x[0]) if getattr(model, "tokenizer", None) is not None else None
        tokens = list(tokens) if tokens is not None else [str(int(i)) for i in x[0]]
        return cls(tokens, p, layers, **kwargs)


def _check_size(n_values: int, n_pos: int, what: str) -> None:
    if n_pos > MAX_POSITIONS or n_values > MAX_VALUES:
        raise InputError(f"{what}: {n_values:,} attention weights over {n_pos} positions is more than a viewer "
                         f"holds ({MAX_VALUES:,} weights, {MAX_POSITIONS} positions). Fix: pass fewer layers "
                         "(layers=[L]) or a shorter text, or slice patterns[:, :, :n, :n].")  # fmt: skip


def _check_patterns(patterns: Any) -> np.ndarray:
    """``patterns`` as a float array ``[layer, head, q, k]`` with weights in [0, 1]."""
    p = as_float_array(patterns, "patterns")
    p = p[None] if p.ndim == 3 else p  # [head, q, k] -> [1, head, q, k]
    if p.ndim != 4 or p.shape[-1] != p.shape[-2] or 0 in p.shape:
        raise InputError(f"patterns has shape {list(np.shape(patterns))}; expected [layer, head, query, key] or "
                         "[head, query, key] with as many queries as keys (the hook_pattern of one input, "
                         "batch index removed: acts[0]).")  # fmt: skip
    _check_size(p.size, p.shape[-1], "patterns")
    if p.min() < -1e-3 or p.max() > 1 + 1e-3:
        raise InputError(f"patterns holds values in [{p.min():.3g}, {p.max():.3g}]; attention weights lie in "
                         "[0, 1]. Fix: pass hook_pattern (after the softmax), not hook_attn_scores.")  # fmt: skip
    return np.clip(p, 0.0, 1.0)


def _grid(n: int) -> int:
    """Patches per side for ``n`` positions: ``n = g*g`` or ``n = g*g + 1`` (CLS first)."""
    for g in (int(round(n**0.5)), int(round((n - 1) ** 0.5))):
        if g > 0 and n - g * g in (0, 1):
            return g
    raise InputError(f"an image viewer needs g*g patch positions (or g*g + 1 with CLS first); patterns have {n} "
                     "positions. Fix: pass the ViT's full hook_pattern, or image=None for text.")  # fmt: skip
