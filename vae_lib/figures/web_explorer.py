"""A latent-space explorer that needs no kernel: the trained decoder's weights travel inside the page
(float16, base64) and a few lines of plain JavaScript run the decoder's forward pass in the browser,
one slider per latent dimension, redrawing the image as the reader drags. The same output works on
the rendered book, in Jupyter and in Colab.

The JavaScript computes E[x|z] exactly as :meth:`vae_lib.model.vae.VAE.decode` does — each ``nn.Linear``
as y = W x + b, the model's activation between layers, a sigmoid at the end (for a Gaussian decoder
only the mean half of the last layer is shipped) — with the weights rounded to float16, the only
difference from PyTorch: :func:`float16_decode` reproduces it in PyTorch, so a test can compare the
browser's pixels with both.
"""

from __future__ import annotations

import base64
import html
import json
import uuid

import torch
from torch import nn

from vae_lib.base.params import check_float, check_image_shape, check_int
from vae_lib.model.vae import VAE

# Shared with every page that carries a decoder (also vae_lib.figures.playground): inside a function where `spec`
# holds decoder_layer_specs' list as spec.layers, it defines `layers`, each {W (rows × cols, row-major), b,
# rows, cols} as Float32Arrays holding the float16 values exactly.
JS_DECODER_WEIGHTS = r"""
  function half(u) {                      // IEEE 754 binary16 -> number
    const s = u & 0x8000 ? -1 : 1, e = (u >> 10) & 0x1f, f = u & 0x3ff;
    if (e === 0) return s * Math.pow(2, -14) * (f / 1024);
    if (e === 31) return f ? NaN : s * Infinity;
    return s * Math.pow(2, e - 15) * (1 + f / 1024);
  }
  function unpack(b64) {
    const bin = atob(b64), n = bin.length / 2, out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = half(bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8));
    return out;
  }
  const layers = spec.layers.map(l => ({W: unpack(l.W), b: unpack(l.b), rows: l.rows, cols: l.cols}));
"""

_JS = r"""
(function () {
  const spec = SPEC;""" + JS_DECODER_WEIGHTS + r"""  const act = spec.activation === "tanh" ? Math.tanh : (v => (v > 0 ? v : 0));
  function decode(z) {                    // E[x|z]: the decoder's mean image, row-major
    let h = Float32Array.from(z);
    layers.forEach((l, k) => {
      const out = new Float32Array(l.rows);
      for (let r = 0; r < l.rows; r++) {
        let s = l.b[r];
        const off = r * l.cols;
        for (let c = 0; c < l.cols; c++) s += l.W[off + c] * h[c];
        out[r] = k < layers.length - 1 ? act(s) : 1 / (1 + Math.exp(-s));
      }
      h = out;
    });
    return h;
  }
  const root = document.getElementById(spec.id);
  const canvas = root.querySelector("canvas"), ctx = canvas.getContext("2d");
  const [rows, cols] = spec.shape, small = document.createElement("canvas");
  small.width = cols; small.height = rows;
  const sctx = small.getContext("2d"), img = sctx.createImageData(cols, rows);
  const sliders = Array.from(root.querySelectorAll("input[type=range]"));
  const api = {decode: decode, last: null, z: null};
  function redraw() {
    const z = sliders.map(s => parseFloat(s.value));
    sliders.forEach((s, j) => { s.nextElementSibling.textContent = z[j].toFixed(2); });
    const x = decode(z);
    for (let i = 0; i < x.length; i++) {
      const v = Math.round(255 * (spec.invert ? 1 - x[i] : x[i]));
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
    }
    sctx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
    api.last = x; api.z = z;
  }
  sliders.forEach(s => s.addEventListener("input", redraw));
  window.vaeExplorers = window.vaeExplorers || {};
  window.vaeExplorers[spec.id] = api;
  redraw();
})();
"""


def decoder_mean_layers(model: VAE) -> tuple[list[nn.Linear], str]:
    """The decoder's Linear layers from z to the mean's logits, and its activation name. For a Gaussian
    decoder the last layer's log-variance half is dropped (the explorer draws the mean)."""
    decoder = model.decoder
    if model.config.likelihood == "bernoulli":
        linears = [m for m in decoder.net if isinstance(m, nn.Linear)]
    else:
        linears = [m for m in decoder.body if isinstance(m, nn.Linear)] + [decoder.head]
    return linears, model.config.activation


def _b64_float16(t: torch.Tensor) -> str:
    return base64.b64encode(t.detach().cpu().to(torch.float16).numpy().astype("<f2").tobytes()).decode("ascii")


def decoder_layer_specs(model: VAE) -> list[dict]:
    """The decoder's layers as the page carries them (read by ``JS_DECODER_WEIGHTS``): one dict per layer,
    W (rows × cols, row-major) and b as float16 base64, and the shape; the last layer cut to the mean's D rows."""
    linears, _ = decoder_mean_layers(model)
    d, layers = model.config.data_dim, []
    for k, lin in enumerate(linears):
        w, b = lin.weight, lin.bias
        if k == len(linears) - 1:
            w, b = w[:d], b[:d]
        layers.append({"W": _b64_float16(w.reshape(-1)), "b": _b64_float16(b), "rows": w.shape[0], "cols": w.shape[1]})
    return layers


@torch.no_grad()
def float16_decode(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """What the browser computes: the decoder's mean with every weight rounded to float16 and the
    arithmetic in float32. z (N, J) → (N, D)."""
    linears, activation = decoder_mean_layers(model)
    d = model.config.data_dim
    h = z.float().cpu()
    for k, lin in enumerate(linears):
        w, b = lin.weight.cpu().half().float(), lin.bias.cpu().half().float()
        if k == len(linears) - 1:
            w, b = w[:d], b[:d]
        h = h @ w.T + b
        h = torch.sigmoid(h) if k == len(linears) - 1 else (torch.tanh(h) if activation == "tanh" else torch.relu(h))
    return h


class WebExplorer:
    """Displays as an HTML slider explorer (``_repr_html_``): in the rendered book, Jupyter and Colab."""

    def __init__(self, model: VAE, image_shape: tuple[int, int], limit: float = 3.0, invert: bool = True,
                 scale: int = 8, title: str = ""):
        if model.latent_dim > 32:
            raise ValueError(f"one slider per latent dimension: {model.latent_dim} is too many to explore this way")
        image_shape = check_image_shape(image_shape, model.config.data_dim)
        limit = check_float("limit", limit, 0, low_open=True)   # the sliders' range ±limit
        check_int("scale", scale, 1)
        self.model, self.image_shape, self.limit = model, image_shape, limit
        self.invert, self.scale, self.title = invert, scale, title
        self.id = f"vae-explorer-{uuid.uuid4().hex[:8]}"

    def spec(self) -> dict:
        return {"id": self.id, "layers": decoder_layer_specs(self.model), "activation": self.model.config.activation,
                "shape": list(self.image_shape), "invert": self.invert}

    def _repr_html_(self) -> str:
        rows, cols = self.image_shape
        sliders = "".join(
            f'<div style="display:flex;align-items:center;gap:6px;margin:2px 0">'
            f'<label style="font-family:monospace;width:3.5em">z[{j}]</label>'
            f'<input type="range" min="{-self.limit}" max="{self.limit}" step="0.01" value="0" '
            f'style="width:180px" aria-label="latent dimension {j}"><span style="font-family:monospace;width:3.5em">0.00</span></div>'
            for j in range(self.model.latent_dim))
        title = f"<div style='font-weight:600;margin-bottom:4px'>{html.escape(self.title)}</div>" if self.title else ""
        return (f'<div id="{self.id}" class="vae-explorer" style="display:flex;gap:16px;align-items:center;flex-wrap:wrap">'
                f'<div>{title}{sliders}</div>'
                f'<canvas width="{cols * self.scale}" height="{rows * self.scale}" '
                f'style="border:1px solid #ccc;image-rendering:pixelated"></canvas></div>'
                f'<script>{_JS.replace("SPEC", json.dumps(self.spec()))}</script>')


def page_weight_kib(explorer: WebExplorer) -> float:
    """Size of the explorer's HTML in KiB (the weights dominate it)."""
    return len(explorer._repr_html_().encode()) / 1024

