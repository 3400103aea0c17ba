"""The 3D view's HTML page: a small WebGL viewer of our own (about 20 kB of JavaScript, no
library), filled in by :func:`core.viz.brain3d.brain_html`.

The page unpacks the mesh and the map (gzip, the browser's ``DecompressionStream``) in the
layouts :func:`~core.viz.brain3d.encode_coords`, :func:`~core.viz.brain3d.encode_faces` and
:func:`~core.viz.brain3d.encode_map` write, draws the surface with per-vertex colours and a
headlight, and draws the title, the ROI names, the colour bar and the legends on a 2D canvas
over it (the PNG it saves is the two canvases together).

- Camera: a turntable around the z axis; each view button (and a double click) fits the camera
  to the vertices shown exactly as :func:`~core.viz.brain3d.fit_camera` does, so the whole
  brain is in view.
- ROI names: anchored at the vertex :func:`~core.viz.brain3d.roi_label_positions` chose, hidden
  when the surface hides that vertex, pushed apart on screen (to the nearest free place, with a
  leader line) where two would overlap.
- For tests: ``#brain`` gets ``data-ready="1"`` once the first frame is drawn, and
  ``window.brain3d`` exposes ``fitCheck()`` (the largest |normalised device coordinate| of the
  vertices shown), ``labelBoxes()`` (the names' boxes) and ``setView(name)``.
"""

from __future__ import annotations

TEMPLATE = r"""<!doctype html>
<html><head><meta charset="utf-8">
<style>
 body { margin: 0; font-family: "Source Sans Pro", sans-serif; font-size: 13px; color: #31333f; }
 #bar { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: center; padding: 2px 4px 6px; }
 .grp { display: flex; gap: 2px; align-items: center; }
 .grp span { color: #808495; margin-right: 2px; }
 button { border: 1px solid #d6d6d9; background: white; border-radius: 6px; padding: 2px 8px;
          cursor: pointer; font-size: 12px; color: #31333f; }
 button.on { background: #31333f; color: white; border-color: #31333f; }
 .badge { background: #b3261e; color: white; border-radius: 4px; padding: 1px 6px; font-size: 11px; }
 #brain { position: relative; width: 100%; height: __HEIGHT__px; overflow: hidden;
          touch-action: none; user-select: none; cursor: grab; }
 #brain canvas { position: absolute; left: 0; top: 0; }
 #ov { pointer-events: none; }
 #tip { position: absolute; pointer-events: none; background: rgba(255,255,255,.94);
        border: 1px solid #d6d6d9; border-radius: 4px; padding: 1px 6px; font-size: 12px;
        display: none; white-space: nowrap; }
 #msg { position: absolute; left: 12px; top: 40px; color: #b3261e; }
</style></head>
<body>
<div id="bar">
 <div class="grp" id="g-surf"><span>Surface</span></div>
 <div class="grp" id="g-hemi"><span>Hemispheres</span></div>
 <div class="grp" id="g-view"><span>View</span></div>
 <button id="png" title="Save this view as a PNG">Save PNG</button>
 <span id="badge"></span>
</div>
<div id="brain" data-testid="brain3d"><canvas id="gl"></canvas><canvas id="ov"></canvas>
<div id="tip"></div><div id="msg"></div></div>
<script>
(function () {
'use strict';
const D = __DATA__;
const M = D.mesh, N = M.n;
const el = document.getElementById('brain'), glc = document.getElementById('gl');
const ov = document.getElementById('ov'), tip = document.getElementById('tip');
const api = window.brain3d = { ready: false };
if (D.simulated) document.getElementById('badge').innerHTML =
  '<span class="badge">SIMULATED data</span>';
function fail(text) { document.getElementById('msg').textContent = text; }

// ------------------------------------------------------------------ unpacking
function bytes64(s) {
  const bin = atob(s), n = bin.length, u = new Uint8Array(n);
  for (let i = 0; i < n; i++) u[i] = bin.charCodeAt(i);
  return u;
}
async function gunzip(s) {
  const stream = new Blob([bytes64(s)]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
function unplane(u8, width) {  // byte planes -> little-endian elements of `width` bytes
  const n = u8.length / width, out = new Uint8Array(u8.length);
  for (let b = 0; b < width; b++) { const o = b * n; for (let i = 0; i < n; i++) out[i * width + b] = u8[o + i]; }
  return out.buffer;
}
function coordsOf(u8) {
  const d = new Int16Array(unplane(u8, 2)), out = new Float32Array(3 * N);
  for (let c = 0; c < 3; c++) {
    let v = 0;
    for (let i = 0; i < N; i++) { v = ((v + d[c * N + i]) << 16) >> 16; out[3 * i + c] = v / M.scale; }
  }
  return out;
}
function facesOf(u8) {
  const d = new Int32Array(unplane(u8, 4)), F = M.nFaces;
  const out = N > 65535 ? new Uint32Array(3 * F) : new Uint16Array(3 * F);
  let a = 0;
  for (let f = 0; f < F; f++) {
    a += d[f]; out[3 * f] = a; out[3 * f + 1] = a + d[F + f]; out[3 * f + 2] = a + d[2 * F + f];
  }
  return out;
}
function normalsOf(p, faces) {
  const n = new Float32Array(3 * N);
  for (let f = 0; f < faces.length; f += 3) {
    const a = 3 * faces[f], b = 3 * faces[f + 1], c = 3 * faces[f + 2];
    const ux = p[b] - p[a], uy = p[b + 1] - p[a + 1], uz = p[b + 2] - p[a + 2];
    const vx = p[c] - p[a], vy = p[c + 1] - p[a + 1], vz = p[c + 2] - p[a + 2];
    const nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
    for (const k of [a, b, c]) { n[k] += nx; n[k + 1] += ny; n[k + 2] += nz; }
  }
  for (let i = 0; i < n.length; i += 3) {
    const l = Math.hypot(n[i], n[i + 1], n[i + 2]) || 1;
    n[i] /= l; n[i + 1] /= l; n[i + 2] /= l;
  }
  return n;
}

// ------------------------------------------------------------------ camera (as fit_camera)
function basis(az, elev) {
  const a = az * Math.PI / 180, e = elev * Math.PI / 180;
  const d = [Math.cos(e) * Math.cos(a), Math.cos(e) * Math.sin(a), Math.sin(e)];
  const r = [-Math.sin(a), Math.cos(a), 0];
  // up = r x (-d)
  let u = [-(r[1] * d[2] - r[2] * d[1]), -(r[2] * d[0] - r[0] * d[2]), -(r[0] * d[1] - r[1] * d[0])];
  const l = Math.hypot(u[0], u[1], u[2]); u = u.map(x => x / l);
  return { d, r, u };
}
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

let P = null, NRM = null, FACES = null, COL = null, ROI = null, VAL = null;
let surf = M.surfaces[0], shown = [true, true], viewName = 'back';
const cam = { az: 0, el: 0, dist: 1, target: [0, 0, 0] };
const layout = { W: 0, H: 0, top: 26, bottom: 0, right: 0, gw: 1, gh: 1 };

function shownRange(h) { return h ? [M.nLeft, N] : [0, M.nLeft]; }
function fit(az, elev) {
  const p = P[surf], lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  for (const h of [0, 1]) {
    if (!shown[h]) continue;
    const [v0, v1] = shownRange(h);
    for (let v = v0; v < v1; v++) for (let c = 0; c < 3; c++) {
      const x = p[3 * v + c]; if (x < lo[c]) lo[c] = x; if (x > hi[c]) hi[c] = x;
    }
  }
  let t = [0, 1, 2].map(c => 0.5 * (lo[c] + hi[c]));
  const { d, r, u } = basis(az, elev);
  const ty = Math.tan(D.fov * Math.PI / 360) * D.margin, tx = ty * layout.gw / layout.gh;
  const each = fn => { for (const h of [0, 1]) {
    if (!shown[h]) continue;
    const [v0, v1] = shownRange(h);
    for (let v = v0; v < v1; v++) {
      const q = [p[3 * v] - t[0], p[3 * v + 1] - t[1], p[3 * v + 2] - t[2]];
      fn(dot(q, d), dot(q, r), dot(q, u));
    }
  } };
  let dist;
  for (let step = 0; step < 3; step++) {
    dist = -Infinity;
    each((z, x, y) => { dist = Math.max(dist, z + Math.abs(x) / tx, z + Math.abs(y) / ty, z + 1); });
    if (step === 2) break;
    // perspective makes the near side look larger: centre the projected extent
    const ext = [Infinity, -Infinity, Infinity, -Infinity];
    each((z, x, y) => { const nx = x / ((dist - z) * tx), ny = y / ((dist - z) * ty);
      ext[0] = Math.min(ext[0], nx); ext[1] = Math.max(ext[1], nx);
      ext[2] = Math.min(ext[2], ny); ext[3] = Math.max(ext[3], ny); });
    const cx = 0.5 * (ext[0] + ext[1]) * tx * dist, cy = 0.5 * (ext[2] + ext[3]) * ty * dist;
    t = [0, 1, 2].map(c => t[c] + cx * r[c] + cy * u[c]);
  }
  Object.assign(cam, { az, el: elev, dist, target: t });
}
function matrices() {
  const { d, r, u } = basis(cam.az, cam.el);
  const eye = [0, 1, 2].map(c => cam.target[c] + cam.dist * d[c]);
  const f = 1 / Math.tan(D.fov * Math.PI / 360), asp = layout.gw / layout.gh;
  const near = Math.max(0.5, cam.dist * 0.05), far = cam.dist * 4 + 500;
  // view rows: r, u, d (camera looks along -d); column-major mvp = proj * view
  const V = [r, u, d].map(row => [row[0], row[1], row[2], -dot(row, eye)]);
  const A = (far + near) / (near - far), B = 2 * far * near / (near - far);
  const Prow = [[f / asp, 0, 0, 0], [0, f, 0, 0], [0, 0, A, B], [0, 0, -1, 0]];
  const V4 = [V[0], V[1], V[2], [0, 0, 0, 1]];
  const mvp = new Float32Array(16);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
    let s = 0; for (let k = 0; k < 4; k++) s += Prow[i][k] * V4[k][j];
    mvp[j * 4 + i] = s;
  }
  return { mvp, d, r, u, eye, f, asp };
}

// ------------------------------------------------------------------ WebGL
let gl = null, prog = null, buf = {}, mats = null;
function initGL() {
  gl = glc.getContext('webgl2', { antialias: true, preserveDrawingBuffer: false }) ||
       glc.getContext('webgl', { antialias: true, preserveDrawingBuffer: false });
  if (!gl) { fail('This browser has no WebGL: the 3D view cannot be drawn.'); return false; }
  if (N > 65535 && !(gl instanceof WebGL2RenderingContext) && !gl.getExtension('OES_element_index_uint')) {
    fail('This browser cannot draw meshes this large.'); return false;
  }
  const vs = `attribute vec3 p; attribute vec3 n; attribute vec3 c; uniform mat4 mvp;
    varying vec3 vn; varying vec3 vc;
    void main() { gl_Position = mvp * vec4(p, 1.0); vn = n; vc = c; }`;
  const fs = `precision mediump float; uniform vec3 L; varying vec3 vn; varying vec3 vc;
    void main() { float d = abs(dot(normalize(vn), L));
      gl_FragColor = vec4(min(vc * (0.42 + 0.62 * d), 1.0), 1.0); }`;
  const sh = (type, src) => { const s = gl.createShader(type); gl.shaderSource(s, src);
    gl.compileShader(s); return s; };
  prog = gl.createProgram();
  gl.attachShader(prog, sh(gl.VERTEX_SHADER, vs)); gl.attachShader(prog, sh(gl.FRAGMENT_SHADER, fs));
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) { fail('WebGL: ' + gl.getProgramInfoLog(prog)); return false; }
  const mk = (target, data) => { const b = gl.createBuffer(); gl.bindBuffer(target, b);
    gl.bufferData(target, data, gl.STATIC_DRAW); return b; };
  for (const s of M.surfaces) buf['p' + s] = mk(gl.ARRAY_BUFFER, P[s]);
  for (const s of M.surfaces) buf['n' + s] = mk(gl.ARRAY_BUFFER, NRM[s]);
  buf.c = mk(gl.ARRAY_BUFFER, COL);
  buf.i = mk(gl.ELEMENT_ARRAY_BUFFER, FACES);
  gl.enable(gl.DEPTH_TEST);
  return true;
}
function attr(name, b, size, type, norm) {
  const loc = gl.getAttribLocation(prog, name);
  gl.bindBuffer(gl.ARRAY_BUFFER, b); gl.enableVertexAttribArray(loc);
  gl.vertexAttribPointer(loc, size, type, norm, 0, 0);
}
function drawGL() {
  gl.viewport(0, 0, glc.width, glc.height);
  gl.clearColor(1, 1, 1, 1); gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
  gl.useProgram(prog);
  attr('p', buf['p' + surf], 3, gl.FLOAT, false);
  attr('n', buf['n' + surf], 3, gl.FLOAT, false);
  attr('c', buf.c, 3, gl.UNSIGNED_BYTE, true);
  gl.uniformMatrix4fv(gl.getUniformLocation(prog, 'mvp'), false, mats.mvp);
  gl.uniform3fv(gl.getUniformLocation(prog, 'L'), mats.d);
  gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, buf.i);
  const type = FACES instanceof Uint32Array ? gl.UNSIGNED_INT : gl.UNSIGNED_SHORT;
  const size = FACES.BYTES_PER_ELEMENT;
  if (shown[0]) gl.drawElements(gl.TRIANGLES, 3 * M.nFacesLeft, type, 0);
  if (shown[1]) gl.drawElements(gl.TRIANGLES, 3 * (M.nFaces - M.nFacesLeft), type, 3 * M.nFacesLeft * size);
}

// ------------------------------------------------------------------ screen-space depth grid
const CELL = 4;
let grid = null;
function project(v) {  // css px inside the GL canvas, and depth (mm from the eye)
  const p = P[surf], m = mats.mvp, x = p[3 * v], y = p[3 * v + 1], z = p[3 * v + 2];
  const w = m[3] * x + m[7] * y + m[11] * z + m[15];
  const cx = (m[0] * x + m[4] * y + m[8] * z + m[12]) / w, cy = (m[1] * x + m[5] * y + m[9] * z + m[13]) / w;
  return [(cx + 1) / 2 * layout.gw, (1 - cy) / 2 * layout.gh, w, cx, cy];
}
function buildGrid() {
  const gw = Math.ceil(layout.gw / CELL), gh = Math.ceil(layout.gh / CELL);
  const depth = new Float32Array(gw * gh).fill(Infinity), vid = new Int32Array(gw * gh).fill(-1);
  let worst = 0;
  for (const h of [0, 1]) {
    if (!shown[h]) continue;
    const [v0, v1] = shownRange(h);
    for (let v = v0; v < v1; v++) {
      const [sx, sy, w, cx, cy] = project(v);
      worst = Math.max(worst, Math.abs(cx), Math.abs(cy));
      const gx = Math.floor(sx / CELL), gy = Math.floor(sy / CELL);
      if (gx < 0 || gy < 0 || gx >= gw || gy >= gh) continue;
      const k = gy * gw + gx;
      if (w < depth[k]) { depth[k] = w; vid[k] = v; }
    }
  }
  grid = { gw, gh, depth, vid, worst };
}
function nearest(sx, sy) {  // the front vertex under a point (css px in the GL canvas)
  const gx = Math.floor(sx / CELL), gy = Math.floor(sy / CELL);
  let best = -1, bd = Infinity;
  for (let j = gy - 1; j <= gy + 1; j++) for (let i = gx - 1; i <= gx + 1; i++) {
    if (i < 0 || j < 0 || i >= grid.gw || j >= grid.gh) continue;
    const k = j * grid.gw + i;
    if (grid.depth[k] < bd) { bd = grid.depth[k]; best = grid.vid[k]; }
  }
  return [best, bd];
}

// ------------------------------------------------------------------ overlay: names, bar, legends
let boxes = [];
function placeLabels(ctx) {
  boxes = [];
  ctx.font = '600 12px sans-serif';
  const anchors = [];
  for (const lab of D.labels) {
    if (!shown[lab.hemi]) continue;
    const [sx, sy, w] = project(lab.vertex);
    if (sx < 0 || sy < 0 || sx > layout.gw || sy > layout.gh) continue;
    const [, front] = nearest(sx, sy);
    if (w > front + 4 + 0.02 * cam.dist) continue;  // hidden behind the surface
    anchors.push({ name: lab.name, x: sx, y: sy + layout.top });
  }
  const pad = 3, h = 16, placed = [], steps = [];
  for (let k = 0; k <= 6; k++) for (const s of k ? [-1, 1] : [0]) steps.push(s * k * (h + 2));
  const free = b => b.x >= 0 && b.x + b.w <= layout.W && b.y >= layout.top && b.y + b.h <= layout.top + layout.gh &&
    placed.every(o => b.x + b.w <= o.x || o.x + o.w <= b.x || b.y + b.h <= o.y || o.y + o.h <= b.y);
  for (const a of anchors) {
    const w = ctx.measureText(a.name).width + 2 * pad;
    let box = null;
    for (const dx of [0, -0.6 * w, 0.6 * w]) {
      for (const dy of steps) {
        const b = { name: a.name, x: a.x - w / 2 + dx, y: a.y - h / 2 + dy, w, h, ax: a.x, ay: a.y };
        if (free(b)) { box = b; break; }
      }
      if (box) break;
    }
    if (!box) continue;  // no free place near its ROI: left out rather than written over another
    placed.push(box);
  }
  for (const b of placed) {
    const cx = b.x + b.w / 2, cy = b.y + b.h / 2;
    if (Math.hypot(cx - b.ax, cy - b.ay) > 4) {
      ctx.strokeStyle = '#111'; ctx.lineWidth = 1; ctx.beginPath();
      ctx.moveTo(b.ax, b.ay); ctx.lineTo(Math.min(Math.max(b.ax, b.x), b.x + b.w), cy < b.ay ? b.y + b.h : b.y);
      ctx.stroke();
      ctx.fillStyle = '#111'; ctx.beginPath(); ctx.arc(b.ax, b.ay, 2, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.fillStyle = 'rgba(255,255,255,0.82)'; ctx.fillRect(b.x, b.y, b.w, b.h);
    ctx.fillStyle = '#111'; ctx.textBaseline = 'middle'; ctx.textAlign = 'center';
    ctx.fillText(b.name, cx, cy + 0.5);
  }
  boxes = placed;
}
function drawOverlay(ctx) {
  ctx.clearRect(0, 0, layout.W, layout.H);
  ctx.fillStyle = '#31333f'; ctx.font = '14px sans-serif'; ctx.textAlign = 'center';
  ctx.textBaseline = 'middle'; ctx.fillText(D.title, layout.W / 2, 13);
  if (D.colorscale) {  // colour bar
    const x = layout.W - layout.right + 10, y0 = layout.top + 0.2 * layout.gh, hh = 0.6 * layout.gh;
    const g = ctx.createLinearGradient(0, y0 + hh, 0, y0);
    for (const [t, c] of D.colorscale) g.addColorStop(t, c);
    ctx.fillStyle = g; ctx.fillRect(x, y0, 12, hh);
    ctx.strokeStyle = '#aaa'; ctx.lineWidth = 1; ctx.strokeRect(x + 0.5, y0 + 0.5, 11, hh - 1);
    const [lo, hi] = D.limits, span = hi - lo || 1;
    const raw = span / 4, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(s => s * mag).find(s => s >= raw);
    ctx.fillStyle = '#31333f'; ctx.font = '11px sans-serif'; ctx.textAlign = 'left';
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) {
      const y = y0 + hh * (1 - (t - lo) / span);
      ctx.fillText(+t.toPrecision(6) + '', x + 16, y);
    }
    ctx.save(); ctx.translate(layout.W - 8, y0 + hh / 2); ctx.rotate(-Math.PI / 2);
    ctx.textAlign = 'center'; ctx.fillText(D.label, 0, 0); ctx.restore();
  }
  // bottom legends: categories, then the border key
  let x = 6; const y = layout.H - 10;
  ctx.font = '12px sans-serif'; ctx.textAlign = 'left'; ctx.textBaseline = 'middle';
  for (const [name, colour] of D.legend) {
    ctx.fillStyle = colour; ctx.fillRect(x, y - 5, 10, 10); ctx.fillStyle = '#31333f';
    ctx.fillText(name, x + 14, y); x += ctx.measureText(name).width + 28;
  }
  const key = [];
  if (D.border) key.push(['ROI borders', D.border]);
  if (D.highlight) key.push([D.highlight[0], D.highlight[1]]);
  for (const [name, colour] of key) {
    ctx.strokeStyle = colour; ctx.lineWidth = 3; ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 16, y);
    ctx.stroke(); ctx.fillStyle = '#31333f'; ctx.fillText(name, x + 20, y);
    x += ctx.measureText(name).width + 34;
  }
  placeLabels(ctx);
}

// ------------------------------------------------------------------ frame
let dpr = 1, pending = false;
function resize(scale) {
  dpr = (window.devicePixelRatio || 1) * (scale || 1);
  layout.W = el.clientWidth; layout.H = el.clientHeight;
  layout.right = D.colorscale ? 78 : 0;
  layout.bottom = (D.legend.length || D.border) ? 22 : 0;
  layout.gw = Math.max(layout.W - layout.right, 10); layout.gh = Math.max(layout.H - layout.top - layout.bottom, 10);
  Object.assign(glc.style, { top: layout.top + 'px', width: layout.gw + 'px', height: layout.gh + 'px' });
  glc.width = Math.round(layout.gw * dpr); glc.height = Math.round(layout.gh * dpr);
  Object.assign(ov.style, { width: layout.W + 'px', height: layout.H + 'px' });
  ov.width = Math.round(layout.W * dpr); ov.height = Math.round(layout.H * dpr);
}
function draw() {
  pending = false;
  mats = matrices();
  drawGL();
  buildGrid();
  const ctx = ov.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  drawOverlay(ctx);
  if (!api.ready) { api.ready = true; el.dataset.ready = '1'; }
}
function redraw() { if (!pending) { pending = true; requestAnimationFrame(draw); } }
function setView(name) {
  viewName = name;
  if (name === 'medial') {
    if (shown[0] && shown[1]) { shown = [true, false]; mark('g-hemi', 'left'); }
    fit(shown[0] ? 0 : 180, 10);
  } else fit(...D.views[name]);
  redraw();
}

// ------------------------------------------------------------------ controls
function mark(group, label) {
  for (const o of document.querySelectorAll(`#${group} button`)) o.className = o.textContent === label ? 'on' : '';
}
function button(group, label, on, fn) {
  const b = document.createElement('button');
  b.textContent = label; if (on) b.className = 'on';
  b.onclick = () => { mark(group, label); fn(); };
  document.getElementById(group).appendChild(b);
}
function hoverText(v) {
  const r = ROI[v] ? D.roiNames[ROI[v] - 1] : 'no ROI', q = VAL[v];
  let val;
  if (D.categorical) val = q === 65535 ? 'none' : D.categories[q];
  else val = q === 65535 ? 'no value' : (D.low + q * (D.high - D.low) / 65534).toFixed(3);
  return `${r} · ${val}`;
}
function controls() {
  for (const s of M.surfaces) button('g-surf', s, s === surf, () => { surf = s; setView(viewName); });
  for (const [label, v] of [['both', [true, true]], ['left', [true, false]], ['right', [false, true]]])
    button('g-hemi', label, label === 'both', () => {
      shown = v;
      if (viewName === 'medial') { mark('g-view', 'back'); viewName = 'back'; }
      setView(viewName);
    });
  for (const name of [...Object.keys(D.views), 'medial'])
    button('g-view', name, name === 'back', () => setView(name));
  let drag = null;
  el.addEventListener('pointerdown', e => { drag = [e.clientX, e.clientY]; el.setPointerCapture(e.pointerId);
    el.style.cursor = 'grabbing'; tip.style.display = 'none'; });
  el.addEventListener('pointerup', e => { drag = null; el.releasePointerCapture(e.pointerId); el.style.cursor = 'grab'; });
  el.addEventListener('pointermove', e => {
    const rect = el.getBoundingClientRect();
    if (drag) {
      cam.az -= (e.clientX - drag[0]) * 0.4;
      cam.el = Math.max(-89.5, Math.min(89.5, cam.el + (e.clientY - drag[1]) * 0.4));
      drag = [e.clientX, e.clientY]; redraw(); return;
    }
    if (!grid) return;
    const sx = e.clientX - rect.left, sy = e.clientY - rect.top - layout.top;
    const [v] = sx >= 0 && sy >= 0 && sx < layout.gw && sy < layout.gh ? nearest(sx, sy) : [-1];
    if (v < 0) { tip.style.display = 'none'; return; }
    tip.textContent = hoverText(v); tip.style.display = 'block';
    tip.style.left = Math.min(e.clientX - rect.left + 12, layout.W - tip.offsetWidth - 4) + 'px';
    tip.style.top = (e.clientY - rect.top + 14) + 'px';
  });
  el.addEventListener('pointerleave', () => { tip.style.display = 'none'; });
  el.addEventListener('wheel', e => { e.preventDefault();
    cam.dist *= Math.exp(Math.max(-0.5, Math.min(0.5, e.deltaY * 0.0015))); redraw(); }, { passive: false });
  el.addEventListener('dblclick', () => setView(viewName));
  document.getElementById('png').onclick = savePNG;
  new ResizeObserver(() => { const w = el.clientWidth;
    if (w && w !== layout.W) { resize(); setView(viewName); } }).observe(el);
}
function savePNG() {
  resize(2); draw();
  const out = document.createElement('canvas');
  out.width = ov.width; out.height = ov.height;
  const ctx = out.getContext('2d');
  ctx.fillStyle = 'white'; ctx.fillRect(0, 0, out.width, out.height);
  ctx.drawImage(glc, 0, Math.round(layout.top * dpr));
  ctx.drawImage(ov, 0, 0);
  const a = document.createElement('a');
  a.href = out.toDataURL('image/png'); a.download = D.fileStem + '.png';
  document.body.appendChild(a); a.click(); a.remove();
  resize(); draw();
}

api.fitCheck = () => grid ? grid.worst : null;
api.labelBoxes = () => boxes.map(b => ({ name: b.name, x: b.x, y: b.y, w: b.w, h: b.h }));
api.setView = name => { setView(name); draw(); };
api.camera = () => Object.assign({}, cam);

async function main() {
  if (typeof DecompressionStream === 'undefined') {
    fail('This browser is too old for the 3D view (it needs DecompressionStream: Chrome 80, ' +
         'Firefox 113, Safari 16.4 or newer).');
    return;
  }
  const [faces, mapBytes, ...coords] = await Promise.all(
    [gunzip(M.faces), gunzip(D.map), ...M.surfaces.map(s => gunzip(M.coords[s]))]);
  FACES = facesOf(faces);
  P = {}; NRM = {};
  M.surfaces.forEach((s, k) => { P[s] = coordsOf(coords[k]); NRM[s] = normalsOf(P[s], FACES); });
  const rgb = mapBytes.subarray(0, 3 * N);
  COL = new Uint8Array(3 * N);
  for (let v = 0; v < N; v++) { COL[3 * v] = rgb[v]; COL[3 * v + 1] = rgb[N + v]; COL[3 * v + 2] = rgb[2 * N + v]; }
  ROI = mapBytes.slice(3 * N, 4 * N);
  VAL = new Uint16Array(unplane(mapBytes.slice(4 * N, 6 * N), 2));
  if (!initGL()) return;
  resize();
  controls();
  setView('back');
  draw();
}
main().catch(e => { fail('The 3D view failed: ' + e); throw e; });
})();
</script>
</body></html>
"""
