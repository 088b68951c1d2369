"""vae_lib — the small shared library of the VAE tutorial book (Kingma & Welling, 2013).

One concept per module: ``data``, ``model``, ``objectives``, ``train``, ``likelihood``,
``linear_gaussian``, ``plots``, ``explore``, ``utils``. Import what you use explicitly, e.g.
``from vae_lib.objectives import elbo``; the names below are the ones chapters use most.
"""

from .data import load_dataset, load_frey_face, load_mnist, observe
from .likelihood import importance_sampled_log_likelihood
from .model import VAE, VAEConfig
from .objectives import ELBOTerms, elbo, kl_to_standard_normal, reparameterize
from .train import History, TrainConfig, fit, load_checkpoint, train_model
from .utils import pick_device, quick_mode, seed_everything

__all__ = [
    "VAE", "VAEConfig", "TrainConfig", "History", "ELBOTerms",
    "elbo", "kl_to_standard_normal", "reparameterize",
    "fit", "train_model", "load_checkpoint", "importance_sampled_log_likelihood",
    "load_dataset", "load_mnist", "load_frey_face", "observe",
    "pick_device", "quick_mode", "seed_everything",
]
