"""How an exercise's checker words its verdict: it compares the reader's function with the trusted
reference on the same inputs and says "right", or on which input they differ, by how much, and which common
slip (a sign, a missing ½, a mean where the sum belongs) the difference looks like — the shared machinery of
:mod:`vae_lib.exercises.checkers` and :mod:`vae_lib.exercises.likelihood`.
"""

from __future__ import annotations

import functools
import inspect
import math

import torch

from vae_lib.base.params import check_callable

Slip = tuple[str, torch.Tensor]   # (a hint, the reference's output under that slip)


def takes_a_function(checker):
    """A checker's decorator: its first argument, the reader's answer, must be a function — None (a cell that
    defined nothing, or the function's result passed instead of the function) is a TypeError naming it. An
    answer that is still the exercise's stub (it raises NotImplementedError, as
    :func:`vae_lib.exercises.attempts.not_written` does) is a "not yet" verdict, never an error: a chapter run
    with its stubs as shipped prints "not yet" and goes on."""
    name = next(iter(inspect.signature(checker).parameters))

    @functools.wraps(checker)
    def checked(answer, *args, **kwargs):
        check_callable(name, answer)
        try:
            return checker(answer, *args, **kwargs)
        except NotImplementedError as stub:
            return _report(f"{stub}" if str(stub) else f"{name} still raises NotImplementedError: write its body", "")

    return checked


def _compare(name: str, mine, expected: torch.Tensor, slips: list[Slip], args_text: str,
             shape_hints: dict[tuple, str] | None = None, nonfinite_hint: str = "") -> str | None:
    """None when ``mine`` equals ``expected``; else a message naming the input and the likely slip.
    ``shape_hints`` maps a wrong shape to what it suggests; ``nonfinite_hint`` explains a nan or ±inf."""
    if not isinstance(mine, torch.Tensor):
        return f"{name} returned {type(mine).__name__}, not a tensor"
    if mine.shape != expected.shape:
        hints = {tuple(expected.shape) + tuple(mine.shape[-1:]): " — sum over the last (latent) dimension"} if mine.dim() else {}
        hints.update({tuple(k): f" — {v}" for k, v in (shape_hints or {}).items()})
        return (f"{name}{args_text} has shape {tuple(mine.shape)}, expected {tuple(expected.shape)}"
                + hints.get(tuple(mine.shape), ""))
    mine = mine.detach().to(expected.dtype)
    if torch.allclose(mine, expected, rtol=1e-6, atol=1e-8):
        return None
    diff = (mine - expected).abs()
    diff = torch.where(diff.isnan(), math.inf, diff)
    worst = int(diff.flatten().argmax())
    message = (f"{name}{args_text} differs: at entry {worst} you return {mine.flatten()[worst].item():.6g}, "
               f"the answer is {expected.flatten()[worst].item():.6g} "
               f"(largest difference {diff.max().item():.3g})")
    for hint, slipped in slips:
        if torch.allclose(mine, slipped.to(expected.dtype), rtol=1e-6, atol=1e-8, equal_nan=True):
            return f"{message}. It looks like {hint}."
    if nonfinite_hint and not torch.isfinite(mine).all():
        return f"{message}. {nonfinite_hint}"
    return message


def _report(failure: str | None, what: str) -> bool:
    print(f"right: {what}" if failure is None else f"not yet: {failure}")
    return failure is None
