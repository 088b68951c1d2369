// The ELBO playground's page code (vae_lib.figures.playground); Python fills in the page's data and the decoder-weights block.
(function () {
  const spec = SPEC;
  /* JS_DECODER_WEIGHTS */
  const relu = spec.activation !== "tanh", LOG_2PI = Math.log(2 * Math.PI), D = layers[layers.length - 1].rows;
  // W transposed (column-major): an inactive ReLU unit (h = 0) then skips one contiguous column
  const WT = layers.map(l => { const t = new Float64Array(l.rows * l.cols);
    for (let r = 0; r < l.rows; r++) for (let c = 0; c < l.cols; c++) t[c * l.rows + r] = l.W[r * l.cols + c];
    return t; });
  const bufs = layers.map(l => new Float64Array(l.rows));
  function logits(z0, z1) {               // a(z): the decoder's pre-sigmoid output, float64 arithmetic
    let h = [z0, z1];
    layers.forEach((l, k) => {
      const out = bufs[k], W = WT[k];
      for (let r = 0; r < l.rows; r++) out[r] = l.b[r];
      for (let c = 0; c < l.cols; c++) {
        const v = h[c];
        if (v === 0) continue;
        for (let r = 0, off = c * l.rows; r < l.rows; r++) out[r] += W[off + r] * v;
      }
      if (k < layers.length - 1) for (let r = 0; r < l.rows; r++) out[r] = relu ? (out[r] > 0 ? out[r] : 0) : Math.tanh(out[r]);
      h = out;
    });
    return h;
  }
  function logLik(x, z0, z1) {            // log p(x|z) = Σ_d x_d a_d − softplus(a_d), softplus stable
    const a = logits(z0, z1);
    let s = 0;
    for (let d = 0; d < D; d++) s += (x[d] ? a[d] : 0) - ((a[d] > 0 ? a[d] : 0) + Math.log1p(Math.exp(-Math.abs(a[d]))));
    return s;
  }
  const images = spec.images.map(im => Object.assign({}, im, {x: Uint8Array.from(im.x, c => c === "1")}));
  const n = spec.grid_size, cache = {};
  function grid(i) {                      // log p(x, z) on the image's box; log p(x) by the midpoint rule
    if (cache[i]) return cache[i];
    const im = images[i], r = im.half_width, h = 2 * r / n, lj = new Float64Array(n * n);
    let m = -Infinity, s = 0;
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) {
      const z0 = im.centre[0] - r + h * (a + 0.5), z1 = im.centre[1] - r + h * (b + 0.5);
      const v = logLik(im.x, z0, z1) - 0.5 * (z0 * z0 + z1 * z1) - LOG_2PI;
      lj[a * n + b] = v; if (v > m) m = v;
    }
    for (let g = 0; g < n * n; g++) s += Math.exp(lj[g] - m);
    return (cache[i] = {lj: lj, max: m, h: h, logPx: m + Math.log(s) + 2 * Math.log(h)});
  }
  function terms(i, q) {                  // the ELBO's two terms: E_q[log p(x|z)] on z = μ + σ ⊙ u, KL(q ‖ N(0, I))
    const x = images[i].x, s0 = Math.exp(q[2]), s1 = Math.exp(q[3]), u = spec.q_u, w = spec.q_w;
    let e = 0;
    for (let a = 0; a < u.length; a++) for (let b = 0; b < u.length; b++) e += w[a] * w[b] * logLik(x, q[0] + s0 * u[a], q[1] + s1 * u[b]);
    const klPrior = 0.5 * (q[0] * q[0] + q[1] * q[1] + s0 * s0 + s1 * s1 - 2 - 2 * q[2] - 2 * q[3]);
    return {reconstruction: e, klPrior: klPrior, elbo: e - klPrior};
  }
  function elbo(i, q) { return terms(i, q).elbo; }
  function gridKL(i, q) {                 // KL(q ‖ p(z|x)) on the posterior's grid, without the ELBO
    const im = images[i], gr = grid(i), r = im.half_width, h = gr.h, s0 = Math.exp(q[2]), s1 = Math.exp(q[3]);
    const lq = new Float64Array(n * n);
    let m = -Infinity;
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) {
      const d0 = (im.centre[0] - r + h * (a + 0.5) - q[0]) / s0, d1 = (im.centre[1] - r + h * (b + 0.5) - q[1]) / s1;
      const v = -0.5 * (d0 * d0 + d1 * d1) - q[2] - q[3] - LOG_2PI;
      lq[a * n + b] = v; if (v > m) m = v;
    }
    let s = 0, t = 0;
    for (let g = 0; g < n * n; g++) { const e = Math.exp(lq[g] - m); s += e; t += e * (lq[g] - (gr.lj[g] - gr.logPx)); }
    const mass = Math.exp(m + Math.log(s) + 2 * Math.log(h));
    return {kl: t / s, qMass: mass, resolved: Math.abs(mass - 1) <= 1e-3 && Math.min(s0, s1) >= 2 * h};
  }
  const root = document.getElementById(spec.id);
  const canvas = root.querySelector("canvas.posterior"), ctx = canvas.getContext("2d");
  const barCanvas = root.querySelector("canvas.bar"), bctx = barCanvas.getContext("2d");
  const P = {left: 46, top: 8, size: canvas.width - 54};   // the plot's square inside the canvas, room for axes
  const sliders = Array.from(root.querySelectorAll("input[data-q]")), table = root.querySelector("table.readout");
  const thumbs = Array.from(root.querySelectorAll("button[data-image]"));
  const heat = document.createElement("canvas"); heat.width = heat.height = n;
  const note = root.querySelector("div.note");
  const api = {image: 0, q: null, last: null};
  thumbs.forEach((btn, i) => {            // the images, drawn once
    const c = btn.querySelector("canvas"), g = c.getContext("2d"), img = g.createImageData(c.width, c.height);
    images[i].x.forEach((v, p) => { const k = 255 * (spec.invert ? 1 - v : v);
      img.data[4 * p] = img.data[4 * p + 1] = img.data[4 * p + 2] = k; img.data[4 * p + 3] = 255; });
    g.putImageData(img, 0, 0);
    btn.addEventListener("click", () => api.select(i));
  });
  function drawHeat(i) {
    const gr = grid(i), hc = heat.getContext("2d"), img = hc.createImageData(n, n);
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) {
      const t = Math.exp(gr.lj[a * n + b] - gr.max), p = 4 * ((n - 1 - b) * n + a);   // z[1] upwards
      img.data[p] = 255 - 247 * t; img.data[p + 1] = 255 - 207 * t; img.data[p + 2] = 255 - 148 * t; img.data[p + 3] = 255;
    }
    hc.putImageData(img, 0, 0);
  }
  function toPx(im, z0, z1) {             // z → canvas pixels of the plot's square
    const r = im.half_width;
    return [P.left + (z0 - im.centre[0] + r) / (2 * r) * P.size, P.top + P.size - (z1 - im.centre[1] + r) / (2 * r) * P.size];
  }
  function ticks(lo, hi, count) {         // round tick values in [lo, hi]
    const raw = (hi - lo) / count, p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(k => k * p).find(v => v >= raw), out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return {values: out, digits: Math.max(0, -Math.floor(Math.log10(step)))};
  }
  function axes(im) {                     // the plot's frame, ticks and labels z[0], z[1]
    const r = im.half_width;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#333"; ctx.lineWidth = 1; ctx.strokeRect(P.left, P.top, P.size, P.size);
    ctx.fillStyle = "#333"; ctx.font = "11px sans-serif";
    [0, 1].forEach(j => {
      const t = ticks(im.centre[j] - r, im.centre[j] + r, 4);
      t.values.forEach(v => {
        const [x, y] = j === 0 ? toPx(im, v, im.centre[1] - r) : toPx(im, im.centre[0] - r, v);
        ctx.beginPath();
        if (j === 0) { ctx.moveTo(x, y); ctx.lineTo(x, y + 4); } else { ctx.moveTo(x, y); ctx.lineTo(x - 4, y); }
        ctx.stroke();
        ctx.textAlign = j === 0 ? "center" : "right"; ctx.textBaseline = j === 0 ? "top" : "middle";
        ctx.fillText(v.toFixed(t.digits).replace("-", "\u2212"), j === 0 ? x : x - 6, j === 0 ? y + 6 : y);
      });
    });
    ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    ctx.fillText("z[0]", P.left + P.size / 2, canvas.height - 1);
    ctx.save(); ctx.translate(10, P.top + P.size / 2); ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle"; ctx.fillText("z[1]", 0, 0); ctx.restore();
  }
  function ellipse(im, q, color, dash) {
    const r = im.half_width, [cx, cy] = toPx(im, q[0], q[1]);
    ctx.save(); ctx.beginPath(); ctx.rect(P.left, P.top, P.size, P.size); ctx.clip();
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.setLineDash(dash);
    [1, 2].forEach(k => { ctx.beginPath();
      ctx.ellipse(cx, cy, k * Math.exp(q[2]) / (2 * r) * P.size, k * Math.exp(q[3]) / (2 * r) * P.size, 0, 0, 2 * Math.PI); ctx.stroke(); });
    ctx.restore();
  }
  const COLORS = {elbo: "#3182bd", kl: "#d62728", reconstruction: "#31a354", klPrior: "#fdae6b"};
  function drawBar(im, v) {               // log p(x) = ELBO + KL(q ‖ p(z|x)), and ELBO = reconstruction − KL(q ‖ p(z))
    const W = barCanvas.width, H = barCanvas.height, L = 8, R = W - 12, pad = 0.05 * (im.barRange[1] - im.barRange[0]);
    // the axis is fixed per image, and widens (never clips) when your q takes a value beyond it
    const lo = Math.min(im.barRange[0], v.elbo - pad, v.elbo + v.kl - pad);
    const hi = Math.max(im.barRange[1], v.reconstruction + pad, v.elbo + v.kl + pad, v.log_px + pad);
    const X = val => L + (val - lo) / (hi - lo) * (R - L);
    const rows = [{y: 18, h: 22}, {y: 64, h: 22}];
    bctx.fillStyle = "#fff"; bctx.fillRect(0, 0, W, H);
    bctx.font = "11px sans-serif"; bctx.textBaseline = "bottom"; bctx.textAlign = "left"; bctx.fillStyle = "#333";
    bctx.fillText("log p(x) = ELBO + KL(q \u2016 p(z|x))", L, rows[0].y - 2);
    bctx.fillText("ELBO = reconstruction \u2212 KL(q \u2016 p(z))", L, rows[1].y - 2);
    const seg = (row, a, b, color) => { bctx.fillStyle = color; bctx.fillRect(Math.min(X(a), X(b)), row.y, Math.abs(X(b) - X(a)), row.h); };
    seg(rows[0], lo, v.elbo, COLORS.elbo);
    seg(rows[0], v.elbo, v.elbo + v.kl, COLORS.kl);
    seg(rows[1], lo, v.reconstruction, COLORS.reconstruction);
    seg(rows[1], v.elbo, v.reconstruction, COLORS.klPrior);     // what the KL to the prior takes back
    bctx.strokeStyle = "#000"; bctx.lineWidth = 2;
    bctx.beginPath(); bctx.moveTo(X(v.log_px), rows[0].y - 3); bctx.lineTo(X(v.log_px), rows[0].y + rows[0].h + 3); bctx.stroke();
    bctx.beginPath(); bctx.moveTo(X(v.elbo), rows[1].y - 3); bctx.lineTo(X(v.elbo), rows[1].y + rows[1].h + 3); bctx.stroke();
    const ax = rows[1].y + rows[1].h + 6, t = ticks(lo, hi, 5);
    bctx.lineWidth = 1; bctx.beginPath(); bctx.moveTo(L, ax); bctx.lineTo(R, ax); bctx.stroke();
    bctx.fillStyle = "#333"; bctx.textBaseline = "top"; bctx.textAlign = "center";
    t.values.forEach(x => { bctx.beginPath(); bctx.moveTo(X(x), ax); bctx.lineTo(X(x), ax + 4); bctx.stroke();
      bctx.fillText(x.toFixed(t.digits).replace("-", "\u2212"), X(x), ax + 5); });
    bctx.textAlign = "right"; bctx.fillText("nats", R, ax + 18);
    return {lo: lo, hi: hi, left: L, right: R, elbo: X(v.elbo), elbo_plus_kl: X(v.elbo + v.kl), log_px: X(v.log_px),
            reconstruction: X(v.reconstruction)};
  }
  const fmt = v => (v >= 0 ? "\u2007" : "\u2212") + Math.abs(v).toFixed(3);
  function update() {
    const i = api.image, im = images[i], q = api.q, gr = grid(i), t = terms(i, q), k = gridKL(i, q);
    api.last = {log_px: gr.logPx, elbo: t.elbo, kl: k.kl, reconstruction: t.reconstruction, kl_prior: t.klPrior,
                q_mass: k.qMass, resolved: k.resolved};
    sliders.forEach((s, j) => { s.nextElementSibling.textContent = q[j].toFixed(3); });
    axes(im);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(heat, P.left, P.top, P.size, P.size);
    ctx.strokeStyle = "#333"; ctx.lineWidth = 1; ctx.strokeRect(P.left, P.top, P.size, P.size);
    ellipse(im, q, "#d62728", []);
    ellipse(im, im.encoder, "#e6550d", [6, 4]);   // on top, dashed: visible even where your q covers it
    api.last.bar = drawBar(im, api.last);
    const row = (name, v, color) => `<tr><td style="padding-right:1em">${color ? `<span style="display:inline-block;width:10px;height:10px;background:${color};margin-right:4px"></span>` : ""}${name}</td><td style="text-align:right">${fmt(v)}</td><td>nats</td></tr>`;
    const residual = gr.logPx - t.elbo - k.kl;
    table.innerHTML = row("log p(x)", gr.logPx) +
      row("ELBO(q)", t.elbo, COLORS.elbo) +
      row("&nbsp;&nbsp;reconstruction E<sub>q</sub>[log p(x|z)]", t.reconstruction, COLORS.reconstruction) +
      row("&nbsp;&nbsp;KL(q \u2016 p(z)), to the prior", t.klPrior, COLORS.klPrior) +
      row("KL(q \u2016 p(z|x)), on the grid", k.kl, COLORS.kl) +
      row("log p(x) \u2212 ELBO \u2212 KL", residual) +
      row("ELBO, encoder's q", im.elboEncoder) + row("ELBO, best diagonal q", im.elboBest);
    note.textContent = k.resolved ? "" : `the grid cannot resolve this q (it sees ${(100 * k.qMass).toFixed(1)} % of q's mass, ` +
      "or q is narrower than two cells): its KL on the grid is unreliable";
  }
  api.setQ = function (q) {
    api.q = q.slice();
    sliders.forEach((s, j) => { s.value = q[j]; });
    update();
  };
  api.select = function (i) {
    const im = images[i], r = im.half_width;
    api.image = i;
    thumbs.forEach((b, k) => { b.style.borderColor = k === i ? "#d62728" : "#ccc"; });
    [0, 1].forEach(j => { sliders[j].min = im.centre[j] - r; sliders[j].max = im.centre[j] + r; });
    [2, 3].forEach(j => { sliders[j].min = im.log_sigma_range[0]; sliders[j].max = im.log_sigma_range[1]; });
    if (im.elboEncoder === undefined) {   // the bar's axis, fixed per image: the encoder's terms with room around
      const e = terms(i, im.encoder), gr = grid(i);
      im.elboEncoder = e.elbo; im.elboBest = elbo(i, im.best);
      const lo = Math.min(e.elbo, gr.logPx), hi = Math.max(e.reconstruction, gr.logPx), pad = Math.max(2, 0.25 * (hi - lo));
      im.barRange = [lo - 3 * pad, hi + pad];
    }
    drawHeat(i);
    root.querySelector("div.box").textContent =
      `box: z[0] \u2208 [${(im.centre[0] - r).toFixed(2)}, ${(im.centre[0] + r).toFixed(2)}], ` +
      `z[1] \u2208 [${(im.centre[1] - r).toFixed(2)}, ${(im.centre[1] + r).toFixed(2)}], ${n}\u00d7${n} cells`;
    api.setQ(im.encoder);
  };
  api.snap = function (which) { api.setQ(images[api.image][which]); };
  let pending = false;                    // a drag redraws once per frame, with the latest q, never a backlog
  function flush() { if (pending) { pending = false; update(); } }
  api.readout = function () {
    if (api.q === null) return null;      // not drawn yet: the playground has not come into view
    flush();
    return Object.assign({image: api.image, q: api.q.slice()}, api.last, {bar: Object.assign({}, api.last.bar)});
  };
  sliders.forEach((s, j) => s.addEventListener("input", () => {
    api.q[j] = parseFloat(s.value);
    if (!pending) { pending = true; requestAnimationFrame(flush); }
  }));
  root.querySelectorAll("button[data-snap]").forEach(b => b.addEventListener("click", () => api.snap(b.dataset.snap)));
  window.vaePlaygrounds = window.vaePlaygrounds || {};
  window.vaePlaygrounds[spec.id] = api;
  // the first grid costs a few thousand decoder passes: compute it when the playground comes into view
  const start = () => { if (api.q === null) api.select(0); };
  if ("IntersectionObserver" in window) {
    const seen = new IntersectionObserver(es => { if (es.some(e => e.isIntersecting)) { seen.disconnect(); start(); } });
    seen.observe(root);
  } else setTimeout(start, 0);
})();
