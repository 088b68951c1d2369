"""vae_lib.base.utils: the quick switch, seeding and devices."""

import pytest
import torch

from vae_lib.base.utils import describe_device, pick_device, progress, quick_mode, seed_everything


@pytest.mark.parametrize("env, flag, expected", [
    ("1", None, True), ("yes", None, True), ("TRUE", None, True), (" on ", None, True),
    ("0", None, False), ("", None, False), (None, None, False),
    ("1", False, False), ("0", True, True), (None, True, True),
])
def test_quick_mode_argument_wins_over_environment(monkeypatch, env, flag, expected):
    """quick_mode(flag) is flag when given, else VAE_QUICK ("1", "true", "yes", "on" mean on)."""
    if env is None:
        monkeypatch.delenv("VAE_QUICK", raising=False)
    else:
        monkeypatch.setenv("VAE_QUICK", env)
    assert quick_mode(flag) is expected


def test_seed_everything_repeats_draws():
    """The same seed repeats torch's global draws."""
    seed_everything(11)
    a = torch.rand(3)
    seed_everything(11)
    assert torch.equal(a, torch.rand(3))


def test_pick_device():
    """An explicit CPU is honoured; asking for CUDA without it names the fallback."""
    assert pick_device("cpu") == torch.device("cpu")
    assert describe_device(torch.device("cpu")).startswith("cpu (")
    if not torch.cuda.is_available():
        assert pick_device() == torch.device("cpu")
        with pytest.raises(RuntimeError, match="CUDA is not available here; pass prefer=None"):
            pick_device("cuda")


def test_progress_off_still_iterates(monkeypatch):
    """With VAE_PROGRESS=off the bar is disabled but yields every item."""
    monkeypatch.setenv("VAE_PROGRESS", "off")
    assert list(progress(range(4))) == [0, 1, 2, 3]


def test_clock_deadline_is_the_next_time_the_clock_reads_it():
    import time

    from vae_lib.base.utils import clock_deadline

    now = time.mktime((2026, 11, 26, 5, 30, 0, 0, 0, -1))
    assert clock_deadline("06:04", now) - now == 34 * 60
    assert clock_deadline("05:00", now) - now == 23.5 * 3600       # passed today: tomorrow
    with pytest.raises(ValueError, match="HH:MM"):
        clock_deadline("25:00", now)
    with pytest.raises(ValueError, match="HH:MM"):
        clock_deadline("6pm", now)


def test_timed_returns_the_result_and_a_wall_time():
    import time

    from vae_lib.base.utils import timed

    out, seconds = timed(lambda a, b=0: (time.sleep(0.02), a + b)[1], 1, b=2)
    assert out == 3 and 0.015 < seconds < 2.0


def test_an_estimate_formats_with_the_digits_asked_for():
    from vae_lib.base.statistics import estimate

    e = estimate([1.0, 2.0, 3.0])
    assert str(e) == "2.00 ± 0.58" and e.format(3) == "2.000 ± 0.577"


def test_storing_run_follows_the_run_command(monkeypatch):
    from vae_lib.base.utils import STORING_ENV, storing_run

    monkeypatch.delenv(STORING_ENV, raising=False)
    assert storing_run() is False
    monkeypatch.setenv(STORING_ENV, "1")
    assert storing_run() is True
    monkeypatch.setenv(STORING_ENV, "0")
    assert storing_run() is False
