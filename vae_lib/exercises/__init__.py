"""The exercises' checkers and how they word their verdicts.

The layer ``exercises`` of vae_lib; the package's front page (``vae_lib/__init__.py``) lists its modules."""
