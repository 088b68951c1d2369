"""scripts/figure3_paper_protocol.py's folder options: ``--curves`` and ``--checkpoints`` name where the runs'
curves and checkpoints are read (default results/figure3 and checkpoints/figure3), ``--runs`` which runs are
scored, ``--out`` defaults into the curves' folder; bad values are refused with a usage error before anything
is scored, and a run is read from the named folders — its curve's step size recorded beside its samples.
The scoring itself (vae_lib.runs.paper_protocol) is replaced by a stand-in: these tests take seconds."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
RULE_CURVE = ROOT / "results" / "figure3_rule" / "fig3_aevb_n50000.json"


def _script():
    spec = importlib.util.spec_from_file_location("script_figure3_paper_protocol",
                                                  ROOT / "scripts" / "figure3_paper_protocol.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pp = _script()


def _refused(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        pp.parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _folders(tmp_path: Path, with_checkpoint: bool = True) -> tuple[Path, Path]:
    """A curves folder holding the rule's AEVB 50000-image curve (a real one, copied) and a checkpoints
    folder holding a placeholder for its checkpoint (never opened: the loading is replaced in the tests)."""
    curves, checkpoints = tmp_path / "curves", tmp_path / "checkpoints"
    curves.mkdir()
    checkpoints.mkdir()
    shutil.copy(RULE_CURVE, curves / RULE_CURVE.name)
    if with_checkpoint:
        (checkpoints / "fig3_aevb_n50000.pt").write_bytes(b"placeholder")
    return curves, checkpoints


def test_the_defaults_are_the_books_figure3_folders_and_every_run():
    args, runs = pp.parse_args([])
    assert args.curves == ROOT / "results" / "figure3" and args.checkpoints == ROOT / "checkpoints" / "figure3"
    assert args.out == ROOT / "results" / "figure3" / "paper_protocol.json"
    assert [r.name for r in runs] == [r.name for r in pp.figure3_runs()]


def test_a_missing_folder_is_refused_by_name(capsys, tmp_path):
    err = _refused(capsys, ["--curves", str(tmp_path / "nowhere")])
    assert "--curves" in err and "existing folder" in err and "nowhere" in err
    err = _refused(capsys, ["--checkpoints", str(tmp_path / "nowhere")])
    assert "--checkpoints" in err and "existing folder" in err


def test_runs_must_be_known_and_have_their_curve_and_checkpoint(capsys, tmp_path):
    curves, checkpoints = _folders(tmp_path, with_checkpoint=False)
    assert "unknown runs fig3_vae_n7" in _refused(capsys, ["--curves", str(curves), "--runs", "fig3_vae_n7"])
    err = _refused(capsys, ["--curves", str(curves), "--checkpoints", str(checkpoints), "--runs", "fig3_mcem_n1000"])
    assert "no curve" in err and "fig3_mcem_n1000.json" in err
    err = _refused(capsys, ["--curves", str(curves), "--checkpoints", str(checkpoints)])
    assert "no checkpoint" in err and "fig3_aevb_n50000.pt" in err
    assert "holds no Figure 3 curve" in _refused(capsys, ["--curves", str(checkpoints)])


def test_the_named_folders_are_read_and_the_out_file_defaults_into_the_curves_folder(capsys, tmp_path):
    curves, checkpoints = _folders(tmp_path)
    args, runs = pp.parse_args(["--curves", str(curves), "--checkpoints", str(checkpoints)])
    assert [r.name for r in runs] == ["fig3_aevb_n50000"]            # the only curve there; the others skipped
    assert args.curves == curves and args.checkpoints == checkpoints and args.out == curves / "paper_protocol.json"
    assert "fig3_mcem_n1000: no curve" in capsys.readouterr().out


def test_a_run_is_scored_from_the_named_folders_with_its_step_size(monkeypatch, tmp_path):
    curves, checkpoints = _folders(tmp_path)
    curve = json.loads(RULE_CURVE.read_text())
    last = curve["points"][-1]
    seen = {}

    def load(run, folder):
        seen["checkpoints"] = Path(folder)
        return "model", last["samples"]

    def score(model, train_x, test_file, test_eval, values):
        seen["values"] = values
        return {"protocol": {"L": 50}, "train_first": [-1.0]}

    monkeypatch.setattr(pp, "load_figure3_model", load)
    monkeypatch.setattr(pp, "score_paper_protocol", score)
    monkeypatch.setattr(pp, "load_mnist", lambda *a: type("D", (), {"x": torch.zeros(2, 784)})())
    monkeypatch.setattr(pp, "figure3_data", lambda *a: (torch.zeros(2, 784),) * 3)
    out = tmp_path / "pp.json"
    argv = ["--curves", str(curves), "--checkpoints", str(checkpoints), "--out", str(out), "--runs", "fig3_aevb_n50000"]
    assert pp.main(argv) == 0
    held = json.loads(out.read_text())
    assert list(held) == ["fig3_aevb_n50000"] and seen["checkpoints"] == checkpoints
    entry = held["fig3_aevb_n50000"]
    assert list(entry)[:3] == ["samples", "step_size", "protocol"]
    assert entry["samples"] == last["samples"] and entry["step_size"] == curve["step_size"] == 0.1
    assert seen["values"] == last["test"]["values"]                   # the named curve's quadrature, paired
    assert pp.main(argv) == 0                                         # resumable: already scored, kept


def test_an_entry_scored_at_another_step_size_is_not_added_to(capsys, tmp_path):
    curves, checkpoints = _folders(tmp_path)
    out = tmp_path / "pp.json"
    out.write_text(json.dumps({"fig3_aevb_n50000": {"samples": 1, "step_size": 0.02}}))
    err = _refused(capsys, ["--curves", str(curves), "--checkpoints", str(checkpoints), "--out", str(out)])
    assert "step size 0.02" in err and "ran at 0.1" in err
