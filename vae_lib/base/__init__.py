"""Plumbing, under everything: devices and seeds, parameter checks, result files, statistics, the ledger, sweeps.

The layer ``base`` of vae_lib; the package's front page (``vae_lib/__init__.py``) lists its modules."""
