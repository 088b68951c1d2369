"""The reader's side of an exercise: a stub to fill in, a prediction to write down before measuring, and a
reference solution that stays out of sight until asked for.

A code exercise in a chapter is three cells, the same in Colab, in Jupyter and on the rendered page::

    # 1. the reader's attempt: a stub that fails clearly until filled in
    def my_kl(mu, log_var):
        not_written("my_kl")

    # 2. the checker: "not yet: my_kl is not written yet …", "right: …"
    #    once it is, or which input differs and which slip it looks like
    check_kl(my_kl)

    # 3. the reference solution, printed only when this cell runs (the
    #    page folds its output away: tag ``hide-output``)
    show_solution("check_kl")

A stub raises :class:`NotWritten`; every checker of :mod:`vae_lib.exercises.checkers` turns that into a "not yet"
verdict (:func:`vae_lib.exercises.verdicts.takes_a_function`), so a chapter run headless, with the stubs as they
are, prints "not yet" and never "right" for code nobody wrote.

A prediction exercise asks for a number before the chapter computes it: :func:`check_prediction` compares the
reader's guess with the measured value (``None``, the cell as shipped, is "not yet").
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import NoReturn

import torch
from torch.nn import functional as F


class NotWritten(NotImplementedError):
    """Raised by a stub the reader has not filled in yet (:func:`not_written`)."""


def not_written(name: str) -> NoReturn:
    """The body of an exercise's stub: raises :class:`NotWritten` naming the function to write."""
    raise NotWritten(f"{name} is not written yet: replace the stub's body with your answer, "
                     "run its cell, then run the check again")


# --- the reference solutions, one per checker -------------------------------------------------------------------
# Each takes the arguments its checker passes to the reader's function; tests/test_attempts.py checks that every
# one passes its checker.

def solution_check_grid_log_marginal(log_joint: torch.Tensor, cell_volume: float) -> torch.Tensor:
    """log p(x) ≈ log Σ_g p(x, z_g) ΔV over a grid (chapter 2): logsumexp over the grid axis, (G, B) → (B,)."""
    return torch.logsumexp(log_joint, dim=0) + math.log(cell_volume)


def solution_check_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) = −½ Σ_j (1 + log σ² − μ² − σ²) (Appendix B), (B, J) → (B,)."""
    return -0.5 * (1 + log_var - mu ** 2 - log_var.exp()).sum(-1)


def solution_check_elbo(log_px_given_z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """The paper's estimator B (eq. 7): the mean of log p(x|z) over L draws minus the closed-form KL, (B,)."""
    reconstruction = log_px_given_z.mean(0)                       # (L, B) → (B,)
    kl = -0.5 * (1 + log_var - mu ** 2 - log_var.exp()).sum(-1)   # (B, J) → (B,)
    return reconstruction - kl


def solution_check_reparameterize(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = μ + σ ⊙ ε with σ = exp(½ log σ²) (Section 2.4): (B, J) against (L, B, J) → (L, B, J)."""
    return mu + torch.exp(0.5 * log_var) * eps


def solution_check_bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) = Σ_d x_d log λ_d + (1 − x_d) log(1 − λ_d) (Appendix C.1), from logits, stably: (L, B)."""
    return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)


def solution_check_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(x; μ, σ²) summed over the D pixels (Appendix C.2): −½ Σ_d (log 2π + log σ² + (x − μ)² / σ²)."""
    return -0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 / log_var.exp()).sum(-1)


def solution_check_adagrad(grads: torch.Tensor, lr: float) -> torch.Tensor:
    """Adagrad's steps (Duchi et al. 2011): −lr g_t / √(Σ_{s≤t} g_s²), per parameter, (T, P) → (T, P)."""
    return -lr * grads / ((grads ** 2).cumsum(0).sqrt() + 1e-10)


def solution_check_iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """The importance-weighted bound log (1/K) Σ_k w_k (Burda et al. 2016, eq. 8), (K, B) → (B,)."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def solution_check_posterior_kl(log_q: torch.Tensor, log_joint: torch.Tensor, cell_area: float) -> torch.Tensor:
    """KL(q ‖ p(z|x)) on a grid (chapter 7b): Σ_g q(z_g) [log q(z_g) − log p(z_g|x)] ΔA, (G, B) → (B,)."""
    log_px = torch.logsumexp(log_joint, dim=0) + math.log(cell_area)   # (B,): p(x) on the grid, chapter 2
    log_post = log_joint - log_px                                       # Bayes' rule: log p(z_g|x), (G, B)
    return (log_q.exp() * (log_q - log_post) * cell_area).sum(0)


def solution_check_slerp(z_start: torch.Tensor, z_end: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for latent spaces): (J,), (J,), (T,) → (T, J)."""
    omega = torch.arccos((z_start @ z_end / (z_start.norm() * z_end.norm())).clamp(-1, 1))
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * z_start + torch.sin(t * omega) * z_end) / torch.sin(omega)


def solution_check_free_bits(mu: torch.Tensor, log_var: torch.Tensor, lam: float) -> torch.Tensor:
    """Free bits (Kingma et al. 2016): Σ_j max(λ, mean over the batch of KL_j), a scalar."""
    kl = -0.5 * (1 + log_var - mu ** 2 - log_var.exp())
    return kl.mean(0).clamp(min=lam).sum()


SOLUTIONS: dict[str, Callable[..., torch.Tensor]] = {
    name.removeprefix("solution_"): f for name, f in dict(globals()).items()
    if name.startswith("solution_check_") and callable(f)
}


def solution(checker: str) -> Callable[..., torch.Tensor]:
    """The reference solution of the exercise checked by ``checker`` (e.g. ``"check_kl"``)."""
    if checker not in SOLUTIONS:
        raise KeyError(f"no solution for {checker!r}; the exercises with one: {', '.join(sorted(SOLUTIONS))}")
    return SOLUTIONS[checker]


def show_solution(checker: str) -> None:
    """Prints the reference solution of the exercise checked by ``checker`` — its source, as a reader would write it."""
    source = inspect.getsource(solution(checker))
    print(f"# a reference solution (it passes {checker}):\n{source}", end="")


def check_prediction(name: str, guess: float | None, measured: float, tolerance: float, unit: str = "") -> bool:
    """Compares a prediction written down before measuring with the measured value: "not yet" while ``guess``
    is None, else how far off it is and whether that is within ``tolerance``. Prints the verdict; returns it."""
    if not math.isfinite(measured) or not tolerance > 0:
        raise ValueError(f"{name}: the measured value ({measured}) must be finite and the tolerance ({tolerance}) positive")
    unit = f" {unit}" if unit else ""
    if guess is None:
        print(f"not yet: write your prediction for {name} (a number) in place of None, then run the cell again")
        return False
    if not isinstance(guess, (int, float)) or isinstance(guess, bool) or not math.isfinite(guess):
        print(f"not yet: the prediction for {name} must be a finite number, not {guess!r}")
        return False
    off = guess - measured
    close = abs(off) <= tolerance
    print(f"{'close' if close else 'not yet'}: you predicted {guess:g}{unit}, the chapter measures {measured:.4g}{unit} "
          f"(off by {off:+.3g}{unit}; within ±{tolerance:g}{unit} counts as close)")
    return close
