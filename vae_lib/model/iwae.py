"""Importance weighted autoencoders (Burda, Grosse & Salakhutdinov 2015) as a training objective,
two lower-variance encoder gradients — "sticking the landing" (STL; Roeder, Wu & Duvenaud 2017) and
the doubly reparameterized gradient (DReG; Tucker, Lawson, Gu & Maddison 2018) — and the
signal-to-noise of gradient estimates (Rainforth et al. 2018).

With k draws z_i = μ(x) + σ(x) ⊙ ε_i and log-weights log w_i = log p(x, z_i) − log q_φ(z_i|x),

    L_k(x) = E[ log (1/k) Σ_i w_i ]                                   (Burda et al., Eq. 8)

is a lower bound on log p(x) for every k; L_1 is the ELBO and L_k ≤ L_{k+1} (their Theorem 1).
Its reparameterized gradient weights each draw by w̃_i = w_i / Σ_j w_j (Eq. 14). For the encoder φ
each draw's ∇_φ log w_i has two parts, a path term through z_i and a score term −∂log q_φ(z_i|x)/∂φ
at fixed z_i:

    IWAE:  Σ_i w̃_i ( ∂log w_i/∂z_i · ∂z_i/∂φ − ∂log q_φ(z_i|x)/∂φ )
    STL:   Σ_i w̃_i   ∂log w_i/∂z_i · ∂z_i/∂φ          (score term dropped; Roeder et al. 2017)
    DReG:  Σ_i w̃_i²  ∂log w_i/∂z_i · ∂z_i/∂φ          (Tucker et al. 2018, Eq. 5)

STL is unbiased for the ELBO (k = 1: the score term has mean zero), but for k > 1 the weighted
score term Σ_i w̃_i ∂log q/∂φ does not have mean zero, so STL is biased (Tucker et al. 2018).
DReG reparameterizes that score term a second time, which turns it into a path term:
E[Σ_i w̃_i ∂log q_φ(z_i|x)/∂φ] = E[Σ_i (w̃_i − w̃_i²) ∂log w_i/∂z_i · ∂z_i/∂φ], so DReG has
exactly the expectation of the IWAE gradient (unbiased) without the score term's noise. Both
vanish draw for draw when q is the exact posterior (every log w_i is then constant in z).
Rainforth et al. prove that the IWAE encoder gradient's signal-to-noise ratio falls like 1/√k
asymptotically; Tucker et al. report that DReG "does not suffer as the number of samples increases". Those are
statements about large k; chapter 14 measures both on a trained VAE at k = 1…500, where DReG's
ratio is higher than IWAE's but falls with k too. For the decoder θ all three are
Σ_i w̃_i ∇_θ log w_i, the same gradient draw for draw.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from vae_lib.model.objectives import LatentVariableModel, log_normal_diag, log_prior


class IWAETerms(NamedTuple):
    """Per-example results of :func:`iwae_bound`: ``bound`` the estimate log (1/k) Σ_i w_i, (B,);
    ``log_w`` the log-weights (k, B); ``weights`` the normalized weights w̃ (k, B), detached;
    ``reconstruction`` log p(x|z_i) averaged over the k draws, (B,), detached (the ELBO's first term)."""

    bound: torch.Tensor
    log_w: torch.Tensor
    weights: torch.Tensor
    reconstruction: torch.Tensor


def iwae_bound(
    model: LatentVariableModel,
    x: torch.Tensor,
    eps: torch.Tensor,
    stop_q_parameters: bool = False,
) -> IWAETerms:
    """The k-sample importance-weighted bound per example, from given noise
    ``eps`` (k, B, J).

    With ``stop_q_parameters`` log q(z_i|x) is evaluated with μ and log σ²
    detached, so the encoder's gradient flows only through z_i (the "path"
    term; the score term is dropped): STL's gradient, biased for k > 1 (see
    :func:`stl_surrogate`). The value is the same either way. p(z) is the
    model's prior (:func:`vae_lib.model.objectives.log_prior`): N(0, I), or
    a learned one whose parameters get Σ_i w̃_i ∇ log p(z_i), as the
    decoder's do."""
    mu, log_var = model.encode(x)  # (B, J) each
    z = mu + torch.exp(0.5 * log_var) * eps  # (k, B, J)
    if stop_q_parameters:
        q_mu, q_log_var = mu.detach(), log_var.detach()
    else:
        q_mu, q_log_var = mu, log_var
    log_px_z = model.log_likelihood(x, z)  # (k, B)
    log_q = log_normal_diag(z, q_mu, q_log_var)  # (k, B)
    log_w = log_px_z + log_prior(model, z) - log_q  # (k, B)
    bound = torch.logsumexp(log_w, 0) - math.log(eps.shape[0])  # (B,)
    weights = torch.softmax(log_w.detach(), 0)  # w̃_i, (k, B)
    return IWAETerms(bound, log_w, weights, log_px_z.detach().mean(0))


def iwae_surrogate(model: LatentVariableModel, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The IWAE objective to ascend, per example (B,): L_k's estimate; autograd gives Burda et al.'s
    Eq. 14 gradient for decoder and encoder alike."""
    return iwae_bound(model, x, eps).bound


def dreg_objective(model: LatentVariableModel, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The ``bound`` field of :func:`dreg_surrogate`: per example (B,), a value whose gradient is DReG's."""
    return dreg_surrogate(model, x, eps).bound


def dreg_surrogate(
    model: LatentVariableModel, x: torch.Tensor, eps: torch.Tensor
) -> IWAETerms:
    """A per-example surrogate, the ``bound`` field (B,) of the result,
    whose gradient is the doubly reparameterized estimator of ∇L_k
    (Tucker et al. 2018, Eq. 5 for the encoder φ; the usual
    Σ_i w̃_i ∇_θ log w_i for the decoder θ):

        ∇_φ ≈ Σ_i w̃_i² ∂log w_i/∂z_i · ∂z_i/∂φ

    The IWAE gradient's score term −Σ_i w̃_i ∂log q_φ(z_i|x)/∂φ,
    reparameterized a second time, has the expectation of
    −Σ_i (w̃_i − w̃_i²) ∂log w_i/∂z_i · ∂z_i/∂φ; added to STL's
    w̃_i-weighted path term it leaves w̃_i². Unbiased: its expectation is
    the IWAE gradient's.

    Its value is Σ_i w̃_i log w_i (not the bound: report
    :func:`iwae_bound` for that). The encoder's gradient reaches it only
    through z_i (q's parameters are detached inside log q), and a hook on z
    rescales that path from w̃_i to w̃_i², so one backward pass gives both
    gradients."""
    mu, log_var = model.encode(x)
    z = mu + torch.exp(0.5 * log_var) * eps  # (k, B, J)
    log_px_z = model.log_likelihood(x, z)  # (k, B)
    log_q = log_normal_diag(z, mu.detach(), log_var.detach())  # (k, B)
    log_w = log_px_z + log_prior(model, z) - log_q
    weights = torch.softmax(log_w.detach(), 0)  # w̃_i, (k, B)
    if z.requires_grad:  # w̃_i · ∂/∂z_i → w̃_i² · ∂/∂z_i
        z.register_hook(lambda grad: grad * weights.unsqueeze(-1))
    surrogate = (weights * log_w).sum(0)
    return IWAETerms(surrogate, log_w, weights, log_px_z.detach().mean(0))


def stl_surrogate(model: LatentVariableModel, x: torch.Tensor, eps: torch.Tensor) -> IWAETerms:
    """A per-example surrogate, the ``bound`` field (B,) of the result, whose gradient is the
    "sticking the landing" estimator (Roeder, Wu & Duvenaud 2017) applied to L_k: the IWAE gradient
    with the score term dropped,

        ∇_φ ≈ Σ_i w̃_i ∂log w_i/∂z_i · ∂z_i/∂φ,

    and Σ_i w̃_i ∇_θ log w_i for the decoder θ (the same as IWAE's and DReG's). Unbiased for k = 1
    (the ELBO), BIASED for k > 1 (Tucker et al. 2018): Σ_i w̃_i ∂log q_φ(z_i|x)/∂φ does not have mean
    zero. For comparison with :func:`dreg_surrogate`, which is unbiased; not a training objective here.

    Its value is Σ_i w̃_i log w_i, like DReG's (not the bound: report :func:`iwae_bound` for that)."""
    terms = iwae_bound(model, x, eps, stop_q_parameters=True)            # q's parameters detached in log q
    return terms._replace(bound=(terms.weights * terms.log_w).sum(0))     # gradient Σ_i w̃_i ∇ log w_i


def stl_objective(model: LatentVariableModel, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The ``bound`` field of :func:`stl_surrogate`: per example (B,), a value whose gradient is STL's."""
    return stl_surrogate(model, x, eps).bound


class GradientSNR(NamedTuple):
    """Signal-to-noise of a gradient estimator, per parameter group: abs(mean) / std over repeated
    draws, averaged over the group's scalars (Rainforth et al. 2018, Eq. 3)."""

    encoder: float
    decoder: float


def _gradient_draws(model, x: torch.Tensor, k: int, estimator: str, n_draws: int,
                    seed: int) -> dict[str, torch.Tensor]:
    """The gradient of L_k on ``x`` by ``estimator`` for ``n_draws`` independent noise draws: per named
    parameter of ``model``, a tensor (n_draws, *parameter shape)."""
    surrogates = {"iwae": iwae_surrogate, "dreg": dreg_objective, "stl": stl_objective}
    if estimator not in surrogates:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {tuple(surrogates)}")
    if n_draws < 2:
        raise ValueError(f"n_draws must be at least 2 to estimate a spread, got {n_draws}")
    g = torch.Generator(device=x.device).manual_seed(seed)
    names = [f"encoder.{n}" for n, _ in model.encoder.named_parameters()]
    names += [f"decoder.{n}" for n, _ in model.decoder.named_parameters()]
    params = list(model.encoder.parameters()) + list(model.decoder.parameters())
    draws: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for _ in range(n_draws):
        eps = torch.randn(k, x.shape[0], model.latent_dim, generator=g, device=x.device, dtype=x.dtype)
        grads = torch.autograd.grad(surrogates[estimator](model, x, eps).mean(), params)
        for name, grad in zip(names, grads):
            draws[name].append(grad)
    return {name: torch.stack(rows) for name, rows in draws.items()}


def moved(rows: torch.Tensor) -> torch.Tensor:
    """Which scalars (columns of ``rows``, one row per draw) some draw moves: a gradient that is exactly zero in
    every draw — an encoder input weight from a pixel that is off in every image of the minibatch — has neither
    signal nor noise, and its ratio is undefined."""
    return rows.reshape(len(rows), -1).ne(0).any(0)


def _snr(rows: torch.Tensor) -> float:
    """abs(mean) / std over the draws (dim 0), averaged over the scalars (Rainforth et al. 2018, Eq. 3) that
    some draw moves (:func:`moved`; nan when none does)."""
    rows = rows.reshape(len(rows), -1)
    rows = rows[:, moved(rows)]
    return (rows.mean(0).abs() / rows.std(0).clamp(min=1e-12)).mean().item()


def gradient_snr(model, x: torch.Tensor, k: int, estimator: str = "iwae", n_draws: int = 200,
                 seed: int = 0) -> GradientSNR:
    """The SNR of the gradient of L_k on the minibatch ``x`` over ``n_draws`` independent noise draws,
    for ``estimator`` "iwae" (:func:`iwae_surrogate`), "dreg" (:func:`dreg_surrogate`) or "stl"
    (:func:`stl_surrogate`; biased for k > 1), separately
    for the encoder's and the decoder's parameters (``model.encoder``, ``model.decoder``)."""
    draws = _gradient_draws(model, x, k, estimator, n_draws, seed)
    return GradientSNR(**{group: _group_snr(draws, group) for group in ("encoder", "decoder")})


def _group_snr(draws: dict[str, torch.Tensor], group: str) -> float:
    """:func:`_snr` over every parameter of ``draws`` whose name starts with ``group`` ("encoder", "decoder")."""
    return _snr(torch.cat([rows.reshape(len(rows), -1) for name, rows in draws.items() if name.startswith(group)], 1))


def gradient_snr_by_unit(model, x: torch.Tensor, k: int, active: torch.Tensor, estimator: str = "iwae",
                         n_draws: int = 200, seed: int = 0) -> dict[str, float]:
    """The SNR of :func:`gradient_snr` for the parameters that belong to one latent unit, with the units
    in ``active`` (a bool tensor over the J units) set apart from the collapsed ones: the encoder's output
    rows for the unit's mean and log-variance (``encoder.head``), and the decoder's first-layer weights
    read from the unit (a column of ``decoder.net[0]``). Keys ``encoder hidden`` (the layers before the
    output rows), ``encoder active``, ``encoder collapsed``,
    ``decoder active``, ``decoder collapsed`` (nan where a group is empty), and ``encoder`` and ``decoder``:
    :func:`gradient_snr`'s two groups, from the same draws."""
    groups = unit_groups(model, x, k, active, estimator, n_draws, seed)
    return {name: _snr(rows) if rows is not None else float("nan") for name, rows in groups.items()}


def unit_groups(model, x: torch.Tensor, k: int, active: torch.Tensor, estimator: str = "iwae",
                n_draws: int = 200, seed: int = 0) -> dict[str, torch.Tensor | None]:
    """The gradient draws of :func:`gradient_snr_by_unit`, by group: ``encoder`` and ``decoder`` (every
    parameter of each, flattened to (n_draws, P)), ``encoder hidden`` (the encoder's layers before its output
    layer, shared by every unit), and, for the units in ``active`` and the others, the encoder's output rows
    for their mean and log-variance and the decoder's first-layer weights read from them (None where a group
    is empty). The encoder's scalars are exactly those of ``encoder hidden``, ``encoder active`` and
    ``encoder collapsed``."""
    active = torch.as_tensor(active, dtype=torch.bool)
    if active.shape != (model.latent_dim,):
        raise ValueError(f"active must hold one flag per latent unit ({model.latent_dim}), got shape {tuple(active.shape)}")
    draws = _gradient_draws(model, x, k, estimator, n_draws, seed)
    j, out = model.latent_dim, {}
    for group in ("encoder", "decoder"):
        out[group] = torch.cat([r.reshape(len(r), -1) for name, r in draws.items() if name.startswith(group)], 1)
    out["encoder hidden"] = torch.cat([r.reshape(len(r), -1) for name, r in draws.items()
                                       if name.startswith("encoder.") and not name.startswith("encoder.head.")], 1)
    head = torch.cat([draws["encoder.head.weight"], draws["encoder.head.bias"].unsqueeze(-1)], -1)   # (n, 2J, H+1)
    first = draws["decoder.net.0.weight"]                                                          # (n, H, J)
    for label, units in (("active", active), ("collapsed", ~active)):
        empty = not bool(units.any())
        out[f"encoder {label}"] = None if empty else torch.cat([head[:, :j][:, units], head[:, j:][:, units]], 1)
        out[f"decoder {label}"] = None if empty else first[:, :, units]
    return out
