"""Time-to-accuracy table of training runs: seconds per epoch, when a metric first passes thresholds, peak RSS.

Usage::

    python benchmarks/time_to_accuracy.py RUN_DIR [RUN_DIR ...] [--metric val/recall@20]
        [--thresholds 0.17 0.18] [--labels A B ...]

Each ``RUN_DIR`` is a directory with the ``metrics.jsonl`` that :class:`graphcf.train.Trainer`
writes (one line per epoch: ``train_s``, ``peak_rss_mb``, and on evaluation epochs the metrics
and ``eval_s``), e.g. ``OUT/tune`` (validation curve) or ``OUT/full_log`` (test curve) of
``benchmarks/reproduce.py``. Nothing is re-run: every figure is read from what those runs
measured.

Columns: median seconds per training epoch; for each threshold the first evaluated epoch at which
``--metric`` is at least the threshold, with the cumulative training seconds up to that epoch and
the cumulative wall seconds (training + evaluation); the best value and its epoch; the run's
peak RSS. An evaluation happens every ``eval_every`` epochs, so a crossing is known only to the
resolution of that spacing. Prints one Markdown table to stdout.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence


def read_metrics(run_dir: Path) -> List[Dict[str, Any]]:
    """The epoch records of ``run_dir/metrics.jsonl`` (or of ``run_dir`` itself if it is the file)."""
    path = run_dir if run_dir.is_file() else run_dir / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"time_to_accuracy: no metrics.jsonl at {path}")
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"time_to_accuracy: {path}, line {n}: not JSON ({e})") from None
    return rows


def summarise(rows: Sequence[Dict[str, Any]], metric: str, thresholds: Sequence[float]) -> Dict[str, Any]:
    """Seconds per epoch, first crossing of each threshold (epoch, train s, wall s), best, peak RSS."""
    train = [float(r.get("train_s", math.nan)) for r in rows]
    cum_train = cum_wall = 0.0
    crossings: Dict[float, Optional[tuple]] = {t: None for t in thresholds}
    best, best_epoch = -math.inf, None
    for r, t in zip(rows, train):
        cum_train += t
        cum_wall += t + float(r.get("eval_s", 0.0))
        if metric not in r:
            continue
        v = float(r[metric])
        if v > best:
            best, best_epoch = v, r["epoch"]
        for th in thresholds:
            if crossings[th] is None and v >= th:
                crossings[th] = (r["epoch"], cum_train, cum_wall)
    rss = [float(r["peak_rss_mb"]) for r in rows if "peak_rss_mb" in r]
    return {
        "epochs": len(rows),
        "s_per_epoch": statistics.median(train) if train else math.nan,
        "crossings": crossings,
        "best": best if best_epoch is not None else math.nan,
        "best_epoch": best_epoch,
        "peak_rss_gib": max(rss) / 1024 if rss else math.nan,
        "train_s": cum_train,
    }


def table(runs: Sequence[tuple], metric: str, thresholds: Sequence[float]) -> str:
    head = ["run", "epochs", "median s/epoch"]
    for th in thresholds:
        head.append(f"{metric} >= {th}: epoch / train s / wall s")
    head += [f"best {metric} (epoch)", "total train s", "peak RSS GiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, s in runs:
        cells = [label, str(s["epochs"]), f"{s['s_per_epoch']:.1f}"]
        for th in thresholds:
            c = s["crossings"][th]
            cells.append("not reached" if c is None else f"{c[0]} / {c[1]:.0f} / {c[2]:.0f}")
        cells.append("-" if s["best_epoch"] is None else f"{s['best']:.4f} ({s['best_epoch']})")
        cells += [f"{s['train_s']:.0f}", "-" if math.isnan(s["peak_rss_gib"]) else f"{s['peak_rss_gib']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run directories (or metrics.jsonl files)")
    p.add_argument("--metric", default="val/recall@20")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.17, 0.18])
    p.add_argument("--labels", nargs="+", help="one label per run (default: the paths)")
    args = p.parse_args(argv)
    if args.labels and len(args.labels) != len(args.runs):
        p.error(f"--labels: {len(args.labels)} labels for {len(args.runs)} runs")
    labels = args.labels or [str(r) for r in args.runs]
    runs = [(lab, summarise(read_metrics(r), args.metric, args.thresholds)) for lab, r in zip(labels, args.runs)]
    print(table(runs, args.metric, args.thresholds))


if __name__ == "__main__":
    sys.exit(main())
