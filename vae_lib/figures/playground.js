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
  function elbo(i, q) {                   // E_q[log p(x|z)] on z = μ + σ ⊙ u, minus KL(q ‖ N(0, I))
    const x = images[i].x, s0 = Math.exp(q[2]), s1 = Math.exp(q[3]), u = spec.q_u, w = spec.q_w;
    let e = 0;
    for (let a = 0; a < u.length; a++) for (let b = 0; b < u.length; b++) e += w[a] * w[b] * logLik(x, q[0] + s0 * u[a], q[1] + s1 * u[b]);
    return e - 0.5 * (q[0] * q[0] + q[1] * q[1] + s0 * s0 + s1 * s1 - 2 - 2 * q[2] - 2 * q[3]);
  }
  const root = document.getElementById(spec.id);
  const canvas = root.querySelector("canvas.posterior"), ctx = canvas.getContext("2d");
  const sliders = Array.from(root.querySelectorAll("input[data-q]")), table = root.querySelector("table.readout");
  const thumbs = Array.from(root.querySelectorAll("button[data-image]"));
  const heat = document.createElement("canvas"); heat.width = heat.height = n;
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
  function ellipse(im, q, color, dash) {
    const r = im.half_width, W = canvas.width, H = canvas.height;
    const cx = (q[0] - im.centre[0] + r) / (2 * r) * W, cy = H - (q[1] - im.centre[1] + r) / (2 * r) * H;
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.setLineDash(dash);
    [1, 2].forEach(k => { ctx.beginPath();
      ctx.ellipse(cx, cy, k * Math.exp(q[2]) / (2 * r) * W, k * Math.exp(q[3]) / (2 * r) * H, 0, 0, 2 * Math.PI); ctx.stroke(); });
    ctx.setLineDash([]);
  }
  const fmt = v => (v >= 0 ? "\u2007" : "\u2212") + Math.abs(v).toFixed(3);
  function update() {
    const i = api.image, im = images[i], q = api.q, gr = grid(i), value = elbo(i, q);
    api.last = {log_px: gr.logPx, elbo: value, kl: gr.logPx - value};
    sliders.forEach((s, j) => { s.nextElementSibling.textContent = q[j].toFixed(3); });
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(heat, 0, 0, canvas.width, canvas.height);
    ellipse(im, im.encoder, "#e6550d", [6, 4]);
    ellipse(im, q, "#d62728", []);
    const row = (name, v) => `<tr><td style="padding-right:1em">${name}</td><td style="text-align:right">${fmt(v)}</td><td>nats</td></tr>`;
    table.innerHTML = row("log p(x)", gr.logPx) + row("ELBO(q)", value) + row("KL(q \u2016 p(z|x))", gr.logPx - value) +
      row("ELBO, encoder's q", im.elboEncoder) + row("ELBO, best diagonal q", im.elboBest);
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
    if (im.elboEncoder === undefined) { im.elboEncoder = elbo(i, im.encoder); im.elboBest = elbo(i, im.best); }
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
    return Object.assign({image: api.image, q: api.q.slice()}, api.last);
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
