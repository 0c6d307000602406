"""benchmarks/time_to_accuracy.py on a hand-written metrics.jsonl with known crossings."""
import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "time_to_accuracy", Path(__file__).resolve().parents[1] / "benchmarks" / "time_to_accuracy.py")
tta = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(tta)


def write(tmp_path, rows):
    with open(tmp_path / "metrics.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return tmp_path


def test_crossings_cumulative_seconds_and_rss(tmp_path, capsys):
    rows = [
        {"epoch": 1, "train_s": 10.0, "peak_rss_mb": 500},
        {"epoch": 2, "train_s": 12.0, "peak_rss_mb": 700, "val/recall@20": 0.15, "eval_s": 3.0},
        {"epoch": 3, "train_s": 11.0, "peak_rss_mb": 700},
        {"epoch": 4, "train_s": 30.0, "peak_rss_mb": 1024, "val/recall@20": 0.175, "eval_s": 4.0},
        {"epoch": 5, "train_s": 11.0, "peak_rss_mb": 1024},
        {"epoch": 6, "train_s": 11.0, "peak_rss_mb": 2048, "val/recall@20": 0.172, "eval_s": 5.0},
    ]
    s = tta.summarise(rows, "val/recall@20", [0.1, 0.17, 0.18])
    assert s["s_per_epoch"] == pytest.approx(11.0)  # median of 10, 11, 11, 11, 12, 30
    assert s["crossings"][0.1] == (2, 22.0, 25.0)
    assert s["crossings"][0.17] == (4, 63.0, 70.0)  # 10+12+11+30 train; + 3 + 4 eval
    assert s["crossings"][0.18] is None
    assert (s["best"], s["best_epoch"]) == (0.175, 4)
    assert s["peak_rss_gib"] == pytest.approx(2.0)
    tta.main([str(write(tmp_path, rows)), "--thresholds", "0.17", "0.18", "--labels", "run-a"])
    out = capsys.readouterr().out
    assert "| run-a | 6 | 11.0 | 4 / 63 / 70 | not reached | 0.1750 (4) | 85 | 2.00 |" in out


def test_bad_input_names_the_file_and_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 2"):
        tta.read_metrics(tmp_path)
    with pytest.raises(FileNotFoundError, match="no metrics.jsonl"):
        tta.read_metrics(tmp_path / "missing")
