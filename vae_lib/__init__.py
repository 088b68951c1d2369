"""vae_lib — the shared library of the VAE tutorial book (Kingma & Welling, 2013).

The folders are the design: one sub-package per layer, one concept per module. A module imports only from
its own layer and the layers above it in this list (``tests/test_architecture.py`` checks it, and that no
imports form a cycle; ``api.md`` documents each module in this order):

- ``base`` — plumbing, under everything: ``utils``, ``params``, ``colab``, ``committed`` (committed results
  read-only by default), ``locks`` (one writer per run), ``run_files`` (JSON written atomically, read back checked), ``statistics`` (means, paired differences, two-sided verdicts), ``ledger``
  (the appendix's tables), ``sweep`` (many runs on any executor), ``curve_trend`` (is a learning curve still
  moving: a late gain with its standard error);
- ``model`` — the data, the model and its objectives: ``pixels`` (the pixel protocols: grey levels to
  observations), ``data``, ``holdout`` (how independent a held-out set is), ``vae`` (the encoder, the decoder),
  ``continuous_bernoulli``, ``objectives`` (the ELBO, estimators A and B), ``kl_control`` (β, warm-up, free
  bits, active units), ``iwae`` (the importance-weighted bound, DReG), ``priors`` (p(z): the standard normal,
  a learned mixture, the VampPrior), ``prior_vae`` (a VAE with a prior of its own, trained with it),
  ``two_layer`` (the IWAE paper's two stochastic layers), ``autoencoder`` (a plain autoencoder, for
  contrast), ``gradients``, ``unit_gradients`` (the encoder's gradient per latent unit, chapter 14);
- ``inference`` — inference and likelihood: ``linear_gaussian``, ``exact_inference``, ``quadrature``,
  ``likelihood``, ``hmc``, ``appendix_d``, ``gaps``, ``aggregate_posterior`` (ELBO surgery: the rate
  split into I and the marginal KL; the prior's mass in the holes), ``core_ll_modes`` (images whose posterior has
  a mode the encoder never sees, chapter 7b);
- ``training`` — the paper's algorithms and the one driver: ``wake_sleep``, ``mcem`` (Monte Carlo EM: an
  update rule with per-example state), ``algorithms`` (AEVB, wake-sleep, IWAE as update rules),
  ``train_config`` (a run's configuration and history), ``checkpoints`` (atomic, checked checkpoints),
  ``training_step`` (optimizer, schedule and step a configuration names), ``training_run`` (a run's state,
  steps and monitor), ``train`` (the one driver), ``graphed``;
- ``runs`` — the paper's experiments and the book's runs: ``experiments``, ``figure2_setup`` (the Figure 2
  runs' model, configuration and data), ``paper_runs``, ``figure3_scoring`` (how the Figure 3 runs are
  scored), ``figure3_curves`` (their curve files, read checked), ``figure3_monitor`` (their curves recorded
  while they train), ``figure3`` (the runs, trained by the one driver), ``figure3_convert`` (the former
  driver's checkpoints converted), ``figure3_cost`` (Figure 3 at equal cost, its step-size rule),
  ``figure3_rescore`` (its last points on finer grids), ``paper_protocol``, ``seed_protocols`` (the seed's
  numbers under each pixel protocol), ``beyond``, ``collapse_trace`` (posterior collapse
  epoch by epoch), ``best_model`` (the book's best model, a long run), ``leaderboard`` (which committed model is
  best, like for like), ``figure3_protocol_error`` (the paper protocol's error per image), ``checkpoint_state`` (where a
  run stands, read from its checkpoint), ``prior_start`` (a learned prior's first training steps, traced);
- ``figures`` — figures and explorers: ``plots``, ``figure3_plots``, ``inference_plots``, ``beyond_plots``, ``diagrams`` (the drawn diagrams: graphical model,
  encoder–decoder, reparameterization, importance weights),
  ``explore``, ``web_explorer``, ``playground_rules`` (the playground's numbers, in PyTorch), ``playground``
  (the ELBO you move with your hand), ``core_train_steps`` (Adagrad's first steps, chapter 6), ``core_ll_figures``
  (chapters 7 and 7b's figures), ``latent_plots`` (the latent space's figures, chapter 8), ``prior_plots`` (the
  aggregate posterior against the prior, chapter 15);
- ``exercises`` — the exercises' checkers: ``verdicts`` (how a checker words its verdict), ``likelihood``
  (the checkers of the log-probability exercises), ``checkers``, ``attempts`` (the reader's stub, a prediction's
  check, the reference solutions shown on request).

Import what you use explicitly, e.g. ``from vae_lib.model.objectives import elbo``; the names below are the
ones chapters use most.
"""

from vae_lib.base.utils import pick_device, quick_mode, seed_everything
from vae_lib.model.data import load_dataset, load_frey_face, load_mnist
from vae_lib.model.pixels import observe
from vae_lib.model.objectives import ELBOTerms, elbo, kl_to_standard_normal, reparameterize
from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.inference.likelihood import importance_sampled_log_likelihood
from vae_lib.training.train import History, TrainConfig, fit, load_checkpoint, train_model

__all__ = [
    "VAE", "VAEConfig", "TrainConfig", "History", "ELBOTerms",
    "elbo", "kl_to_standard_normal", "reparameterize",
    "fit", "train_model", "load_checkpoint", "importance_sampled_log_likelihood",
    "load_dataset", "load_mnist", "load_frey_face", "observe",
    "pick_device", "quick_mode", "seed_everything",
]
