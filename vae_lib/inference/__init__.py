"""Inference and likelihood: exact posteriors, quadrature, importance sampling, HMC, Appendix D, the gap between
bound and log p(x).

The layer ``inference`` of vae_lib; the package's front page (``vae_lib/__init__.py``) lists its modules."""
