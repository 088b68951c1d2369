"""vae_lib.model.holdout: distances are RMS grey-level differences; a random hold-out of a slowly changing
video sits as close to its training set as consecutive frames are, a contiguous one does not."""

import pytest
import torch

from vae_lib.model.holdout import consecutive_distances, contiguous_split, nearest_distances, rms_distance


def test_rms_distance_is_the_root_mean_square_difference():
    a, b = torch.zeros(1, 4), torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert rms_distance(a, b).item() == pytest.approx(0.5 ** 0.5)
    assert nearest_distances(torch.cat([a, b]), torch.cat([b, b])).tolist() == pytest.approx([0.5 ** 0.5, 0.0])


def test_a_random_hold_out_of_a_slow_video_has_near_duplicates_a_contiguous_one_has_not():
    t = torch.linspace(0, 1, 400)[:, None]
    frames = torch.sigmoid(10 * (torch.linspace(0, 1, 64)[None, :] - t))        # a slowly moving edge
    step = consecutive_distances(frames).median()
    shuffled = frames[torch.randperm(400, generator=torch.Generator().manual_seed(0))]
    random_near = nearest_distances(shuffled[:40], shuffled[40:]).median()
    train, test = contiguous_split(frames, 40)
    contiguous_near = nearest_distances(test, train).median()
    assert random_near <= 2 * step < contiguous_near
    with pytest.raises(ValueError, match="n_test"):
        contiguous_split(frames, 0)
