"""Exploring a trained model's latent space: manifold grids (the paper's Figure 4; its Figure 5 shows
random samples from the prior, not a grid), interpolation, and a slider explorer that is a thin shell
over :func:`decode_latents` (:mod:`vae_lib.figures.web_explorer` is its kernel-free twin)."""

from __future__ import annotations

import torch

from vae_lib.base.params import check_float, check_image_shape, check_int
from vae_lib.model.vae import VAE


@torch.no_grad()
def decode_latents(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """Mean images E[x|z] for latent points ``z`` (N, J) → (N, D), on the model's device and in its dtype."""
    param = next(model.parameters())
    return model.decode(z.to(device=param.device, dtype=param.dtype))


def manifold_grid_latents(n: int = 20, eps: float = 0.05) -> torch.Tensor:
    """An n×n grid of 2-D latent points: quantiles in [eps, 1−eps] of the unit square mapped through
    the standard normal's inverse CDF, Φ⁻¹ — as in the paper's Figure 4. Returns (n*n, 2), rows
    from top (largest z[1]) to bottom, columns left to right."""
    if isinstance(n, (bool, float, str)) or not hasattr(n, "__index__"):
        check_int("n", n, 1)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    check_float("eps", eps, 0, 0.5, low_open=True)
    p = torch.linspace(eps, 1 - eps, n, dtype=torch.float64)
    values = torch.distributions.Normal(0.0, 1.0).icdf(p).float()
    z1, z0 = torch.meshgrid(values.flip(0), values, indexing="ij")
    return torch.stack([z0.reshape(-1), z1.reshape(-1)], dim=1)


def interpolate_latents(z_start: torch.Tensor, z_end: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """Points on the straight line from ``z_start`` to ``z_end`` (each (J,)), ends included: (steps, J)."""
    check_int("steps", steps, 2)
    if not (isinstance(z_start, torch.Tensor) and isinstance(z_end, torch.Tensor)) or z_start.shape != z_end.shape:
        raise ValueError("z_start and z_end must be tensors of one shape (J,), got "
                         f"{getattr(z_start, 'shape', type(z_start).__name__)} and {getattr(z_end, 'shape', type(z_end).__name__)}")
    t = torch.linspace(0, 1, steps, device=z_start.device).unsqueeze(1)
    return (1 - t) * z_start + t * z_end


def latent_explorer(model: VAE, image_shape: tuple[int, int], limit: float = 3.0):
    """An ipywidgets explorer: one slider per latent dimension (range ±``limit``), the decoded mean
    image redrawn as they move. Needs a running kernel; returns the widget to display."""
    check_float("limit", limit, 0, low_open=True)
    image_shape = check_image_shape(image_shape, model.config.data_dim)
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    sliders = [widgets.FloatSlider(value=0.0, min=-limit, max=limit, step=0.05, description=f"z[{j}]",
                                   continuous_update=True) for j in range(model.latent_dim)]
    out = widgets.Output()

    def redraw(_change=None) -> None:
        z = torch.tensor([[s.value for s in sliders]])
        image = decode_latents(model, z).cpu().reshape(image_shape).numpy()  # imshow of a tensor warns under NumPy 2
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(2.5, 2.5 * image_shape[0] / image_shape[1]))
            ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
            ax.set_axis_off()
            plt.show()

    for s in sliders:
        s.observe(redraw, names="value")
    redraw()
    return widgets.HBox([widgets.VBox(sliders), out])
