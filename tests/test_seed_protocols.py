"""The seed's protocols (vae_lib.runs.seed_protocols): each protocol's training and test images, and the
result file's checks."""

import json
from pathlib import Path

import pytest
import torch

from vae_lib.runs.seed_protocols import PROTOCOLS, protocol_data, read_result


def test_each_protocol_observes_training_and_test_images_alike():
    grey = torch.rand(50, 784, generator=torch.Generator().manual_seed(0))
    for protocol in PROTOCOLS:
        train, fit_protocol, test = protocol_data(protocol, grey[:40], grey[40:])
        assert train.shape == (40, 784) and test.shape == (10, 784)
        if protocol == "grey":
            assert torch.equal(train, grey[:40]) and torch.equal(test, grey[40:]) and fit_protocol == "grey"
        elif protocol == "threshold":
            assert torch.equal(test, (grey[40:] > 0.5).float()) and fit_protocol == "threshold"
        else:   # one binarization, made once: fit trains on it as it is
            assert fit_protocol == "grey" and set(train.unique().tolist()) <= {0.0, 1.0}
            assert torch.equal(train, protocol_data("fixed", grey[:40], grey[40:])[0])
    with pytest.raises(ValueError, match="unknown protocol 'dynamic'"):
        protocol_data("dynamic", grey, grey)


def test_a_result_file_names_its_faults(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text("[1,")
    with pytest.raises(ValueError, match="r.json is not JSON"):
        read_result(bad)
    bad.write_text(json.dumps({"format": "vae_lib.seed_protocols/1",
                               "runs": [{"config": "seed_z3_h400", "protocol": "grey", "mean": float("nan"), "se": 1.0}]}))
    with pytest.raises(ValueError, match="seed_z3_h400 / grey has no finite score"):
        read_result(bad)
    bad.write_text(json.dumps({"format": "x"}))
    with pytest.raises(ValueError, match="not a seed-protocol result"):
        read_result(bad)


def test_a_protocol_one_configuration_misses_is_not_trained_for_the_other(tmp_path, monkeypatch):
    import vae_lib.runs.seed_protocols as sp

    monkeypatch.setattr(sp, "PROTOCOLS", ("threshold",))
    result = sp.run_all(tmp_path / "runs", tmp_path / "r.json", epochs=1, n_test=50)
    assert [(r["config"], r["protocol"]) for r in result["runs"]] == [
        ("seed_z12_h256-128", "book"), ("seed_z3_h400", "book"), ("seed_z12_h256-128", "threshold")]
    (skip,) = result["skipped"]          # one epoch lands tens of nats from the seed's -92.08
    assert (skip["config"], skip["protocol"], skip["excluded_by"]) == ("seed_z3_h400", "threshold", "seed_z12_h256-128")
    assert abs(skip["difference"]) > 2 * skip["se"]
    assert sp.read_result(tmp_path / "r.json")["skipped"] == result["skipped"]


def test_the_seed_names_its_estimator_for_the_first_configuration_only():
    """seed.md states K = 100 for configuration 1 (z = 3) and no estimator for configuration 2 (z = 12):
    chapter 1's table prints which, and the book's K is the stated one."""
    from vae_lib.runs.seed_protocols import K, SEED_K_STATED, SEED_VALUES

    seed_md = (Path(__file__).resolve().parents[2] / "shared" / "seed.md")
    assert set(SEED_K_STATED) == set(SEED_VALUES) and K == 100
    assert SEED_K_STATED == {"seed_z3_h400": True, "seed_z12_h256-128": False}
    if seed_md.exists():   # beside the checkout here; a clone elsewhere may not have it
        text = seed_md.read_text()
        first, second = text.split("Configuration 2")
        assert "100 importance-weighted samples" in first and "importance" not in second.split("Figures")[0]
