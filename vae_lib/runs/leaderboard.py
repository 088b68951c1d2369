"""The book's leaderboard: which committed MNIST model is best, like for like.

Every committed checkpoint that holds an MNIST model of the library (:func:`committed_models`) is scored once
under one protocol (:data:`PROTOCOL`): log p(x) by importance sampling with K = :data:`K_EVAL` on the 2000
seeded random test images the part *Beyond the paper* scores its runs on (:func:`vae_lib.runs.beyond.eval_indices`),
binarized once with the seed of :func:`vae_lib.runs.beyond.score_run` — so any two models compare on the same
images, per image. The per-image scores are cached in one results file (:data:`DEFAULT_OUT`,
:func:`score_candidates`), keyed by the model's name and the sha256 of its checkpoint: a checkpoint that
changed is *stale* (reported, scored again as a new entry, never read as if it were the old one), and the
file only grows. A Beyond scores file made under exactly this protocol for the same number of epochs is
reused instead of scoring again. A second protocol, :data:`ALL_IMAGES`, scores on every one of the 10000 test
images, in the test set's order (the target's protocol, as ``scripts/best_model.py --score-all`` scores the long
run); the long run's own file of those scores is reused when it is of the same checkpoint.

:func:`ranking` orders models by their mean log p(x) (± s.e.); :func:`best_model` says which is best only when
the top model is above every other by more than 2 standard errors of the paired per-image difference, and
otherwise returns the set it cannot separate from the top. Both take a prefix (``beyond_e100/``: one
chapter's runs) and then speak of that set only.

``scripts/leaderboard.py`` is the command line.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import torch

from vae_lib.base.run_files import read_json, write_json
from vae_lib.base.statistics import Estimate, estimate, paired_difference
from vae_lib.inference.likelihood import importance_sampled_log_likelihood
from vae_lib.model.pixels import observe
from vae_lib.model.vae import VAE
from vae_lib.runs import best_model as long_run
from vae_lib.runs.beyond import EVAL_IMAGES, EVAL_SEED, eval_indices, get_run, read_scores
from vae_lib.training.train import TEST_SEED, load_checkpoint, read_checkpoint

FORMAT = "vae_lib.leaderboard/1"
#: Importance samples per image for log p(x).
K_EVAL = 5000
MNIST_DIM = 784
MNIST_TEST = 10000                   # the test images the seeded draw picks from
#: The scores file, relative to the repository root.
DEFAULT_OUT = Path("results") / "leaderboard" / "scores.json"
WITHIN = 2.0                         # a difference within this many standard errors separates nothing
BATCH = 100                          # images per batch, and draws per chunk: as score_model's call
K_CHUNK = 500
_GIT_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")


@dataclass(frozen=True)
class Protocol:
    """How every model is scored: ``eval_images`` test images drawn with ``eval_seed`` from the ``n_test``,
    binarized once (``binarization``, seeded by ``binarization_seed``), and log p(x) estimated with ``k``
    importance samples drawn from a generator seeded by ``sampling_seed`` — the protocol of
    :func:`vae_lib.runs.beyond.score_run` at K = ``k``."""

    eval_images: int = EVAL_IMAGES
    eval_seed: int = EVAL_SEED
    n_test: int = MNIST_TEST
    k: int = K_EVAL
    binarization: str = "fixed"
    binarization_seed: int = TEST_SEED
    sampling_seed: int = 0

    def describe(self) -> str:
        """One line: the images, the binarization and K."""
        images = (f"all {self.n_test} test images, in order" if self.eval_images == self.n_test
                  else f"{self.eval_images} test images (seed {self.eval_seed} of {self.n_test})")
        return (f"{images}, {self.binarization} binarization (seed {self.binarization_seed}), "
                f"log p(x) with K = {self.k}")


#: The one protocol every model of the leaderboard is scored under.
PROTOCOL = Protocol()
#: Every test image, in order (no draw): the protocol of the IWAE paper's Table 1 and of the best model's target.
ALL_IMAGES = Protocol(eval_images=MNIST_TEST)
# what every Beyond scores file shares (score_run): the 10000 test images, binarized once with TEST_SEED, the
# importance samples drawn with seed 0; its images (eval_images, eval_seed) and its K it records
BEYOND_FIXED = {"n_test": MNIST_TEST, "binarization": "fixed", "binarization_seed": TEST_SEED, "sampling_seed": 0}


@dataclass(frozen=True)
class Candidate:
    """A checkpoint found under ``checkpoints/``: its ``name`` (the path below checkpoints/ without .pt), its
    ``path``, the ``epochs`` it trained (None when it does not say), its training ``seconds`` (None when not
    recorded), the ``sha256`` of the file, whether git tracks it, and ``skipped``: why it is not a candidate
    ("" when it is one)."""

    name: str
    path: Path
    epochs: int | None
    seconds: float | None
    sha256: str
    tracked: bool = True
    skipped: str = ""
    train_protocol: str | None = None   # the pixel protocol it was trained on (the Figure 3 runs: grey levels)


class Ranked(NamedTuple):
    """A model's place in a ranking: its name and its mean log p(x) ± s.e. over the images."""

    name: str
    score: Estimate


@dataclass(frozen=True)
class Comparison:
    """The top model against ``other``: the paired per-image difference top − other (mean ± s.e.), how many
    standard errors that is (``z``), whether it separates the two (``above``), and the verdict in words."""

    other: str
    difference: Estimate
    z: float
    above: bool
    text: str


@dataclass(frozen=True)
class Best:
    """:func:`best_model`'s answer over the models ``over`` (a prefix, or "all models"): the ``top`` model by
    mean, the ``best`` one (None unless the top is above every other by more than 2 s.e.), the ``tied`` set the
    top cannot be separated from (the top included), every model's ``ranking`` and the top's ``verdicts``."""

    over: str
    names: tuple[str, ...]
    top: str
    best: str | None
    tied: tuple[str, ...]
    ranking: tuple[Ranked, ...]
    verdicts: tuple[Comparison, ...] = field(default=())

    def describe(self) -> str:
        """Several lines: the answer, then the top's verdict against every other model."""
        top = self.ranking[0]
        if len(self.names) == 1:
            head = f"best over {self.over}: {self.top} ({top.score} nats), the only model in the set"
        elif self.best is not None:
            head = (f"best over {self.over} ({len(self.names)} models): {self.best}, log p(x) {top.score} nats — "
                    f"above every other by more than {WITHIN:g} s.e.")
        else:
            head = (f"no single best over {self.over} ({len(self.names)} models): the top, {self.top} "
                    f"({top.score} nats), is within {WITHIN:g} s.e. of {len(self.tied) - 1} other(s): "
                    f"{', '.join(self.tied)} cannot be separated")
        return "\n".join([head, *(f"  {self.top} vs {c.other}: {c.text}" for c in self.verdicts)])

    def runner_up(self, epochs: Mapping[str, int | None] | None = None) -> str | None:
        """One line for the top's nearest rival (the first of its ``verdicts``, in rank order): its name, both
        models' epochs where ``epochs`` (name -> epochs) gives them, and the paired verdict; None without a rival."""
        if not self.verdicts:
            return None
        c, epochs = self.verdicts[0], epochs or {}
        budgets = (f" ({epochs[c.other]} epochs, against {epochs[self.top]})"
                   if epochs.get(c.other) is not None and epochs.get(self.top) is not None else "")
        return f"the runner-up: {c.other}{budgets}; {self.top} against it: {c.text}"


# --- discovery --------------------------------------------------------------------------------------------------

def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of the file at ``path``, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git_files(root: Path, untracked: bool) -> list[str]:
    """The checkpoints git tracks under ``root``/checkpoints/ (``untracked``: those it does not track and does
    not ignore instead), as paths relative to ``root``."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV}
    args = ["ls-files", "-z", *(["--others", "--exclude-standard"] if untracked else []), "--", ":(glob)checkpoints/**/*.pt"]
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True, timeout=60, env=env).stdout
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", b"") or b""
        raise ValueError(f"{root} is not a git repository git can read ({detail.decode(errors='replace').strip() or err}): "
                         "committed models are the checkpoints git tracks; pass the repository's root") from None
    return sorted(p for p in out.decode("utf-8", "surrogateescape").split("\0") if p)


def _epochs(payload: dict) -> int | None:
    """The epochs a checkpoint trained: its history's last epoch, else its ``epochs_done`` (None when neither)."""
    epochs = payload.get("history", {}).get("epoch") or []
    if epochs:
        return int(epochs[-1])
    done = payload.get("epochs_done")
    return int(done) if isinstance(done, (int, float)) and not isinstance(done, bool) else None


def _seconds(payload: dict) -> float | None:
    """A checkpoint's training seconds: its ``train_seconds``, else its history's last ``seconds`` (None when neither)."""
    if isinstance(payload.get("train_seconds"), (int, float)):
        return float(payload["train_seconds"])
    seconds = payload.get("history", {}).get("seconds") or []
    return float(seconds[-1]) if seconds else None


def _why_not(path: Path, payload: dict) -> str:
    """Why the checkpoint ``payload`` (read from ``path``) is not a candidate: not MNIST, not a Bernoulli decoder
    (no probability of binary pixels), or it does not load as the library's VAE; "" when it is one."""
    config = payload.get("model_config") or {}
    if config.get("data_dim") != MNIST_DIM:
        kind = " (Frey Face)" if config.get("data_dim") == 560 else ""
        return f"not an MNIST model: data_dim {config.get('data_dim')!r}{kind}, not {MNIST_DIM}"
    if config.get("likelihood", "bernoulli") != "bernoulli":
        return f"its decoder is {config.get('likelihood')!r}: log p(x) of binary pixels needs a Bernoulli decoder"
    try:
        load_checkpoint(path)
    except (ValueError, TypeError, KeyError, RuntimeError) as err:
        return f"does not load as the library's VAE: {err}"
    return ""


def describe_checkpoint(root: str | os.PathLike, relative: str, tracked: bool = True) -> Candidate:
    """The :class:`Candidate` record of the checkpoint at ``root``/``relative`` (a path under checkpoints/):
    name, epochs, training seconds and sha256, and why it is skipped if it is not an MNIST model of the library."""
    path = Path(root) / relative
    name = Path(relative).relative_to("checkpoints").with_suffix("").as_posix()
    if not path.is_file():
        return Candidate(name, path, None, None, "", tracked, "tracked by git but missing from the working tree")
    sha = file_sha256(path)
    try:
        payload = read_checkpoint(path)
    except (ValueError, FileNotFoundError) as err:
        return Candidate(name, path, None, None, sha, tracked, f"not a checkpoint of the library: {err}")
    train = payload.get("train_config") or {}
    return Candidate(name, path, _epochs(payload), _seconds(payload), sha, tracked, _why_not(path, payload),
                     train.get("protocol") if isinstance(train, dict) else None)


def committed_models(root: str | os.PathLike, include_untracked: bool = False) -> list[Candidate]:
    """Every checkpoint git tracks under ``root``/checkpoints/ (and, with ``include_untracked``, those it neither
    tracks nor ignores), as :class:`Candidate` records sorted by name; those that are no MNIST model of the
    library carry the reason in ``skipped`` (:func:`candidates` keeps the others)."""
    root = Path(root)
    found = [describe_checkpoint(root, p, True) for p in _git_files(root, False)]
    if include_untracked:
        found += [describe_checkpoint(root, p, False) for p in _git_files(root, True)]
    return sorted(found, key=lambda c: c.name)


def candidates(found: Sequence[Candidate], prefix: str | None = None) -> list[Candidate]:
    """The records of ``found`` that are candidates (not skipped), restricted to names starting with ``prefix``."""
    return [c for c in found if not c.skipped and (prefix is None or c.name.startswith(prefix))]


# --- the scores file --------------------------------------------------------------------------------------------

def new_board(protocol: Protocol = PROTOCOL) -> dict:
    """An empty scores file under ``protocol``: its format, the protocol, and no runs yet."""
    return {"format": FORMAT, "protocol": asdict(protocol), "runs": {}}


def entry_key(name: str, sha256: str) -> str:
    """The key of a model's entry in the scores file: its name and the first 12 hex digits of its checkpoint's sha256."""
    return f"{name}@{sha256[:12]}"


def read_board(path: str | os.PathLike) -> dict:
    """The scores file at ``path``, checked: its format, a protocol, and every entry's per-image log p(x) finite
    and one per protocol image; a ValueError naming the file and the entry otherwise."""
    fix = "delete it (or pass another --out) and score again: python scripts/leaderboard.py"
    board = read_json(path, FORMAT, "the leaderboard's per-image scores", fix)
    try:
        protocol = Protocol(**board["protocol"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: its protocol is missing or malformed ({err!r}); {fix}") from None
    runs = board.get("runs")
    if not isinstance(runs, dict):
        raise ValueError(f"{path}: 'runs' is missing or not an object; {fix}")
    for key, entry in runs.items():
        values = entry.get("log_px") if isinstance(entry, dict) else None
        if (not isinstance(values, list) or len(values) != protocol.eval_images
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)):
            raise ValueError(f"{path}: entry {key!r} does not hold {protocol.eval_images} finite log p(x) values "
                             f"(truncated or edited); {fix}")
        if entry.get("sha256", "")[:12] != key.rsplit("@", 1)[-1] or entry.get("name") != key.rsplit("@", 1)[0]:
            raise ValueError(f"{path}: entry {key!r} names another model or checkpoint than its key; {fix}")
    return board


def load_board(path: str | os.PathLike, protocol: Protocol = PROTOCOL) -> dict:
    """The scores file at ``path`` (a new, empty one when there is none), refused with a ValueError when it was
    made under another protocol than ``protocol``: its scores and these would not compare."""
    if not Path(path).exists():
        return new_board(protocol)
    board = read_board(path)
    if board["protocol"] != asdict(protocol):
        raise ValueError(f"{path} was scored under another protocol ({Protocol(**board['protocol']).describe()}) than "
                         f"this one ({protocol.describe()}): its scores would not compare with new ones. Pass another "
                         "--out for this protocol")
    return board


class Status(NamedTuple):
    """Where a candidate stands in a scores file: ``state`` "scored" (an entry for this very file), "stale" (only
    entries of earlier versions of the checkpoint, ``earlier``) or "missing"; ``entry`` the current one."""

    state: str
    entry: dict | None
    earlier: tuple[dict, ...]


def status(candidate: Candidate, board: Mapping[str, Any]) -> Status:
    """Where ``candidate`` stands in the scores file ``board``: scored, stale (the checkpoint changed since it was
    scored) or missing (:class:`Status`)."""
    entry = board["runs"].get(entry_key(candidate.name, candidate.sha256))
    if entry is not None and entry["sha256"] == candidate.sha256:
        return Status("scored", entry, ())
    earlier = tuple(e for e in board["runs"].values() if e["name"] == candidate.name)
    return Status("stale" if earlier else "missing", None, earlier)


def describe_stale(candidate: Candidate, earlier: Sequence[dict]) -> str:
    """Why a stale score is not used: the checkpoint's sha256 and epochs now, against the last score's."""
    last = earlier[-1]
    return (f"stale: scored at sha256 {last['sha256'][:12]} after {last.get('epochs')} epochs; the checkpoint is now "
            f"{candidate.sha256[:12]} after {candidate.epochs} epochs")


def current_scores(board: Mapping[str, Any], found: Sequence[Candidate] | None = None,
                   earlier: bool = False) -> dict[str, dict]:
    """The entries to compare, by model name: with ``found`` (:func:`committed_models`), the entry of each candidate's
    present checkpoint (missing ones left out; stale ones too, unless ``earlier``: then a stale candidate that
    trained on since it was scored — a long run — takes part with its scored checkpoint of the most epochs, under the
    key :func:`earlier_key`, so a search never passes over a model the book has scored. "Trained on" is judged by
    epochs alone: a checkpoint of no more epochs than that score's is another model, and stays out); without
    ``found``, the newest entry of every name in the file."""
    if found is None:
        return {e["name"]: e for e in board["runs"].values()}   # insertion order: the newest entry of a name last
    scores = {}
    for c in candidates(found):
        s = status(c, board)
        if s.state == "scored" and s.entry:
            scores[c.name] = s.entry
        elif earlier and s.state == "stale":
            last = max(reversed(s.earlier), key=lambda e: e.get("epochs") or 0)   # a tie: the newer score
            if c.epochs is not None and last.get("epochs") is not None and c.epochs > last["epochs"]:
                scores[earlier_key(last)] = last
    return scores


def draw_offsets(seeded: Mapping[str, Any], every: Mapping[str, Any], found: Sequence[Candidate]) -> dict[str, float]:
    """How much higher each model scores on the seeded draw of test images (the board ``seeded``, under
    :data:`PROTOCOL`) than on all of them (``every``, under :data:`ALL_IMAGES`): mean log p(x) on the draw minus
    mean on all, for every candidate in ``found`` whose present checkpoint both boards score. One draw of images
    can be easier or harder than the whole set (for the book's draw, easier for every model scored both ways),
    so these offsets say how far a score on the draw can be set beside a number taken on all the images."""
    a, b = current_scores(seeded, found), current_scores(every, found)
    return {name: estimate(a[name]["log_px"]).mean - estimate(b[name]["log_px"]).mean for name in a if name in b}


def earlier_key(entry: Mapping[str, Any]) -> str:
    """The name an earlier checkpoint's score takes in :func:`current_scores`: "<name> at <epochs> epochs"."""
    return f"{entry['name']} at {entry.get('epochs')} epochs"


# --- scoring ----------------------------------------------------------------------------------------------------

def protocol_images(test_x: torch.Tensor, protocol: Protocol = PROTOCOL) -> torch.Tensor:
    """The observations every model is scored on: the ``n_test`` grey test images ``test_x`` binarized under the
    protocol (as :func:`vae_lib.runs.beyond.score_run` does), then the seeded draw of ``eval_images`` of them —
    or, when the protocol takes all ``n_test``, every one in the test set's order (no draw)."""
    if test_x.ndim != 2 or len(test_x) != protocol.n_test:
        raise ValueError(f"the protocol draws its images from {protocol.n_test} test images, got a tensor of shape "
                         f"{tuple(test_x.shape)}")
    obs = observe(test_x, protocol.binarization, seed=protocol.binarization_seed)
    if protocol.eval_images == protocol.n_test:
        return obs
    return obs[eval_indices(protocol.n_test, protocol.eval_images, protocol.eval_seed)]


def log_px_until(model: VAE, x: torch.Tensor, k: int, seed: int = 0, stop_at: float | None = None,
                 show_progress: bool = False) -> list[float] | None:
    """Per-image log p̂_K(x) of ``model`` on ``x`` by :func:`vae_lib.inference.likelihood.importance_sampled_log_likelihood`
    with its default batches (one generator seeded with ``seed``, batches of 100 images, chunks of 500 draws) — or
    None once ``stop_at`` (a ``time.time()`` timestamp) has passed between two batches: a model half scored is never
    written. ``show_progress``: a bar over the batches."""
    result = importance_sampled_log_likelihood(model, x, k=k, batch_size=BATCH, k_chunk=K_CHUNK, seed=seed,
                                               stop_at=stop_at, show_progress=show_progress)
    return None if result is None else result.log_px.tolist()


def _beyond_budget(folder: str) -> tuple[bool, int | None]:
    """(whether ``folder`` holds Beyond runs, the budget in epochs its name says: None for ``beyond``)."""
    if folder == "beyond":
        return True, None
    found = re.fullmatch(r"beyond_e(\d+)", folder)
    return (True, int(found.group(1))) if found else (False, None)


def beyond_scores(candidate: Candidate, results: str | os.PathLike, protocol: Protocol = PROTOCOL) -> tuple[list[float] | None, str]:
    """A Beyond run's committed per-image log p(x) for ``candidate``, when its scores file
    (``results``/<name>.json) was made under exactly ``protocol`` — the same images (``eval_images``,
    ``eval_seed``), ``k_eval`` = K — after as many epochs as the checkpoint holds: (log_px, the file). Else
    (None, why not). A file written before scores recorded their epochs counts as scored at its run's budget
    (``train_and_score`` scores a run only once it has finished)."""
    parts = candidate.name.split("/")
    is_beyond, budget = _beyond_budget(parts[0])
    path = Path(results) / f"{candidate.name}.json"
    if not is_beyond or not path.exists():
        return None, f"no Beyond scores file ({path})"
    if any(getattr(protocol, key) != value for key, value in BEYOND_FIXED.items()):
        return None, f"this protocol is not the Beyond one ({protocol.describe()})"
    try:
        data = read_scores(path, parts[-1])
    except (ValueError, FileNotFoundError) as err:
        return None, f"{path} cannot be read: {err}"
    got = (data.get("eval_images"), data.get("eval_seed"), data.get("k_eval"))
    if got != (protocol.eval_images, protocol.eval_seed, protocol.k):
        return None, (f"{path} was scored under another protocol: {got[0]} images, seed {got[1]}, K = {got[2]} "
                      f"(this one: {protocol.eval_images}, seed {protocol.eval_seed}, K = {protocol.k})")
    epochs = data.get("epochs")
    if epochs is None and len(parts) == 2:
        try:
            epochs = get_run(parts[-1], budget).train.epochs
        except ValueError:
            epochs = None
    if epochs is None or epochs != candidate.epochs:
        return None, f"{path} scores the run after {epochs} epochs, its checkpoint holds {candidate.epochs}"
    if len(data["log_px"]) != protocol.eval_images:
        return None, f"{path} holds {len(data['log_px'])} log p(x) values, not {protocol.eval_images}"
    return [float(v) for v in data["log_px"]], str(path)


def full_scores(candidate: Candidate, results: str | os.PathLike, protocol: Protocol = ALL_IMAGES) -> tuple[list[float] | None, str]:
    """The long run's committed scores on all test images (:func:`vae_lib.runs.best_model.full_score_path`, written
    by ``scripts/best_model.py --score-all``) for ``candidate``, when it is the long run, ``protocol`` is
    :data:`ALL_IMAGES` at the file's K and the file scores this very checkpoint (its sha256): (log_px, the file).
    Else (None, why not)."""
    path = long_run.full_score_path(results)
    if candidate.name != f"best/{long_run.NAME}":
        return None, f"{candidate.name} is not the long run (best/{long_run.NAME})"
    if protocol != replace(ALL_IMAGES, k=protocol.k):
        return None, f"this protocol does not take every test image in order ({protocol.describe()})"
    data = long_run.read_full_score(results)
    if data is None:
        return None, f"no all-images scores file ({path})"
    if (data.get("k"), data.get("n_images")) != (protocol.k, protocol.n_test):
        return None, f"{path} was scored with K = {data.get('k')} on {data.get('n_images')} images"
    if data.get("sha256") != candidate.sha256:
        return None, f"{path} scores the run at {data.get('epochs')} epochs, another checkpoint than this one"
    return [float(v) for v in data["log_px"]], str(path)


def _snapshot(candidate: Candidate, device: str | torch.device) -> tuple[Candidate, VAE]:
    """The candidate's model as its file is now, with a record that describes exactly those bytes: the file is
    copied once (a training run may replace it meanwhile), hashed and loaded from the copy."""
    data = candidate.path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="vae_leaderboard_") as scratch:
        copy = Path(scratch) / "checkpoint.pt"
        copy.write_bytes(data)
        model, _, payload = load_checkpoint(copy, device)
    sha = hashlib.sha256(data).hexdigest()
    if sha == candidate.sha256:
        return candidate, model
    return replace(candidate, sha256=sha, epochs=_epochs(payload), seconds=_seconds(payload)), model


def _entry(candidate: Candidate, protocol: Protocol, log_px: list[float], source: str, seconds: float) -> dict:
    """A model's entry in the scores file."""
    return {"name": candidate.name, "sha256": candidate.sha256, "epochs": candidate.epochs, "seconds": candidate.seconds,
            "k": protocol.k, "log_px": log_px, "source": source, "score_seconds": round(seconds, 1),
            "scored_at": datetime.datetime.now().isoformat(timespec="seconds")}


class Outcome(NamedTuple):
    """What :func:`score_candidates` did for one candidate: ``action`` "cached", "reused", "scored" or "stopped",
    in ``seconds``, with a line of ``detail``."""

    name: str
    action: str
    seconds: float
    detail: str


def score_candidates(found: Sequence[Candidate], test_x: torch.Tensor | Callable[[], torch.Tensor],
                     out: str | os.PathLike, results: str | os.PathLike | None = None, protocol: Protocol = PROTOCOL,
                     stop_at: float | None = None, device: str | torch.device = "cpu",
                     log: Callable[[str], None] | None = print, show_progress: bool = False) -> list[Outcome]:
    """Score every candidate of ``found`` that the scores file ``out`` does not hold yet for its present checkpoint
    — a stale one (its checkpoint changed) is said so and scored again — under ``protocol`` on the grey test images
    ``test_x`` (or a function that loads them, called only when a model needs scoring). A Beyond scores file under
    ``results`` made under exactly this protocol is reused (:func:`beyond_scores`). The file is written through
    :func:`vae_lib.base.run_files.write_json` after each model (resumable; a committed file only grows), a line per
    model goes to ``log``, and no model is started — and one under way is dropped — once ``stop_at``
    (a ``time.time()`` timestamp) has passed; ``show_progress``: a bar over each model's batches of images.
    Returns what was done, per candidate."""
    board = load_board(out, protocol)
    say = log or (lambda line: None)
    images: torch.Tensor | None = None
    outcomes: list[Outcome] = []
    todo = candidates(found)
    for i, candidate in enumerate(todo, 1):
        head = f"[{i}/{len(todo)}] {candidate.name}"
        now = status(candidate, board)
        if now.state == "scored":
            outcomes.append(Outcome(candidate.name, "cached", 0.0, "already scored"))
            continue
        if now.state == "stale":
            say(f"{head}: {describe_stale(candidate, now.earlier)}: scoring it again")
        if stop_at is not None and time.time() >= stop_at:
            outcomes.append(Outcome(candidate.name, "stopped", 0.0, "the deadline passed before it started"))
            say(f"{head}: not started, the deadline has passed (resumes on the next call)")
            continue
        t0 = time.perf_counter()
        reused, source = (None, "")
        if results is not None:
            reused, source = beyond_scores(candidate, results, protocol)
            if reused is None:
                reused, source = full_scores(candidate, results, protocol)
        if reused is not None:
            board["runs"][entry_key(candidate.name, candidate.sha256)] = _entry(candidate, protocol, reused, source, 0.0)
            write_json(out, board, indent=None)
            outcomes.append(Outcome(candidate.name, "reused", time.perf_counter() - t0, source))
            say(f"{head}: reused {source} ({estimate(reused)} nats)")
            continue
        if images is None:
            images = protocol_images(test_x() if callable(test_x) else test_x, protocol).to(device)
        candidate, model = _snapshot(candidate, device)
        log_px = log_px_until(model, images, protocol.k, protocol.sampling_seed, stop_at, show_progress)
        seconds = time.perf_counter() - t0
        if log_px is None:
            outcomes.append(Outcome(candidate.name, "stopped", seconds, "the deadline passed while it was scored"))
            say(f"{head}: stopped at the deadline after {seconds:.0f} s, nothing written (resumes on the next call)")
            continue
        board["runs"][entry_key(candidate.name, candidate.sha256)] = _entry(candidate, protocol, log_px, "scored", seconds)
        write_json(out, board, indent=None)
        outcomes.append(Outcome(candidate.name, "scored", seconds, f"{estimate(log_px)} nats"))
        say(f"{head}: {estimate(log_px)} nats, {candidate.epochs} epochs, scored in {seconds:.0f} s")
    return outcomes


# --- the comparison ---------------------------------------------------------------------------------------------

def _values(scores: Any) -> Sequence[float]:
    """The per-image log p(x) of an entry of the scores file, or the values themselves."""
    return scores["log_px"] if isinstance(scores, Mapping) else scores


def restrict(scores: Mapping[str, Any], prefix: str | None = None) -> dict[str, Any]:
    """The models of ``scores`` (name → entry or per-image values) whose name starts with ``prefix`` (all for None);
    a ValueError listing the names when none does."""
    kept = {name: v for name, v in scores.items() if prefix is None or name.startswith(prefix)}
    if not kept:
        what = f"no scored model's name starts with {prefix!r}" if prefix is not None else "no scored model"
        raise ValueError(what + (f"; the scored ones: {', '.join(sorted(scores))}" if scores else ""))
    return kept


def ranking(scores: Mapping[str, Any], prefix: str | None = None) -> list[Ranked]:
    """The models of ``scores`` (name → an entry of the scores file, or per-image log p(x) values) whose name starts
    with ``prefix``, ordered by mean log p(x) over the images, highest first, each with its standard error."""
    kept = restrict(scores, prefix)
    ranked = [Ranked(name, estimate(_values(v), f"log p(x) of {name}")) for name, v in kept.items()]
    return sorted(ranked, key=lambda r: (-r.score.mean, r.name))


def compare(top: str, a: Sequence[float], other: str, b: Sequence[float], within: float = WITHIN) -> Comparison:
    """``top`` against ``other`` on the same images: the paired per-image difference a − b (mean ± s.e.), and the
    verdict "above by d ± s (z s.e.)" when it exceeds ``within`` standard errors, else "within 2 s.e. of other"."""
    d = paired_difference(a, b)
    if not math.isfinite(d.stderr):
        raise ValueError(f"{top} and {other}: a paired comparison needs at least two images, got {d.n}")
    z = d.mean / d.stderr if d.stderr > 0 else (math.inf if d.mean > 0 else 0.0)
    above = d.mean > within * d.stderr if d.stderr > 0 else d.mean > 0
    if above:
        text = f"above by {d.mean:.2f} ± {d.stderr:.2f} nats ({z:.1f} s.e.)"
    else:
        text = f"within {within:g} s.e. of {other} ({d.mean:+.2f} ± {d.stderr:.2f} nats, {z:.1f} s.e.)"
    return Comparison(other, d, z, above, text)


def best_model(scores: Mapping[str, Any], prefix: str | None = None, within: float = WITHIN) -> Best:
    """Which model of ``scores`` (name → entry or per-image values, all on the same images), restricted to names
    starting with ``prefix``, is best: the one with the highest mean log p(x), called best only when the paired
    per-image difference puts it above every other model by more than ``within`` standard errors; otherwise
    ``best`` is None and ``tied`` holds the top and every model it cannot be separated from."""
    kept = restrict(scores, prefix)
    ranked = ranking(kept)
    top = ranked[0].name
    lengths = {len(_values(v)) for v in kept.values()}
    if len(lengths) > 1:
        raise ValueError(f"the models were scored on different numbers of images ({sorted(lengths)}): "
                         "a paired comparison needs the same images")
    verdicts = tuple(compare(top, _values(kept[top]), r.name, _values(kept[r.name]), within) for r in ranked[1:])
    tied = (top, *(c.other for c in verdicts if not c.above))
    return Best(over="all models" if prefix is None else f"{prefix}*", names=tuple(r.name for r in ranked), top=top,
                best=top if len(tied) == 1 else None, tied=tied, ranking=tuple(ranked), verdicts=verdicts)
