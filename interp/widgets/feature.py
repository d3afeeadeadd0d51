"""The feature / neuron dashboard: browse the labels of one layer's units (neurons, heads or SAE latents).

A sae-dashboard / Neuronpedia-style page drawn from a labeling result
(:class:`~interp.labeling.results.LabelSet`, written by ``interp label`` as
``labels.json``): each unit's label or description and held-out score, its
activation histogram, top exemplars with token highlighting (hover a token for
its activation) or image exemplars with their patch masks, the lower-quantile
and non-activating bands, and the most promoted / suppressed output tokens.
A number box picks a unit and a search box filters the labels.

Lazy by design, so a 4,608-latent SAE stays responsive: the synced ``summary``
holds one compact row per unit; the selected unit's detail is computed in
Python when the browser sets ``selected`` (the Python round-trip) and arrives
in the ``detail`` trait. The detail is shaped by the same helpers as the HTML
label report (:mod:`interp.reports.labels`), so both show the same numbers.
A standalone export carries the details of a bounded number of units (see
:meth:`FeatureDashboard.state`); any other unit shows a note saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import traitlets

from interp.errors import InputError
from interp.labeling.results import LabelSet, UnitLabel
from interp.reports.labels import _clean, _detail
from interp.widgets._base import View

__all__ = ["FeatureDashboard", "SUMMARY_COLUMNS"]

#: Columns of one ``summary`` row: unit id, label (shortened), held-out AUROC, maximum activation, firing rate.
SUMMARY_COLUMNS = ("unit", "label", "score", "max", "freq")
#: Labels longer than this are shortened in the summary (the detail holds the full text).
MAX_LABEL = 80

_CSS = """
.interp-feature{font:13px system-ui,sans-serif;color:#222;max-width:60em}
.interp-feature input{font:inherit;padding:2px 4px}.interp-feature .if-bar{display:flex;gap:6px;align-items:center;
flex-wrap:wrap}.interp-feature .if-muted{color:#888}.interp-feature .if-hits{max-height:12em;overflow:auto;margin:4px 0;
padding-left:2.5em}.interp-feature .if-hits li{cursor:pointer}.interp-feature .if-hits li:hover{background:#eef}
.interp-feature .if-snip{font-family:ui-monospace,monospace;white-space:pre-wrap;margin:2px 0;font-size:12px}
.interp-feature .if-tok{border-radius:2px}.interp-feature .if-act{outline:1px solid #c40}
.interp-feature .if-out{display:flex;gap:2em}.interp-feature .if-pos{color:#070}.interp-feature .if-neg{color:#a00}
.interp-feature .if-imgs{display:flex;flex-wrap:wrap;gap:6px}.interp-feature .if-ex{position:relative}
.interp-feature .if-ex img{display:block;width:96px;height:96px;image-rendering:pixelated}
.interp-feature .if-grid{position:absolute;left:0;top:0;width:96px;height:96px;display:grid}
.interp-feature .if-cap{font-size:11px;color:#555;text-align:center}
"""

_ESM = r"""
export default { render({ model, el }) {
 const h=(tag,attrs,text)=>{const e=document.createElement(tag);for(const k in attrs||{})e.setAttribute(k,attrs[k]);
  if(text!==undefined&&text!==null)e.textContent=String(text);return e};
 const NS=(()=>{const d=document.createElement('div');d.innerHTML='<svg></svg>';return d.firstChild.namespaceURI})();
 const sv=(tag,attrs)=>{const e=document.createElementNS(NS,tag);for(const k in attrs)e.setAttribute(k,attrs[k]);
  return e};
 const fmt=(x,d)=>(x===null||x===undefined||Number.isNaN(x))?'\u2013':Number(x).toFixed(d===undefined?3:d);
 const S=model.get('summary'),pos=new Map(S.map((r,i)=>[r[0],i]));
 const root=h('div',{class:'interp-feature'}),bar=h('div',{class:'if-bar'});
 const sel=h('input',{'data-role':'unit-select',type:'number',step:1,min:S.length?S[0][0]:0,
  max:S.length?S[S.length-1][0]:0,style:'width:7em'});
 const prev=h('button',{'data-role':'prev',title:'previous unit'},'\u25c0'),
  next=h('button',{'data-role':'next',title:'next unit'},'\u25b6');
 const q=h('input',{'data-role':'search',type:'search',placeholder:'search labels or unit ids',style:'width:22em'});
 const note=h('span',{class:'if-muted'}),hits=h('ol',{class:'if-hits','data-role':'search-hits'});
 const det=h('div',{'data-role':'detail','data-unit':''});
 bar.append(h('b',{},model.get('title')),h('span',{},'unit'),prev,sel,next,q,note);root.append(bar,hits,det);
 el.appendChild(root);
 function select(u){if(!pos.has(u)){note.textContent='no unit '+u+' in these labels';return}
  note.textContent='';model.set('selected',u);model.save_changes();show()}
 function step(k){const i=pos.get(model.get('selected'));const r=S[Math.max(0,Math.min(S.length-1,(i||0)+k))];
  if(r)select(r[0])}
 sel.addEventListener('change',()=>select(Number(sel.value)));prev.onclick=()=>step(-1);next.onclick=()=>step(1);
 function search(){const t=q.value.trim().toLowerCase();hits.textContent='';if(!t){note.textContent='';return}
  const found=S.filter(r=>(r[0]+' '+r[1]).toLowerCase().includes(t));
  note.textContent=found.length+' of '+S.length+' units match'+(found.length>100?' (first 100 listed)':'');
  found.slice(0,100).forEach(r=>{const li=h('li',{'data-role':'search-hit','data-unit':r[0],value:r[0]},
   r[1]+'  (AUROC '+fmt(r[2])+')');li.onclick=()=>select(r[0]);hits.appendChild(li)})}
 q.addEventListener('input',search);
 function hist(hh,thr){const W=320,H=70,c=(hh&&hh.counts)||[],e=(hh&&hh.edges)||[];
  const s=sv('svg',{width:W,height:H+14,'data-role':'histogram'});if(!c.length)return h('p',{class:'if-muted'},
   'no activation histogram');const top=Math.max(...c.map(v=>Math.log1p(v)))||1,bw=W/c.length;
  c.forEach((v,i)=>{const hv=H*Math.log1p(v)/top,r=sv('rect',{x:i*bw,y:H-hv,width:Math.max(bw-1,1),height:hv,
   fill:'#4a7'});const t=sv('title',{});t.textContent=fmt(e[i],3)+'\u2026'+fmt(e[i+1],3)+': '+v;r.appendChild(t);
   s.appendChild(r)});const lo=e[0],hi=e[e.length-1],x=hi>lo?W*(thr-lo)/(hi-lo):-1;
  if(x>=0&&x<=W)s.appendChild(sv('line',{x1:x,x2:x,y1:0,y2:H,stroke:'#c00'}));
  const t=sv('text',{y:H+12,'font-size':10});t.textContent=fmt(lo,2)+' \u2026 '+fmt(hi,2)+
   '  (log counts; red: active threshold)';s.appendChild(t);return s}
 function snippet(s,peak){const [tokens,acts,active,centre,value]=s,d=h('div',{class:'if-snip'});
  tokens.forEach((t,i)=>{const a=acts[i],al=(a===null||peak<=0)?0:Math.min(1,Math.abs(a)/peak);
   const sp=h('span',{class:active[i]?'if-tok if-act':'if-tok',title:a===null?'not recorded':fmt(a)},t);
   sp.style.background=(a!==null&&a<0?'rgba(40,90,220,':'rgba(255,120,0,')+al.toFixed(2)+')';d.appendChild(sp)});
  d.appendChild(h('span',{class:'if-muted'},'  ('+fmt(value)+')'));return d}
 function image(x,thumbs){const [img,key,value,mask,acts,g]=x,w=h('div',{}),box=h('div',{class:'if-ex'});
  const im=h('img',{alt:key,title:key});if(thumbs[String(img)])im.src=thumbs[String(img)];box.appendChild(im);
  const grid=h('div',{class:'if-grid'});grid.style.gridTemplateColumns='repeat('+g+',1fr)';
  for(let i=0;i<g*g;i++){const on=mask[i]==='1',c=h('div',{});
   c.style.background=on?'rgba(255,80,0,'+(acts?(0.1+0.04*Number(acts[i])).toFixed(2):'0.35')+')':'rgba(0,0,0,0.45)';
   grid.appendChild(c)}box.appendChild(grid);w.append(box,h('div',{class:'if-cap'},fmt(value,2)));return w}
 function section(title,items,render,role){det.appendChild(h('h4',{},title));
  if(!items.length){det.appendChild(h('p',{class:'if-muted'},'none'));return}
  const box=h('div',{class:items[0].length===6?'if-imgs':'','data-role':role});
  items.forEach(x=>box.appendChild(render(x)));
  det.appendChild(box)}
 function outputs(d){if(!d.out_top.length&&!d.out_bot.length)return;const o=h('div',{class:'if-out'});
  [['promotes (top +logits)',d.out_top,'if-pos'],['suppresses (top \u2212logits)',d.out_bot,'if-neg']].forEach(
   ([t,toks,cls])=>{const c=h('div',{});c.appendChild(h('b',{},t));const ol=h('ol',{});
    toks.forEach(x=>ol.appendChild(h('li',{class:cls},JSON.stringify(x))));c.appendChild(ol);o.appendChild(c)});
  det.appendChild(o)}
 function draw(d){det.textContent='';det.setAttribute('data-unit',String(d.unit));const s=d.scores||{};
  det.appendChild(h('h3',{},'unit '+d.unit+': '+(d.description||d.label)));
  if(d.description)det.appendChild(h('p',{},'label (grounded): '+d.label));
  det.appendChild(h('p',{'data-role':'score'},'held-out AUROC '+fmt(s.auroc)+' (constant '+fmt(s.constant_auroc,2)+
   ', shuffled '+fmt(s.shuffled_auroc,2)+') \u00b7 balanced accuracy '+fmt(s.balanced_accuracy)+' \u00b7 r '+
   fmt(s.correlation)+' \u00b7 max '+fmt(d.max)+' \u00b7 fires on '+fmt(100*d.frac_positive,2)+'% \u00b7 key '+d.key));
  det.appendChild(hist(d.hist,d.threshold));outputs(d);const peak=d.max>0?d.max:1,th=d.thumbs||{};
  if(d.imgs.length||d.imgs_low.length){const im=x=>image(x,th);
   section('top exemplars (active patches highlighted)',d.imgs,im,'exemplars');
   section('lower-quantile band',d.imgs_low,im,'lower');section('non-activating samples',d.imgs_idle,im,'inactive')}
  else{const sn=x=>snippet(x,peak);section('top exemplars (hover a token for its activation)',d.ex,sn,'exemplars');
   section('lower-quantile band',d.low,sn,'lower');section('non-activating samples',d.idle,sn,'inactive')}}
 function show(){const u=model.get('selected'),d=model.get('detail')||{},cached=model.get('cached')||{};
  sel.value=u;const x=d.unit===u?d:cached[String(u)];if(x){draw(x);return}
  det.textContent='';det.setAttribute('data-unit','');const r=S[pos.get(u)];
  if(r)det.appendChild(h('h3',{},'unit '+u+': '+r[1]));det.appendChild(h('p',{class:'if-muted'},model.standalone?
   'This export holds the details of '+Object.keys(cached).length+' units, not this one; open the view in a '+
   'notebook to browse every unit.':'loading\u2026'))}
 model.on('change:selected',show);model.on('change:detail',show);show();
 return ()=>{model.off('change:selected',show);model.off('change:detail',show)};
} }
"""


def _row(u: UnitLabel) -> list[Any]:
    """One compact summary row (:data:`SUMMARY_COLUMNS`), 3-4 significant digits."""
    text = u.text if len(u.text) <= MAX_LABEL else u.text[: MAX_LABEL - 1] + "…"
    score = _clean(u.scores.get("auroc"))
    return [u.unit, text, None if score is None else round(score, 3), _clean(round(float(u.max), 3)),
            _clean(round(float(u.frac_positive), 4))]  # fmt: skip


class FeatureDashboard(View):
    """A feature / neuron dashboard over the labels of one layer (anywidget; exportable to one offline HTML file).

    The browser side: a number box (``<input data-role="unit-select" type="number">``) with previous / next
    buttons picks a unit; a search box (``data-role="search"``) lists matching units (``data-role="search-hit"``,
    click to open; it matches unit ids and the labels as the summary holds them); the detail
    (``data-role="detail"``, attribute ``data-unit`` = the unit shown) draws the label, held-out scores,
    activation histogram, top ± output tokens, top exemplars with token highlighting (or image exemplars with
    patch masks) and the quantile bands.

    Synced state: ``summary`` (one row per unit, :data:`SUMMARY_COLUMNS`), ``title``, ``selected`` (the unit
    id) and ``detail`` (the selected unit's detail, computed in Python when ``selected`` changes).

    Args:
        labels: the labels of one layer (``interp label`` writes them as ``labels.json``; see :meth:`from_path`).
        unit: the unit to open first (default: the first labelled unit).
        title: shown above the view (default: the labelled layer).
        max_exemplars: most top exemplars shown per unit.
        max_samples: most lower-quantile and non-activating samples shown per unit.
        offline_units: how many units' details a standalone export carries (the first ones, plus the selected).

    Raises:
        InputError: ``labels`` is not a non-empty ``LabelSet``, or ``unit`` is not one of its units.

    Example:
        >>> from interp.widgets.feature import FeatureDashboard          # doctest: +SKIP
        >>> dash = FeatureDashboard.from_path("runs/labels/blocks.3")    # doctest: +SKIP
        >>> dash.search("digit")                                         # doctest: +SKIP
        [12, 907]
        >>> dash.select(907)                                             # doctest: +SKIP
        >>> dash                        # the cell's last value displays it # doctest: +SKIP
        >>> dash.export_html("latents.html")                             # doctest: +SKIP
    """

    _esm = _ESM
    _css = _CSS
    title = traitlets.Unicode("").tag(sync=True)
    summary = traitlets.List().tag(sync=True)
    selected = traitlets.Int(0).tag(sync=True)
    detail = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        labels: LabelSet,
        unit: int | None = None,
        *,
        title: str | None = None,
        max_exemplars: int = 15,
        max_samples: int = 5,
        offline_units: int = 50,
    ) -> None:
        if not isinstance(labels, LabelSet):
            raise InputError(f"FeatureDashboard needs a LabelSet, got {type(labels).__name__}. Fix: pass "
                             "LabelSet.load('DIR/labels.json') or use FeatureDashboard.from_path(path).")  # fmt: skip
        if not labels.units:
            raise InputError("FeatureDashboard got a LabelSet with no units; label at least one unit first.")
        self._labels = labels
        self._index = {u.unit: i for i, u in enumerate(labels.units)}
        self._limits = (max_exemplars, max_samples)
        self.offline_units = int(offline_units)
        rows = [_row(u) for u in labels.units]
        super().__init__(title=title if title is not None else (labels.layer or "unit labels"), summary=rows)
        self.select(labels.units[0].unit if unit is None else unit)

    @classmethod
    def from_path(cls, path: str | Path, unit: int | None = None, **kwargs: Any) -> FeatureDashboard:
        """A dashboard over ``labels.json``, or the ``labels.json`` in a report directory (``interp label --out``)."""
        return cls(LabelSet.load(path), unit, **kwargs)

    @property
    def labels(self) -> LabelSet:
        """The labels shown."""
        return self._labels

    def select(self, unit: int) -> None:
        """Open ``unit`` (its id, as in ``UnitLabel.unit``): sets ``selected`` and fills ``detail``.

        Raises:
            InputError: ``unit`` is not one of the labelled units (nearest ids listed).
        """
        if isinstance(unit, bool) or not isinstance(unit, int) or unit not in self._index:
            near = sorted(self._index, key=lambda k: abs(k - unit))[:3] if isinstance(unit, int) else []
            raise InputError(f"unit {unit!r} is not among the {len(self._index)} labelled units of "
                             f"{self.title!r}" + (f" (nearest: {', '.join(map(str, near))})" if near else "") +
                             ". Fix: pass one of dash.labels.units[i].unit.")  # fmt: skip
        self.selected = unit
        if self.detail.get("unit") != unit:  # setting the same id again fires no observer
            self.detail = self.unit_detail(unit)

    @traitlets.observe("selected")
    def _fill_detail(self, change: dict[str, Any]) -> None:
        """The Python side of the round-trip: the browser set ``selected``, compute that unit's detail."""
        unit = change["new"]
        self.detail = self.unit_detail(unit) if unit in self._index else {}

    def unit_detail(self, unit: int) -> dict[str, Any]:
        """The detail of one unit as the view draws it (the label report's shape plus ``unit`` and ``thumbs``)."""
        u = self._labels.units[self._index[unit]]
        d = _clean(_detail(u, *self._limits))
        thumbs = self._labels.assets.get("thumbs", {})
        used = {str(e[0]) for k in ("imgs", "imgs_low", "imgs_idle") for e in d[k]}
        return d | {"unit": unit, "thumbs": {k: thumbs[k] for k in sorted(used) if k in thumbs}}

    def search(self, text: str) -> list[int]:
        """Unit ids whose id, label, description or label key contains ``text`` (case-insensitive), in order."""
        t = str(text).strip().lower()
        return [u.unit for u in self._labels.units
                if t in f"{u.unit} {u.text} {u.label} {u.key}".lower()]  # fmt: skip

    def state(self) -> dict[str, Any]:
        """The synced state plus ``cached``: the details of the first ``offline_units`` units and the selected one.

        This is what :meth:`export_html` writes, so the standalone page browses those units offline (the
        other units show their summary row and a note). In a notebook the details come from Python instead.
        """
        state = super().state()
        ids = [u.unit for u in self._labels.units[: max(0, self.offline_units)]] + [self.selected]
        state["cached"] = {str(i): self.unit_detail(i) for i in dict.fromkeys(ids) if i in self._index}
        return state
