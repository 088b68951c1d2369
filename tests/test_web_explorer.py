"""The kernel-free latent explorer (vae_lib.figures.web_explorer) in a real browser: headless Chromium, driven by
Playwright, drags a slider; the picture changes and its pixels match the PyTorch decoder for the same z.

Needs Debian's chromium (.ci/run installs it with apt-get); skipped, with that reason, where it is missing."""


import pytest
import torch

from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.figures.web_explorer import WebExplorer, float16_decode, page_weight_kib





def _model(likelihood: str, activation: str, latent_dim: int, data_dim: int) -> VAE:
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=data_dim, latent_dim=latent_dim, hidden_sizes=(32,), activation=activation,
                          likelihood=likelihood))
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(3.0)   # outputs spread over (0, 1), so a wrong pixel cannot hide near 0.5
    return model.eval()


@pytest.mark.parametrize("likelihood, activation, latent_dim, shape", [
    ("bernoulli", "relu", 2, (28, 28)), ("gaussian", "tanh", 2, (28, 20)), ("bernoulli", "tanh", 3, (28, 28))])
def test_dragging_a_slider_redraws_the_decoder_mean(browser, tmp_path, likelihood, activation, latent_dim, shape):
    model = _model(likelihood, activation, latent_dim, shape[0] * shape[1])
    explorer = WebExplorer(model, shape, limit=3.0, title="test")
    page_file = tmp_path / "explorer.html"
    page_file.write_text(f"<html><body>{explorer._repr_html_()}</body></html>")
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.as_uri())
    api = f"window.vaeExplorers['{explorer.id}']"
    page.wait_for_function(f"{api} && {api}.last !== null")
    before = page.evaluate(f"Array.from({api}.last)")
    pixels_before = page.evaluate("Array.from(document.querySelector('canvas').getContext('2d')"
                                  ".getImageData(0, 0, 50, 50).data)")

    slider = page.locator("input[type=range]").first
    box = slider.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.85, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()

    z = page.evaluate(f"{api}.z")
    after = torch.tensor(page.evaluate(f"Array.from({api}.last)"))
    pixels_after = page.evaluate("Array.from(document.querySelector('canvas').getContext('2d')"
                                 ".getImageData(0, 0, 50, 50).data)")
    assert not errors, errors
    assert z[0] > 1.0 and all(v == 0 for v in z[1:]), z          # the first slider moved right, the others not
    assert pixels_after != pixels_before and after.tolist() != before
    zt = torch.tensor([z], dtype=torch.float32)
    emulated = float16_decode(model, zt)[0]
    exact = model.decode(zt)[0].detach()
    assert (after - emulated).abs().max() < 1e-4           # the browser computes what it should, to float32 rounding
    assert (after - exact).abs().max() < 0.01              # float16 weights: at most 0.01 of a pixel's range
    assert page_weight_kib(explorer) < 200
    page.close()


def test_explorer_refuses_a_shape_that_does_not_fit():
    with pytest.raises(ValueError, match=r"image_shape \(28, 20\) does not hold the model's 784 pixels"):
        WebExplorer(_model("bernoulli", "relu", 2, 784), (28, 20))
