"""pytest runs the unit tests and every chapter (through nbval) in the book's quick mode.

Kernels started by nbval inherit this process's environment, so setting the switches here
reaches the notebooks too. Values already set in the environment win.
"""

import os
from pathlib import Path

os.environ.setdefault("VAE_QUICK", "1")
os.environ.setdefault("VAE_PROGRESS", "off")
os.environ.setdefault("MPLBACKEND", "Agg")
_shared = Path(__file__).resolve().parent.parent / "shared" / "data"
if "VAE_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["VAE_DATA_DIR"] = str(_shared)  # the offline copy beside the checkout (CI, these machines)
