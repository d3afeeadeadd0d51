// Runs the label report page's script under node with a minimal DOM (test_report.py).
// Usage: node dom_harness.js labels.html SEARCH. Prints row counts and the first unit's opened detail.
class N {
  constructor(tag) { this.tagName = tag; this.children = []; this.attrs = {}; this.style = {}; this._text = ''; this.value = ''; this.parent = null;
    this.classList = { contains: c => (this.attrs.class || '').split(' ').includes(c) }; }
  setAttribute(k, v) { this.attrs[k] = String(v); }
  appendChild(c) { c.parent = this; this.children.push(c); return c; }
  set textContent(v) { this._text = String(v); this.children = []; }
  get textContent() { return this._text + this.children.map(c => c.textContent).join(''); }
  get nextSibling() { if (!this.parent) return null; const s = this.parent.children; return s[s.indexOf(this) + 1] || null; }
  after(n) { const s = this.parent.children; s.splice(s.indexOf(this) + 1, 0, n); n.parent = this.parent; }
  remove() { const s = this.parent.children; s.splice(s.indexOf(this), 1); }
  set innerHTML(v) { throw new Error('innerHTML used'); }
}
const fs = require('fs'), path = require('path');
const page = process.argv[2], html = fs.readFileSync(page, 'utf8');
const data = html.match(/<script id='data' type='application\/json'>([\s\S]*?)<\/script>/)[1];
const js = html.match(/<\/script><script>([\s\S]*?)<\/script><\/body>/)[1];
const root = new N('div'); root.attrs.id = 'app';
const find = (n, id) => { if (n.attrs && n.attrs.id === id) return n; for (const c of n.children) { const r = find(c, id); if (r) return r; } return null; };
const head = new N('head');
head.appendChild = s => { eval(fs.readFileSync(path.join(path.dirname(page), s.attrs.src), 'utf8')); return s; };
global.window = global;
global.document = { getElementById: id => id === 'data' ? { textContent: data } : id === 'app' ? root : find(root, id),
  createElement: t => new N(t), createElementNS: (ns, t) => new N(t), head,
  createTextNode: t => { const n = new N('#text'); n.textContent = t; return n; } };
eval(js);
const tb = find(root, 'tb');
console.log('rows', tb.children.length);
tb.children[0].onclick();
console.log('detail', tb.children[1].textContent);
find(root, 'units').children[0].children[0].children[4].onclick();
const q = find(root, 'q'); q.value = process.argv[3] || ''; q.oninput();
console.log('after search', find(root, 'tb').children.length);
