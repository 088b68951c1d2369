"""Figures and explorers: the book's plots, the latent-space explorer, the ELBO playground.

The layer ``figures`` of vae_lib; the package's front page (``vae_lib/__init__.py``) lists its modules."""
