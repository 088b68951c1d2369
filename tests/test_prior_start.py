"""The traced first steps of a model with a learned prior (vae_lib.runs.prior_start): what it records, that a
start is repeatable, that bad inputs are refused; and on a small MNIST slice the collapse chapter 15 shows —
the VampPrior from the zero decoder start loses its rate and saturates its encoder, from the mean-image start
it does neither."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from vae_lib.figures.prior_plots import START_PANELS, plot_start_trace  # noqa: E402
from vae_lib.model.prior_vae import PriorConfig, PriorVAE  # noqa: E402
from vae_lib.runs.beyond import ARCHITECTURE  # noqa: E402
from vae_lib.runs.prior_start import TRACE_KEYS, start_state, trace_start  # noqa: E402


def binary_images(n, seed):
    """n binary 784-pixel images with structure: noisy copies of four random prototypes."""
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(4, 784, generator=torch.Generator().manual_seed(7)) < 0.3).float()
    flip = torch.rand(n, 784, generator=g) < 0.05
    return (protos[torch.randint(0, 4, (n,), generator=g)] + flip.float()).remainder(2)


def test_the_trace_records_every_key_at_the_start_and_every_few_steps():
    trace = trace_start(PriorConfig("vamp", 10), binary_images(300, 0), binary_images(50, 1), steps=7, every=3)
    assert set(trace) == set(TRACE_KEYS)
    assert trace["step"] == [0, 3, 6, 7]
    assert all(len(v) == 4 for v in trace.values())
    assert all(0.0 <= s <= 1.0 for s in trace["saturated"])
    assert all(0 <= a <= ARCHITECTURE.latent_dim for a in trace["active_units"])


def test_the_same_seed_gives_the_same_trace_and_another_seed_another():
    train, test = binary_images(300, 0), binary_images(50, 1)
    a = trace_start(PriorConfig("standard"), train, test, steps=4, every=2, seed=3)
    b = trace_start(PriorConfig("standard"), train, test, steps=4, every=2, seed=3)
    c = trace_start(PriorConfig("standard"), train, test, steps=4, every=2, seed=4)
    assert a == b
    assert a["rate"] != c["rate"]


def test_start_state_measures_shift_and_saturation():
    torch.manual_seed(0)
    model = PriorVAE(ARCHITECTURE, PriorConfig())
    x = binary_images(40, 2)
    with torch.no_grad():
        model.encoder.head.bias[:ARCHITECTURE.latent_dim] = 3.0   # every code moved by 3 in each unit
        model.encoder.body[0].bias.fill_(50.0)                    # the first layer's units pinned at +1
    state = start_state(model, x)
    assert state["shift"] > 3.0 * ARCHITECTURE.latent_dim ** 0.5 * 0.9
    assert state["rate"] > 0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="must be"):
        trace_start(PriorConfig(), torch.zeros(10, 5), torch.zeros(4, 5), steps=2)
    with pytest.raises(ValueError):
        trace_start(PriorConfig(), binary_images(20, 0), binary_images(5, 1), steps=0)


def test_the_vampprior_collapses_from_the_zero_start_and_not_from_the_mean_start(mnist_train):
    from vae_lib.model.pixels import observe
    g = torch.Generator().manual_seed(0)
    images = mnist_train.x[torch.randperm(len(mnist_train.x), generator=g)[:3000]]
    x = observe(images, "fixed", seed=0)
    train, test = x[:2500], x[2500:]
    zero = trace_start(PriorConfig("vamp", 100, "zero"), train, test, steps=60, every=60)
    mean = trace_start(PriorConfig("vamp", 100, "mean"), train, test, steps=60, every=60)
    # chapter 15's full trace: rate 0.04 and 88 % saturated by step 50 from the zero start; 50 active from the mean
    assert zero["rate"][-1] < 0.5 and zero["active_units"][-1] == 0 and zero["saturated"][-1] > 0.5, zero
    assert mean["active_units"][-1] > 20 and mean["saturated"][-1] < 0.1 and mean["rate"][-1] > 2, mean


def test_plot_start_trace_draws_one_line_per_model_in_each_panel():
    trace = {key: [0, 1] for key in TRACE_KEYS}
    fig = plot_start_trace({"a": trace, "b": trace}, title="t")
    assert len(fig.axes) == len(START_PANELS)
    assert all(len(ax.lines) == 2 for ax in fig.axes)
    assert fig.axes[-1].get_xlabel() == "training step"
    with pytest.raises(ValueError):
        plot_start_trace({})
    import matplotlib.pyplot as plt
    plt.close(fig)
