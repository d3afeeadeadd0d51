"""CSS and JavaScript of the label report page (:mod:`interp.reports.labels`), inlined into ``labels.html``.

The script reads the page's JSON blob (``<script id="data">``), renders the
summary table (click a header to sort, type to search), and on opening a unit
loads ``units/NNNNN.js`` with a ``<script>`` tag (``fetch`` of ``file://`` is
blocked by browsers) and renders its detail. Every dataset string is written
with ``textContent``, never parsed as HTML.
"""

from __future__ import annotations

__all__ = ["CSS", "JS"]

CSS = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.base{color:#888;font-size:12px}.snip{font-family:ui-monospace,monospace;white-space:pre-wrap;margin:2px 0}
.tok{padding:0 1px;border-radius:2px}.act{outline:1px solid #c00}#q{width:30em;padding:4px;margin:8px 0}
.muted{color:#888}tr.unit{cursor:pointer}tr.unit:hover{background:#fafafa}.detail{background:#fcfcf8}
.imgs{display:flex;flex-wrap:wrap;gap:6px}.ex{position:relative;display:inline-block}
.ex img{display:block;image-rendering:pixelated}.grid{position:absolute;inset:0;display:grid}
.cap{font-size:11px;color:#555;text-align:center}
"""

JS = r"""
const D=JSON.parse(document.getElementById('data').textContent),C=D.columns,IX={};C.forEach((c,i)=>IX[c]=i);
const chunks={},waiting={};let sortCol=null,asc=true;
function el(tag,attrs,text){const e=document.createElement(tag);for(const k in attrs||{})e.setAttribute(k,attrs[k]);
 if(text!==undefined&&text!==null)e.textContent=String(text);return e}
function fmt(x,d){return(x===null||x===undefined||Number.isNaN(x))?'\u2013':Number(x).toFixed(d===undefined?3:d)}
window.UNITS_LOADED=function(start,details,thumbs){chunks[start]={details,thumbs};
 (waiting[start]||[]).forEach(f=>f());
 delete waiting[start]};
function loadChunk(start,done){if(chunks[start])return done();(waiting[start]=waiting[start]||[]).push(done);
 if(waiting[start].length>1)return;const s=el('script',{src:'units/'+String(start).padStart(5,'0')+'.js'});
 s.onerror=()=>{(waiting[start]||[]).forEach(f=>f(true));delete waiting[start]};document.head.appendChild(s)}
function hist(h,thr){const NS='http://www.w3.org/2000/svg',W=320,H=80,c=(h&&h.counts)||[],e=(h&&h.edges)||[];
 const svg=document.createElementNS(NS,'svg');svg.setAttribute('width',W);svg.setAttribute('height',H+14);
 if(!c.length)return svg;const top=Math.max(...c.map(v=>Math.log1p(v)))||1,bw=W/c.length;
 c.forEach((v,i)=>{const r=document.createElementNS(NS,'rect'),hh=H*Math.log1p(v)/top;r.setAttribute('x',i*bw);
  r.setAttribute('y',H-hh);r.setAttribute('width',Math.max(bw-1,1));r.setAttribute('height',hh);
 r.setAttribute('fill','#4a7');
  svg.appendChild(r)});const lo=e[0],hi=e[e.length-1],x=hi>lo?W*(thr-lo)/(hi-lo):-1;
 if(x>=0&&x<=W){const l=document.createElementNS(NS,'line');l.setAttribute('x1',x);l.setAttribute('x2',x);
  l.setAttribute('y1',0);l.setAttribute('y2',H);l.setAttribute('stroke','#c00');svg.appendChild(l)}
 const t=document.createElementNS(NS,'text');t.setAttribute('y',H+12);t.setAttribute('font-size',10);
 t.textContent=fmt(lo,2)+' \u2026 '+fmt(hi,2)+' (log counts; red: threshold)';svg.appendChild(t);return svg}
function snippet(s,peak){const[tokens,acts,active,centre,value]=s,d=el('div',{class:'snip'});
 tokens.forEach((t,i)=>{const a=acts[i],al=(a===null||peak<=0)?0:Math.max(0,Math.min(1,a/peak));
  const sp=el('span',{class:active[i]?'tok act':'tok',title:a===null?'low':fmt(a)},t);
  sp.style.background='rgba(255,80,0,'+al.toFixed(2)+')';d.appendChild(sp);
 d.appendChild(document.createTextNode(' '))});
 d.appendChild(el('span',{class:'muted'},'('+fmt(value)+')'));return d}
function image(x,thumbs){const[img,key,value,mask,acts,g]=x,w=el('div',{class:'ex'}),box=el('div',{class:'ex'});
 const src=thumbs[String(img)];const im=el('img',{width:96,height:96,alt:key,title:key});if(src)im.src=src;
 box.appendChild(im);
 const grid=el('div',{class:'grid'});grid.style.gridTemplateColumns='repeat('+g+',1fr)';
 for(let i=0;i<g*g;i++){const c=el('div');const on=mask[i]==='1';
  c.style.background=on?'rgba(255,80,0,'+(acts?(0.1+0.04*Number(acts[i])).toFixed(2):'0.35')+')':'rgba(0,0,0,0.45)';
  if(on)c.style.outline='1px solid #f40';grid.appendChild(c)}box.appendChild(grid);w.appendChild(box);
 w.appendChild(el('div',{class:'cap'},fmt(value,2)));return w}
function section(parent,title,items,render){parent.appendChild(el('b',{},title));
 if(!items.length){parent.appendChild(el('p',{class:'muted'},'none'));return}const box=el('div',{class:'imgs'});
 box.style.display=items[0].length===6?'flex':'block';items.forEach(x=>box.appendChild(render(x)));
 parent.appendChild(box)}
function detail(td,d,thumbs){td.textContent='';const s=d.scores||{};
 if(d.description)td.appendChild(el('p',{},'label (grounded): '+d.label));
 td.appendChild(el('p',{},'key '+d.key+' \u00b7 grounding: '+d.count_e+'/'+d.n_e+' exemplar positions match; p(d|E) '+
  fmt(d.p_given_e)+', p(d) '+fmt(d.p,5)+'; threshold '+fmt(d.threshold)+'; fires on '+fmt(100*d.frac_positive,2)+
  '% \u00b7 held-out: AUROC '+fmt(s.auroc)+' (constant '+fmt(s.constant_auroc,
 2)+', shuffled '+fmt(s.shuffled_auroc,2)+
  '), balanced accuracy '+fmt(s.balanced_accuracy)+', r '+fmt(s.correlation)+' over '+(s.n||0)+' positions'));
 td.appendChild(hist(d.hist,d.threshold));
 if(d.out_top.length)td.appendChild(el('p',{},
 'promotes: '+d.out_top.join(' | ')+'  \u00b7 suppresses: '+d.out_bot.join(' | ')));
 td.appendChild(el('b',{},'runner-up labels'));const ol=el('ol');
 d.alts.forEach(a=>ol.appendChild(el('li',{},a[0]+'  (pmi '+fmt(a[1])+', p(d|E) '+fmt(a[2],2)+', p(d) '+fmt(a[3],
 4)+')')));
 td.appendChild(ol);const peak=d.max>0?d.max:1,sn=x=>snippet(x,peak),im=x=>image(x,thumbs);
 if(d.imgs.length||d.imgs_low.length){section(td,'top exemplars (mask: active patches)',d.imgs,im);
  section(td,'lower-quantile samples (marked patch)',d.imgs_low,im);section(td,'non-activating samples',
 d.imgs_idle,im)}
 else{section(td,'top exemplars',d.ex,sn);section(td,'lower-quantile samples',d.low,sn);
  section(td,'non-activating samples',d.idle,sn)}}
function toggle(tr,i){const nx=tr.nextSibling;if(nx&&nx.classList.contains('detail')){nx.remove();return}
 const row=el('tr',{class:'detail'}),td=el('td',{colspan:HEAD.length},'loading\u2026');
 row.appendChild(td);tr.after(row);
 const start=Math.floor(i/D.chunk)*D.chunk;loadChunk(start,err=>{if(err){td.textContent='could not load units/'+
  String(start).padStart(5,'0')+'.js (keep it next to this page)';return}const c=chunks[start];
  detail(td,c.details[i-start],c.thumbs)})}
const HEAD=[['unit','unit'],['label','label'],['kind','kind'],['pmi','PMI'],['auroc','AUROC (held-out)'],
 ['balanced_accuracy','bal. acc.'],['correlation','corr.'],['frac_positive','firing rate']].concat(
 (D.extra||[]).map(c=>[c,c.replace(/_/g,' ')]));
function render(){const q=document.getElementById('q').value.toLowerCase(),tb=document.getElementById('tb');
 tb.textContent='';
 let idx=D.rows.map((r,i)=>i).filter(i=>{const r=D.rows[i];
 return !q||(r[0]+' '+r[1]+' '+r[2]+' '+r[IX.search]).toLowerCase().includes(q)});
 if(sortCol!==null){const k=IX[sortCol];idx.sort((a,b)=>{const x=D.rows[a][k],y=D.rows[b][k];
  if(x===null)return 1;if(y===null)return -1;const o=(typeof x==='number')?x-y:String(x).localeCompare(String(y));
 return asc?o:-o})}
 document.getElementById('n').textContent=idx.length+' of '+D.rows.length+' units';
 idx.forEach(i=>{const r=D.rows[i],tr=el('tr',{class:'unit'});HEAD.forEach(([c])=>{const v=r[IX[c]],
 num=typeof v==='number'||v===null;
  const td=el('td',num&&c!=='label'&&c!=='kind'?{class:'num'}:{},c==='unit'||!num?v:fmt(v,c==='frac_positive'?4:3));
  if(c==='auroc')td.appendChild(el('div',{class:'base'},'const '+fmt(r[IX.constant_auroc],
 2)+' \u00b7 shuffled '+fmt(r[IX.shuffled_auroc],2)));
  tr.appendChild(td)});tr.onclick=()=>toggle(tr,i);tb.appendChild(tr)})}
(function(){const app=document.getElementById('app');app.appendChild(el('h1',{},D.title));const ul=el('ul');
 for(const k in D.meta)ul.appendChild(el('li',{},k+': '+D.meta[k]));app.appendChild(ul);
 app.appendChild(el('p',{},'AUROC: does the activation rank positions that match the label above those that do not '+
  '(held-out data; 0.5 is chance), beside a constant label and the label shuffled over positions. '+
  'Click a unit for its '+
  'exemplars; click a header to sort.'));
 const q=el('input',{id:'q',placeholder:'search labels, units, kinds, output tokens'});q.oninput=render;
 app.appendChild(q);
 app.appendChild(el('span',{id:'n',class:'muted'}));const t=el('table',{id:'units'}),th=el('thead'),hr=el('tr');
 HEAD.forEach(([c,name])=>{const h=el('th',{},name);h.onclick=()=>{asc=sortCol===c?!asc:(c==='unit'||c==='label');
 sortCol=c;render()};
  hr.appendChild(h)});th.appendChild(hr);t.appendChild(th);t.appendChild(el('tbody',{id:'tb'}));app.appendChild(t);
 render()})();
"""
