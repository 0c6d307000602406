"""The docs tutorials run as part of the test suite so they never rot."""
import os
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_quickstart_runs():
    env = {**os.environ, "GRAPHCF_QUICKSTART_EPOCHS": "4"}
    r = subprocess.run([sys.executable, str(DOCS / "quickstart.py")], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "BPR-MF" in r.stdout and "top-5 ['i" in r.stdout


def test_hard_negatives_tutorial_runs():
    env = {**os.environ, "GRAPHCF_TUTORIAL_EPOCHS": "10"}
    r = subprocess.run([sys.executable, str(DOCS / "hard_negatives.py")], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "PPR band" in r.stdout and "PinSAGE, shared + PPR curriculum" in r.stdout and "best here" in r.stdout
