"""The runs of the book's part *Beyond the paper*: one architecture — the IWAE paper's one-layer model,
784–200–200–50 with tanh units (Burda et al. 2015) — trained with Adam on dynamically binarized MNIST
under different objectives: the KL weight β, its schedules and free bits (chapters 12 and 13), and
the importance-weighted bound (chapter 14); and, for chapter 15, learned priors p(z) — a mixture of Gaussians and
the VampPrior (Tomczak & Welling 2018; :class:`~vae_lib.model.prior_vae.PriorVAE`) — and a second stochastic
layer (Burda et al.'s two-layer model, :class:`~vae_lib.model.two_layer.TwoLayerVAE`, at their sizes). Each
run trains resumably from its checkpoint and is then
scored once on the same seeded random test images (:func:`score_run`), so every number the chapters
compare comes from the same images under the same protocol.

``scripts/beyond.py`` runs them as one sweep (:mod:`vae_lib.base.sweep`), on local processes or a cluster.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from vae_lib.base.run_files import read_json, write_json
from vae_lib.model.data import load_mnist
from vae_lib.model.pixels import observe
from vae_lib.model.kl_control import kl_per_dimension, mean_kl_per_dimension, unit_activity
from vae_lib.model.objectives import has_standard_normal_prior, log_normal_diag, log_prior
from vae_lib.model.prior_vae import PriorConfig, kl_per_unit, saved_prior_config
from vae_lib.model.two_layer import TwoLayerConfig, TwoLayerVAE
from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.inference.likelihood import importance_sampled_log_likelihood
from vae_lib.training.train import (TEST_SEED, TrainConfig, load_checkpoint, read_checkpoint, save_checkpoint,
                                    train_model)

RESULT_FORMAT = "vae_lib.beyond/1"
ARCHITECTURE = VAEConfig(latent_dim=50, hidden_sizes=(200, 200), activation="tanh")
BASE = TrainConfig(epochs=30, optimizer="adam", lr=1e-3, batch_size=100)
IWAE_EPOCHS = 10            # k = 50 costs ~20 x an ELBO epoch on a CPU core: the IWAE runs get fewer epochs
EVAL_IMAGES = 2000          # seeded random test images every run is scored on
EVAL_SEED = 1234            # ... drawn with this seed from the 10000 (never "the first N": the set is ordered)
DISTORTION_DRAWS = 10       # draws of z per image for D = −E_q log p(x|z)
ACTIVE_THRESHOLD = 0.01     # Burda et al. (2015): a unit is active when Cov_x(E_q[z_u]) > 10⁻²
INFORMATIVE_KL = 0.1        # the second count: a unit whose mean KL (its share of the rate) exceeds 0.1 nats
PRIOR_COMPONENTS = 500      # chapter 15: the VampPrior's pseudo-inputs (Tomczak & Welling's K = 500 for MNIST),
                            # and as many mixture components for the MoG prior


@dataclass(frozen=True)
class BeyondRun:
    """A named run of the part: its objective (``train``), the K it is scored with, and a label."""

    name: str
    train: TrainConfig
    label: str
    k_eval: int = 1000          # importance samples for log p(x)
    model: VAEConfig | TwoLayerConfig = ARCHITECTURE   # the one-layer VAE, or the two-layer model (chapter 15)
    prior: PriorConfig | None = None   # a learned prior p(z) (chapter 15); None: the paper's N(0, I)


def _runs() -> list[BeyondRun]:
    """Every run of the part at the budgets the chapters were first written with (30 epochs for the β and
    cure runs, IWAE_EPOCHS for the k runs)."""
    runs = [BeyondRun("beta_1", BASE, "β = 1 (the ELBO)"),
            BeyondRun("warmup", replace(BASE, kl_schedule="warmup", kl_anneal_epochs=10), "KL warm-up (10 epochs)"),
            BeyondRun("free_bits", replace(BASE, free_bits=0.25), "free bits (λ = 0.25)"),
            BeyondRun("cyclical", replace(BASE, kl_schedule="cyclical", kl_anneal_epochs=7.5), "cyclical (4 cycles)"),
            BeyondRun("per_pixel_mean", replace(BASE, beta=784.0), "per-pixel mean (β = 784)")]
    runs += [BeyondRun(f"beta_{b:g}", replace(BASE, beta=b), f"β = {b:g}") for b in (0.1, 0.2, 0.5, 2, 3, 5, 10)]
    iwae = replace(BASE, epochs=IWAE_EPOCHS)
    for k in (1, 5, 50):
        runs.append(BeyondRun(f"vae_k{k}", replace(iwae, n_samples=k), f"VAE, k = {k}", k_eval=5000))
        if k > 1:
            runs.append(BeyondRun(f"iwae_k{k}", replace(iwae, algorithm="iwae", n_samples=k), f"IWAE, k = {k}", k_eval=5000))
            runs.append(BeyondRun(f"dreg_k{k}", replace(iwae, algorithm="iwae_dreg", n_samples=k), f"IWAE-DReG, k = {k}",
                                  k_eval=5000))
    # chapter 15: learned priors, trained on the ELBO with the Monte-Carlo rate (estimator A: no closed-form KL)
    # (the VampPrior starts its decoder at the mean image, without which it collapses: vae_lib.model.prior_vae;
    # N(0, I) with the same start is its like-for-like control)
    mog, vamp = PriorConfig("mog", PRIOR_COMPONENTS), PriorConfig("vamp", PRIOR_COMPONENTS, decoder_start="mean")
    runs += [BeyondRun("prior_mog", replace(BASE, estimator="A"), f"MoG prior ({PRIOR_COMPONENTS} components)",
                       k_eval=5000, prior=mog),
             BeyondRun("prior_vamp", replace(BASE, estimator="A"), f"VampPrior ({PRIOR_COMPONENTS} pseudo-inputs)",
                       k_eval=5000, prior=vamp),
             BeyondRun("prior_standard_mean", replace(BASE, estimator="A"), "N(0, I), mean-image start",
                       k_eval=5000, prior=PriorConfig("standard", decoder_start="mean"))]
    # chapter 15: a second stochastic layer, Burda et al.'s two-layer model at their MNIST sizes (all Monte Carlo)
    runs += [BeyondRun("two_layer_vae", replace(BASE, estimator="A"), "two stochastic layers, VAE", k_eval=5000,
                       model=TwoLayerConfig()),
             BeyondRun("two_layer_iwae_k5", replace(iwae, algorithm="iwae", n_samples=5),
                       "two stochastic layers, IWAE, k = 5", k_eval=5000, model=TwoLayerConfig())]
    return runs


def runs_at(epochs: int | None = None) -> dict[str, "BeyondRun"]:
    """The runs by name at one budget: every run at ``epochs`` epochs (the cyclical schedule keeping its four
    cycles, the warm-up its 10 epochs) scored with K = 5000, so that any two compare like for like; or for None
    the budgets the chapters were first written with (``RUNS``)."""
    if epochs is None:
        return {run.name: run for run in _runs()}
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer ≥ 1 (or None for the first budgets), got {epochs!r}")
    # every run at one budget, scored alike (K = 5000): the cyclical schedule keeps its four cycles
    return {run.name: replace(run, k_eval=5000, train=replace(
        run.train, epochs=epochs, kl_anneal_epochs=epochs / 4 if run.name == "cyclical" else run.train.kl_anneal_epochs))
        for run in _runs()}


RUNS: dict[str, BeyondRun] = {run.name: run for run in _runs()}
BETAS = (0.1, 0.2, 0.5, 1, 2, 3, 5, 10)
COLLAPSE_RUNS = ("beta_1", "warmup", "free_bits", "cyclical", "per_pixel_mean")
IWAE_RUNS = ("vae_k1", "vae_k5", "iwae_k5", "vae_k50", "iwae_k50")
DREG_RUNS = ("dreg_k5", "dreg_k50")   # the IWAE objective with the doubly reparameterized gradient (Tucker et al.)


def get_run(name: str, budget: int | None = None) -> BeyondRun:
    """The run called ``name`` (at ``budget`` epochs, :func:`runs_at`); a ValueError listing the names for any other."""
    runs = RUNS if budget is None else runs_at(budget)
    if name not in runs:
        raise ValueError(f"unknown run {name!r}; choose one of {tuple(runs)}")
    return runs[name]


def run_paths(name: str, checkpoint_dir: str | os.PathLike, results_dir: str | os.PathLike) -> tuple[Path, Path]:
    """(checkpoint, scores) of run ``name``: ``<checkpoint_dir>/<name>.pt``, ``<results_dir>/<name>.json``."""
    get_run(name)
    return Path(checkpoint_dir) / f"{name}.pt", Path(results_dir) / f"{name}.json"


def eval_indices(n_test: int = 10000, n: int = EVAL_IMAGES, seed: int = EVAL_SEED) -> torch.Tensor:
    """The test images every run is scored on: a seeded random draw of ``n`` of the ``n_test``."""
    return torch.randperm(n_test, generator=torch.Generator().manual_seed(seed))[:n]


@torch.no_grad()
def score_model(model: VAE, x: torch.Tensor, k: int, seed: int = 0) -> dict[str, list[float]]:
    """Per-image scores of ``model`` on observations ``x`` (N, D): ``log_px`` (importance sampling,
    K = ``k``), the rate ``kl`` = KL(q(z|x) ‖ p(z)) (closed form; for a learned prior the Monte Carlo
    estimate from the distortion's draws) and the distortion ``distortion`` = −E_q log p(x|z)
    (DISTORTION_DRAWS draws); the ELBO is −(kl + distortion)."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    log_px = importance_sampled_log_likelihood(model, x, k=k, seed=seed).log_px
    if isinstance(model, TwoLayerVAE):   # both layers' rate and the distortion, from the same draws
        log_w, log_px_z1 = model.log_weight_terms(x, model.draw_noise(DISTORTION_DRAWS, len(x), g))
        return {"log_px": log_px.tolist(), "kl": (log_px_z1 - log_w).mean(0).tolist(),
                "distortion": (-log_px_z1.mean(0)).tolist()}
    mu, log_var = model.encode(x)
    eps = torch.randn(DISTORTION_DRAWS, *mu.shape, generator=g, device=x.device, dtype=x.dtype)
    z = mu + torch.exp(0.5 * log_var) * eps                                # (DISTORTION_DRAWS, N, J)
    distortion = -model.log_likelihood(x, z).mean(0)
    if has_standard_normal_prior(model):
        kl = kl_per_dimension(mu, log_var).sum(-1)
    else:   # a learned prior: the Monte-Carlo rate of the same draws, log q(z|x) − log p(z)
        kl = (log_normal_diag(z, mu, log_var) - log_prior(model, z)).mean(0)
    return {"log_px": log_px.tolist(), "kl": kl.tolist(), "distortion": distortion.tolist()}


def score_run(run: BeyondRun, model: VAE, test_x: torch.Tensor, quick: bool = False) -> dict:
    """Everything the chapters read about one trained run: per-image scores on the seeded test images
    (:func:`score_model`), and on the whole test set the activity and mean KL of every latent unit
    (for a learned prior, the KL to the prior's marginal of the unit: :func:`vae_lib.model.prior_vae.kl_per_unit`;
    for the two-layer model, the J1 units of z1 then the J2 of z2: :func:`two_layer_units`)."""
    obs = observe(test_x, "fixed", seed=TEST_SEED)
    idx = eval_indices(len(test_x), 200 if quick else EVAL_IMAGES)
    scores = score_model(model, obs[idx], 100 if quick else run.k_eval)
    if isinstance(model, TwoLayerVAE):
        activity, per_unit = two_layer_units(model, obs)
    else:
        activity = unit_activity(model, obs)
        per_unit = mean_kl_per_dimension(model, obs) if run.prior is None else kl_per_unit(model, obs)
    return {"format": RESULT_FORMAT, "name": run.name, "k_eval": 100 if quick else run.k_eval,
            "eval_images": len(idx), "eval_seed": EVAL_SEED, **scores,
            "unit_activity": activity.tolist(), "active_units": int((activity > ACTIVE_THRESHOLD).sum()),
            "kl_per_unit": per_unit.tolist()}


@torch.no_grad()
def two_layer_units(model: TwoLayerVAE, x: torch.Tensor, batch_size: int = 1000, seed: int = 0,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two-layer model's units, z1's J1 then z2's J2: their activity Cov_x(E_q[z_u]) (Burda et al. 2015,
    Section 5.2; :meth:`~vae_lib.model.two_layer.TwoLayerVAE.posterior_means`) and their mean rate terms over ``x``
    (:meth:`~vae_lib.model.two_layer.TwoLayerVAE.rate_per_unit`, one seeded draw per image; they sum to the rate)."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    means, rates = [], torch.zeros(model.config.latent1 + model.config.latent2, device=x.device, dtype=x.dtype)
    for xb in x.split(batch_size):
        means.append(model.posterior_means(xb, generator=g))
        rates += model.rate_per_unit(xb, model.draw_noise(1, len(xb), g))[0].sum(0)
    return torch.cat(means).var(0), rates / len(x)


def informative_units(scores: dict) -> int:
    """How many latent units of a scores file (:func:`score_run`) carry a mean KL above ``INFORMATIVE_KL`` (0.1) nats
    — the count beside Burda et al.'s ``active_units``, which a threshold on Cov_x(E_q[z_u]) can inflate in an
    unconverged run (a unit whose mean moves a little with x but whose rate is near zero)."""
    return sum(kl > INFORMATIVE_KL for kl in scores["kl_per_unit"])


def read_scores(path: str | os.PathLike, name: str) -> dict:
    """The scores file of run ``name`` at ``path``; a ValueError naming the file and what is wrong
    (missing, not JSON, another format or run, non-finite values)."""
    data = read_json(path, RESULT_FORMAT, f"a scores file of run {name!r}", f"run python scripts/beyond.py {name}")
    if data.get("name") != name:
        raise ValueError(f"{path} holds the scores of run {data.get('name')!r}, not of {name!r}")
    for key in ("log_px", "kl", "distortion", "unit_activity", "kl_per_unit"):
        values = data.get(key)
        if not isinstance(values, list) or not values or not all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise ValueError(f"{path}: {key!r} is missing, empty or holds non-finite values")
    if not len(data["log_px"]) == len(data["kl"]) == len(data["distortion"]):
        raise ValueError(f"{path}: the per-image lists have different lengths (truncated or edited)")
    return data


def train_and_score(name: str, checkpoint_dir: str, results_dir: str, data_dir: str | None = None,
                    device: str = "cpu", quick: bool = False, threads: int = 1, epochs: int | None = None,
                    time_limit: float | None = None, budget: int | None = None, stop_at: float | None = None) -> dict:
    """Train run ``name`` to its epochs, or to ``epochs`` (a longer run: the GPU command continues the
    IWAE runs so), resuming its checkpoint, then score it unless its scores are already there: the job
    each worker of ``scripts/beyond.py`` runs. ``budget`` picks the run's definition at that many epochs
    (:func:`runs_at`). With ``time_limit`` (seconds) training stops resumably after the epoch that passes
    it — or at ``stop_at``, a ``time.time()`` timestamp — and the run is not scored until it has reached
    its epochs. Returns a summary line's data."""
    torch.set_num_threads(threads)
    run = get_run(name, budget)
    config = replace(run.train, epochs=1 if quick else epochs or run.train.epochs)
    checkpoint, scores = run_paths(name, checkpoint_dir, results_dir)
    if stop_at is not None:
        left = stop_at - time.time()
        if left <= 0:   # the deadline passed before this job started: start nothing
            done = read_checkpoint(checkpoint)["history"]["epoch"] if checkpoint.exists() else []
            return {"name": name, "epochs": done[-1] if done else 0, "test_bound": math.nan, "train_seconds": 0.0,
                    "seconds": 0.0, "finished": False}
        time_limit = left if time_limit is None else min(time_limit, left)
    t0 = time.perf_counter()
    train = load_mnist("train", data_dir, device=device)
    test = load_mnist("test", data_dir, device=device)
    done = checkpoint.exists() and len(read_checkpoint(checkpoint)["history"]["epoch"]) >= config.epochs
    if done:
        model, history, _ = load_checkpoint(checkpoint, device)
    else:
        model, history = train_model(run.model, config, train.x, test.x, checkpoint=checkpoint, device=device,
                                     show_progress=False, checkpoint_every=1, time_limit=time_limit, prior=run.prior)
    if history.epoch[-1] < config.epochs:   # stopped by the time limit: scored when it has finished
        return {"name": name, "epochs": history.epoch[-1], "test_bound": history.test_bound[-1],
                "train_seconds": history.seconds[-1], "seconds": time.perf_counter() - t0, "finished": False}
    if not scores.exists() or not done:
        write_json(scores, {**score_run(run, model, test.x, quick), "epochs": history.epoch[-1]}, indent=None)
    return {"name": name, "epochs": history.epoch[-1], "test_bound": history.test_bound[-1],
            "train_seconds": history.seconds[-1], "seconds": time.perf_counter() - t0, "finished": True}


#: Each k = 50 run and its k = 5 partner, whose training seconds it is given in the equal-compute comparison.
EQUAL_COMPUTE = {"vae_k50": "vae_k5", "iwae_k50": "iwae_k5", "dreg_k50": "dreg_k5"}


def equal_compute_paths(name: str, checkpoint_dir: str | os.PathLike,
                        results_dir: str | os.PathLike) -> tuple[Path, Path]:
    """(checkpoint, scores) of the equal-compute snapshot of k = 50 run ``name``: in ``equal_compute/`` under
    the budget's folders."""
    if name not in EQUAL_COMPUTE:
        raise ValueError(f"no equal-compute partner for run {name!r}; choose one of {tuple(EQUAL_COMPUTE)}")
    return run_paths(name, Path(checkpoint_dir) / "equal_compute", Path(results_dir) / "equal_compute")


def stop_epoch(seconds_per_epoch: list[float], budget_seconds: float) -> int:
    """The number of epochs whose summed training seconds lie closest to ``budget_seconds`` (ties: fewer), given
    the seconds each epoch took, the last one standing for those still to come."""
    if not seconds_per_epoch or min(seconds_per_epoch) <= 0:
        raise ValueError(f"seconds_per_epoch must be positive numbers, got {seconds_per_epoch!r}")
    spent, epochs = 0.0, 0
    while True:
        step = seconds_per_epoch[min(epochs, len(seconds_per_epoch) - 1)]
        if abs(spent + step - budget_seconds) >= abs(spent - budget_seconds):
            return epochs
        spent, epochs = spent + step, epochs + 1


def train_equal_compute(name: str, checkpoint_dir: str, results_dir: str, data_dir: str | None = None,
                        device: str = "cpu", threads: int = 1, budget: int = 100,
                        stop_at: float | None = None) -> dict:
    """Train k = 50 run ``name`` (at ``budget`` epochs, in its usual checkpoint) one epoch at a time until its
    training seconds are closest to those its k = 5 partner (:data:`EQUAL_COMPUTE`) spent on all its epochs;
    then copy that checkpoint to :func:`equal_compute_paths` and score the copy there, recording both runs'
    training seconds. The run's checkpoint stays where it was: ``train_and_score`` continues it to ``budget``
    epochs for the equal-epoch comparison. Stops resumably at ``stop_at`` (a ``time.time()`` timestamp)."""
    torch.set_num_threads(threads)
    run = get_run(name, budget)
    partner, _ = run_paths(EQUAL_COMPUTE[name], checkpoint_dir, results_dir)
    if not partner.exists() or len(read_checkpoint(partner)["history"]["epoch"]) < run.train.epochs:
        raise ValueError(f"{partner} has not finished its {run.train.epochs} epochs: train {EQUAL_COMPUTE[name]} first")
    target = float(read_checkpoint(partner)["train_seconds"])
    checkpoint, _ = run_paths(name, checkpoint_dir, results_dir)
    snapshot, scores = equal_compute_paths(name, checkpoint_dir, results_dir)
    train = load_mnist("train", data_dir, device=device)
    test = load_mnist("test", data_dir, device=device)
    while not snapshot.exists():
        payload = read_checkpoint(checkpoint) if checkpoint.exists() else None
        epochs = len(payload["history"]["epoch"]) if payload else 0
        spent = float(payload["train_seconds"]) if payload else 0.0
        per_epoch = [spent / epochs] if epochs else [target]   # before the first epoch: go on
        if epochs >= run.train.epochs or epochs and stop_epoch(per_epoch, target - spent) == 0:
            snapshot.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(checkpoint, snapshot)
            break
        if stop_at is not None and time.time() >= stop_at:
            return {"name": name, "epochs": epochs, "train_seconds": spent, "finished": False}
        train_model(run.model, run.train, train.x, test.x, checkpoint=checkpoint, device=device,
                    show_progress=False, samples=(epochs + 1) * len(train.x))
    payload = read_checkpoint(snapshot)
    if not scores.exists():
        model, history, _ = load_checkpoint(snapshot, device)
        write_json(scores, {**score_run(run, model, test.x), "epochs": history.epoch[-1],
                            "train_seconds": float(payload["train_seconds"]), "partner": EQUAL_COMPUTE[name],
                            "partner_train_seconds": target}, indent=None)
    return {"name": name, "epochs": len(payload["history"]["epoch"]), "train_seconds": float(payload["train_seconds"]),
            "partner_train_seconds": target, "finished": True}


def load_equal_compute(name: str, checkpoint_dir: str | os.PathLike, results_dir: str | os.PathLike,
                       device: str | torch.device = "cpu") -> tuple[VAE, dict, dict]:
    """(model, history as a dict of lists, scores) of the equal-compute snapshot of k = 50 run ``name``
    (:func:`train_equal_compute`); a FileNotFoundError saying how to make it when it is not there."""
    checkpoint, scores = equal_compute_paths(name, checkpoint_dir, results_dir)
    if not (checkpoint.exists() and scores.exists()):
        raise FileNotFoundError(f"no equal-compute snapshot of {name} in {checkpoint.parent}: run "
                                f"python scripts/beyond.py --equal-compute --budget 100 {name}")
    model, history, _ = load_checkpoint(checkpoint, device)
    out = read_scores(scores, name)
    if out.get("epochs") != history.epoch[-1]:
        raise ValueError(f"{scores} scores {name} after {out.get('epochs')} epochs, its snapshot holds {history.epoch[-1]}")
    return model, history.as_dict(), out


def trained_runs(names: list[str] | tuple[str, ...], checkpoint_dir: str | os.PathLike,
                 results_dir: str | os.PathLike) -> tuple[list[str], list[str]]:
    """The runs of ``names`` that have both a checkpoint and a scores file under the two folders, and those that
    have not (yet), each list in the order given: a chapter reads the first and says of the second that they are
    not trained, where :func:`load_run` would train them first."""
    present = [n for n in names if all(p.exists() for p in run_paths(n, checkpoint_dir, results_dir))]
    return present, [n for n in names if n not in present]


def load_run(name: str, checkpoint_dir: str | os.PathLike, results_dir: str | os.PathLike,
             data_dir: str | None = None, device: str | torch.device = "cpu", quick: bool = False,
             budget: int | None = None) -> tuple[VAE, dict, dict]:
    """(model, history as a dict of lists, scores) of run ``name`` — read from its committed checkpoint and
    scores when both exist; otherwise trained and scored first (:func:`train_and_score`: hours on a CPU for
    the whole part, or, with ``quick``, one epoch scored on 200 images — a smoke run, never the book's)."""
    checkpoint, scores = run_paths(name, checkpoint_dir, results_dir)
    scratch = None
    if not (checkpoint.exists() and scores.exists()):
        print(f"{name}: no committed run in {checkpoint.parent}; training it now"
              + (" (quick: 1 epoch, in a temporary folder)" if quick else " (python scripts/beyond.py runs the whole part in parallel)"))
        if quick:   # a smoke run never writes where the book's runs live
            scratch = Path(tempfile.mkdtemp(prefix="vae_beyond_quick_"))
            checkpoint, scores = run_paths(name, scratch, scratch)
        train_and_score(name, str(checkpoint.parent), str(scores.parent), data_dir, str(device), quick,
                        threads=torch.get_num_threads(), budget=budget)
    model, history, payload = load_checkpoint(checkpoint, device)
    saved = TrainConfig.from_dict(dict(payload["train_config"] or {}))
    expected = get_run(name, budget).train
    saved_prior = payload.get("prior_config")
    run_prior = get_run(name, budget).prior
    saved_model = payload["model_config"]
    saved_model = (TwoLayerConfig if payload.get("model_kind") == "two_layer" else VAEConfig)(**saved_model)
    if (replace(saved, epochs=expected.epochs) != expected or saved_model != get_run(name, budget).model
            or saved_prior_config(saved_prior) != run_prior):
        raise ValueError(f"checkpoint {checkpoint} does not hold run {name!r}: its configuration is "
                         f"{asdict(saved)}, the run's is {asdict(expected)}")
    out = read_scores(scores, name)
    if out.get("epochs", history.epoch[-1]) != history.epoch[-1]:
        raise ValueError(f"{scores} scores run {name!r} after {out['epochs']} epochs, but its checkpoint {checkpoint} "
                         f"holds {history.epoch[-1]}: score it again (delete {scores.name}, run python scripts/beyond.py {name})")
    if scratch is not None:
        shutil.rmtree(scratch)
    return model, history.as_dict(), out


def slim_checkpoint(path: str | os.PathLike) -> int:
    """Rewrite a finished run's checkpoint at ``path`` with its weights, configs and history only (no
    optimizer state): about a third of the size, for committing runs that are complete. Returns the
    new size in bytes. A slim checkpoint loads everywhere but cannot be trained further."""
    payload = read_checkpoint(path)
    model, history, _ = load_checkpoint(path)
    save_checkpoint(path, model, TrainConfig.from_dict(dict(payload["train_config"] or {})), history,
                    extra={"epochs_done": payload.get("epochs_done", len(history.epoch)), "slim": True},
                    replace=True)   # slimming rewrites the file on purpose: the same weights, no optimizer state
    return Path(path).stat().st_size
