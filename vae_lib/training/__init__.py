"""The paper's algorithms as update rules (AEVB, wake-sleep, Monte Carlo EM, IWAE) and the one driver that trains
them.

The layer ``training`` of vae_lib; the package's front page (``vae_lib/__init__.py``) lists its modules."""
