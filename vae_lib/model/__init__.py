"""The data, the model and its objectives: pixel protocols, data sets, the VAE, the ELBO (Kingma & Welling 2013,
eq. 7 and 10), KL control, the IWAE bound.

The layer ``model`` of vae_lib; the package's front page (``vae_lib/__init__.py``) lists its modules."""
