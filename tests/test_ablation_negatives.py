"""benchmarks/ablation_negatives.py: per-model overrides, the table from stored results, and the guard
against reusing results of another configuration (no training: the runs' files are written here)."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
SPEC = importlib.util.spec_from_file_location("ablation_negatives", BENCH / "ablation_negatives.py")
abl = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(abl)


def test_overrides_for_every_run_and_for_one_model():
    sets = ["train.reg=0.001", "pinsage:train.batch_size=8192", "lightgcn:model_args.num_layers=2"]
    pin = abl.apply_overrides({"model": "pinsage", "model_args": {}, "train": {"batch_size": 2048}}, sets)
    lgc = abl.apply_overrides({"model": "lightgcn", "model_args": {}, "train": {"batch_size": 2048}}, sets)
    assert pin == {"model": "pinsage", "model_args": {}, "train": {"batch_size": 8192, "reg": 0.001}}
    assert lgc == {"model": "lightgcn", "model_args": {"num_layers": 2}, "train": {"batch_size": 2048, "reg": 0.001}}
    with pytest.raises(SystemExit, match="unknown model 'ngcf'"):
        abl.apply_overrides({"model": "pinsage", "train": {}}, ["ngcf:train.lr=0.1"])


def _stored_run(out, name, batch_size=2048, lr=0.005):
    """Write the config.yaml, results.json and metrics.jsonl a finished `graphcf train` run leaves in out/name."""
    run = out / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "lightgcn", "train": {"batch_size": batch_size, "lr": lr}}))
    (run / "results.json").write_text(json.dumps({"best_epoch": 10, "val": {"recall@20": 0.0738, "ndcg@20": 0.035},
                                                  "test": {"recall@20": 0.0693, "ndcg@20": 0.0361}}))
    rows = [{"epoch": e, "train_s": s, "peak_rss_mb": 1024.0 * e} for e, s in [(1, 9.0), (2, 11.0), (3, 10.0)]]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_table_from_stored_results_and_config_guard(tmp_path, capsys):
    out = tmp_path / "abl"
    base = ["--data", str(tmp_path / "data"), "--configs", "lightgcn-uniform", "--out", str(out), "--epochs", "7"]
    _stored_run(out, "lightgcn-uniform")
    abl.main(base + ["--set", "lightgcn:train.lr=0.005", "--set", "pinsage:train.lr=0.5"])
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("| lightgcn-uniform")]
    assert line == ["| lightgcn-uniform | 2048 | 0.005 | 10/3 | 0.0738 | 0.0350 | 0.0693 | 0.0361 | 10.0 | 3.00 |"]
    saved = yaml.safe_load((out / "lightgcn-uniform" / "ablation.yaml").read_text())
    assert saved["train"]["lr"] == 0.005 and saved["train"]["epochs"] == 7 and saved["model"] == "lightgcn"
    # the same command again reuses the results; another configuration refuses to
    abl.main(base + ["--set", "lightgcn:train.lr=0.005"])
    with pytest.raises(SystemExit, match="another configuration"):
        abl.main(base + ["--set", "lightgcn:train.lr=0.001"])


def test_table_batch_and_lr_are_the_runs_own(tmp_path, capsys):
    """The row shows the batch size and lr the run trained with (its resolved config.yaml, where the
    model's default lr is filled in), not the command's --batch-size."""
    out = tmp_path / "abl"
    _stored_run(out, "lightgcn-uniform", batch_size=8192, lr=0.001)
    abl.main(["--data", str(tmp_path / "data"), "--configs", "lightgcn-uniform", "--out", str(out),
              "--batch-size", "2048", "--set", "lightgcn:train.batch_size=8192"])
    text = capsys.readouterr().out
    line = [x for x in text.splitlines() if x.startswith("| lightgcn-uniform")]
    assert line == ["| lightgcn-uniform | 8192 | 0.001 | 10/3 | 0.0738 | 0.0350 | 0.0693 | 0.0361 | 10.0 | 3.00 |"]
    assert "batch=" not in text.splitlines()[0]
