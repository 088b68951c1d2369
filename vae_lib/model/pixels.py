"""The pixel protocols that turn grey levels into the observations x the model sees: a Bernoulli decoder
scores binary pixels, and the paper (Kingma & Welling, 2013) does not say how it binarized MNIST, so the
book names each way of doing it and applies it in one place, :func:`observe`. The data sets
themselves, as grey levels, are :mod:`vae_lib.model.data`'s (which imports these names too).
"""

from __future__ import annotations

import torch

PROTOCOLS = ("dynamic", "fixed", "threshold", "grey")
"""Pixel protocols:

- ``dynamic``: a fresh Bernoulli draw x ~ Bernoulli(grey) every time a batch is drawn;
- ``fixed``: one seeded Bernoulli draw, made once and reused (for evaluation);
- ``threshold``: x = 1[grey > 0.5];
- ``grey``: the grey levels themselves, in [0, 1].
"""


def check_protocol(protocol: str) -> str:
    """``protocol`` itself if it names a pixel protocol, else a ValueError that lists them."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown pixel protocol {protocol!r}; choose one of {PROTOCOLS} "
                         "(see vae_lib.model.pixels.PROTOCOLS for what each means)")
    return protocol


def fixed_binarization(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One Bernoulli draw x_bin ~ Bernoulli(x), made with a CPU generator seeded by ``seed`` so the
    same seed gives the same binary images on every device."""
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x.detach().cpu(), generator=g).to(x.device)


def observe(x: torch.Tensor, protocol: str, generator: torch.Generator | None = None,
            seed: int = 0) -> torch.Tensor:
    """Turn grey levels ``x`` (N, D) into observations under ``protocol`` (see PROTOCOLS).
    ``generator`` drives the ``dynamic`` draws; ``seed`` the ``fixed`` one."""
    check_protocol(protocol)
    if protocol == "dynamic":
        return torch.bernoulli(x, generator=generator)
    if protocol == "fixed":
        return fixed_binarization(x, seed)
    if protocol == "threshold":
        return (x > 0.5).to(x.dtype)
    return x
