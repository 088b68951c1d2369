"""vae_lib.runs.leaderboard and scripts/leaderboard.py: which committed model is best, like for like — the candidates
git tracks (a Frey Face model skipped, with its reason), one protocol (the Beyond runs' images and binarization),
a stale score never reused, a Beyond scores file reused only under exactly this protocol, and a paired verdict that
calls a model best only when it is above every other by more than 2 s.e. Tiny models in a scratch git repository."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch

from vae_lib.base.committed import CommittedResultError
from vae_lib.base.run_files import write_json
from vae_lib.model.pixels import observe
from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.runs.beyond import RESULT_FORMAT, eval_indices, score_model
from vae_lib.runs.leaderboard import (ALL_IMAGES, FORMAT, Protocol, beyond_scores, best_model, committed_models,
                                      current_scores, entry_key, full_scores, load_board, protocol_images, ranking,
                                      read_board, score_candidates, status)
from vae_lib.training.train import TEST_SEED, History, TrainConfig, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
GIT = ["git", "-c", "user.name=leaderboard", "-c", "user.email=leaderboard@example.invalid", "-c", "commit.gpgsign=false"]
SMALL = Protocol(eval_images=12, k=7)   # the book's images and binarization, a dozen of the images, K = 7


def _save(path: Path, epochs: int, seed: int = 0, data_dim: int = 784) -> None:
    """A tiny untrained model saved as a checkpoint that says it trained ``epochs`` epochs."""
    torch.manual_seed(seed)
    model = VAE(VAEConfig(data_dim=data_dim, latent_dim=2, hidden_sizes=(8,)))
    history = History(epoch=list(range(1, epochs + 1)), seconds=[1.5 * e for e in range(1, epochs + 1)])
    save_checkpoint(path, model, TrainConfig(epochs=epochs), history)


def _git(root: Path, *args: str) -> None:
    subprocess.run([*GIT, "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository of its own: two MNIST checkpoints, a Frey Face one and a file that is no checkpoint,
    committed; one more MNIST checkpoint left untracked."""
    if shutil.which("git") is None:
        pytest.skip("the leaderboard reads the committed checkpoints through git")
    root = tmp_path / "repo"
    (root / "checkpoints" / "notes").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    _save(root / "checkpoints" / "beyond_e100" / "dreg_k5.pt", epochs=2, seed=1)
    _save(root / "checkpoints" / "seed_small.pt", epochs=3, seed=2)
    _save(root / "checkpoints" / "frey_tiny.pt", epochs=1, seed=3, data_dim=560)
    (root / "checkpoints" / "notes" / "broken.pt").write_bytes(b"not a checkpoint")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "checkpoints")
    _save(root / "checkpoints" / "beyond_e100" / "vae_k50.pt", epochs=1, seed=4)   # untracked
    return root


@pytest.fixture(scope="module")
def test_x() -> torch.Tensor:
    """10000 random grey 'test images': the protocol draws its images from 10000."""
    return torch.rand(10000, 784, generator=torch.Generator().manual_seed(7))


def _never() -> torch.Tensor:
    raise AssertionError("the test images were loaded although no model needed scoring")


def _beyond_file(root: Path, name: str, **changes) -> Path:
    """A Beyond scores file of run ``name`` under the SMALL protocol after 2 epochs (``changes`` alter it)."""
    n = changes.pop("n", SMALL.eval_images)
    data = {"format": RESULT_FORMAT, "name": name.split("/")[-1], "k_eval": SMALL.k, "eval_images": SMALL.eval_images,
            "eval_seed": SMALL.eval_seed, "epochs": 2, "log_px": [-100.0 - i for i in range(n)],
            "kl": [1.0] * n, "distortion": [99.0] * n, "unit_activity": [0.5, 0.0], "active_units": 1,
            "kl_per_unit": [1.0, 0.0], **changes}
    path = root / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


# --- discovery --------------------------------------------------------------------------------------------------

def test_discovery_takes_the_tracked_mnist_models_and_says_why_it_skips_the_others(repo):
    found = {c.name: c for c in committed_models(repo)}
    assert sorted(found) == ["beyond_e100/dreg_k5", "frey_tiny", "notes/broken", "seed_small"]
    assert "Frey Face" in found["frey_tiny"].skipped and "560" in found["frey_tiny"].skipped
    assert "not a checkpoint" in found["notes/broken"].skipped
    dreg = found["beyond_e100/dreg_k5"]
    assert (dreg.skipped, dreg.epochs, dreg.seconds, dreg.tracked) == ("", 2, 3.0, True)
    assert dreg.sha256 == hashlib.sha256(dreg.path.read_bytes()).hexdigest()
    assert found["seed_small"].epochs == 3
    with_untracked = {c.name: c for c in committed_models(repo, include_untracked=True)}
    assert with_untracked["beyond_e100/vae_k50"].tracked is False and with_untracked["beyond_e100/vae_k50"].skipped == ""
    assert set(with_untracked) - set(found) == {"beyond_e100/vae_k50"}


def test_discovery_outside_a_git_repository_is_refused(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(ValueError, match="not a git repository"):
        committed_models(tmp_path)


# --- scoring ----------------------------------------------------------------------------------------------------

def test_scoring_follows_the_beyond_protocol_and_caches_per_image_scores(repo, test_x):
    out = repo / "results" / "leaderboard" / "scores.json"
    lines: list[str] = []
    outcomes = score_candidates(committed_models(repo), test_x, out, protocol=SMALL, log=lines.append)
    assert [(o.name, o.action) for o in outcomes] == [("beyond_e100/dreg_k5", "scored"), ("seed_small", "scored")]
    assert len(lines) == 2 and all("scored in" in line for line in lines)
    board = read_board(out)
    assert board["format"] == FORMAT and board["protocol"] == {
        "eval_images": 12, "eval_seed": 1234, "n_test": 10000, "k": 7, "binarization": "fixed",
        "binarization_seed": TEST_SEED, "sampling_seed": 0}
    found = {c.name: c for c in committed_models(repo)}
    entry = board["runs"][entry_key("seed_small", found["seed_small"].sha256)]
    assert {k: entry[k] for k in ("name", "sha256", "epochs", "seconds", "k")} == {
        "name": "seed_small", "sha256": found["seed_small"].sha256, "epochs": 3, "seconds": 4.5, "k": 7}
    # the very numbers the Beyond runs' scoring gives on the same images
    model, _, _ = load_checkpoint(found["seed_small"].path)
    images = observe(test_x, "fixed", seed=TEST_SEED)[eval_indices(10000, 12)]
    assert entry["log_px"] == pytest.approx(score_model(model, images, 7)["log_px"], abs=1e-5)
    # a second call scores nothing, and never loads the test images
    again = score_candidates(committed_models(repo), _never, out, protocol=SMALL, log=None)
    assert [o.action for o in again] == ["cached", "cached"]


def test_scoring_shows_a_bar_over_each_models_batches_when_asked(repo, test_x, capsys, monkeypatch):
    monkeypatch.setenv("VAE_PROGRESS", "text")
    score_candidates(committed_models(repo)[:1], test_x, repo / "bar.json", protocol=SMALL, log=None)
    assert "log p(x), K=7" not in capsys.readouterr().err
    score_candidates(committed_models(repo)[:1], test_x, repo / "bar2.json", protocol=SMALL, log=None,
                     show_progress=True)
    assert "log p(x), K=7" in capsys.readouterr().err


def test_a_changed_checkpoint_is_stale_and_scored_again_never_reused(repo, test_x):
    out = repo / "scores.json"
    score_candidates(committed_models(repo), test_x, out, protocol=SMALL, log=None)
    before = read_board(out)
    _save(repo / "checkpoints" / "seed_small.pt", epochs=5, seed=9)   # trained further: another file
    found = committed_models(repo)
    changed = next(c for c in found if c.name == "seed_small")
    s = status(changed, before)
    assert s.state == "stale" and s.entry is None and s.earlier[0]["epochs"] == 3
    assert set(current_scores(before, found)) == {"beyond_e100/dreg_k5"}, "a stale score is never compared"
    named = current_scores(before, found, earlier=True)   # unless asked: then under a name that says its epochs
    assert set(named) == {"beyond_e100/dreg_k5", "seed_small at 3 epochs"}
    assert named["seed_small at 3 epochs"] is s.earlier[-1]
    (repo / "checkpoints" / "seed_small.pt").unlink()                 # replaced by a shorter run: another model
    _save(repo / "checkpoints" / "seed_small.pt", epochs=2, seed=10)
    shorter = committed_models(repo)
    assert set(current_scores(before, shorter, earlier=True)) == {"beyond_e100/dreg_k5"}
    (repo / "checkpoints" / "seed_small.pt").unlink()                 # retrained to as many epochs: another model
    _save(repo / "checkpoints" / "seed_small.pt", epochs=3, seed=11)
    assert set(current_scores(before, committed_models(repo), earlier=True)) == {"beyond_e100/dreg_k5"}
    (repo / "checkpoints" / "seed_small.pt").unlink()
    _save(repo / "checkpoints" / "seed_small.pt", epochs=5, seed=9)    # as it was: trained on
    lines: list[str] = []
    outcomes = score_candidates(found, test_x, out, protocol=SMALL, log=lines.append)
    assert [(o.name, o.action) for o in outcomes] == [("beyond_e100/dreg_k5", "cached"), ("seed_small", "scored")]
    assert any("stale" in line and "3 epochs" in line and "5 epochs" in line for line in lines), lines
    after = read_board(out)
    assert set(before["runs"]) < set(after["runs"]), "the cache only grows"
    assert current_scores(after, committed_models(repo))["seed_small"]["epochs"] == 5


def test_a_committed_scores_file_only_grows(repo, test_x):
    out = repo / "results" / "leaderboard" / "scores.json"
    found = committed_models(repo)
    score_candidates(found[:1], test_x, out, protocol=SMALL, log=None)
    _git(repo, "add", str(out))
    _git(repo, "commit", "-q", "-m", "scores")
    score_candidates(found, test_x, out, protocol=SMALL, log=None)   # one more model: allowed
    board = read_board(out)
    assert len(board["runs"]) == 2
    board["runs"].pop(next(iter(board["runs"])))
    _git(repo, "add", str(out))
    _git(repo, "commit", "-q", "-m", "scores, two models")
    with pytest.raises(CommittedResultError, match="refusing to replace"):
        write_json(out, board, indent=None)


def test_a_file_of_another_protocol_is_refused(repo, test_x):
    out = repo / "scores.json"
    score_candidates(committed_models(repo), test_x, out, protocol=SMALL, log=None)
    with pytest.raises(ValueError, match="another protocol"):
        load_board(out, Protocol(eval_images=12, k=8))
    with pytest.raises(ValueError, match="another protocol"):
        score_candidates(committed_models(repo), test_x, out, protocol=Protocol(eval_images=12, k=8), log=None)


def test_the_deadline_starts_nothing_and_writes_nothing(repo, test_x):
    out = repo / "scores.json"
    outcomes = score_candidates(committed_models(repo), test_x, out, protocol=SMALL, stop_at=time.time() - 1, log=None)
    assert {o.action for o in outcomes} == {"stopped"} and not out.exists()


# --- reuse of the Beyond runs' scores ---------------------------------------------------------------------------

def test_a_beyond_scores_file_under_exactly_this_protocol_is_reused(repo):
    path = _beyond_file(repo, "beyond_e100/dreg_k5")
    out = repo / "scores.json"
    outcomes = score_candidates([c for c in committed_models(repo) if c.name.startswith("beyond")], _never, out,
                                repo / "results", SMALL, log=None)
    assert [(o.name, o.action) for o in outcomes] == [("beyond_e100/dreg_k5", "reused")]
    entry = current_scores(read_board(out), committed_models(repo))["beyond_e100/dreg_k5"]
    assert entry["log_px"] == [-100.0 - i for i in range(12)] and entry["source"] == str(path)


@pytest.mark.parametrize("changes, why", [({"k_eval": 8}, "K = 8"), ({"eval_seed": 99}, "seed 99"),
                                          ({"eval_images": 13, "n": 13}, "13 images"), ({"epochs": 1}, "after 1 epochs")])
def test_a_beyond_scores_file_of_another_protocol_or_budget_is_refused(repo, test_x, changes, why):
    _beyond_file(repo, "beyond_e100/dreg_k5", **changes)
    dreg = next(c for c in committed_models(repo) if c.name == "beyond_e100/dreg_k5")
    values, reason = beyond_scores(dreg, repo / "results", SMALL)
    assert values is None and why in reason, reason
    outcomes = score_candidates([dreg], test_x, repo / "scores.json", repo / "results", SMALL, log=None)
    assert outcomes[0].action == "scored", "refused: it is scored instead"


def test_a_beyond_file_without_epochs_counts_at_its_runs_budget(repo):
    _beyond_file(repo, "beyond_e100/dreg_k5", epochs=None)   # written before scores files recorded their epochs
    dreg = next(c for c in committed_models(repo) if c.name == "beyond_e100/dreg_k5")
    values, reason = beyond_scores(dreg, repo / "results", SMALL)
    assert values is None and "after 100 epochs" in reason, "the e100 budget is 100 epochs; this checkpoint holds 2"


def test_all_images_are_every_test_image_in_order_and_score_as_the_long_runs_own_scoring(repo, test_x):
    from dataclasses import replace

    from vae_lib.runs.best_model import score_all_test_images

    every = replace(ALL_IMAGES, k=3)
    assert ALL_IMAGES.eval_images == ALL_IMAGES.n_test == 10000 and ALL_IMAGES.k == 5000
    assert torch.equal(protocol_images(test_x, every), observe(test_x, "fixed", seed=TEST_SEED)), "no draw, no reorder"
    _save(repo / "checkpoints" / "best" / "best_dreg_k5.pt", epochs=5, seed=6)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "the long run")
    best = next(c for c in committed_models(repo) if c.name == "best/best_dreg_k5")
    assert full_scores(best, repo / "results", every)[0] is None, "no file yet"
    out = repo / "all.json"
    scored = score_candidates([best], test_x, out, repo / "results", every, log=None)
    assert [o.action for o in scored] == ["scored"]
    own = score_all_test_images(best.path, test_x, k=3)
    assert current_scores(read_board(out))["best/best_dreg_k5"]["log_px"] == pytest.approx(own["log_px"], abs=1e-6)
    # the long run's own file is reused for the very checkpoint it scored, and for no other protocol or checkpoint
    (repo / "results" / "best").mkdir(parents=True)
    (repo / "results" / "best" / "best_dreg_k5_all.json").write_text(json.dumps(own))
    values, source = full_scores(best, repo / "results", every)
    assert values == own["log_px"] and source.endswith("best_dreg_k5_all.json")
    reused = score_candidates([best], _never, repo / "again.json", repo / "results", every, log=None)
    assert [o.action for o in reused] == ["reused"]
    assert "K = 3" in full_scores(best, repo / "results", ALL_IMAGES)[1]
    assert "every test image" in full_scores(best, repo / "results", SMALL)[1]
    _save(repo / "checkpoints" / "best" / "best_dreg_k5.pt", epochs=6, seed=7)   # it trained on
    on = next(c for c in committed_models(repo, include_untracked=True) if c.name == "best/best_dreg_k5")
    assert "another checkpoint" in full_scores(on, repo / "results", every)[1]


def test_the_command_line_scores_all_images_into_a_file_of_their_own(repo, monkeypatch, capsys):
    import vae_lib.runs.leaderboard as board
    seen = []
    monkeypatch.setattr(board, "score_candidates",
                        lambda found, x, out, results, **kwargs: seen.append(
                            (Path(out).name, kwargs["protocol"], kwargs["show_progress"])) or [])
    script = _script()
    assert script.main(["--root", str(repo), "--all-images"]) == 0
    assert script.main(["--root", str(repo)]) == 0
    # each model's batches under a bar: the script's scoring takes minutes to most of an hour a model
    assert seen == [("all_images.json", ALL_IMAGES, True), ("scores.json", board.PROTOCOL, True)]
    assert script.main(["--root", str(repo), "--all-images", "--list"]) == 0
    assert "10000 test images" in capsys.readouterr().out


# --- the comparison ---------------------------------------------------------------------------------------------

def _images(n: int = 400, seed: int = 0) -> torch.Tensor:
    """Per-image log p(x) whose spread across images (≈ 20 nats) dwarfs the differences between models."""
    return -90.0 + 20.0 * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _noise(seed: int, scale: float, n: int = 400) -> torch.Tensor:
    return scale * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_the_top_is_called_best_only_when_above_every_other_by_two_paired_se():
    base = _images()
    scores = {"top": (base + 0.5 + _noise(1, 0.3)).tolist(), "second": (base + _noise(2, 0.3)).tolist(),
              "third": (base - 3.0 + _noise(3, 0.3)).tolist()}
    answer = best_model(scores)
    # unpaired, the s.e. of each mean is ≈ 1 nat and 0.5 nats would separate nothing: the pairing does
    assert ranking(scores)[0].score.stderr > 0.9
    assert answer.best == "top" and answer.tied == ("top",) and answer.over == "all models"
    assert [c.other for c in answer.verdicts] == ["second", "third"] and all(c.above for c in answer.verdicts)
    assert answer.verdicts[0].text.startswith("above by 0.5") and "s.e.)" in answer.verdicts[0].text
    assert answer.verdicts[0].z > 2
    assert "best over all models (3 models): top" in answer.describe()
    line = answer.runner_up({"top": 3280, "second": 100})
    assert line.startswith("the runner-up: second (100 epochs, against 3280); top against it: above by 0.5"), line
    assert answer.runner_up().startswith("the runner-up: second; top against it:")
    assert best_model({"only": [1.0, 2.0]}).runner_up() is None


def test_two_models_within_noise_are_returned_together_and_no_best_is_claimed():
    base = _images()
    d = _noise(1, 2.0)
    d = d - d.mean() + 0.05                       # a − b: 0.05 nats per image on average, s.e. ≈ 2/√400 = 0.1
    scores = {"a": base.tolist(), "b": (base - d).tolist(), "c": (base - 4.0 + _noise(3, 1.0)).tolist()}
    answer = best_model(scores)
    assert answer.best is None and set(answer.tied) == {"a", "b"} and answer.top in {"a", "b"}
    within = next(c for c in answer.verdicts if c.other in {"a", "b"})
    assert answer.top == "a" and within.difference.mean == pytest.approx(0.05) and 0.09 < within.difference.stderr < 0.11
    assert not within.above and within.text.startswith("within 2 s.e. of b")
    assert next(c for c in answer.verdicts if c.other == "c").above
    assert "no single best" in answer.describe()


def test_the_ranking_and_the_verdict_restrict_to_a_prefix():
    base = _images()
    scores = {"beyond_e100/dreg_k5": {"log_px": (base + 1.0).tolist()}, "beyond_e100/vae_k1": (base + _noise(1, 0.2)).tolist(),
              "seed_z12": (base + 5.0).tolist()}
    assert best_model(scores).best == "seed_z12"
    chapter = best_model(scores, prefix="beyond_e100/")
    assert chapter.best == "beyond_e100/dreg_k5" and chapter.over == "beyond_e100/*"
    assert set(chapter.names) == {"beyond_e100/dreg_k5", "beyond_e100/vae_k1"}
    assert [r.name for r in ranking(scores, "beyond_e100/")] == ["beyond_e100/dreg_k5", "beyond_e100/vae_k1"]
    with pytest.raises(ValueError, match="no scored model's name starts with 'figure3/'"):
        best_model(scores, prefix="figure3/")


# --- the command line -------------------------------------------------------------------------------------------

def _script():
    spec = importlib.util.spec_from_file_location("leaderboard_script", ROOT / "scripts" / "leaderboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_command_line_lists_and_names_the_best(repo, test_x, capsys):
    script, out = _script(), repo / "scores.json"
    assert script.main(["--root", str(repo), "--best", "--out", str(out)]) == 2
    assert "nothing is scored yet" in capsys.readouterr().err
    score_candidates(committed_models(repo), test_x, out, protocol=SMALL, log=None)
    _save(repo / "checkpoints" / "seed_small.pt", epochs=4, seed=5)   # now stale
    assert script.main(["--root", str(repo), "--list", "--out", str(out)]) == 0
    listed = capsys.readouterr().out
    assert "K = 7" in listed and "stale" in listed and "Frey Face" in listed and "1 scored, 1 stale, 0 missing" in listed
    assert script.main(["--root", str(repo), "--best", "beyond_e100/", "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "best over beyond_e100/*: beyond_e100/dreg_k5" in shown and "the only model in the set" in shown
    assert script.main(["--root", str(repo), "--best", "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "not in this verdict" in shown and "seed_small" in shown.split("not in this verdict")[1]
    with pytest.raises(SystemExit):
        script.main(["--list", "--best"])


def test_the_command_line_scores_only_the_prefixes_asked_for(repo, monkeypatch, capsys):
    import vae_lib.runs.leaderboard as board
    seen = []
    monkeypatch.setattr(board, "score_candidates",
                        lambda found, *args, **kwargs: seen.append([c.name for c in found]) or [])
    script, out = _script(), repo / "only.json"
    assert script.main(["--root", str(repo), "--only", "seed_", "beyond_e100/", "--out", str(out)]) == 0
    assert seen == [["beyond_e100/dreg_k5", "seed_small"]]
    assert script.main(["--root", str(repo), "--only", "nothing/", "--out", str(out)]) == 2
    assert "no committed model's name starts with nothing/" in capsys.readouterr().err


def test_draw_offsets_compare_a_model_on_the_draw_and_on_every_image(repo):
    """Mean on the seeded draw minus mean on all images, for the models both boards score at their present checkpoint."""
    from vae_lib.runs.leaderboard import PROTOCOL, _entry, draw_offsets, entry_key, new_board

    found = [c for c in committed_models(repo) if not c.skipped]
    seeded, every = new_board(PROTOCOL), new_board(ALL_IMAGES)
    dreg, seed = sorted(found, key=lambda c: c.name)
    seeded["runs"][entry_key(dreg.name, dreg.sha256)] = _entry(dreg, PROTOCOL, [-80.0, -82.0], "", 0.0)
    every["runs"][entry_key(dreg.name, dreg.sha256)] = _entry(dreg, ALL_IMAGES, [-83.0, -83.0, -83.5, -82.5], "", 0.0)
    seeded["runs"][entry_key(seed.name, seed.sha256)] = _entry(seed, PROTOCOL, [-90.0], "", 0.0)   # one board only
    assert draw_offsets(seeded, every, found) == {dreg.name: pytest.approx(2.0)}
