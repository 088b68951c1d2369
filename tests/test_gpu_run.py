"""The GPU command's dry run: every step of scripts/gpu_run.py at toy size on the CPU, so the command a
lent GPU session runs cannot rot in between."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_command_dry_run(tmp_path):
    out, results = tmp_path / "out", tmp_path / "results" / "gpu"
    env = {**os.environ, "VAE_PROGRESS": "off"}
    proc = subprocess.run([sys.executable, "scripts/gpu_run.py", "--dry-run", "--out", str(out), "--results", str(results)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((results / "summary.json").read_text())
    steps = summary["steps"]
    assert list(steps) == ["env", "tests", "bench", "graph_check", "paper_1e8", "loglik", "best", "figure2", "figure3",
                           "beyond"]
    failed = {k: v["status"] for k, v in steps.items() if v["status"].startswith(("failed", "skipped"))
              or "exit 0" not in v["status"] and v["status"].startswith("exit")}
    assert not failed, failed
    assert "passed" in steps["tests"]["status"]
    assert json.loads((results / "graph_check.json").read_text())["step_mode_used_below"] == "graphed"
    bench = json.loads((results / "bench.json").read_text())
    assert bench["samples_per_s"]["vae_lib fit, graphed"] > 0 and bench["matmul_peak_gflops"] > 0
    with tarfile.open(out / "gpu_results.tar.gz") as tar:
        names = tar.getnames()
    for name in ("env.json", "tests.txt", "bench.json", "graph_check.json", "paper_1e8.json", "loglik.json", "summary.json"):
        assert f"results/gpu/{name}" in names, names
    assert any(n.startswith("results/figure2_gpu/fig2_") for n in names)
    fig3 = [n for n in names if n.startswith("results/figure3/fig3_")]
    assert len(fig3) == 2, names                       # the dry run's two Figure 3 runs
    for name in ("fig3_aevb_n1000", "fig3_mcem_n1000"):
        curve = json.loads((results / "figure3" / f"{name}.json").read_text())   # --results DIR: all under DIR
        assert curve["finished"] and curve["points"][-1]["test"]["converged"] == 5
    with tarfile.open(out / "figure3_checkpoints.tar.gz") as tar:
        assert "checkpoints/figure3/fig3_mcem_n1000.pt" in tar.getnames()
    assert not any("checkpoints" in n for n in names)
    assert "results/gpu/beyond/vae_k1.json" in names                  # chapter 14's runs, continued and scored
    with tarfile.open(out / "best_checkpoint.tar.gz") as tar:   # the best model's long run, continued
        assert tar.getnames() == ["checkpoints/best/best_dreg_k5.pt"]
    assert "best_dreg_k5: 1 of 3280 epochs" in steps["best"]["status"]
    with tarfile.open(out / "beyond_checkpoints.tar.gz") as tar:
        assert "checkpoints_beyond/vae_k1.pt" in tar.getnames()
