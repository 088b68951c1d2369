"""Checkpoints of the training driver (vae_lib.training.train): written atomically, read with
``torch.load(..., weights_only=True)``, refused with a clear error when missing, corrupt, of another
format or holding non-finite weights; a check that a checkpoint's folder is writable before a run, and one
that a checkpoint was made by the run asked to resume it. A committed checkpoint is replaced only by one that
has gone further, or on purpose (:mod:`vae_lib.base.committed`)."""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from vae_lib.base.committed import check_replace
from vae_lib.base.run_files import usual_mode
from vae_lib.model.prior_vae import PriorConfig, PriorVAE, saved_prior_config
from vae_lib.model.two_layer import TwoLayerConfig, TwoLayerVAE
from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.training.train_config import History, TrainConfig

CHECKPOINT_FORMAT = "vae_lib.checkpoint/1"


def save_checkpoint(path: str | os.PathLike, model: VAE, train_config: TrainConfig | None = None,
                    history: History | None = None, extra: dict | None = None, replace: bool = False) -> None:
    """Write model state, configs and history to ``path`` atomically (temporary file, then rename),
    in a form ``torch.load(path, weights_only=True)`` reads. A committed checkpoint at ``path`` is replaced
    only by one that has gone further, or with ``replace`` (:func:`vae_lib.base.committed.check_replace`).
    A model with a prior of its own (:class:`~vae_lib.model.prior_vae.PriorVAE`) also saves its
    ``prior_config`` (kind and size; the prior's parameters are in the model state), and the two-stochastic-layer
    model ``model_kind`` "two_layer" (its ``model_config`` a :class:`~vae_lib.model.two_layer.TwoLayerConfig`); a
    plain VAE's checkpoint has neither key, as before."""
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_config": asdict(model.config),
        **({"prior_config": asdict(model.prior_config)} if isinstance(model, PriorVAE) else {}),
        **({"model_kind": "two_layer"} if isinstance(model, TwoLayerVAE) else {}),
        "train_config": asdict(train_config) if train_config else None,
        "model_state": model.state_dict(),
        "history": (history or History()).as_dict(),
        **(extra or {}),
    }
    if not check_replace(path, payload, lambda: torch.load(path, map_location="cpu", weights_only=True),
                         replace=replace):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # a temporary file unique to this writer, in the same folder (so the rename is atomic): two runs
    # writing one checkpoint never share a temporary file, and the last complete writer wins
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _corrupt(path: Path, err: Exception) -> ValueError:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Weights only load failed"):   # torch's advice follows: keep only its reason
        lines = [line.removeprefix("WeightsUnpickler error: ") for line in lines if "Unsupported" in line] or ["not a checkpoint"]
    first_line = lines[0] if lines else type(err).__name__
    return ValueError(f"checkpoint {path} is corrupt, truncated or not a vae_lib checkpoint: delete it "
                      f"and train again (torch.load said: {first_line})")


def read_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> dict:
    """The raw checkpoint dictionary at ``path``, loaded with ``weights_only=True``; a clear error
    when the file is missing, corrupt, or not a vae_lib checkpoint."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; train a model first (vae_lib.training.train.train_model)")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        if found:
            # a pickle of Python objects, not only tensors and plain values: not a checkpoint this book wrote.
            # Never torch's advice to retry with weights_only=False: that would run the file's code.
            raise ValueError(f"{path} is not a checkpoint this book wrote: it holds a Python object of type "
                             f"{found.group(1)}, and vae_lib reads only checkpoints of tensors and plain values (it "
                             "never runs code from a file). Pass the path of a checkpoint vae_lib wrote, or delete "
                             "it and train again") from None
        raise _corrupt(path, err) from None
    except Exception as err:
        raise _corrupt(path, err) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a vae_lib checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return payload


def check_finite_weights(path: str | os.PathLike, payload: dict) -> None:
    """A ValueError naming the tensors and the fix when the model saved in ``payload`` (read from
    ``path``) holds NaN or infinite weights: such a model scores every input as NaN."""
    bad = [name for name, t in payload["model_state"].items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"checkpoint {path} holds non-finite weights ({', '.join(bad)}): the run that wrote it "
                         "diverged. Delete it and train again, with a lower learning rate.")


def model_from_payload(payload: dict) -> VAE:
    """The (untrained) model a checkpoint's configs describe: a :class:`~vae_lib.model.prior_vae.PriorVAE` when
    it saved a ``prior_config``, a :class:`~vae_lib.model.two_layer.TwoLayerVAE` for ``model_kind`` "two_layer",
    else the plain VAE of every checkpoint written before either existed."""
    if payload.get("model_kind") == "two_layer":
        return TwoLayerVAE(TwoLayerConfig(**payload["model_config"]))
    config = VAEConfig(**payload["model_config"])
    prior = payload.get("prior_config")
    return VAE(config) if prior is None else PriorVAE(config, PriorConfig(**prior))


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[VAE, History, dict]:
    """Rebuild the model saved at ``path`` on ``device``: returns (model, history, raw checkpoint) — a
    :class:`~vae_lib.model.prior_vae.PriorVAE` for a checkpoint with a ``prior_config`` (:func:`~vae_lib.training.checkpoints.model_from_payload`).
    Non-finite weights are refused (:func:`check_finite_weights`)."""
    payload = read_checkpoint(path, device)
    check_finite_weights(path, payload)
    model = model_from_payload(payload).to(device)
    try:
        model.load_state_dict(payload["model_state"])
    except RuntimeError as err:
        raise ValueError(f"checkpoint {path} does not match its own model config: {err}") from err
    model.eval()
    return model, History.from_dict(payload["history"]), payload


def check_writable(path: str | os.PathLike) -> None:
    """An OSError naming the folder and the fix unless a checkpoint can be written at ``path``: its
    folder is created if needed and a temporary file is made and removed there — before training, so a
    read-only folder costs a second, not a training run."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        why = "a file is in the way" if isinstance(err, (FileExistsError, NotADirectoryError)) else err.strerror or err
        raise OSError(err.errno, f"cannot write the checkpoint {path}: the folder {folder} is not writable "
                                 f"({why}). Pass a checkpoint path in a writable folder (or set "
                                 f"VAE_CHECKPOINT_DIR), or make {folder} writable") from err


def check_resumable(path: Path, payload: dict, model: VAE, config: TrainConfig) -> None:
    """A ValueError listing what differs when the checkpoint ``payload`` (read from ``path``) was made with
    another model or training configuration than ``config`` (its length aside, unless the step size decays
    over the whole run)."""
    saved_model = payload["model_config"]
    saved_train = asdict(TrainConfig.from_dict(dict(payload["train_config"] or {})))
    mismatched = [f"model_config.{k}: checkpoint {saved_model.get(k)!r} vs asked {v!r}"
                  for k, v in asdict(model.config).items() if saved_model.get(k) != v]
    asked_prior = model.prior_config if isinstance(model, PriorVAE) else None
    if saved_prior_config(payload.get("prior_config")) != asked_prior:
        mismatched.append(f"prior_config: checkpoint {payload.get('prior_config')!r} vs asked {asked_prior!r}")
    mismatched += [f"train_config.{k}: checkpoint {saved_train.get(k)!r} vs asked {v!r}"
                   for k, v in asdict(config).items() if k != "epochs" and saved_train.get(k) != v]
    if (config.lr_schedule == "cosine" and saved_train.get("epochs") != config.epochs
            and len(payload["history"]["epoch"]) < config.epochs):
        # the cosine decay spans the whole run; resuming a run made for another length would restore its
        # scheduler (T_max included) and follow that run's curve: past its end, an epoch at lr 0, then a restart
        mismatched.append(f"train_config.epochs: checkpoint {saved_train.get('epochs')!r} vs asked {config.epochs!r} "
                          "(a cosine schedule decays over the whole run, so a run cannot be lengthened)")
    if mismatched:
        raise ValueError(f"checkpoint {path} was made with another configuration:\n  " + "\n  ".join(mismatched)
                         + "\nDelete it, or pass another checkpoint path, to train this configuration.")


def data_fingerprint(train_x: torch.Tensor) -> dict:
    """What a checkpoint records of its training images: their count, size and sum of grey levels (float64) —
    enough to tell two splits apart (Frey Face's random and contiguous hold-outs, a subset, another data set)."""
    return {"n": int(train_x.shape[0]), "d": int(train_x[0].numel()) if len(train_x) else 0,
            "sum": float(train_x.double().sum())}


def check_same_data(path: Path, payload: dict, fingerprint: dict) -> None:
    """A ValueError naming the checkpoint when it was trained on other images than ``fingerprint`` describes
    (:func:`data_fingerprint`); checkpoints written before the fingerprint existed are not checked."""
    saved = payload.get("train_data")
    if not isinstance(saved, dict):
        return
    same = saved.get("n") == fingerprint["n"] and saved.get("d") == fingerprint["d"] and \
        abs(float(saved.get("sum", float("nan"))) - fingerprint["sum"]) <= 1e-6 * max(1.0, abs(fingerprint["sum"]))
    if not same:
        raise ValueError(f"checkpoint {path} was trained on other images ({saved}) than this run's ({fingerprint}): "
                         "another split or data set under this run's name. Delete it, or pass another checkpoint path")
