"""How independent a held-out set is: for frames of one video (Frey Face), a random hold-out leaves
each held-out frame's neighbours in time in the training set, and a model can score it well by
remembering them. This module measures it — each held-out image's distance to its nearest training
image, set beside the distance between consecutive frames of the video — and builds the contiguous
hold-out (the last frames) that avoids it.

Distances are root-mean-square differences of grey levels in [0, 1]: 0 for identical images.
"""

from __future__ import annotations

import torch


def rms_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise RMS distance between the rows of a (N, D) and b (M, D) → (N, M)."""
    return torch.cdist(a.double(), b.double()) / a.shape[-1] ** 0.5


def nearest_distances(queries: torch.Tensor, pool: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Each query image's RMS distance to its nearest image in ``pool`` → (N,)."""
    return torch.cat([rms_distance(q, pool).min(1).values for q in queries.split(chunk)])


def consecutive_distances(frames: torch.Tensor) -> torch.Tensor:
    """RMS distance between each frame of a video and the next, frames in their recorded order → (N − 1,)."""
    return ((frames[1:].double() - frames[:-1].double()) ** 2).mean(-1).sqrt()


def contiguous_split(frames: torch.Tensor, n_test: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test): the last ``n_test`` frames of the video held out, the rest for training — no
    held-out frame has a training frame next to it in time except the one at the boundary."""
    if not 0 < n_test < len(frames):
        raise ValueError(f"n_test must be between 1 and {len(frames) - 1}, got {n_test}")
    return frames[:-n_test], frames[-n_test:]
