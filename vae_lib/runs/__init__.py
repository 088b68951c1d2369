"""The paper's experiments and the book's runs: Figure 2, Figure 3, the seed's protocols, the runs beyond the
paper.

The layer ``runs`` of vae_lib; the package's front page (``vae_lib/__init__.py``) lists its modules."""
