import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from vae_lib.figures.prior_plots import plot_aggregate_posterior  # noqa: E402
from vae_lib.inference.aggregate_posterior import grid_log_densities  # noqa: E402


def test_plot_aggregate_posterior_shades_the_holes_only():
    mu, log_var = torch.tensor([[1.0, 1.0], [-1.0, -1.0]]), torch.full((2, 2), -2.0)
    axis, log_q, log_p = grid_log_densities(mu, log_var, limit=3.0, steps=41)
    fig = plot_aggregate_posterior(axis, log_q, log_p, ratio=0.1, title="two codes")
    left, right = fig.axes[:2]
    assert len(left.lines) == 3                       # the prior's three circles
    assert right.collections, "the holes are drawn"
    assert fig._suptitle.get_text() == "two codes"
    import matplotlib.pyplot as plt
    plt.close(fig)
