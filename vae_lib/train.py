"""The training driver: stochastic gradient ascent — Kingma & Welling (2013), Algorithm 1, or any
other update rule of :mod:`vae_lib.algorithms` (wake-sleep) — with a history, a NaN guard, and
atomic, resumable checkpoints. Every algorithm the book compares runs through :func:`fit`, so a
difference between curves can only come from the algorithm."""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from .algorithms import ALGORITHMS, KLWeight, update_rule
from .data import check_protocol, observe
from .kl_control import KL_SCHEDULES, kl_weight
from .model import VAE, VAEConfig
from .objectives import ESTIMATORS, check_observations, elbo, values_checked_by_caller
from .utils import progress

CHECKPOINT_FORMAT = "vae_lib.checkpoint/1"
OPTIMIZERS = ("adam", "adagrad")
SCHEDULES = ("constant", "cosine")
TEST_SEED = 0  # every model is evaluated on the same fixed binarization of the test set
# A finite bound has diverged when it falls below −100 nats per pixel (−78,400 per MNIST image; an untrained
# model scores about −550), or more than 10 × max(|best|, D) nats below the best so far.
DIVERGED_NATS_PER_PIXEL = 100.0
DIVERGED_DROP = 10.0


@dataclass(frozen=True)
class TrainConfig:
    """Everything that fixes how a model is trained."""

    epochs: int = 200               # passes over the training set
    batch_size: int = 100           # M in the paper
    optimizer: str = "adam"         # "adam", or "adagrad" as in the paper
    lr: float = 1e-3                # global step size
    weight_decay: float = 0.0       # L2 penalty per example; the paper's N(0, I) prior on θ is 1/N
    lr_schedule: str = "constant"   # "constant", or "cosine" decay to 0 over the epochs
    estimator: str = "B"            # SGVB estimator: "A" (Monte-Carlo KL) or "B" (analytic KL)
    n_samples: int = 1              # L: samples of z per data point
    protocol: str = "dynamic"       # pixel protocol of the training data (vae_lib.data.PROTOCOLS)
    eval_protocol: str = "fixed"    # pixel protocol of the test data
    seed: int = 0                   # seeds the initialization, the minibatch order and every draw
    algorithm: str = "aevb"         # the update rule (vae_lib.algorithms.ALGORITHMS); "iwae"/"iwae_dreg": k = n_samples
    beta: float = 1.0               # AEVB only: the weight of the KL term (1: the ELBO; vae_lib.kl_control)
    kl_schedule: str = "constant"   # "constant", "warmup" (0 → beta) or "cyclical" (vae_lib.kl_control.kl_weight)
    kl_anneal_epochs: float = 0.0   # warm-up length, or cycle length, in epochs
    free_bits: float = 0.0          # λ, nats per latent dimension below which the KL is free (0: none)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The TrainConfig saved as ``asdict(config)``; fields a checkpoint predates take their defaults."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names})

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; choose one of {ALGORITHMS}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be 0 or more, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be a positive, finite step size, got {self.lr!r}")
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) or not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be 0 or more, got {self.weight_decay!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {OPTIMIZERS}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; choose one of {SCHEDULES}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; choose 'A' or 'B'")
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {self.n_samples}")
        check_protocol(self.protocol)
        check_protocol(self.eval_protocol)
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not 0 <= self.beta < math.inf:
            raise ValueError(f"beta must be a finite weight of 0 or more, got {self.beta!r}")
        if self.kl_schedule not in KL_SCHEDULES:
            raise ValueError(f"unknown kl_schedule {self.kl_schedule!r}; choose one of {KL_SCHEDULES}")
        if self.kl_schedule != "constant" and not self.kl_anneal_epochs > 0:
            raise ValueError(f"kl_schedule={self.kl_schedule!r} needs kl_anneal_epochs > 0, got {self.kl_anneal_epochs}")
        if not 0 <= self.free_bits < math.inf:
            raise ValueError(f"free_bits must be 0 or more nats per latent dimension, got {self.free_bits!r}")
        if self.free_bits > 0 and self.estimator != "B":
            raise ValueError("free_bits needs the analytic KL of estimator B")
        if self.algorithm != "aevb" and not self.is_plain_elbo:
            raise ValueError(f"beta, kl_schedule and free_bits change AEVB's objective; {self.algorithm!r} has its own")

    @property
    def is_plain_elbo(self) -> bool:
        """True when the KL term is the ELBO's: weight 1 throughout, no free bits."""
        return self.beta == 1 and self.kl_schedule == "constant" and self.free_bits == 0

    def kl_weight_at(self, epoch: float) -> float:
        """β_t at the fractional ``epoch`` (:func:`vae_lib.kl_control.kl_weight`)."""
        return kl_weight(self.beta, self.kl_schedule, epoch, self.kl_anneal_epochs)


@dataclass
class History:
    """Per-epoch record of training: bounds in nats per example, split into rate (KL) and
    distortion (−reconstruction), on the training stream and on the test set."""

    epoch: list[int] = field(default_factory=list)
    samples_seen: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)   # wall time since the start of training
    train_bound: list[float] = field(default_factory=list)
    train_rate: list[float] = field(default_factory=list)
    train_distortion: list[float] = field(default_factory=list)
    test_bound: list[float] = field(default_factory=list)
    test_rate: list[float] = field(default_factory=list)
    test_distortion: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, list]) -> "History":
        return cls(**{f.name: list(d.get(f.name, [])) for f in fields(cls)})


@torch.no_grad()
def evaluate(model: VAE, x: torch.Tensor, batch_size: int = 1000, seed: int = TEST_SEED) -> dict[str, float]:
    """Mean bound, rate and distortion of ``model`` on observations ``x`` (N, D), estimator B with
    L = 1 and a seeded draw of z, so the number is repeatable."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    totals = torch.zeros(3, device=x.device)
    for xb in x.split(batch_size):
        t = elbo(model, xb, generator=g)
        totals += torch.stack([t.bound.sum(), t.kl.sum(), -t.reconstruction.sum()])
    bound, rate, distortion = (totals / len(x)).tolist()
    return {"bound": bound, "rate": rate, "distortion": distortion}


def _make_optimizer(model: VAE, config: TrainConfig, capturable: bool = False) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        if capturable:  # a CUDA graph replays the update: its step counts must live on the device
            return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                    capturable=True, foreach=True)
        # fused: one pass over the parameters per step instead of a dozen elementwise ops each — faster
        # training on CPU (benchmarks/README.md); the same update, rounded differently. Only the CPU
        # has been measured so far, so other devices keep PyTorch's default.
        fused = next(model.parameters()).device.type == "cpu"
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    return torch.optim.Adagrad(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig):
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.epochs, 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def save_checkpoint(path: str | os.PathLike, model: VAE, train_config: TrainConfig | None = None,
                    history: History | None = None, extra: dict | None = None) -> None:
    """Write model state, configs and history to ``path`` atomically (temporary file, then rename),
    in a form ``torch.load(path, weights_only=True)`` reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_config": asdict(model.config),
        "train_config": asdict(train_config) if train_config else None,
        "model_state": model.state_dict(),
        "history": (history or History()).as_dict(),
        **(extra or {}),
    }
    # a temporary file unique to this writer, in the same folder (so the rename is atomic): two runs
    # writing one checkpoint never share a temporary file, and the last complete writer wins
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> dict:
    """The raw checkpoint dictionary at ``path``, loaded with ``weights_only=True``; a clear error
    when the file is missing, corrupt, or not a vae_lib checkpoint."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; train a model first (vae_lib.train.train_model)")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"checkpoint {path} is corrupt, truncated or not a vae_lib checkpoint: delete it "
                         f"and train again (torch.load said: {first_line})") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a vae_lib checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return payload


def check_finite_weights(path: str | os.PathLike, payload: dict) -> None:
    """A ValueError naming the tensors and the fix when the model saved in ``payload`` (read from
    ``path``) holds NaN or infinite weights: such a model scores every input as NaN."""
    bad = [name for name, t in payload["model_state"].items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"checkpoint {path} holds non-finite weights ({', '.join(bad)}): the run that wrote it "
                         "diverged. Delete it and train again, with a lower learning rate.")


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[VAE, History, dict]:
    """Rebuild the model saved at ``path`` on ``device``: returns (model, history, raw checkpoint).
    Non-finite weights are refused (:func:`check_finite_weights`)."""
    payload = read_checkpoint(path, device)
    check_finite_weights(path, payload)
    model = VAE(VAEConfig(**payload["model_config"])).to(device)
    try:
        model.load_state_dict(payload["model_state"])
    except RuntimeError as err:
        raise ValueError(f"checkpoint {path} does not match its own model config: {err}") from err
    model.eval()
    return model, History.from_dict(payload["history"]), payload


def check_writable(path: str | os.PathLike) -> None:
    """An OSError naming the folder and the fix unless a checkpoint can be written at ``path``: its
    folder is created if needed and a temporary file is made and removed there — before training, so a
    read-only folder costs a second, not a training run."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        why = "a file is in the way" if isinstance(err, (FileExistsError, NotADirectoryError)) else err.strerror or err
        raise OSError(err.errno, f"cannot write the checkpoint {path}: the folder {folder} is not writable "
                                 f"({why}). Pass a checkpoint path in a writable folder (or set "
                                 f"VAE_CHECKPOINT_DIR), or make {folder} writable") from err


def _check_resumable(path: Path, payload: dict, model: VAE, config: TrainConfig) -> None:
    saved_model = payload["model_config"]
    saved_train = asdict(TrainConfig.from_dict(dict(payload["train_config"] or {})))
    mismatched = [f"model_config.{k}: checkpoint {saved_model.get(k)!r} vs asked {v!r}"
                  for k, v in asdict(model.config).items() if saved_model.get(k) != v]
    mismatched += [f"train_config.{k}: checkpoint {saved_train.get(k)!r} vs asked {v!r}"
                   for k, v in asdict(config).items() if k != "epochs" and saved_train.get(k) != v]
    if (config.lr_schedule == "cosine" and saved_train.get("epochs") != config.epochs
            and len(payload["history"]["epoch"]) < config.epochs):
        # the cosine decay spans the whole run; resuming a run made for another length would restore its
        # scheduler (T_max included) and follow that run's curve: past its end, an epoch at lr 0, then a restart
        mismatched.append(f"train_config.epochs: checkpoint {saved_train.get('epochs')!r} vs asked {config.epochs!r} "
                          "(a cosine schedule decays over the whole run, so a run cannot be lengthened)")
    if mismatched:
        raise ValueError(f"checkpoint {path} was made with another configuration:\n  " + "\n  ".join(mismatched)
                         + "\nDelete it, or pass another checkpoint path, to train this configuration.")


STEP_MODES = ("eager", "compile", "graphed")


def make_step(model: VAE, optimizer: torch.optim.Optimizer, config: TrainConfig, mode: str = "eager"):
    """The training step ``step(x, noise) -> ELBOTerms`` of ``config.algorithm`` and the rule's
    ``draw_noise``. ``mode`` "eager" runs the update rule's loss as written (the reference);
    "compile" runs it through ``torch.compile`` (same draws, same update up to rounding); "graphed"
    uses the eager step for the minibatches a :class:`vae_lib.graphed.GraphedEpoch` leaves over."""
    if mode not in STEP_MODES:
        raise ValueError(f"unknown step mode {mode!r}; choose one of {STEP_MODES}")
    kl = None if config.is_plain_elbo else KLWeight(config.beta, config.free_bits)
    rule = update_rule(config.algorithm, config.n_samples, config.estimator, kl)
    loss_fn = torch.compile(rule.loss, dynamic=False) if mode == "compile" else rule.loss

    def step(x: torch.Tensor, noise, epoch: float = 0.0):
        if kl is not None:
            kl.value = config.kl_weight_at(epoch)
        loss, report = loss_fn(model, x, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return report

    return step, rule.draw_noise


def fit(model: VAE, train_x: torch.Tensor, test_x: torch.Tensor | None, config: TrainConfig,
        checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 10,
        show_progress: bool = True, desc: str = "training", eval_growth: float | None = None,
        train_eval_x: torch.Tensor | None = None, checkpoint_seconds: float | None = None,
        step_mode: str = "eager", time_limit: float | None = None) -> History:
    """Train ``model`` on grey levels ``train_x`` (N, D) with ``config.algorithm`` and return its History.

    Each step draws a minibatch by index, observes it under ``config.protocol``, and takes one step
    of the update rule (for AEVB: ascends the minibatch mean of the SGVB bound, the paper's Eq. 8
    scaled by 1/M). ``test_x`` (grey levels) is observed once under ``config.eval_protocol``.

    Evaluation: after every epoch by default; with ``eval_growth`` (say 10**0.125) only after the
    epochs where the samples seen pass a geometric grid growing by that factor (and after the last),
    so a long run on a small data set keeps a short history for a log axis. The train bound is the
    mean over the training stream since the previous evaluation, or, with ``train_eval_x``, the
    bound on those images observed once under ``config.eval_protocol`` (a fixed set, like the test).

    With a ``checkpoint`` path, training resumes from it when it exists and saves to it every
    ``checkpoint_every`` epochs (or, with ``checkpoint_seconds``, at the first epoch end that many
    seconds after the last save) and at the end; a checkpoint is never written from non-finite
    weights. With ``time_limit`` (seconds), training stops at the end of the first epoch that ends
    after that much time in this call, evaluates and saves there: a later call resumes it.

    ``step_mode``: "eager" (the reference), "compile" (:func:`make_step`), or "graphed": each epoch's
    draws are made up front and its full minibatches run as one replayable step
    (:class:`vae_lib.graphed.GraphedEpoch`; captured as a CUDA graph on CUDA, run eagerly elsewhere).
    The graphed mode draws its pixels as 1[u < grey] from uniforms, so its random stream differs
    from the eager mode's; each mode is reproducible and resumable on its own.

    Before the first step, the data are checked once — (N, D) grey levels in [0, 1] of the model's D
    (:func:`vae_lib.objectives.check_observations`) — and so is the checkpoint's folder
    (:func:`check_writable`). Training stops with a FloatingPointError when it diverges: a non-finite
    bound or weight, or a bound that stays finite but falls below ``-DIVERGED_NATS_PER_PIXEL * D`` nats
    per example, or more than ``DIVERGED_DROP * max(abs(best), D)`` below the best bound so far (AEVB
    only: the bound wake-sleep reports is not its objective, so only non-finite values stop it).
    """
    device = next(model.parameters()).device
    for name, x in (("train_x", train_x), ("test_x", test_x), ("train_eval_x", train_eval_x)):
        if x is not None:
            check_observations(model, x.to(device), name)
    if checkpoint is not None:
        check_writable(checkpoint)
    with values_checked_by_caller():   # every minibatch comes from data checked just now
        return _fit(model, train_x, test_x, config, checkpoint, checkpoint_every, show_progress, desc, eval_growth,
                    train_eval_x, checkpoint_seconds, step_mode, time_limit)


def _fit(model: VAE, train_x: torch.Tensor, test_x: torch.Tensor | None, config: TrainConfig,
         checkpoint: str | os.PathLike | None, checkpoint_every: int, show_progress: bool, desc: str,
         eval_growth: float | None, train_eval_x: torch.Tensor | None, checkpoint_seconds: float | None,
         step_mode: str, time_limit: float | None) -> History:
    """The body of :func:`fit`, once its inputs have been checked."""
    device = next(model.parameters()).device
    train_x, test_obs, train_obs = train_x.to(device), None, None
    if test_x is not None:
        test_obs = observe(test_x.to(device), config.eval_protocol, seed=TEST_SEED)
    if train_eval_x is not None:
        train_obs = observe(train_eval_x.to(device), config.eval_protocol, seed=TEST_SEED)
    if eval_growth is not None and not eval_growth > 1:
        raise ValueError(f"eval_growth must be greater than 1 (a factor between evaluations), got {eval_growth}")
    graph_mode = step_mode == "graphed"
    if graph_mode and (config.lr_schedule != "constant" or not config.is_plain_elbo):
        raise ValueError("step_mode='graphed' needs a constant step size (lr_schedule='constant') and the plain "
                         "ELBO (beta 1, no KL schedule, no free bits): a captured update cannot follow a schedule")
    optimizer = _make_optimizer(model, config, capturable=graph_mode and device.type == "cuda")
    generator = torch.Generator(device=device).manual_seed(config.seed)
    schedule = _make_schedule(optimizer, config)
    step, draw_noise = make_step(model, optimizer, config, step_mode)
    history, start, elapsed = History(), 0, 0.0
    stream = torch.zeros(4, device=device)  # bound, rate, distortion sums and count since the last evaluation

    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        payload = read_checkpoint(path, device)
        check_finite_weights(path, payload)
        _check_resumable(path, payload, model, config)
        if "optimizer_state" not in payload:
            raise ValueError(f"checkpoint {path} holds a finished run's weights only (no optimizer state): it loads "
                             "(load_checkpoint) but cannot be trained further. Delete it to train the run afresh.")
        model.load_state_dict(payload["model_state"])
        optimizer.load_state_dict(payload["optimizer_state"])
        schedule.load_state_dict(payload["schedule_state"])
        history = History.from_dict(payload["history"])
        start = int(payload.get("epochs_done", len(history.epoch)))
        try:
            generator.set_state(payload["generator_state"].cpu())
        except RuntimeError:  # saved on another kind of device: its generator's state does not fit this one's
            generator.manual_seed(config.seed + 7919 * (start + 1))
        elapsed = float(payload.get("seconds_done", history.seconds[-1] if history.seconds else 0.0))
        if "stream" in payload:
            stream = payload["stream"].to(device)

    n, t0 = len(train_x), time.perf_counter() - elapsed
    last_save = call_start = time.perf_counter()

    def check_finite(epoch: int) -> list[float]:
        bound, rate, distortion = (stream[:3] / stream[3].clamp(min=1)).tolist()
        finite = all(math.isfinite(v) for v in (bound, rate, distortion)) and all(
            bool(torch.isfinite(p).all()) for p in model.parameters())
        floor, best = -DIVERGED_NATS_PER_PIXEL * model.config.data_dim, max(history.train_bound, default=None)
        dropped = best is not None and bound < best - DIVERGED_DROP * max(abs(best), model.config.data_dim)
        # the bound is not wake-sleep's objective: its recognition model, fitted to fantasies, can score
        # real images terribly early on without its updates diverging — only non-finite values stop it
        judged = config.algorithm != "wake_sleep"
        if not finite or judged and (bound < floor or dropped):
            what = (f"the bound became {bound}" if not finite else
                    f"the bound fell to {bound:.6g} nats per example, below {floor:.6g} ({DIVERGED_NATS_PER_PIXEL:g} nats "
                    "per pixel)" if bound < floor else f"the bound fell to {bound:.6g} nats per example from {best:.6g} at best")
            raise FloatingPointError(
                f"training diverged by epoch {epoch}: {what} (rate {rate:.6g}, distortion "
                f"{distortion:.6g}). Lower the learning rate (lr={config.lr}), or use init_std/ReLU with care; "
                + (f"the last good checkpoint is {path}." if path else "pass checkpoint=... to keep progress."))
        return [bound, rate, distortion]

    def save(epochs_done: int) -> None:
        nonlocal last_save
        if path is not None:
            check_finite(epochs_done)
            save_checkpoint(path, model, config, history, extra={
                "optimizer_state": optimizer.state_dict(), "schedule_state": schedule.state_dict(),
                "generator_state": generator.get_state(), "stream": stream.cpu(),
                "epochs_done": epochs_done, "seconds_done": time.perf_counter() - t0})
            last_save = time.perf_counter()

    def next_eval_after(samples: int) -> float:
        if eval_growth is None:
            return 0.0
        target = float(n)
        while target <= samples:
            target *= eval_growth
        return target

    graphed = None
    if graph_mode:
        from .graphed import GraphedEpoch
        graphed = GraphedEpoch(model, optimizer, update_rule(config.algorithm, config.n_samples, config.estimator),
                               config.protocol, n, config.batch_size, stream)

    def eager_steps(indices: torch.Tensor, epoch: int = 0, first: int = 0) -> None:
        nonlocal stream
        for i, idx in enumerate(indices.split(config.batch_size)):
            x = observe(train_x[idx], config.protocol, generator)
            terms = step(x, draw_noise(model, x, generator), epoch + (first + i * config.batch_size) / n)
            # summed on the device: no host synchronisation inside the epoch
            stream += torch.stack([terms.bound.sum(), terms.kl.sum(), -terms.reconstruction.sum(),
                                   torch.tensor(float(len(x)), device=device)])

    next_eval = next_eval_after(start * n)
    bar = progress(range(start, config.epochs), desc=desc, initial=start, total=config.epochs,
                   disable=not show_progress, unit="epoch")
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator, device=device)   # this epoch's minibatches, by index
        if graphed is None:
            eager_steps(order, epoch)
        else:
            graphed.begin_epoch(order, train_x, generator)
            done_steps = 0
            if device.type == "cuda" and graphed.graph is None:
                done_steps = min(3, graphed.steps - 1)   # eager warm-up steps, then one captured in the graph
                graphed.capture(warmup=done_steps)
            for _ in range(graphed.steps - done_steps):
                graphed.step()
            if graphed.steps * config.batch_size < n:
                eager_steps(order[graphed.steps * config.batch_size:], epoch, graphed.steps * config.batch_size)
        if graphed is None:  # the graphed mode has a constant step size and updates outside optimizer.step()
            schedule.step()
        done, samples = epoch + 1, (epoch + 1) * n
        out_of_time = time_limit is not None and time.perf_counter() - call_start >= time_limit
        if done == config.epochs or samples >= next_eval or out_of_time:
            next_eval = next_eval_after(samples)
            bound, rate, distortion = check_finite(done)
            model.eval()
            if train_obs is not None:
                ev = evaluate(model, train_obs)
                bound, rate, distortion = ev["bound"], ev["rate"], ev["distortion"]
            stream.zero_()
            history.epoch.append(done)
            history.samples_seen.append(samples)
            history.train_bound.append(bound)
            history.train_rate.append(rate)
            history.train_distortion.append(distortion)
            if test_obs is not None:
                ev = evaluate(model, test_obs)
                history.test_bound.append(ev["bound"])
                history.test_rate.append(ev["rate"])
                history.test_distortion.append(ev["distortion"])
            history.seconds.append(time.perf_counter() - t0)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(train=f"{bound:.2f}", **({"test": f"{history.test_bound[-1]:.2f}"} if test_obs is not None else {}))
        if out_of_time:
            save(done)
            model.eval()
            return history
        if done % checkpoint_every == 0 or (checkpoint_seconds is not None
                                            and time.perf_counter() - last_save >= checkpoint_seconds):
            save(done)
    model.eval()
    save(max(start, config.epochs))
    return history


def train_model(model_config: VAEConfig, train_config: TrainConfig, train_x: torch.Tensor,
                test_x: torch.Tensor | None = None, checkpoint: str | os.PathLike | None = None,
                device: torch.device | str | None = None, **fit_kwargs) -> tuple[VAE, History]:
    """Build a VAE seeded by ``train_config.seed`` on ``device`` (default: the data's) and :func:`fit`
    it. With a checkpoint that already holds the full run, this loads it and trains nothing."""
    device = torch.device(device) if device is not None else train_x.device
    torch.manual_seed(train_config.seed)
    model = VAE(model_config).to(device)
    history = fit(model, train_x, test_x, train_config, checkpoint=checkpoint, **fit_kwargs)
    return model, history
