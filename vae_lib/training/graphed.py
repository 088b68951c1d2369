"""A training epoch with no host synchronisation and no per-step Python work: the step's draws are
made once per epoch, and the step itself — gather, observe, loss, backward, optimizer update — reads
its minibatch through a step counter kept on the device, so on CUDA it can be captured once as a
CUDA graph and replayed (one launch per step instead of ~100 small kernels, each a few µs).

The same body runs eagerly on any device (``capture=False``), which is how the CPU tests check it
against the driver's reference step, draw for draw. On CUDA, :meth:`GraphedEpoch.capture` records
it; a caller should compare a few replayed steps with eager ones before trusting it
(``scripts/gpu_run.py`` does).

Supported: the constant-step-size optimizers of the paper (Adagrad, updated in place here on the
optimizer's own accumulators, so checkpoints stay torch.optim's) and Adam built with
``capturable=True``; the "dynamic" and "grey"/"threshold" pixel protocols.
"""

from __future__ import annotations

from typing import Any

import torch

from vae_lib.training.algorithms import UpdateRule


def _map(noise: Any, fn):
    """Apply ``fn`` to every tensor of a noise structure (a tensor or a NamedTuple of tensors)."""
    if isinstance(noise, torch.Tensor):
        return fn(noise)
    return type(noise)(*(fn(t) for t in noise))


@torch.no_grad()
def adagrad_update_(optimizer: torch.optim.Adagrad) -> None:
    """Adagrad — Duchi, Hazan & Singer (2011) — in place, with no host synchronisation:
    g ← ∇ + λθ;  s ← s + g²;  θ ← θ − η g / (√s + ε), on ``optimizer``'s own accumulators ``s``
    (torch.optim.Adagrad with lr_decay = 0, as the paper uses it)."""
    for group in optimizer.param_groups:
        if group["lr_decay"] != 0:
            raise ValueError("adagrad_update_ supports lr_decay = 0 only (the paper's constant global step size)")
        params = [p for p in group["params"] if p.grad is not None]
        grads = [p.grad for p in params]
        if group["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        sums = [optimizer.state[p]["sum"] for p in params]
        torch._foreach_addcmul_(sums, grads, grads)
        std = torch._foreach_sqrt(sums)
        torch._foreach_add_(std, group["eps"])
        torch._foreach_addcdiv_(params, grads, std, value=-group["lr"])


class GraphedEpoch:
    """An epoch of ``steps`` full minibatches of ``batch_size`` as one replayable step.

    ``begin_epoch(order, grey, generator)`` draws everything the epoch's steps need (the order of the
    images is given; pixel uniforms for dynamic binarization and the rule's noise come from
    ``generator``) into static buffers and resets the step counter; each ``step()`` then trains on the
    next minibatch and adds (bound, rate, distortion, count) sums of its report into ``stream``.
    """

    def __init__(self, model, optimizer: torch.optim.Optimizer, rule: UpdateRule, protocol: str,
                 n: int, batch_size: int, stream: torch.Tensor):
        if protocol not in ("dynamic", "grey", "threshold"):
            raise ValueError(f"the graphed epoch supports the dynamic, grey and threshold protocols, not {protocol!r}")
        self.model, self.optimizer, self.rule, self.protocol = model, optimizer, rule, protocol
        self.steps, self.batch_size, self.stream = n // batch_size, batch_size, stream
        if self.steps < 1:
            raise ValueError(f"a graphed epoch needs at least one full minibatch: n={n}, batch_size={batch_size}")
        self.device = next(model.parameters()).device
        self.counter = torch.zeros(1, dtype=torch.long, device=self.device)
        self.graph = None
        self._buffers: dict[str, Any] | None = None

    def _update(self) -> None:
        if isinstance(self.optimizer, torch.optim.Adagrad):
            adagrad_update_(self.optimizer)
        else:
            self.optimizer.step()

    def begin_epoch(self, order: torch.Tensor, grey: torch.Tensor, generator: torch.Generator | None) -> None:
        """Fill the static buffers for an epoch over ``grey`` (N, D) in the order ``order`` (N,)."""
        m, s = self.batch_size, self.steps
        used = order[: s * m].view(s, m)
        x_dummy = grey[: s * m] if len(grey) >= s * m else grey.new_zeros(s * m, grey.shape[1])
        fresh = {
            "grey": grey,
            "order": used,
            "uniforms": (torch.rand(s, m, grey.shape[1], generator=generator, device=grey.device, dtype=grey.dtype)
                         if self.protocol == "dynamic" else None),
            "noise": _map(self.rule.draw_noise(self.model, x_dummy, generator),
                          lambda t: t.reshape(s, m, *t.shape[1:])),
        }
        if self._buffers is None:
            self._buffers = fresh
        else:  # copy into the same memory: a captured graph reads these addresses
            b = self._buffers
            if b["grey"].data_ptr() != grey.data_ptr():
                raise ValueError("the graphed epoch was built for another training tensor")
            b["order"].copy_(used)
            if b["uniforms"] is not None:
                b["uniforms"].copy_(fresh["uniforms"])
            _map_pairs(b["noise"], fresh["noise"])
        self.counter.zero_()

    def _body(self) -> None:
        b = self._buffers
        i = self.counter
        idx = torch.index_select(b["order"], 0, i).squeeze(0)                 # (M,): no host sync
        x = b["grey"].index_select(0, idx)                                    # (M, D) grey levels
        if self.protocol == "dynamic":
            x = (torch.index_select(b["uniforms"], 0, i).squeeze(0) < x).to(x.dtype)   # x ~ Bernoulli(grey)
        elif self.protocol == "threshold":
            x = (x > 0.5).to(x.dtype)
        noise = _map(b["noise"], lambda t: torch.index_select(t, 0, i).squeeze(0))
        loss, report = self.rule.loss(self.model, x, noise)
        loss.backward()
        self._update()
        self.stream += torch.stack([report.bound.sum(), report.kl.sum(), -report.reconstruction.sum(),
                                    torch.full((), float(len(idx)), device=x.device)])
        self.counter += 1

    def step(self) -> None:
        """One training step on the next minibatch of the epoch (a graph replay once captured)."""
        if self.graph is not None:
            self.graph.replay()
            return
        self.optimizer.zero_grad(set_to_none=True)
        self._body()

    def capture(self, warmup: int = 3) -> None:
        """Record the step as a CUDA graph after ``warmup`` eager steps on a side stream (they train:
        they are the epoch's first steps). Call after ``begin_epoch``."""
        if self.device.type != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device; on other devices step() runs the body eagerly")
        if warmup >= self.steps:
            raise ValueError(f"warmup ({warmup}) must leave a step of the epoch to capture ({self.steps} in all)")
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                self.step()
        torch.cuda.current_stream().wait_stream(side)
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._body()
        self.graph = graph

    def remaining(self) -> int:
        """Steps left in the epoch (reads the device counter: one host sync; call it rarely)."""
        return self.steps - int(self.counter.item())


def _map_pairs(dst: Any, src: Any) -> None:
    if isinstance(dst, torch.Tensor):
        dst.copy_(src)
        return
    for d, s in zip(dst, src):
        d.copy_(s)
